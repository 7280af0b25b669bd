"""mmrace: check a page-fault locking scheme against a deterministic model of Linux mm.

    import mmrace
    prog = mmrace.parse(open("examples/fork_cow.mmr").read())
    res = mmrace.run(prog, schedule=[0, 1, 1])
    print(res.verdict, res.trace_hash)
"""
from __future__ import annotations

from mmrace._core import ModelError, NotBuilt, Program
from mmrace.api import PCT, Random, Replay, Result, parse, parse_file, run

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
    "run",
]
__version__ = "0.1.0"
