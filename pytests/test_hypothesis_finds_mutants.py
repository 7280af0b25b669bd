"""Hypothesis finds the mutants (issue 16's must-show): a property test of the plain form
a user writes, @given(workloads(...), schedules) and mmrace.testing.check, run in the
mmrace-ci profile with each built mutant switched on, fails; and the minimal example
Hypothesis reports (the reproducer of check's exception) fails with its mutant and
passes without it, so what Hypothesis found is the mutant's bug, not a false positive.

It finds 9 of the 11 built mutants (the issue asks for 8; MISSED says which are not found
and why) in about 8 minutes on a shared 2-core machine: marked slow, CI runs it."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine

import mmrace
from mmrace import _core, api
from mmrace.strategies import pct, schedules, workloads
from mmrace.testing import check
from mmrace.workload import AIMS, aim, strategy_for

BUILT = tuple(r["name"] for r in _core.mutant_catalogue() if r["built"])

# Hypothesis shrinks for up to 5 minutes (engine.MAX_SHRINKING_SECONDS, no setting for
# it); a drawn workload is hundreds of choices and most shrink attempts redraw it, so
# here it stops after SHRINK_SECONDS and reports the smallest example found by then.
SHRINK_SECONDS = 30

# The mutants the mmrace-ci profile does not find (measured: 500 examples, 8500 runs
# each), and why.  Hypothesis draws each choice biased toward its simplest value, so its
# programs have fewer features and ops than the seeds' uniform draws that `mmrace hunt`
# explores, and 500 programs are far fewer than a hunt's; these races need a particular
# pair of features in flight together.  They stay xfail (not strict): an XPASS means the
# workload now reaches them.
MISSED = {
    "spf_no_seqcount_check": "found in 89 examples by a probe with these workloads() and "
                             "schedules under another derandomized stream, not in 500 "
                             "under this test's: reached, but not reliably within the "
                             "mmrace-ci profile",
    "pervma_fork_no_vma_write_lock": "needs two siblings storing to one page around a fork, "
                                     "one through a stale TLB entry while the other COWs "
                                     "it on the per-VMA path: none in 500 examples "
                                     "(mmrace hunt aimed at fork,counters finds it)",
    "cow_reuse_after_ro_gup": "needs a read-only pin of a page shared by fork, then a write "
                              "that COWs or reuses it, in that order on one page: none in "
                              "500 examples (mmrace hunt aimed at fork,gup finds it in "
                              "2-16 s)",
}

# What a developer aiming the property test at one subsystem passes to workloads(): the
# features of the code under test, and enough threads and ops for a race among them
# (mmrace.workload.AIMS, which `mmrace hunt --mutant` aims with too).  The other mutants
# take workloads() with its defaults (every feature may be drawn).


# A run costs less than drawing its program choice by choice, so each program runs under
# a drawn Preempt schedule (shrinking toward the fewest switches), then under TRIES drawn
# PCT schedules and TRIES drawn random ones: PCT reaches a bug of few ordered switches,
# random scheduling one whose window needs switches at many points (spf_no_seqcount_check
# and khugepaged_no_revalidate were found in 89 and 11 examples with both, in none of 500
# with PCT alone).  The reproducer is the one run that failed, whatever the count.
TRIES = 8
RANDOMS = st.builds(mmrace.Random, st.integers(0, 2**32 - 1))


def minimal_example(mutant: str) -> mmrace.VerdictError:
    """The exception of the minimal failing example Hypothesis reports for `mutant`."""
    @settings(settings.get_profile("mmrace-ci"), report_multiple_bugs=False)
    @given(workloads(strategy_for(mutant), [mutant], **aim(mutant)), schedules(),
           st.lists(pct(depth=st.integers(1, 3)), min_size=TRIES, max_size=TRIES),
           st.lists(RANDOMS, min_size=TRIES, max_size=TRIES))
    def no_bug(program, preempt, pcts, randoms):
        check(program, preempt)
        for schedule in pcts + randoms:
            check(program, schedule)

    with pytest.raises(mmrace.VerdictError) as e:
        no_bug()
    return e.value


def test_every_missed_or_aimed_mutant_is_a_built_one():
    assert set(MISSED) <= set(BUILT) and set(AIMS) <= set(BUILT)


@pytest.mark.slow
@pytest.mark.parametrize("mutant", [
    pytest.param(m, marks=pytest.mark.xfail(reason=MISSED[m], strict=False)) if m in MISSED
    else m for m in BUILT])
def test_hypothesis_finds_the_mutant_and_its_minimal_example_needs_it(mutant, monkeypatch,
                                                                     record_property):
    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", SHRINK_SECONDS)
    err = minimal_example(mutant)
    repro = mmrace.parse(err.reproducer)
    again = mmrace.run(repro, trace=False)
    assert (again.verdict, again.check, again.trace_hash) == (
        err.result.verdict, err.result.check, err.result.trace_hash)
    without = mmrace.run(repro.with_config(mutants=None), trace=False)
    assert without.ok, f"{mutant}'s minimal example fails without it:\n{without.message}"
    size = minimal_size(err.reproducer)
    for key, value in size.items():  # in the junit XML; -s prints them
        record_property(f"minimal_{key}", value)
    print(f"\n{mutant}: minimal example {size} ({err.result.check})")


def minimal_size(reproducer: str) -> dict[str, int]:
    """A reproducer's threads (kthreads included), ops, and the preemptions of its run."""
    return {"threads": mmrace.parse(reproducer).thread_count,
            "ops": sum(line.startswith("  ") for line in reproducer.splitlines()),
            "preemptions": len(api.preempt_schedule(reproducer).switches)}
