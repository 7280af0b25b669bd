"""The Python API over mmrace._core: programs, schedules, runs and results."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

from mmrace import _core, errors


@dataclass(frozen=True)
class Replay:
    """Decision i picks runnable[list[i] % len(runnable)]; past the end, the current thread
    if it can run, else the oldest ready event (the IPI ack or I/O it waits for), else the
    lowest thread id."""

    list: Sequence[int] = ()

    def __str__(self) -> str:
        return " ".join(["replay", *(str(x) for x in self.list)])


@dataclass(frozen=True)
class Random:
    """A uniform choice at every decision from a seeded stream."""

    seed: int = 0

    def __str__(self) -> str:
        return f"random seed={self.seed}"


@dataclass(frozen=True)
class PCT:
    """Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010)."""

    seed: int = 0
    depth: int = 3
    steps: int = 0  # the estimate of the run's length k; 0 = the policy's default

    def __str__(self) -> str:
        return f"pct seed={self.seed} depth={self.depth}" + (f" steps={self.steps}" if self.steps else "")


@dataclass(frozen=True)
class Preempt:
    """A schedule as a set of context switches.  `switches` holds (decision, k) pairs,
    sorted by decision, each decision once: at that decision, if the current thread can
    run, the k-th *other* runnable entity runs (counted from the one after the current,
    mod their number); if it cannot, runnable[k % len(runnable)].  Every other decision
    is what Replay does past the end of its list, so Preempt() is Replay() and each
    entry is one context switch."""

    switches: Sequence[tuple[int, int]] = ()

    def __str__(self) -> str:
        return " ".join(["preempt", *(f"{d}:{k}" for d, k in self.switches)])


# A schedule: the text of a `schedule` line ("replay 0 1 1", "schedule random seed=7",
# what Result.schedule holds), a list of replay decisions, or one of the classes above.
Schedule = Union[None, str, Sequence[int], Replay, Random, PCT, Preempt]

MAX_BUDGET = (1 << 64) - 1
DEFAULT_BUDGET = 1_000_000


@dataclass(frozen=True)
class OpResult:
    """One op of a run, in file order: its thread, its index in that thread, its
    canonical text and its result (None when the op never ran)."""

    thread: str
    index: int
    op: str
    result: str | None


@dataclass
class Result:
    """The outcome of one run (the JSON object of docs/cli.md, plus the trace)."""

    verdict: str  # ok | violation | deadlock | lock_order | budget | interrupted
    check: str | None  # the failed check (docs/checks.md); None for ok
    message: str
    step: int
    ops: list[OpResult]
    counters: dict[str, int]
    trace_hash: str
    trace: list[tuple[int, str, str, str, int]] = field(repr=False)
    schedule: str = ""  # `schedule replay ...`: replays this run (with the same budget)
    # The .mmr text that replays this run on its own: the program, its budget, its
    # schedule line set to `schedule`.  run(parse(reproducer)) gives the same verdict
    # and trace hash.
    reproducer: str = field(default="", repr=False)
    budget: int = DEFAULT_BUDGET
    # When check linearizability failed: the failing page group's history (pages,
    # linearized, ops with thread, index, inv, resp, mark); see mmrace.trace.
    lin_history: dict[str, Any] | None = field(default=None, repr=False)
    # A deadlock that is the program's own: every blocked thread waits, itself or through
    # the holder of its lock, on a userfault no thread serves (Linux hangs the same way).
    user_wait: bool = False

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def raise_for_verdict(self) -> None:
        """Raise the mmrace.VerdictError subclass for this verdict (Violation, Deadlock,
        LockOrder, BudgetExceeded), carrying this result and its reproducer; return
        for ok."""
        err = errors.error_for(self)
        if err is not None:
            raise err

    def to_json(self) -> dict[str, Any]:
        """The JSON object `mmrace run --json` prints."""
        d = {k: getattr(self, k) for k in ("verdict", "check", "message", "step")}
        d["ops"] = [asdict(o) for o in self.ops]
        d.update((k, getattr(self, k)) for k in ("counters", "trace_hash", "schedule", "budget",
                                                 "user_wait"))
        d["program"] = self.reproducer
        return d

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)

    def to_perfetto(self) -> dict[str, Any]:
        """The run as Chrome trace-event JSON (a dict; json.dump it and open the file in
        ui.perfetto.dev): see mmrace.trace.to_perfetto.  Needs the trace (run(...,
        trace=True), the default)."""
        from mmrace import trace
        return trace.to_perfetto(self)

    def to_trace_text(self, detailed: bool = False) -> str:
        """The run's interleaving, one line per step: see mmrace.trace.to_text."""
        from mmrace import trace
        return trace.to_text(self, detailed=detailed)


