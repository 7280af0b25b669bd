"""Hypothesis strategies for mmrace programs, drawn as canonical .mmr text (docs/format.md).

    from hypothesis import given
    from mmrace.strategies import mmr_programs

    @given(mmr_programs())
    def test_round_trip(text):
        assert mmrace.parse(text).to_mmr() == text

The programs come from the core's generator (cpp_core/src/program/generate/, shape
"valid"), and Hypothesis makes each of its choices: ``choose(n)`` is a draw of
``st.integers(0, n - 1)``, where 0 is the simplest choice.  So Hypothesis shrinks along
the program's structure, toward few processes, few ops, features off and small numbers.

The text is exactly what ``Program.to_mmr()`` prints.  Every program parses: forked
processes are each forked once by an earlier process, handles name existing pins and DMA
offsets fall inside them, addresses are aligned and inside the user address space.  By
default every program also runs: its mutants are built and apply to its strategy
(``runnable=False`` draws any catalogue name, for tests of the format itself).
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import mmrace
from mmrace import _core
from mmrace import workload as _workload
from mmrace.api import PCT, Preempt

__all__ = ["MUTANTS", "mmr_programs", "pct", "runnable_mutants", "schedules", "workloads"]

# The mutant catalogue (docs/mutants.md, cpp_core/src/mutants/catalogue.cpp), in its order.
MUTANTS = tuple(_core.mutant_names())
_CATALOGUE = {row["name"]: row for row in _core.mutant_catalogue()}


def runnable_mutants(strategy: str) -> tuple[str, ...]:
    """The mutants a program of `strategy` can switch on: built, and for that strategy."""
    def applies(row: dict) -> bool:
        return row["strategies"] == "all" or strategy in row["strategies"].split(",")
    return tuple(name for name, row in _CATALOGUE.items() if row["built"] and applies(row))


def _check_bound(name: str, value: object, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= 64:
        raise InvalidArgument(f"{name}={value!r}: expected an int in [{least}, 64]")
    return value


def mmr_programs(max_processes: int = 4, max_kthreads: int = 2, runnable: bool = True,
                 *, max_threads: int = 3, max_files: int = 3,
                 max_ops: int = 8) -> st.SearchStrategy[str]:
    """A whole valid program as canonical .mmr text; with `runnable` one that runs.

    max_threads bounds each process's threads, max_ops each thread's ops (forks aside).
    """
    bounds = {"max_processes": _check_bound("max_processes", max_processes, 0),
              "max_kthreads": _check_bound("max_kthreads", max_kthreads, 0),
              "max_threads": _check_bound("max_threads", max_threads, 1),
              "max_files": _check_bound("max_files", max_files, 0),
              "max_ops": _check_bound("max_ops", max_ops, 0)}

    @st.composite
    def programs(draw) -> str:
        return _core.generate(lambda n: draw(st.integers(0, n - 1)), "valid",
                              runnable=bool(runnable), **bounds)

    return programs()


def _check_int(name: str, value: object, least: int, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
        raise InvalidArgument(f"{name}={value!r}: expected an int in [{least}, {most}]")
    return value


def schedules(max_preemptions: int = 3, max_decision: int = 200, *,
              max_choice: int = 3) -> st.SearchStrategy[Preempt]:
    """A mmrace.Preempt schedule: up to `max_preemptions` context switches (decision,
    k), decisions in [0, max_decision], k in [0, max_choice] (docs/schedules.md).

    Hypothesis shrinks it toward fewer switches, earlier decisions and smaller k: toward
    the schedule where every thread runs on until it waits (no switches at all)."""
    _check_int("max_preemptions", max_preemptions, 0, 1024)
    _check_int("max_decision", max_decision, 0, (1 << 64) - 1)
    _check_int("max_choice", max_choice, 0, (1 << 64) - 1)
    switch = st.tuples(st.integers(0, max_decision), st.integers(0, max_choice))
    return st.lists(switch, max_size=max_preemptions, unique_by=lambda s: s[0]).map(
        lambda switches: Preempt(tuple(sorted(switches))))


def pct(depth: int | st.SearchStrategy[int] = 3,
        seeds: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[PCT]:
    """A mmrace.PCT schedule with steps=0, which front ends fill with the program's own
    length (mmrace.api.pct_steps).  `depth`: the bug depth it targets, an int (exactly
    that) or a strategy of ints in [1, max_pct_depth]; by default 3.  `seeds`: a strategy
    of seeds, by default any 64-bit seed (shrinking toward 0)."""
    most = _core.limits()["max_pct_depth"]
    if isinstance(depth, st.SearchStrategy):
        depths = depth
    else:
        depths = st.just(_check_int("depth", depth, 1, most))
    if seeds is None:
        seeds = st.integers(0, (1 << 64) - 1)
    elif not isinstance(seeds, st.SearchStrategy):
        raise InvalidArgument(f"seeds={seeds!r}: expected a strategy of ints")
    return st.builds(lambda s, d: PCT(seed=s, depth=d), seeds, depths)


def workloads(strategy: str = "classic", mutants=(), threads: tuple[int, int] = (2, 4),
              ops: tuple[int, int] = (3, 10), pages: int = 16, features=None,
              geometry: str = "small", vma_lock=()) -> st.SearchStrategy[mmrace.Program]:
    """Racing multi-threaded programs (the workload shape, mmrace.workload.shape()) as
    ``mmrace.Program``.

    The core's generator draws them with every choice simplest at 0 (``simplest_first``),
    each choice a draw of ``st.integers(0, n - 1)``: Hypothesis shrinks toward fewer
    processes, threads and ops, features off and smaller numbers.  features: the names of
    ``mmrace.workload.FEATURES`` that may be drawn (None: all).  Every program runs.

    Swarm testing (``mmrace.workload.shape(swarm=True)``, what ``mmrace hunt`` draws) is
    off: Hypothesis already switches features off through its own choices, and both
    together drew a race's pair of features too rarely (measured in the mmrace-ci
    profile: khugepaged_hotplug_lock_order and gup_vmas_after_retry found in 56 and
    155 examples without swarm, not in 500 with it).
    """
    try:
        shape = _workload.shape(strategy=strategy, mutants=mutants, threads=threads, ops=ops,
                                pages=pages, features=features, geometry=geometry,
                                vma_lock=vma_lock, simplest_first=True, swarm=False)
    except ValueError as e:
        raise InvalidArgument(str(e)) from None

    @st.composite
    def programs(draw) -> mmrace.Program:
        text = _core.generate(lambda n: draw(st.integers(0, n - 1)), "workload", workload=shape)
        return mmrace.parse(text)

    return programs()
