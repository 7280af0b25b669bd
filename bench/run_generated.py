"""`mmrace run` on programs drawn by mmrace.strategies.mmr_programs() (issue 14): every
drawn program runs to a verdict under a random schedule, through the CLI's own code
(cli.main, in this process: a process per program would only measure Python start-up).
Prints a table of exit codes and verdicts; exits 1 if any exit code is not 0 or 1.

    python bench/run_generated.py [N=1000] [SEED=0]
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from mmrace import cli
from mmrace.strategies import mmr_programs


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    base = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    codes: collections.Counter[int] = collections.Counter()
    verdicts: collections.Counter[str] = collections.Counter()
    bad: list[str] = []
    path = Path(tempfile.mkdtemp()) / "drawn.mmr"
    count = 0

    @seed(base)
    @settings(max_examples=n, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(mmr_programs())
    def run_one(text: str) -> None:
        nonlocal count
        path.write_text(text)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(["run", str(path), "--json", "--schedule", f"random seed={base + count}"])
        count += 1
        codes[rc] += 1
        if rc in (0, 1):
            verdicts[json.loads(out.getvalue())["verdict"]] += 1
        elif len(bad) < 5:
            bad.append(f"exit {rc}: {err.getvalue().strip()}\n{text}")

    t0 = time.perf_counter()
    run_one()
    secs = time.perf_counter() - t0
    print("| programs | seconds | exit 0 | exit 1 | other exits | " +
          " | ".join(sorted(verdicts)) + " |")
    print("|---:|---:|---:|---:|---:|" + "---:|" * len(verdicts))
    other = sum(v for k, v in codes.items() if k not in (0, 1))
    print(f"| {count} | {secs:.0f} | {codes[0]} | {codes[1]} | {other} | " +
          " | ".join(str(verdicts[v]) for v in sorted(verdicts)) + " |")
    for b in bad:
        print("\n" + b)
    return 1 if other else 0


if __name__ == "__main__":
    sys.exit(main())
