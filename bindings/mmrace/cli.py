"""mmrace: run .mmr programs on a deterministic model of the Linux page-fault paths, and
check the model against the host kernel."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from mmrace import cmd_trace
from mmrace import __version__, api, conform
from mmrace import cmd_shrink
from mmrace._core import ModelError, NotBuilt
from mmrace import cmd_bench
from mmrace import cmd_hunt
from mmrace import cmd_mutants
from mmrace import cmd_fuzz

# Exit codes, one meaning each (docs/cli.md).
EXIT_OK = 0           # verdict ok (conform: nothing differs)
EXIT_VERDICT = 1      # any other verdict: the run found a bug (conform: an op differs)
EXIT_USAGE = 2        # bad arguments or input: a malformed .mmr file, schedule or budget
EXIT_MODEL_ERROR = 3  # an internal error of the model: a bug of mmrace itself
EXIT_NOT_BUILT = 4    # the program needs a model that is not built yet
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: the reader of the output went away (| head)

T = TypeVar("T")


def _budget(text: str) -> int:
    """argparse type for --budget: the API's bounds and message."""
    try:
        return api.check_budget(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e) if "budget" in str(e) else
                                         f"expected a number of steps, got {text!r}") from None


def _replay_command(path: str, schedule: str, budget: int | None) -> str:
    """The command line that replays a run of `path`."""
    extra = f" --budget {budget}" if budget not in (None, api.DEFAULT_BUDGET) else ""
    return f"mmrace run {path} --schedule '{schedule.removeprefix('schedule ')}'{extra}"


def _print_reproducer(text: str, file=None) -> None:
    """A failure's reproducer: the .mmr text that replays it on its own."""
    print("  reproducer (save as a .mmr file; mmrace run replays it):", file=file)
    print("    " + text.rstrip("\n").replace("\n", "\n    "), file=file)


def _print_human(path: str, res: api.Result) -> None:
    print(f"{path}: verdict {res.verdict}" + (f" ({res.check})" if res.check else ""))
    if res.message:
        print(f"  {res.message}")
    if res.user_wait:
        print("  the program's own hang: every blocked thread waits on a userfault that no thread "
              "serves, or behind one (Linux hangs the same way; the fuzzers do not count it)")
    for op in res.ops:
        r = "-" if op.result is None else op.result
        print(f"  {op.thread:>10} #{op.index:<3} {op.op:<50} -> {r}")
    nonzero = {k: v for k, v in res.counters.items() if v}
    print("  counters: " + (", ".join(f"{k}={v}" for k, v in nonzero.items()) or "none"))
    print(f"  steps {res.step}, trace_hash {res.trace_hash}")
    if not res.ok:
        print(f"  replay: {_replay_command(path, res.schedule, res.budget)}")
        _print_reproducer(res.reproducer)


