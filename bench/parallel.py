"""Parallel: `mmrace hunt --jobs J` runs/s against --jobs 1, back to back, on the same
seeds (generated workloads of hunt's defaults, `--runs N --seed S`).  Prints the wall
rates, their ratio, and the runs per CPU-second (of the workers, and of every process of
the hunt: start-up, the parent's loop, the forkserver), which shows the overhead of the
parallel explore itself when other processes share the cores.

    python bench/parallel.py [N=20000] [JOBS=2] [REPEATS=2]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


def hunt(runs: int, jobs: int) -> dict:
    p = subprocess.run([sys.executable, "-m", "mmrace", "hunt", "--runs", str(runs), "--seed", "0",
                        "--jobs", str(jobs), "--json", "--out", tempfile.mkdtemp()],
                       capture_output=True, text=True, check=False)
    if p.returncode not in (0, 1):
        raise SystemExit(f"mmrace hunt exited {p.returncode}: {p.stderr}")
    return json.loads(p.stdout)


def main() -> int:
    n, jobs, repeats = ([int(a) for a in sys.argv[1:]] + [20000, 2, 2][len(sys.argv) - 1:])[:3]
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| jobs | runs | seconds | runs/s | runs per worker CPU-s |")
    print("| --- | --- | --- | --- | --- |")
    best: dict[int, float] = {}
    for _ in range(repeats):
        for j in (1, jobs):
            d = hunt(n, j)
            per_cpu = d["runs"] / d["cpu_seconds"] if d["cpu_seconds"] else 0
            print(f"| {j} | {d['runs']} | {d['seconds']:.2f} | {d['runs_per_s']:.0f} | {per_cpu:.0f} |",
                  flush=True)
            best[j] = max(best.get(j, 0), d["runs_per_s"])
    print(f"ratio of the best runs/s, --jobs {jobs} / --jobs 1: {best[jobs] / best[1]:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
