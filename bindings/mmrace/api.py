"""The Python API over mmrace._core: programs, schedules, runs and results."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

from mmrace import _core


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


# A schedule: the text of a `schedule` line ("replay 0 1 1", "schedule random seed=7",
# what Result.schedule holds), a list of replay decisions, or one of the classes above.
Schedule = Union[None, str, Sequence[int], Replay, Random, PCT]

MAX_BUDGET = (1 << 64) - 1
DEFAULT_BUDGET = 1_000_000


@dataclass
class Result:
    """The outcome of one run (the JSON object of docs/cli.md, plus the trace)."""

    verdict: str
    check: str | None
    message: str
    step: int
    ops: list[dict[str, Any]]
    counters: dict[str, int]
    trace_hash: str
    trace: list[tuple[int, str, str, str, int]] = field(repr=False)
    schedule: str = ""  # `schedule replay ...`: replays this run (with the same budget)
    program: str = field(default="", repr=False)  # the .mmr text, its schedule line `schedule`
    budget: int = DEFAULT_BUDGET

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_json(self) -> dict[str, Any]:
        """The JSON object `mmrace run --json` prints."""
        keys = ("verdict", "check", "message", "step", "ops", "counters", "trace_hash",
                "schedule", "budget", "program")
        return {k: getattr(self, k) for k in keys}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)


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
    if isinstance(schedule, (Replay, Random, PCT)):
        return str(schedule)
    if isinstance(schedule, (list, tuple)):
        return str(Replay(schedule))
    raise TypeError(f"schedule must be None, a schedule string, a list of ints, Replay, Random "
                    f"or PCT, not {type(schedule).__name__}")


def parse_schedule(text: str, source: str = "<schedule>") -> Replay | Random | PCT:
    """A schedule in the grammar of the .mmr `schedule` line (the word `schedule` optional):
    "replay 0 1 1", "random seed=7", "pct seed=1 depth=3 [steps=K]".  The file parser's own
    rules and messages: raises ValueError('SOURCE:1:COL: message')."""
    words = _core.parse_schedule(text, source).split()[1:]
    kind, kv = words[0], dict(w.split("=", 1) for w in words[1:] if "=" in w)
    if kind == "replay":
        return Replay(tuple(int(w) for w in words[1:]))
    if kind == "random":
        return Random(int(kv["seed"]))
    return PCT(int(kv["seed"]), int(kv["depth"]), int(kv.get("steps", 0)))


def check_budget(budget: object) -> int:
    """The step budget as an int in 1..2^64-1, or ValueError naming the bad value."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise ValueError(f"budget must be an integer number of steps, not {budget!r}")
    if not 1 <= budget <= MAX_BUDGET:
        raise ValueError(f"budget must be between 1 and {MAX_BUDGET} steps, got {budget}")
    return budget


def run(program: _core.Program | str, schedule: Schedule = None, budget: int = DEFAULT_BUDGET,
        trace: bool = True) -> Result:
    """Run `program` once.  `schedule` overrides the program's own `schedule` line; it may
    be a result's `schedule` string, so `run(p, schedule=res.schedule, budget=res.budget)`
    replays `res`.

    The run releases the GIL; Ctrl-C stops it with KeyboardInterrupt.  Raises ValueError
    for a bad schedule or budget, mmrace.NotBuilt (a NotImplementedError) if the program
    needs a model not built yet, and mmrace.ModelError for an internal error of the model
    (its `schedule` and `program` attributes replay the run up to the error).
    """
    if isinstance(program, str):
        program = parse(program)
    budget = check_budget(budget)
    d = _core.run(program, _schedule_text(schedule), budget, bool(trace))
    return Result(**d, program=_core.replay_mmr(program, d["schedule"]), budget=budget)
