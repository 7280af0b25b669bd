"""No false positives: random multi-threaded workloads on the correct model always end
`ok` under random and PCT schedules (the full 10^5-program soak is bench/soak)."""
import pytest

import mmrace
from mmrace import _core


@pytest.mark.parametrize("block", range(4))
def test_random_workloads_never_fail_a_check(block):
    res = _core.explore(_core.random_workload, policies=["random", "pct"], first_seed=block * 100,
                        max_runs=200, pct_depth=3, pct_steps=300)
    assert res["runs"] == 200 and res["stopped"] == "done"
    for f in res["failures"]:
        pytest.fail(f"workload {f['seed']} {f['schedule']}: {f['check']}: {f['message']}\n{f['program']}")
    assert res["verdicts"] == {"ok": 200}


def test_workloads_are_deterministic_and_varied():
    texts = {_core.random_workload(s) for s in range(50)}
    assert len(texts) == 50
    assert _core.random_workload(7) == _core.random_workload(7)
    prog = mmrace.parse(_core.random_workload(7))
    a = mmrace.run(prog, schedule=mmrace.Random(3))
    b = mmrace.run(prog, schedule=mmrace.Random(3))
    assert a.trace_hash == b.trace_hash
