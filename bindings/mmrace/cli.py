"""The `mmrace` command line."""
from __future__ import annotations

import argparse
import json
import sys

from mmrace import api
from mmrace._core import ModelError, NotBuilt

EXIT_OK, EXIT_VERDICT, EXIT_USAGE = 0, 1, 2


def _parse_schedule(text: str) -> api.Schedule:
    """`replay 0 1 2`, `random seed=S` or `pct seed=S depth=D [steps=K]`."""
    words = text.split()
    if not words:
        raise ValueError("empty schedule")
    kind, rest = words[0], words[1:]
    if kind == "replay":
        return api.Replay([int(w) for w in rest])
    kv = dict(w.split("=", 1) for w in rest)
    if kind == "random":
        return api.Random(int(kv.get("seed", 0)))
    if kind == "pct":
        return api.PCT(int(kv.get("seed", 0)), int(kv.get("depth", 3)), int(kv.get("steps", 0)))
    raise ValueError(f"unknown schedule policy '{kind}'")


def _print_human(path: str, res: api.Result) -> None:
    print(f"{path}: verdict {res.verdict}" + (f" ({res.check})" if res.check else ""))
    if res.message:
        print(f"  {res.message}")
    for op in res.ops:
        r = "-" if op["result"] is None else op["result"]
        print(f"  {op['thread']:>10} #{op['index']:<3} {op['op']:<50} -> {r}")
    nonzero = {k: v for k, v in res.counters.items() if v}
    print("  counters: " + (", ".join(f"{k}={v}" for k, v in nonzero.items()) or "none"))
    print(f"  steps {res.step}, trace_hash {res.trace_hash}")
    if not res.ok:
        print(f"  replay: mmrace run {path} --schedule '{res.schedule[len('schedule '):]}'")


def cmd_run(args: argparse.Namespace) -> int:
    try:
        prog = api.parse_file(args.file)
        schedule = _parse_schedule(args.schedule) if args.schedule else None
        res = api.run(prog, schedule=schedule, budget=args.budget, trace=False)
    except (ValueError, OSError) as e:
        print(f"mmrace: {e}", file=sys.stderr)
        return EXIT_USAGE
    except NotBuilt as e:
        print(f"mmrace: {args.file}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ModelError as e:
        print(f"mmrace: internal model error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(res.to_json(), indent=1))
    else:
        _print_human(args.file, res)
    return EXIT_OK if res.ok else EXIT_VERDICT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mmrace", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one .mmr program and print its verdict")
    r.add_argument("file")
    r.add_argument("--json", action="store_true", help="print DESIGN §9's JSON object")
    r.add_argument("--schedule", help="override the file's schedule, e.g. 'replay 0 1 1'")
    r.add_argument("--budget", type=int, default=1_000_000, help="step budget")
    r.set_defaults(func=cmd_run)
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("mmrace: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