def parse(text: str, filename: str = "<string>") -> _core.Program:
    """Parse .mmr text.  Raises ValueError('FILE:LINE:COL: message') on malformed input."""
    return _core.parse(text, filename)


def parse_file(path: str | Path) -> _core.Program:
    p = Path(path)
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValueError(f"{p}:{line}:{col}: the file is not UTF-8 text") from None
    return _core.parse(text, str(p))


def _schedule_text(schedule: Schedule) -> str | None:
    if schedule is None or isinstance(schedule, str):
        return schedule
    if isinstance(schedule, (Replay, Random, PCT, Preempt)):
        return str(schedule)
    if isinstance(schedule, (list, tuple)):
        return str(Replay(schedule))
    raise TypeError(f"schedule must be None, a schedule string, a list of ints, Replay, Random, "
                    f"PCT or Preempt, not {type(schedule).__name__}")


def parse_schedule(text: str, source: str = "<schedule>") -> Replay | Random | PCT | Preempt:
    """A schedule in the grammar of the .mmr `schedule` line (the word `schedule` optional):
    "replay 0 1 1", "random seed=7", "pct seed=1 depth=3 [steps=K]", "preempt 12:1 40:0".
    The file parser's own rules and messages: raises ValueError('SOURCE:1:COL: message')."""
    words = _core.parse_schedule(text, source).split()[1:]
    kind, kv = words[0], dict(w.split("=", 1) for w in words[1:] if "=" in w)
    if kind == "replay":
        return Replay(tuple(int(w) for w in words[1:]))
    if kind == "preempt":
        return Preempt(tuple(tuple(int(x) for x in w.split(":")) for w in words[1:]))
    if kind == "random":
        return Random(int(kv["seed"]))
    return PCT(int(kv["seed"]), int(kv["depth"]), int(kv.get("steps", 0)))


def preempt_schedule(program: _core.Program | str, schedule: Schedule = None,
                     budget: int | None = None) -> Preempt:
    """The run of `program` under `schedule` (default: its own) as a Preempt schedule: the
    decisions where the run did not let the current thread run on, each with the k that
    picks what it picked.  Running it gives the same run (verdict, trace hash); its
    length is the run's number of preemptions.  One run, without a trace."""
    if isinstance(program, str):
        program = parse(program)
    if budget is not None:
        budget = check_budget(budget)
    line = _core.preempt_schedule(program, _schedule_text(schedule), budget)
    return parse_schedule(line)


def pct_steps(program: _core.Program | str, budget: int | None = None) -> int:
    """PCT's step bound for `program`: the number of decisions of a first run that lets
    each thread run on (an empty replay list), at least 1.  A PCT schedule with steps=0
    (the policy's default, 1000) draws its change points among 1000 decisions, most of
    them past the end of a short run; front ends fill steps=0 with this (as explore
    does, cpp_core/src/explore/pct_bound.hpp).  One run, checks off."""
    if isinstance(program, str):
        program = parse(program)
    if budget is not None:
        budget = check_budget(budget)
    return _core.pct_steps(program, budget)


