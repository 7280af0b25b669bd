"""mmrace hunt: explore generated workloads, or one program's schedules, for a bug.

Without FILE every seed's program is a generated workload (mmrace.workload) of the
strategy given, else of the first mutant's strategy, else classic, with the features
given, else those the first mutant's aim names (mmrace.workload.AIMS), else all.
With FILE the program is fixed and only the schedules vary.  The exploration is
mmrace.explore on --jobs processes; each finding is shrunk (mmrace.shrink) and saved
as DIR/<check>-<hash>.mmr (mmrace.findings) as soon as it is found.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import signal
import sys
from collections import Counter
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from mmrace import _core, api, explore, findings

DEFAULT_SECONDS = 60.0  # `mmrace hunt` with no argument takes about a minute
DEFAULT_OUT = "mmrace-findings"
SHRINK_SECONDS = 30.0   # per finding; past it the finding is saved as far as it shrank


def positive(kind: type, what: str):
    """argparse type: a positive int or float; the message names the flag's unit (also
    `mmrace fuzz`'s and `mmrace bench`'s)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive {what}, got {text!r}")
        return value
    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 1 << 63:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2^63), got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    h = sub.add_parser(
        "hunt", help="explore generated workloads (or FILE's schedules) for a bug",
        description="Run generated racing workloads (or FILE under many schedules) on --jobs "
        "processes until the budget is spent or a run fails; shrink the failure and save it "
        "as DIR/<check>-<hash>.mmr.  Exit 0 nothing found, 1 found, 2 usage error, "
        "3 a model error found, 130 interrupted.")
    h.add_argument("file", nargs="?", metavar="FILE",
                   help="explore this program's schedules (default: generated workloads)")
    h.add_argument("--strategy", choices=["classic", "spf", "pervma"],
                   help="fault strategy (default: FILE's, else the first mutant's, else classic)")
    h.add_argument("--mutant", action="append", default=[], metavar="M",
                   help="switch a mutant on (repeatable; `mmrace mutants` lists them)")
    h.add_argument("--vma-lock", default="", metavar="PATHS",
                   help="pervma: fault paths that also run under the VMA lock, "
                   "comma-separated (swapin,file,uffd; the config key vma_lock=)")
    h.add_argument("--features", metavar="LIST",
                   help="generated workloads: the features switched on, comma-separated "
                   "(fork, gup, mremap, uffd, ...; a name that is not one lists them all), or "
                   "'all' (default: the first mutant's aim, mmrace.workload.AIMS, else all)")
    h.add_argument("--policy", choices=list(explore.POLICIES), default="random",
                   help="schedule family: random, pct, or mixed (each seed under both)")
    limit = h.add_mutually_exclusive_group()
    limit.add_argument("--budget", type=positive(float, "number of seconds"), metavar="SECONDS",
                       help=f"stop after this many seconds (default {DEFAULT_SECONDS:g})")
    limit.add_argument("--runs", type=positive(int, "number of runs"), metavar="N",
                       help="stop after N runs (same finding whatever --jobs is)")
    h.add_argument("--seed", type=_seed, default=0, help="the first seed (run i uses seed S+i)")
    h.add_argument("--jobs", type=positive(int, "number of processes"), default=None,
                   metavar="J", help="worker processes (default: the CPU count)")
    h.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"where reproducers are saved (default ./{DEFAULT_OUT})")
    h.add_argument("--keep-going", action="store_true",
                   help="go on after a finding; save one per check and signature")
    h.add_argument("--json", action="store_true", help="print one JSON object, no progress")
    h.set_defaults(func=cmd_hunt)


