"""No false positives: random multi-threaded workloads on the correct model always end
`ok` under random and PCT schedules (the full 10^5-program soak is bench/soak)."""
import pytest

import mmrace
from mmrace import _core


@pytest.mark.parametrize("block", range(4))
def test_random_workloads_never_fail_a_check(block):
    for seed in range(block * 100, block * 100 + 100):
        prog = mmrace.parse(_core.random_workload(seed))
        for sched in (mmrace.Random(seed), mmrace.PCT(seed, depth=3, steps=300)):
            res = mmrace.run(prog, schedule=sched, trace=False)
            assert res.ok, f"workload {seed} {sched}: {res.check}: {res.message}\n" \
                           f"{res.reproducer}"


def test_workloads_are_deterministic_and_varied():
    texts = {_core.random_workload(s) for s in range(50)}
    assert len(texts) == 50
    assert _core.random_workload(7) == _core.random_workload(7)
    prog = mmrace.parse(_core.random_workload(7))
    a = mmrace.run(prog, schedule=mmrace.Random(3))
    b = mmrace.run(prog, schedule=mmrace.Random(3))
    assert a.trace_hash == b.trace_hash
