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

    def _spec(self) -> dict[str, Any]:
        return {"kind": "replay", "list": [int(x) for x in self.list]}


@dataclass(frozen=True)
class Random:
    """A uniform choice at every decision from a seeded stream."""

    seed: int = 0

    def _spec(self) -> dict[str, Any]:
        return {"kind": "random", "seed": int(self.seed)}


@dataclass(frozen=True)
class PCT:
    """Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010)."""

    seed: int = 0
    depth: int = 3
    steps: int = 0  # the estimate of the run's length k; 0 = the policy's default

    def _spec(self) -> dict[str, Any]:
        return {"kind": "pct", "seed": int(self.seed), "depth": int(self.depth),
                "steps": int(self.steps)}


Schedule = Union[None, Sequence[int], Replay, Random, PCT]


@dataclass
class Result:
    """The outcome of one run (DESIGN §9's JSON object, plus the trace)."""

    verdict: str
    check: str | None
    message: str
    step: int
    ops: list[dict[str, Any]]
    counters: dict[str, int]
    trace_hash: str
    trace: list[tuple[int, str, str, str, int]] = field(repr=False)
    schedule: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_json(self) -> dict[str, Any]:
        """The JSON object `mmrace run --json` prints."""
        keys = ("verdict", "check", "message", "step", "ops", "counters", "trace_hash")
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


def _schedule_spec(schedule: Schedule) -> dict[str, Any] | None:
    if schedule is None:
        return None
    if isinstance(schedule, (Replay, Random, PCT)):
        return schedule._spec()
    if isinstance(schedule, (list, tuple)):
        return Replay(schedule)._spec()
    raise TypeError(f"schedule must be None, a list of ints, Replay, Random or PCT, "
                    f"not {type(schedule).__name__}")


def run(program: _core.Program | str, schedule: Schedule = None, budget: int = 1_000_000,
        trace: bool = True) -> Result:
    """Run `program` once.  `schedule` overrides the program's own `schedule` line.

    The run releases the GIL; Ctrl-C stops it with KeyboardInterrupt.  Raises
    mmrace.NotBuilt (a NotImplementedError) if the program needs a model not built yet.
    """
    if isinstance(program, str):
        program = parse(program)
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    d = _core.run(program, _schedule_spec(schedule), int(budget), bool(trace))
    return Result(**d)