def _source(args: argparse.Namespace) -> tuple[Any, dict | None, str]:
    """(program, workload, strategy) to explore.  Raises ValueError or OSError naming
    the bad input (a missing or malformed file, an unknown mutant, a strategy that the
    mutant is not for)."""
    known = _core.mutant_names()
    for m in args.mutant:
        if m not in known:
            near = difflib.get_close_matches(m, known, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise ValueError(f"--mutant {m}: unknown mutant ({hint}`mmrace mutants` lists them)")
    vma_lock = [p for p in args.vma_lock.split(",") if p]
    if args.file is not None:
        prog = api.parse_file(args.file)
        changes: dict[str, Any] = {"strategy": args.strategy} if args.strategy else {}
        if args.mutant:
            changes["mutants"] = args.mutant
        if vma_lock:
            changes["vma_lock"] = vma_lock
        prog = prog.with_config(**changes) if changes else prog
        found = re.search(r"^config .*\bstrategy=(\w+)", prog.to_mmr(), re.M)
        return prog, None, found.group(1) if found else "classic"
    from mmrace import workload
    strategy = args.strategy or (workload.strategy_for(args.mutant[0]) if args.mutant else "classic")
    return None, workload.shape(strategy=strategy, mutants=args.mutant, vma_lock=vma_lock,
                                **_aim(args)), strategy


def _aim(args: argparse.Namespace) -> dict:
    """The shape's features (and sizes): --features, else the first mutant's aim, else
    all of them with swarm testing.  Named features are all on in every program: swarm
    would leave both of a pair on in only a quarter of them (measured on
    pervma_fork_no_vma_write_lock aimed at fork,counters: found at 3 of 3 seeds within
    16k runs without swarm, at 1 of 3 within 80k with it)."""
    from mmrace import workload
    if args.features is None:
        return {**workload.aim(args.mutant[0]), "swarm": False} if args.mutant and \
            args.mutant[0] in workload.AIMS else {}
    if args.features == "all":
        return {}
    names = [f for f in args.features.split(",") if f]
    for f in names:
        if f not in workload.FEATURES:
            near = difflib.get_close_matches(f, workload.FEATURES, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ValueError(f"--features: unknown feature {f!r}{hint}; one of "
                             f"{', '.join(workload.FEATURES)}")
    if not names:
        raise ValueError("--features: expected a comma-separated list of features, or 'all'")
    return {"features": names, "swarm": False}


def _shrink(f: explore.Finding, deadline_s: float) -> tuple[str, str]:
    """(text to save, how it was shrunk): the shrunk reproducer when mmrace.shrink is
    there and keeps the check, else the finding's own reproducer."""
    try:
        from mmrace.shrink import shrink
    except ImportError:
        return f.program, "not shrunk: mmrace.shrink is not installed"
    try:
        s = shrink(f.program, max_seconds=deadline_s)
    except Exception as e:  # a shrinker bug must not lose the finding
        return f.program, f"not shrunk: {type(e).__name__}: {e}"
    b, a = s.before, s.after
    return s.program, (f"shrunk from {b.threads} threads, {b.ops} ops, {b.preemptions} "
                       f"preemptions to {a.threads}, {a.ops}, {a.preemptions}")


class _Hunt:
    """The parent's side of one hunt: findings deduped and saved, the progress shown."""

    def __init__(self, args: argparse.Namespace, strategy: str, seconds: float | None,
                 features: list[str] | None):
        self.args, self.strategy, self.seconds = args, strategy, seconds
        self.features = features  # the generated workloads' features; None: FILE
        self.saved: dict[str, dict] = {}  # signature -> what the summary and JSON print
        self.stopping = False            # Ctrl-C: save what comes, unshrunk
        self.live = _display(args, self)

    def on_finding(self, f: explore.Finding) -> None:
        """Shrinks and saves a finding of a new signature; counts the others."""
        if f.signature in self.saved:
            self.saved[f.signature]["count"] += 1
            return
        try:
            text, how = (f.program, "not shrunk: interrupted") if self.stopping else \
                _shrink(f, SHRINK_SECONDS)
        except KeyboardInterrupt:  # save it as found, then stop
            self.stopping = True
            self._save(f, f.program, "not shrunk: interrupted")
            raise
        self._save(f, text, how)

    def _save(self, f: explore.Finding, text: str, how: str) -> None:
        path = findings.save(self.args.out, f.check, f.verdict, text)
        self.saved[f.signature] = {"seed": f.seed, "verdict": f.verdict, "check": f.check,
                                   "message": f.message, "signature": f.signature,
                                   "reproducer": str(path), "program": text, "shrink": how,
                                   "count": 1}
        if not self.args.json:
            self._print(f"found {f.verdict} ({f.check}) at seed {f.seed}: "
                        f"{f.message.strip().splitlines()[0] if f.message.strip() else ''}\n"
                        f"  saved {path} ({how})\n  replay: mmrace run {path}")

    def on_progress(self, r: explore.ExploreReport) -> None:
        if self.live is not None:
            self.live.update(_status(self, r))

    def _print(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)


def _display(args: argparse.Namespace, hunt: _Hunt) -> Any:
    """A rich Live line on stderr when it is a TTY and --json is off; else None."""
    if args.json or not sys.stderr.isatty():
        return None
    try:
        from rich.console import Console
        from rich.live import Live
    except ImportError:  # rich is a dependency; a broken install only loses the display
        return None
    return Live("", console=Console(stderr=True), refresh_per_second=4, transient=True)


def _status(h: _Hunt, r: explore.ExploreReport) -> str:
    limit = f" / {h.seconds:.0f}s" if h.seconds else f", {r.runs}/{h.args.runs} runs"
    by_check = Counter(v["check"] or v["verdict"] for v in h.saved.values())
    found = ", ".join(f"{k} {n}" for k, n in sorted(by_check.items())) or "none"
    return (f"hunting {h.strategy}, {h.args.policy}, {r.jobs} jobs: {r.runs:,} runs, "
            f"{r.runs_per_s:,.0f} runs/s, {r.seconds:.0f}s{limit}; findings: {found}")


def cmd_hunt(args: argparse.Namespace) -> int:
    from mmrace.cli import EXIT_INTERRUPTED, EXIT_MODEL_ERROR, EXIT_NOT_BUILT, EXIT_OK, \
        EXIT_USAGE, EXIT_VERDICT
    try:
        program, shape, strategy = _source(args)
        if program is not None:
            _core.check_built(program)
    except ValueError as e:
        print(f"mmrace hunt: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # the file: "race.mmr: No such file or directory"
        print(f"mmrace hunt: {e.filename}: {e.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except NotImplementedError as e:  # NotBuilt
        print(f"mmrace hunt: {e}", file=sys.stderr)
        return EXIT_NOT_BUILT
    seconds = args.budget if args.budget or args.runs else DEFAULT_SECONDS
    hunt = _Hunt(args, strategy, seconds, shape and shape["features"])
    interrupted = False

    def on_sigint(signum: int, frame: Any) -> None:
        hunt.stopping = True  # from here on, findings are saved without shrinking
        signal.default_int_handler(signum, frame)

    old_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        if hunt.live is not None:
            hunt.live.start()
        report = explore.explore(program, workload=shape, policy=args.policy, runs=args.runs,
                                 seconds=seconds, jobs=args.jobs, seed=args.seed,
                                 stop_at_first_failure=not args.keep_going,
                                 on_progress=hunt.on_progress, on_finding=hunt.on_finding)
    except explore.ExploreInterrupted as e:
        hunt.stopping, interrupted, report = True, True, e.report
    except (MemoryError, BrokenProcessPool) as e:  # a worker ran out of its 4 GiB or died
        print(f"mmrace hunt: a worker failed ({type(e).__name__}: {e}); the findings so far "
              f"are in {args.out}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    finally:
        signal.signal(signal.SIGINT, old_handler)
        if hunt.live is not None:
            hunt.live.stop()
    _print_summary(hunt, report, as_json=args.json)
    if interrupted:
        return EXIT_INTERRUPTED
    if any(v["verdict"] == "model_error" for v in hunt.saved.values()):
        return EXIT_MODEL_ERROR
    return EXIT_VERDICT if hunt.saved else EXIT_OK


_STOPPED = {"done": "runs done", "time": "time budget spent", "failure": "found",
            "interrupted": "interrupted"}


def _print_summary(h: _Hunt, r: explore.ExploreReport, as_json: bool) -> None:
    first = next(iter(h.saved.values()), None)
    if as_json:
        print(json.dumps({
            "found": first is not None, "verdict": first and first["verdict"],
            "check": first and first["check"], "runs": r.runs, "seconds": round(r.seconds, 3),
            "runs_per_s": round(r.runs_per_s, 1), "reproducer": first and first["reproducer"],
            "lin_gave_up": r.lin_gave_up, "cpu_seconds": round(r.cpu_seconds, 3), "stopped": r.stopped, "strategy": h.strategy,
            "policy": h.args.policy, "jobs": r.jobs, "seed": h.args.seed, "features": h.features,
            "findings": list(h.saved.values())}, indent=1))
        return
    verdicts = ", ".join(f"{k} {v}" for k, v in sorted(r.verdicts.items())) or "none"
    print(f"mmrace hunt: {_STOPPED[r.stopped]}: {r.runs:,} runs in {r.seconds:.1f}s "
          f"({r.runs_per_s:,.0f} runs/s on {r.jobs} jobs), strategy {h.strategy}, "
          f"policy {h.args.policy}, seeds from {h.args.seed}")
    if h.features is not None:
        from mmrace.workload import FEATURES
        print("  features: " + ("all" if len(h.features) == len(FEATURES) else ",".join(h.features)))
    print(f"  verdicts: {verdicts}")
    print(f"  linearizability groups given up (not checked): {r.lin_gave_up}")
    for v in h.saved.values():
        more = f" (+{v['count'] - 1} more of this signature)" if v["count"] > 1 else ""
        print(f"  {v['check'] or v['verdict']}: {v['reproducer']}{more}")
    if not h.saved:
        print("  nothing found")