def guarded(command: str, file: str, work: Callable[[], T], replay_budget: int | None = None) -> T | int:
    """work() on `file`, or, when it raises on bad input (ValueError, OSError), an unbuilt
    mutant (NotBuilt) or a model error, the exit code after printing what is wrong prefixed
    by `command`: the one error path of run, trace and shrink."""
    try:
        return work()
    except (ValueError, OSError) as e:
        print(f"{command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except NotBuilt as e:
        print(f"{command}: {file}: {e}", file=sys.stderr)
        return EXIT_NOT_BUILT
    except ModelError as e:
        print(f"{command}: internal model error (a bug of mmrace, not of the program): {e}",
              file=sys.stderr)
        if e.schedule:
            print(f"  replay: {_replay_command(file, e.schedule, replay_budget)}", file=sys.stderr)
            _print_reproducer(e.reproducer, file=sys.stderr)
        return EXIT_MODEL_ERROR


def run_file(args: argparse.Namespace, command: str, trace: bool) -> api.Result | int:
    """Runs args.file under args.schedule (None: the file's) within args.budget: the
    result, or guarded()'s exit code."""
    def work() -> api.Result:
        prog = api.parse_file(args.file)
        schedule = api.parse_schedule(args.schedule, "--schedule") if args.schedule is not None else None
        return api.run(prog, schedule=schedule, budget=args.budget, trace=trace)
    return guarded(command, args.file, work, args.budget)


def cmd_run(args: argparse.Namespace) -> int:
    res = run_file(args, "mmrace", trace=False)
    if isinstance(res, int):
        return res
    if args.json:
        print(json.dumps(res.to_json(), indent=1))
    else:
        _print_human(args.file, res)
    return EXIT_OK if res.ok else EXIT_VERDICT


def _conform_programs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(name, text) of every program to check: the files, then the generated ones."""
    progs = []
    for path in args.files:
        prog = api.parse_file(path)  # a malformed file is a usage error: ValueError, OSError
        procs = [name.split(".")[0] for name in prog.thread_names if "." in name]
        multi = sorted({p for p in procs if procs.count(p) > 1})
        if multi:
            raise ValueError(f"{path}: process {multi[0]} has {procs.count(multi[0])} threads; "
                             "conform runs programs with one thread per process")
        progs.append((path, open(path, encoding="utf-8").read()))
    for i in range(args.random or 0):
        progs.append((f"random seed={args.seed + i}", conform.random_program(args.seed + i)))
    return [(name, conform.with_strategy(text, args.strategy)) for name, text in progs]


def _print_outcome(o: conform.Outcome, strategy: str | None = None) -> None:
    if o.status == "identical":
        return
    if o.status != "differ":
        if not o.name.startswith("random seed="):  # generated ones: counted at the end
            print(f"{o.name}: skipped ({o.reason})")
        return
    print(f"{o.name}: {len(o.differences)} op(s) differ")
    for d in o.differences:
        print(f"  {d.thread:>6} #{d.index:<3} {d.op:<58} host {d.host}  model {d.model}")
    if o.reproducer:  # the model run itself failed
        _print_reproducer(o.reproducer)
    if o.name.startswith("random seed="):  # the generated program is the reproducer
        extra = f" --strategy {strategy}" if strategy else ""
        print(f"  reproduce: mmrace conform --random 1 --seed {o.name.split('=')[1]}{extra}")
        print("  " + o.program.rstrip("\n").replace("\n", "\n  "))


def cmd_conform(args: argparse.Namespace) -> int:
    if not args.files and not args.random:
        print("mmrace conform: give .mmr files or --random N", file=sys.stderr)
        return EXIT_USAGE
    if args.random is not None and args.random < 0:
        print("mmrace conform: --random needs a count >= 0", file=sys.stderr)
        return EXIT_USAGE
    runner = conform.find_host_runner()
    try:
        progs = _conform_programs(args)
        if not runner:
            raise conform.HostError("mmrace-host not found next to the mmrace package; "
                                    "set MMRACE_HOST to build/conform/mmrace-host")
        outcomes = []
        for name, text in progs:
            outcomes.append(conform.check(name, text, runner))
            if not args.json:
                _print_outcome(outcomes[-1], args.strategy)
    except (ValueError, OSError, conform.HostError) as e:
        print(f"mmrace conform: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({"summary": conform.summary(outcomes),
                          "outcomes": [o.to_json() for o in outcomes]}, indent=1))
    else:
        for n, reason in conform.skip_reasons(outcomes):
            print(f"  skipped {n:>4}: {reason}")
        print(conform.summary(outcomes))
    return EXIT_VERDICT if any(o.status == "differ" for o in outcomes) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mmrace", description=__doc__,
                                 epilog="Exit codes: 0 ok, 1 a bug found (any other verdict), "
                                 "2 usage or input error, 3 internal model error, 4 the program "
                                 "needs a model not built yet, 130 interrupted, 141 the output "
                                 "pipe closed.  Reference: docs/ "
                                 "in the source tree.")
    ap.add_argument("--version", action="version", version=f"mmrace {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one .mmr program and print its verdict")
    r.add_argument("file", help="the .mmr program (format: docs/format.md)")
    r.add_argument("--json", action="store_true",
                   help="print one JSON object (verdict, ops, counters, trace_hash, schedule, "
                   "program)")
    r.add_argument("--schedule", help="override the file's schedule, in the file's grammar: "
                   "'replay 0 1 1', 'random seed=7', 'pct seed=1 depth=3', 'preempt 12:1'")
    r.add_argument("--budget", type=_budget, default=None,
                   help=f"step budget (default: the program's config budget=, else "
                   f"{api.DEFAULT_BUDGET})")
    r.set_defaults(func=cmd_run)
    cmd_trace.add_parser(sub)
    c = sub.add_parser("conform", help="compare the model with the host kernel, op by op",
                       description="Run single-threaded programs (fork included) in the model "
                       "and on the host Linux kernel (mmrace-host) and print every op whose "
                       "result differs.  Exit 0 iff nothing differs.")
    c.add_argument("files", nargs="*", metavar="FILE", help=".mmr programs, one thread a process")
    c.add_argument("--random", type=int, metavar="N", help="also check N generated programs")
    c.add_argument("--seed", type=int, default=0,
                   help="the first generated program's seed (program i uses seed S+i)")
    c.add_argument("--strategy", choices=["classic", "spf", "pervma"],
                   help="run the model under this fault strategy (default: the program's)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_conform)
    cmd_hunt.add_parser(sub)
    cmd_mutants.add_parser(sub)
    cmd_bench.add_parser(sub)
    cmd_shrink.add_parser(sub)
    cmd_fuzz.add_parser(sub)
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("mmrace: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Python's advice for a closed pipe: point stdout at /dev/null so that the flush
        # at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED


if __name__ == "__main__":
    sys.exit(main())