def check_budget(budget: object) -> int:
    """The step budget as an int in 1..2^64-1, or ValueError naming the bad value."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise ValueError(f"budget must be an integer number of steps, not {budget!r}")
    if not 1 <= budget <= MAX_BUDGET:
        raise ValueError(f"budget must be between 1 and {MAX_BUDGET} steps, got {budget}")
    return budget


def run(program: _core.Program | str, schedule: Schedule = None, budget: int | None = None,
        trace: bool = True) -> Result:
    """Run `program` once.  `schedule` overrides the program's own `schedule` line; it may
    be a result's `schedule` string, so `run(p, schedule=res.schedule, budget=res.budget)`
    replays `res`.  `budget` overrides the program's (its config's `budget=`, else
    1000000 steps).

    The run releases the GIL; Ctrl-C stops it with KeyboardInterrupt.  Raises ValueError
    for a bad schedule or budget, mmrace.NotBuilt (a NotImplementedError) if the program
    needs a model not built yet, and mmrace.ModelError for an internal error of the model
    (its `reproducer` replays the run up to the error).  A verdict other than ok is
    returned, not raised: see Result.raise_for_verdict().
    """
    if isinstance(program, str):
        program = parse(program)
    if budget is not None:
        budget = check_budget(budget)
    d = _core.run(program, _schedule_text(schedule), budget, bool(trace))
    ops = [OpResult(**o) for o in d.pop("ops")]
    return Result(**d, ops=ops)


# ---------------------------------------------------------------------------------------
# Programs are immutable: these return a new Program.  They are methods of Program
# (mmrace.Program.with_config, .with_schedule).

CONFIG_KEYS = ("strategy", "geometry", "folios", "swap_slots", "pgtables", "vma_lock",
               "mutants", "budget")


def _config_value(key: str, value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"with_config: {key} must be a string, an integer or a list, "
                        f"not {type(value).__name__}")
    return str(value)


def with_config(program: _core.Program, **changes: object) -> _core.Program:
    """This program with config keys changed: `strategy="spf"`, `geometry="x86"`,
    `mutants=["dirty_cow"]`, `vma_lock=["swapin"]`, `budget=N` and the pools `folios=N`,
    `swap_slots=N`, `pgtables=N` (docs/format.md).  None or an empty list resets a key to
    its default.  The result is checked as the parser checks a config line: raises
    ValueError naming the bad key or value (an unknown key, strategy or mutant, a pool
    out of range); what the parser leaves to the run (vma_lock without pervma, a mutant
    of another strategy) run() reports."""
    lines = program.to_mmr().split("\n")
    assert lines[1].startswith("config "), "the canonical text has its config on line 2"
    words = dict(w.split("=", 1) for w in lines[1].split()[1:])
    for key, value in changes.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            words.pop(key, None)
        else:
            words[key] = _config_value(key, value)
    lines[1] = " ".join(["config", *(f"{k}={v}" for k, v in words.items())])
    return _reparse("with_config", "\n".join(lines))


def with_schedule(program: _core.Program, schedule: Schedule) -> _core.Program:
    """This program with its `schedule` line set to `schedule` (any form run() takes;
    None: no schedule line)."""
    text = _schedule_text(schedule)
    if text is not None:
        return _reparse("with_schedule", _core.replay_mmr(program, text))
    lines = program.to_mmr().splitlines(keepends=True)
    if lines and lines[-1].startswith("schedule "):
        lines.pop()  # the canonical text ends with its schedule line
    return _reparse("with_schedule", "".join(lines))


def _reparse(what: str, text: str) -> _core.Program:
    """Parse the canonical text an API call made; its errors name the call, not a line
    of a text the caller never saw."""
    try:
        return _core.parse(text, f"<{what}>")
    except ValueError as e:
        raise ValueError(f"{what}: {str(e).split(': ', 1)[-1]}") from None


_core.Program.with_config = with_config
_core.Program.with_schedule = with_schedule
