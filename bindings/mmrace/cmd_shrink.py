"""`mmrace shrink FILE`: the smallest program that still fails the way FILE fails.

Exit codes: 0 the program was shrunk (the output fails with the same verdict and check;
it may be no smaller when nothing could go), 2 usage or input error (a missing or
malformed file, a bad --max-seconds / --max-runs, a program whose run is ok: nothing to
shrink), 3 an internal model error on the input, 4 the input needs a model not built yet,
130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from mmrace import api
from mmrace.shrink import ShrinkResult, Size, shrink

_COLUMNS = ("processes", "threads", "ops", "decisions", "preemptions")


def _positive(kind: type, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{what} must be positive, got {text}")
        return value
    return parse


def add_parser(sub) -> None:
    p = sub.add_parser("shrink", help="shrink a failing program: fewer processes, threads, "
                       "ops and preemptions, the same verdict and check",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="a .mmr program whose run fails (under its own schedule line)")
    p.add_argument("--out", metavar="F", help="write the shrunk .mmr to F (default: print it, "
                   "the sizes as # comments in front)")
    p.add_argument("--json", action="store_true", help="print one JSON object: verdict, check, "
                   "before, after, runs, program")
    p.add_argument("--max-seconds", type=_positive(float, "--max-seconds"), default=None,
                   help="stop after this long and keep the smallest program found so far")
    p.add_argument("--max-runs", type=_positive(int, "--max-runs"), default=None,
                   help="stop after this many runs and keep the smallest program found so far")
    p.set_defaults(func=cmd_shrink)


def _table(res: ShrinkResult, prefix: str = "") -> str:
    def row(name: str, s: Size) -> str:
        return prefix + f"{name:<8}" + "".join(f"{getattr(s, c):>12}" for c in _COLUMNS)
    head = prefix + " " * 8 + "".join(f"{c:>12}" for c in _COLUMNS)
    check = f" ({res.check})" if res.check else ""
    return "\n".join([f"{prefix}shrunk: verdict {res.verdict}{check} kept, {res.runs} runs",
                      head, row("before", res.before), row("after", res.after)])


def cmd_shrink(args: argparse.Namespace) -> int:
    from mmrace.cli import EXIT_OK, EXIT_USAGE, guarded

    def work() -> ShrinkResult:
        prog = api.parse_file(args.file)
        try:
            return shrink(prog, max_seconds=args.max_seconds, max_runs=args.max_runs)
        except ValueError as e:  # "shrink: the program does not fail": name the file
            raise ValueError(f"{args.file}: {str(e).removeprefix('shrink: ')}") from None
    res = guarded("mmrace shrink", args.file, work)
    if isinstance(res, int):
        return res
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(res.program)
        except OSError as e:
            print(f"mmrace shrink: {e}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        print(json.dumps({"verdict": res.verdict, "check": res.check, "before": asdict(res.before),
                          "after": asdict(res.after), "runs": res.runs, "program": res.program},
                         indent=1))
    elif args.out:
        print(_table(res))
    else:
        print(_table(res, "# "))
        print(res.program, end="")
    return EXIT_OK
