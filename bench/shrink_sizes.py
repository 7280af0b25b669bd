"""How much mmrace.shrink removes (issue 16): the size of failing programs before and
after shrinking, on the reproducers of examples/mutants/ and on failures of generated
workloads with a mutant switched on.  One row per program, then the medians of ops,
threads and preemptions before and after, per group.

A generated failure: for each built mutant, the workload programs of seeds 0, 1, ...
(mmrace.workload.shape with the mutant and its strategy, every feature on) under random
and PCT schedules until the first failure or MAX_RUNS runs.

    python bench/shrink_sizes.py [MAX_RUNS=3000] [MAX_SECONDS_PER_SHRINK=60]
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from mmrace import _core, workload
from mmrace.shrink import shrink

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ("ops", "threads", "preemptions")


def workload_failure(mutant: str, max_runs: int) -> str | None:
    """The reproducer of the first failing run of a workload (every feature on) with
    `mutant` and its strategy, under random and PCT schedules, or None."""
    shape = workload.shape(strategy=workload.strategy_for(mutant), mutants=[mutant])
    out = _core.explore(None, workload=shape, policies=["random", "pct"], max_runs=max_runs,
                        stop_at_first_failure=True)
    fails = [f for f in out["failures"] if f["verdict"] != "model_error"]
    return fails[0]["program"] if fails else None


def measure(name: str, text: str, seconds: float) -> dict:
    t0 = time.monotonic()
    res = shrink(text, max_seconds=seconds)
    dt = time.monotonic() - t0
    b, a = res.before, res.after
    print(f"{name:<42} {res.check or res.verdict:<22} ops {b.ops:>3}->{a.ops:<3} "
          f"threads {b.threads}->{a.threads} preempt {b.preemptions:>2}->{a.preemptions:<2} "
          f"decisions {b.decisions:>4}->{a.decisions:<4} runs {res.runs:>5} {dt:6.1f}s", flush=True)
    return {"before": b, "after": a}


def medians(group: str, rows: list[dict]) -> None:
    if not rows:
        print(f"{group}: no programs")
        return
    cells = []
    for f in FIELDS:
        before = statistics.median(getattr(r["before"], f) for r in rows)
        after = statistics.median(getattr(r["after"], f) for r in rows)
        cells.append(f"{f} {before:g} -> {after:g}")
    print(f"{group} (n={len(rows)}) medians: " + ", ".join(cells))


def main(argv: list[str]) -> None:
    max_runs = int(argv[0]) if argv else 3000
    seconds = float(argv[1]) if len(argv) > 1 else 60.0
    examples = [measure(p.stem, p.read_text(), seconds)
                for p in sorted((ROOT / "examples" / "mutants").glob("*.mmr"))]
    generated = []
    for row in _core.mutant_catalogue():
        if not row["built"]:
            continue
        text = workload_failure(row["name"], max_runs)
        if text is None:
            print(f"{'workload+' + row['name']:<42} no failure in {max_runs} runs", flush=True)
            continue
        generated.append(measure("workload+" + row["name"], text, seconds))
    medians("examples/mutants", examples)
    medians("generated workloads", generated)


if __name__ == "__main__":
    main(sys.argv[1:])
