"""mmrace: check a page-fault locking scheme against a deterministic model of Linux mm.

    import mmrace
    prog = mmrace.parse(open("examples/fork_cow.mmr").read())
    res = mmrace.run(prog, schedule=[0, 1, 1])
    print(res.verdict, res.trace_hash)
"""
from __future__ import annotations

from mmrace._core import ModelError, NotBuilt, Program
from importlib import metadata as _metadata

from mmrace.api import PCT, Random, Replay, Result, parse, parse_file, parse_schedule, run

__all__ = [
    "ModelError",
    "NotBuilt",
    "PCT",
    "Program",
    "Random",
    "Replay",
    "Result",
    "parse",
    "parse_file",
    "parse_schedule",
    "run",
]
try:  # pyproject.toml is the one place the version is written
    __version__ = _metadata.version("mmrace")
except _metadata.PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0+unknown"
