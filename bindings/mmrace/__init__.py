"""mmrace: check a page-fault locking scheme against a deterministic model of Linux mm.

    import mmrace
    prog = mmrace.parse(open("examples/fork_cow.mmr").read())
    res = mmrace.run(prog.with_config(strategy="spf"), schedule=[0, 1, 1])
    print(res.verdict, res.trace_hash)
    res.raise_for_verdict()  # mmrace.Violation etc., carrying res.reproducer
"""
from __future__ import annotations

from mmrace._core import ModelError, NotBuilt, Program
from importlib import metadata as _metadata

from mmrace.api import (PCT, OpResult, Preempt, Random, Replay, Result, parse, parse_file,
                        parse_schedule, run)
from mmrace.errors import (BudgetExceeded, Deadlock, LockOrder, MmraceError, VerdictError,
                           Violation)

__all__ = [
    "BudgetExceeded",
    "Deadlock",
    "LockOrder",
    "MmraceError",
    "ModelError",
    "NotBuilt",
    "OpResult",
    "PCT",
    "Preempt",
    "Program",
    "Random",
    "Replay",
    "Result",
    "VerdictError",
    "Violation",
    "parse",
    "parse_file",
    "parse_schedule",
    "run",
]
try:  # pyproject.toml is the one place the version is written
    __version__ = _metadata.version("mmrace")
except _metadata.PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0+unknown"
