"""How fast the fuzzers find the built spf and pervma mutants, and how many executions
per second each harness runs (issue 17's must-shows), through `mmrace fuzz --json`.

  python bench/fuzz_time_to_bug.py [--seconds 300] [--seeds 3] [--engines libfuzzer,afl]
                                   [--mutants M,...] [--counters on,off] [--empty-corpus]
  python bench/fuzz_time_to_bug.py --speed [--seconds 30] [--targets program,spf,...]
                                   [--sanitize]

The first form prints one row per mutant x engine x interleaving counters (on, off): the
seconds to the first crash, median over the engine seeds 1..N (libFuzzer -seed, AFL++
-s), each run from the target's seed corpus (for spf and pervma: the fixed shape's
seeds in fuzz/seeds/, programs of the races the catalogue's mutants need, each with a
schedule that passes under its mutant: fork_counters is pervma_fork_no_vma_write_lock's
program, the fuzzer must find the interleaving), or from an empty corpus with
--empty-corpus.  A run that found nothing in --seconds counts
as more than --seconds.  The second form prints the executions per second of each target
and engine with no mutant and the seed corpus, on one core (one job); a finding there is
a false positive and is printed (`--speed --seconds 600` is the 10-minute no-false-positive
run, `--sanitize --targets program,mmr_parser` the decoder's and parser's robustness run
under ASan+UBSan).  Seconds are the engine's own time: a first build is not counted.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from mmrace import _core

ENGINES = ("libfuzzer", "afl")
KEEP = "bench-fuzz-findings"  # each run's reproducer is copied here


def fuzz(engine: str, target: str, seconds: float, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="mmrace-fuzz-bench-") as out:
        cmd = [sys.executable, "-m", "mmrace", "fuzz", "--engine", engine, "--target", target,
               "--seconds", str(seconds), "--json", "--out", out, *extra]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stderr[-2000:]}")
        r = json.loads(p.stdout)
        if r["reproducer"]:  # the output directory goes away: keep the reproducer
            keep = Path(KEEP) / f"{engine}-{target}-{Path(r['reproducer']).name}"
            keep.parent.mkdir(exist_ok=True)
            shutil.copy(r["reproducer"], keep)
            r["reproducer"] = str(keep)
        return r


def spf_and_pervma_mutants() -> list[tuple[str, str]]:
    """(mutant, target) for each built mutant of exactly one of spf and pervma."""
    return [(e["name"], e["strategies"]) for e in _core.mutant_catalogue()
            if e["built"] and e["strategies"] in ("spf", "pervma")]


def _cell(times: list[float], limit: float) -> str:
    med = statistics.median(times)
    return f"> {limit:g}" if med == float("inf") else f"{med:.1f}"


def time_to_bug(args: argparse.Namespace) -> None:
    rows = [(m, t) for m, t in spf_and_pervma_mutants() if not args.mutants or m in args.mutants]
    print(f"Seconds to the first crash, median of seeds 1..{args.seeds}, limit "
          f"{args.seconds:g} s, {'empty' if args.empty_corpus else 'seed'} start corpus, one job\n")
    print("| mutant | engine | counters | median s | found | per seed (s) | execs/s |")
    print("| --- | --- | --- | ---: | ---: | --- | ---: |")
    for mutant, target in rows:
        for engine in args.engines:
            for counters in args.counters:
                times, rates = [], []
                for seed in range(1, args.seeds + 1):
                    extra = ["--mutant", mutant, "--seed", str(seed)]
                    if args.empty_corpus:
                        extra.append("--no-seeds")
                    if counters == "off":
                        extra.append("--no-counters")
                    r = fuzz(engine, target, args.seconds, extra)
                    times.append(r["seconds"] if r["found"] else float("inf"))
                    if r["execs_per_s"]:
                        rates.append(r["execs_per_s"])
                per_seed = " ".join("-" if t == float("inf") else f"{t:.1f}" for t in times)
                found = sum(t != float("inf") for t in times)
                rate = f"{statistics.median(rates):,.0f}" if rates else "-"
                print(f"| {mutant} | {engine} | {counters} | {_cell(times, args.seconds)} | "
                      f"{found}/{args.seeds} | {per_seed} | {rate} |", flush=True)


def speed(args: argparse.Namespace) -> None:
    """Executions per second; with --clean the same runs are the no-false-positive check:
    a run with no mutant that finds anything is a bug of mmrace."""
    targets = args.targets or list(_core.fuzz_targets())
    san = "ASan+UBSan" if args.sanitize else "no sanitizers"
    print(f"Executions per second, no mutant, seed corpus, {args.seconds:g} s per run, one "
          f"job, {san}; a finding is marked FOUND (a false positive)\n")
    print("| target | " + " | ".join(args.engines) + " |")
    print("| --- | " + " | ".join("---:" for _ in args.engines) + " |")
    for target in targets:
        cells = []
        for engine in args.engines:
            r = fuzz(engine, target, args.seconds,
                     ["--seed", "1"] + (["--sanitize"] if args.sanitize else []))
            found = f" FOUND {r['reproducer']}" if r["found"] else ""
            rate = f"{r['execs_per_s']:,.0f}" if r["execs_per_s"] else "-"
            cells.append(f"{rate}{found}")
        print(f"| {target} | " + " | ".join(cells) + " |", flush=True)


def _list(text: str) -> list[str]:
    return [x for x in text.split(",") if x]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--speed", action="store_true", help="executions per second instead")
    ap.add_argument("--seconds", type=float, default=None,
                    help="per run (default 300; --speed: 30)")
    ap.add_argument("--seeds", type=int, default=3, help="engine seeds 1..N (default 3)")
    ap.add_argument("--engines", type=_list, default=list(ENGINES))
    ap.add_argument("--mutants", type=_list, default=[])
    ap.add_argument("--counters", type=_list, default=["on", "off"])
    ap.add_argument("--empty-corpus", action="store_true",
                    help="start each run from an empty corpus (--no-seeds)")
    ap.add_argument("--targets", type=_list, default=[])
    ap.add_argument("--sanitize", action="store_true",
                    help="--speed: build and run under ASan+UBSan (the robustness runs)")
    args = ap.parse_args()
    if args.seconds is None:
        args.seconds = 30.0 if args.speed else 300.0
    (speed if args.speed else time_to_bug)(args)


if __name__ == "__main__":
    main()
