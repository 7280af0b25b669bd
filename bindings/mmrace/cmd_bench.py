"""mmrace bench: how fast this machine explores the hunt workload, on one core.

Executions/s is _core.explore on the workload of `mmrace hunt`'s defaults (classic,
every feature on, random schedules) in this process: what one --jobs worker does.
Steps/s runs the same seeds' programs one by one through _core.run to count their
scheduler steps (so it includes generating and parsing each program).  Peak RSS is
this process's maximum resident set (getrusage), the whole interpreter included.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

from mmrace import _core
from mmrace.cmd_hunt import positive


def add_parser(sub: Any) -> None:
    b = sub.add_parser("bench", help="measure executions/s, steps/s and peak RSS",
                       description=__doc__.split("\n\n", 1)[1])
    b.add_argument("--seconds", type=positive(float, "number of seconds"), default=10.0, metavar="N",
                   help="the time to measure for, split between the two passes (default 10)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=cmd_bench)


def _executions(shape: dict, seconds: float) -> tuple[int, float]:
    """(runs, seconds) of the explore loop over seeds 0, 1, ... for `seconds`."""
    d = _core.explore(None, workload=shape, max_runs=1 << 62, max_seconds=seconds)
    return d["runs"], d["seconds"]


def _steps(shape: dict, runs: int, seconds: float) -> tuple[int, int, float]:
    """(programs, steps, seconds) of runs of seeds 0, 1, ... under `random seed=s`."""
    steps, n, t0 = 0, 0, time.perf_counter()
    while n < runs and time.perf_counter() - t0 < seconds:
        prog = _core.parse(_core.generate(n, "workload", workload=shape), f"<seed {n}>")
        steps += _core.run(prog, f"random seed={n}", None, False)["step"]
        n += 1
    return n, steps, time.perf_counter() - t0


def cmd_bench(args: argparse.Namespace) -> int:
    from mmrace import workload
    shape = workload.shape()
    runs, run_s = _executions(shape, args.seconds / 2)
    programs, steps, step_s = _steps(shape, runs, args.seconds / 2)
    out = {"workload": "hunt default: classic, every feature, random schedules",
           "executions": runs, "executions_per_s": round(runs / run_s, 1),
           "steps": steps, "steps_per_s": round(steps / step_s),
           "steps_per_execution": round(steps / max(programs, 1), 1),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"mmrace bench ({out['workload']}, one process):")
        print(f"  executions/s {out['executions_per_s']:,.0f} ({runs} runs in {run_s:.1f}s)")
        print(f"  steps/s      {out['steps_per_s']:,} ({out['steps_per_execution']} steps a run)")
        print(f"  peak RSS     {out['peak_rss_mib']} MiB")
    return 0
