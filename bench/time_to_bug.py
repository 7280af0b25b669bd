"""Time to bug: how long `mmrace hunt` takes to find each built mutant on generated
workloads (not on its reproducer).

For every built mutant and each policy (random, pct), runs
`mmrace hunt --mutant M --policy P --jobs 1 --seed S --budget CAP --json` for SEEDS seeds
(S = 0, 1000000, 2000000, ...: far apart, so the attempts explore different programs) in
a subprocess, and prints the median seconds and runs to the first finding.  An attempt
that finds nothing within CAP seconds sorts after every found one; when half of the
attempts or more found nothing the median is printed as ">CAP" (runs: the median runs
made), and the mutant is listed at the end.  The hunt's own workload for the mutant is
used: its strategy (workload.strategy_for) and its aim (workload.AIMS).  --features all
after the numbers hunts with every feature instead (swarm testing), for comparison.

    python bench/time_to_bug.py [SEEDS=5] [CAP=60] [--features all] [MUTANT ...]

Exits 1 if some mutant was not found in every attempt.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile

from mmrace import _core

POLICIES = ("random", "pct")


def attempt(mutant: str, policy: str, seed: int, cap: float,
            extra: list[str]) -> tuple[bool, float, int, str]:
    """(found, seconds, runs, check) of one hunt (`extra`: more hunt flags)."""
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run([sys.executable, "-m", "mmrace", "hunt", "--mutant", mutant,
                            "--policy", policy, "--jobs", "1", "--seed", str(seed),
                            "--budget", str(cap), "--json", "--out", out, *extra],
                           capture_output=True, text=True, timeout=cap + 120)
    if p.returncode not in (0, 1):
        return False, cap, 0, f"exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]}"
    d = json.loads(p.stdout)
    if not d["found"]:
        return False, cap, d["runs"], "-"
    return True, d["seconds"], d["runs"], d["check"]


def row(mutant: str, policy: str, seeds: int, cap: float, extra: list[str]) -> tuple[str, bool]:
    tries = [attempt(mutant, policy, i * 1_000_000, cap, extra) for i in range(seeds)]
    found = sum(t[0] for t in tries)
    # An attempt not found sorts last (as if it took forever): the median is a found
    # attempt's when most were found, else only a lower bound (">").
    secs = statistics.median(t[1] if t[0] else float("inf") for t in tries)
    runs = statistics.median(t[2] if t[0] else float("inf") for t in tries)
    if secs == float("inf"):
        secs, runs = cap, statistics.median(t[2] for t in tries)
    checks = ",".join(sorted({t[3] for t in tries if t[0]})) or "-"
    more = ">" if found * 2 <= seeds else ""
    return (f"| {mutant} | {policy} | {found}/{seeds} | {more}{secs:.1f} | {more}{runs:.0f} | "
            f"{checks} |"), found == seeds


def main() -> int:
    args = sys.argv[1:]
    seeds = int(args.pop(0)) if args and args[0].isdigit() else 5
    cap = float(args.pop(0)) if args and args[0].replace(".", "", 1).isdigit() else 60.0
    extra = ["--features", "all"] if args[:2] == ["--features", "all"] else []
    args = args[len(extra):]
    built = [m["name"] for m in _core.mutant_catalogue() if m["built"]]
    mutants = args or built
    print(f"time to bug: median over {seeds} seeds, {cap:g} s cap, --jobs 1, generated workloads"
          + (", every feature (swarm)" if extra else ", aimed (workload.AIMS)"))
    print("| mutant | policy | found | seconds | runs | check |")
    print("| --- | --- | --- | --- | --- | --- |")
    missed = []
    for m in mutants:
        for policy in POLICIES:
            line, all_found = row(m, policy, seeds, cap, extra)
            print(line, flush=True)
            if not all_found:
                missed.append(f"{m} ({policy})")
    print("not found in every attempt: " + (", ".join(missed) or "none"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
