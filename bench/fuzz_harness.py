#!/usr/bin/env python3
"""Speed of the fuzz harnesses and their time to each built spf/pervma mutant (issue 17).

    # libFuzzer and AFL++ builds (fuzz/README.md):
    cmake -S . -B build/fuzz-lf -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
        -DMMRACE_FUZZ=ON -DMMRACE_TESTS=OFF -DMMRACE_BENCH=OFF && cmake --build build/fuzz-lf
    python bench/fuzz_harness.py speed --lf build/fuzz-lf [--afl build/fuzz-afl] [--seconds 20]
    python bench/fuzz_harness.py bugs --lf build/fuzz-lf [--seeds 3] [--limit 300]

`speed` prints executions per second of every target and engine, one core, no mutant,
from an empty corpus (AFL++ from the committed seeds, which it needs).  `bugs` prints the
seconds to the first crash of fuzz_spf/fuzz_pervma for each of their built mutants with
the interleaving counters on and off (MMRACE_FUZZ_COUNTERS), median over --seeds seeds
(libFuzzer -seed=1..N, empty corpus); a run that finds nothing within --limit counts as
the limit and is marked '>'.  Nothing here is asserted: it prints tables.
"""
import argparse
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGETS = ["program", "spf", "pervma", "gup", "mmr_parser"]
MUTANTS = {"spf": ["spf_no_seqcount_check", "spf_no_pmd_recheck"], "pervma": ["pervma_fork_no_vma_write_lock"]}


def libfuzzer_speed(build: pathlib.Path, target: str, seconds: int) -> float:
    with tempfile.TemporaryDirectory() as corpus:
        out = subprocess.run([str(build / "fuzz" / f"fuzz_{target}"), f"-max_total_time={seconds}",
                              "-print_final_stats=1", "-seed=1", corpus],
                             capture_output=True, text=True, env={**os.environ, "MMRACE_MUTANTS": ""})
    m = re.search(r"stat::average_exec_per_sec:\s+(\d+)", out.stderr)
    return float(m.group(1)) if m else float("nan")


def afl_speed(build: pathlib.Path, target: str, seconds: int) -> float:
    with tempfile.TemporaryDirectory() as work:
        seeds = ROOT / "fuzz" / "corpus" / target
        env = {**os.environ, "AFL_NO_UI": "1", "AFL_SKIP_CPUFREQ": "1", "AFL_NO_AFFINITY": "1",
               "AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES": "1", "AFL_SKIP_CRASHES": "1", "MMRACE_MUTANTS": ""}
        subprocess.run(["afl-fuzz", "-i", str(seeds), "-o", work, "-V", str(seconds), "--",
                        str(build / "fuzz" / f"fuzz_{target}")], capture_output=True, text=True, env=env)
        stats = pathlib.Path(work) / "default" / "fuzzer_stats"
        if not stats.exists():
            return float("nan")
        fields = dict(line.split(":", 1) for line in stats.read_text().splitlines() if ":" in line)
        execs = float(fields["execs_done"].strip())
        run_time = float(fields.get("run_time", str(seconds)).strip()) or seconds
        return execs / run_time


def time_to_bug(build: pathlib.Path, target: str, mutant: str, seed: int, counters: bool, limit: int) -> float | None:
    with tempfile.TemporaryDirectory() as corpus, tempfile.TemporaryDirectory() as art:
        env = {**os.environ, "MMRACE_MUTANTS": mutant, "MMRACE_FUZZ_COUNTERS": "1" if counters else "0"}
        start = time.monotonic()
        out = subprocess.run([str(build / "fuzz" / f"fuzz_{target}"), f"-max_total_time={limit}", f"-seed={seed}",
                              f"-artifact_prefix={art}/", corpus], capture_output=True, text=True, env=env)
        took = time.monotonic() - start
    return took if "==mmrace== finding" in out.stderr else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["speed", "bugs"])
    ap.add_argument("--lf", type=pathlib.Path, help="a libFuzzer build directory")
    ap.add_argument("--afl", type=pathlib.Path, help="an AFL++ build directory")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=300)
    a = ap.parse_args()
    if a.what == "speed":
        engines = [(n, b, f) for n, b, f in (("libfuzzer", a.lf, libfuzzer_speed), ("afl", a.afl, afl_speed)) if b]
        if not engines:
            ap.error("give --lf and/or --afl")
        if a.afl and not shutil.which("afl-fuzz"):
            ap.error("afl-fuzz is not on PATH (apt-get install afl++)")
        print(f"{'target':<12}" + "".join(f"{n + ' exec/s':>18}" for n, _, _ in engines))
        for t in TARGETS:
            print(f"{t:<12}" + "".join(f"{f(b, t, a.seconds):>18.0f}" for _, b, f in engines), flush=True)
        return 0
    if not a.lf:
        ap.error("bugs needs --lf")
    print(f"{'target':<8}{'mutant':<32}{'counters':>9}{'median s':>10}  runs (s)")
    for target, mutants in MUTANTS.items():
        for m in mutants:
            for counters in (True, False):
                runs = [time_to_bug(a.lf, target, m, s, counters, a.limit) for s in range(1, a.seeds + 1)]
                secs = [r if r is not None else float(a.limit) for r in runs]
                med = statistics.median(secs)
                shown = " ".join(f"{r:.0f}" if r is not None else f">{a.limit}" for r in runs)
                mark = ">" if sum(r is None for r in runs) * 2 > len(runs) else ""
                print(f"{target:<8}{m:<32}{'on' if counters else 'off':>9}{mark + format(med, '.0f'):>10}  {shown}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
