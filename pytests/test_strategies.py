"""mmrace.strategies.mmr_programs() keeps its promise (issue 14, defect 7): every program
it draws by default runs, under any schedule, to a verdict."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmrace
from mmrace import _core
from mmrace.strategies import MUTANTS, mmr_programs, runnable_mutants


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mmr_programs(), st.integers(0, 2**64 - 1))
def test_every_drawn_program_runs_to_a_verdict(text, seed):
    prog = mmrace.parse(text)
    _core.check_built(prog)  # no unbuilt mutant, none of another strategy
    res = mmrace.run(prog, schedule=mmrace.Random(seed), trace=False)
    assert res.verdict in ("ok", "violation", "deadlock", "lock_order", "budget")


def test_runnable_mutants_are_built_and_apply_to_the_strategy():
    rows = {r["name"]: r for r in _core.mutant_catalogue()}
    assert set(rows) == set(MUTANTS)
    for strategy in ("classic", "spf", "pervma"):
        names = runnable_mutants(strategy)
        assert names, strategy
        for name in names:
            prog = mmrace.parse(f"mmrace 1\nconfig strategy={strategy} mutants={name}\n"
                                "process P0\nthread P0.T0\n  exit\n")
            _core.check_built(prog)
    assert "spf_no_seqcount_check" not in runnable_mutants("classic")
    assert "spf_no_seqcount_check" in runnable_mutants("spf")
    assert not set(runnable_mutants("classic")) & {n for n, r in rows.items() if not r["built"]}
