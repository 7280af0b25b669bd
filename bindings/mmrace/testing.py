"""Test helpers for pytest and Hypothesis: check(), explore() and the Hypothesis settings
profiles.

    from hypothesis import given, settings
    from mmrace.strategies import schedules, workloads
    from mmrace.testing import check

    @settings(settings.get_profile("mmrace-ci"))
    @given(workloads(strategy="pervma"), schedules())
    def test_pervma_has_no_race(program, schedule):
        check(program, schedule)

check() raises the mmrace.VerdictError of a failed run, which is an AssertionError, so
Hypothesis shrinks it like any failed assertion and its final falsifying example carries
the minimal reproducer.

Importing this module registers the Hypothesis profiles "mmrace-dev", "mmrace-ci" and
"mmrace-nightly" (mmrace/profiles.py); loading one stays the caller's choice:
settings.load_profile("mmrace-ci"), or pytest's --mmrace-profile.
"""
from __future__ import annotations

from mmrace import api
from mmrace.explore import ExploreInterrupted, ExploreReport, Finding, explore

try:  # registers the profiles; they need Hypothesis (the `test` extra), check() does not
    from mmrace.profiles import PROFILES
except ModuleNotFoundError as e:
    if e.name != "hypothesis":
        raise
    PROFILES = {}

__all__ = ["ExploreInterrupted", "ExploreReport", "Finding", "PROFILES", "check", "explore"]


def check(program: api._core.Program | str, schedule: api.Schedule = None, *,
          budget: int | None = None) -> api.Result:
    """Run `program` once, every check on, and return its ok Result.

    `schedule` is any form mmrace.run takes (a Hypothesis-drawn Replay, Preempt or PCT
    included); None runs the program's own `schedule` line.  A PCT schedule with steps=0
    gets the program's own first-run length as its step bound (docs/schedules.md), not
    the policy's default of 1000, which puts most change points past the end of a short
    run.  `budget` overrides the program's step budget.  The Result has no trace (runs
    are faster without one): mmrace.run(res.reproducer) gives it.

    Raises the mmrace.VerdictError subclass of any other verdict (Violation, Deadlock,
    LockOrder, BudgetExceeded; each an AssertionError), whose message names the verdict,
    the check and its message and gives the reproducer with the command that replays it.
    mmrace.ModelError (a bug of mmrace) and ValueError (bad input) propagate as they are.
    """
    if isinstance(program, str):
        program = api.parse(program)
    schedule = _pct_with_steps(program, schedule, budget)
    res = api.run(program, schedule=schedule, budget=budget, trace=False)
    res.raise_for_verdict()
    return res


def _pct_with_steps(program: api._core.Program, schedule: api.Schedule,
                    budget: int | None) -> api.Schedule:
    """`schedule` (None: the program's own line), with a PCT's steps=0 replaced by the
    program's first-run length (mmrace.api.pct_steps); any other schedule as it is."""
    if schedule is None:
        last = program.to_mmr().rstrip("\n").rsplit("\n", 1)[-1]
        schedule = last if last.startswith("schedule ") else None
    if isinstance(schedule, str):
        schedule = api.parse_schedule(schedule)
    if isinstance(schedule, api.PCT) and schedule.steps == 0:
        return api.PCT(schedule.seed, schedule.depth, api.pct_steps(program, budget))
    return schedule
