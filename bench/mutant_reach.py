"""How fast generated workloads reach each built mutant (issue 16's time to bug, on the
generator alone): for every built mutant and each policy, _core.explore over the
workload shape of the mutant's strategy with the mutant on, from 5 first seeds, stopping
at the first failure.  One process, one core (what `mmrace hunt --mutant M --jobs 1`
runs).

    python bench/mutant_reach.py [--budget 60] [--seeds 5] [--mutant M ...] [--policy P ...]

Prints a table: mutant, policy, seeds found (of those tried), median seconds and median
runs to the first finding (over the seeds that found it), and the checks that found it.
A failure that is not the mutant's expected check is still counted, and its check shown.
"""
from __future__ import annotations

import argparse
import statistics
import sys

from mmrace import _core, workload

SEED_STRIDE = 1_000_000  # first seeds 0, 1e6, 2e6, ...: disjoint runs of seeds


def reach(mutant: str, policy: str, first_seed: int, budget: float) -> dict:
    """Explore from first_seed until the mutant is found or the budget is spent.  A model
    error (the mutant's broken state tripping one of the model's own assertions) is
    recorded with its seed and the search goes on from the next seed."""
    d = workload.shape(strategy=workload.strategy_for(mutant), mutants=[mutant])
    seconds, runs, seed, errors = 0.0, 0, first_seed, []
    while seconds < budget:
        r = _core.explore(None, workload=d, policies=[policy], first_seed=seed, max_runs=2**62,
                          max_seconds=budget - seconds, stop_at_first_failure=True)
        seconds += r["seconds"]
        runs += r["runs"]
        if not r["failures"]:
            break
        f = r["failures"][0]
        if f["verdict"] != "model_error":
            return {"found": True, "seconds": seconds, "runs": runs, "check": f["check"], "errors": errors}
        errors.append(f"seed {f['seed']}: {f['message']}")
        seed = f["seed"] + 1
    return {"found": False, "seconds": seconds, "runs": runs, "check": None, "errors": errors}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per seed (default 60)")
    ap.add_argument("--seeds", type=int, default=5, help="first seeds per mutant and policy")
    ap.add_argument("--mutant", action="append", help="only these mutants (default: every built one)")
    ap.add_argument("--policy", action="append", choices=["random", "pct"])
    args = ap.parse_args()
    built = [row["name"] for row in _core.mutant_catalogue() if row["built"]]
    mutants = args.mutant or built
    for m in mutants:
        if m not in built:
            print(f"mutant_reach: {m!r} is not a built mutant", file=sys.stderr)
            return 2
    policies = args.policy or ["random", "pct"]
    print(f"{'mutant':34} {'policy':7} {'found':>6} {'median s':>9} {'median runs':>12}  checks")
    missed = 0
    for m in mutants:
        for p in policies:
            rows = [reach(m, p, k * SEED_STRIDE, args.budget) for k in range(args.seeds)]
            hits = [r for r in rows if r["found"]]
            missed += len(rows) - len(hits)
            secs = f"{statistics.median(r['seconds'] for r in hits):9.2f}" if hits else f"{'-':>9}"
            runs = f"{statistics.median(r['runs'] for r in hits):12.0f}" if hits else f"{'-':>12}"
            checks = ",".join(sorted({r["check"] or "-" for r in hits}))
            print(f"{m:34} {p:7} {len(hits):>3}/{len(rows):<2} {secs} {runs}  {checks}", flush=True)
            for r in rows:
                for e in r["errors"]:
                    print(f"  model error: {e}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
