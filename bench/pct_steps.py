"""PCT's step bound (issue 16): how often a rare outcome shows in N PCT runs when the
change points are drawn among the policy's default 1000 decisions (steps=0) against
among the run's own length (mmrace.api.pct_steps: the decisions of a first run).

The programs are the mutants' reproducers (examples/mutants/): the rare outcome is the
mutant's failure.  PCT seeds 0..N-1, depth DEPTH, the same seeds for both columns.

    python bench/pct_steps.py [N=3000] [DEPTH=3] [FILE.mmr ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import mmrace
from mmrace import api

ROOT = Path(__file__).resolve().parent.parent


def failures(prog, n: int, depth: int, steps: int) -> int:
    return sum(not mmrace.run(prog, schedule=mmrace.PCT(seed, depth, steps), trace=False).ok
               for seed in range(n))


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 3000
    depth = int(argv[1]) if len(argv) > 1 else 3
    files = [Path(a) for a in argv[2:]] or sorted((ROOT / "examples" / "mutants").glob("*.mmr"))
    print(f"{'program':<36} {'own steps':>9} {'fail @1000':>11} {'fail @own':>10}  (of {n} runs, depth {depth})")
    for f in files:
        prog = mmrace.parse_file(f)
        own = api.pct_steps(prog)
        default = failures(prog, n, depth, 1000)
        learned = failures(prog, n, depth, own)
        print(f"{f.stem:<36} {own:>9} {default:>11} {learned:>10}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
