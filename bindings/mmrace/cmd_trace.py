"""`mmrace trace FILE`: run a program once and print its interleaving (mmrace.trace)."""
from __future__ import annotations

import argparse
import json
import sys

from mmrace import api, trace

FORMATS = ("text", "columns", "perfetto")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from mmrace.cli import _budget
    t = sub.add_parser(
        "trace", help="run one .mmr program and print its interleaving, step by step",
        description="Run FILE once (under its schedule, or --schedule) and print the run: "
        "text (one line per step: step, thread, event, what, site, locks held), columns "
        "(one column per thread, `switch` at each preemption) or perfetto (Chrome "
        "trace-event JSON for ui.perfetto.dev).  Exit 0 for verdict ok, 1 for any other.")
    t.add_argument("file", help="the .mmr program (format: docs/format.md)")
    t.add_argument("--schedule", help="override the file's schedule, in the file's grammar: "
                   "'replay 0 1 1', 'random seed=7', 'pct seed=1 depth=3', 'preempt 12:1'")
    t.add_argument("--budget", type=_budget, default=None,
                   help=f"step budget (default: the program's config budget=, else "
                   f"{api.DEFAULT_BUDGET})")
    t.add_argument("--format", choices=FORMATS, default="text", help="the view (default text)")
    t.add_argument("--detailed", action="store_true",
                   help="text and columns: every record, with each memory access, scheduling "
                   "point and lock attempt (the short form keeps ops, locks held, RCU, IRQs, "
                   "IPIs, I/O and the failure)")
    t.add_argument("--out", metavar="OUT", help="write to OUT instead of stdout")
    t.set_defaults(func=cmd_trace)


def render(res: api.Result, fmt: str, detailed: bool, name: str) -> str:
    """The text `mmrace trace` prints for a run."""
    if fmt == "perfetto":
        return json.dumps(trace.to_perfetto(res, name), indent=None, separators=(",", ":")) + "\n"
    if fmt == "columns":
        return f"{name}: " + trace.to_columns(res, detailed=detailed)
    return f"{name}: " + trace.to_text(res, detailed=detailed)


def cmd_trace(args: argparse.Namespace) -> int:
    from mmrace import cli  # its exit codes; cli imports this module
    res = cli.run_file(args, "mmrace trace", trace=True)
    if isinstance(res, int):
        return res
    text = render(res, args.format, args.detailed, args.file)
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            print(f"mmrace trace: cannot write --out: {e}", file=sys.stderr)
            return cli.EXIT_USAGE
    else:
        sys.stdout.write(text)
    return cli.EXIT_OK if res.ok else cli.EXIT_VERDICT
