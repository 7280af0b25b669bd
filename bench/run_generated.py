"""`mmrace run` on programs drawn by mmrace.strategies.mmr_programs() (issue 14): every
drawn program runs to a verdict under a random schedule, through the CLI's own code
(cli.main, in-process: a process per program would only measure Python start-up).

The N programs are drawn in chunks of CHUNK, each its own Hypothesis run seeded
SEED + chunk index (one 10^5-example run slows down as Hypothesis's tree of past choices
grows), on JOBS worker processes. A row is printed per finished chunk, then the total.
Exits 1 if any exit code is not 0 or 1.

    python bench/run_generated.py [N=1000] [SEED=0] [JOBS=2] [CHUNK=1000]
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path


def limit_memory() -> None:
    """A worker that needs more than 4 GiB fails its program (std::bad_alloc becomes an
    exit code other than 0 or 1) instead of taking the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def run_chunk(args: tuple[int, int, int]) -> tuple[int, float, dict, dict, list[str]]:
    """Runs n drawn programs under Hypothesis seed `chunk_seed`; the i-th program gets
    schedule `random seed=first + i`. Returns (chunk_seed, seconds, codes, verdicts, bad)."""
    from hypothesis import HealthCheck, given, seed, settings

    from mmrace import cli
    from mmrace.strategies import mmr_programs

    chunk_seed, first, n = args
    codes: collections.Counter[int] = collections.Counter()
    verdicts: collections.Counter[str] = collections.Counter()
    bad: list[str] = []
    path = Path(tempfile.mkdtemp()) / "drawn.mmr"
    count = 0

    @seed(chunk_seed)
    @settings(max_examples=n, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(mmr_programs())
    def run_one(text: str) -> None:
        nonlocal count
        path.write_text(text)
        out, err = io.StringIO(), io.StringIO()
        sched = f"random seed={first + count}"
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(["run", str(path), "--json", "--schedule", sched])
        count += 1
        codes[rc] += 1
        if rc in (0, 1):
            verdicts[json.loads(out.getvalue())["verdict"]] += 1
        elif len(bad) < 5:
            bad.append(f"exit {rc} under '{sched}': {err.getvalue().strip()}\n{text}")

    t0 = time.perf_counter()
    run_one()
    return chunk_seed, time.perf_counter() - t0, dict(codes), dict(verdicts), bad


def row(label: str, secs: float, codes: collections.Counter, verdicts: collections.Counter,
        names: list[str]) -> str:
    other = sum(v for k, v in codes.items() if k not in (0, 1))
    return (f"| {label} | {sum(codes.values())} | {secs:.0f} | {codes[0]} | {codes[1]} | "
            f"{other} | " + " | ".join(str(verdicts[v]) for v in names) + " |")


def main() -> int:
    argv = [int(a) for a in sys.argv[1:]]
    n, base, jobs, chunk = (argv + [1000, 0, 2, 1000][len(argv):])[:4]
    work = [(base + i, base + i * chunk, min(chunk, n - i * chunk))
            for i in range((n + chunk - 1) // chunk)]
    names = ["ok", "violation", "deadlock", "lock_order", "budget"]
    codes: collections.Counter[int] = collections.Counter()
    verdicts: collections.Counter[str] = collections.Counter()
    bad: list[str] = []
    print("| chunk seed | programs | seconds | exit 0 | exit 1 | other exits | " +
          " | ".join(names) + " |", flush=True)
    print("|---:|---:|---:|---:|---:|---:|" + "---:|" * len(names), flush=True)
    t0 = time.perf_counter()
    with multiprocessing.Pool(jobs, initializer=limit_memory) as pool:
        for s, secs, c, v, b in pool.imap_unordered(run_chunk, work):
            c, v = collections.Counter(c), collections.Counter(v)
            codes += c
            verdicts += v
            bad += b
            names += [k for k in v if k not in names]
            print(row(str(s), secs, c, v, names), flush=True)
    print(row("**total**", time.perf_counter() - t0, codes, verdicts, names), flush=True)
    for b in bad[:5]:
        print("\n" + b)
    return 1 if sum(v for k, v in codes.items() if k not in (0, 1)) else 0


if __name__ == "__main__":
    sys.exit(main())
