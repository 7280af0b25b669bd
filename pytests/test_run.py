"""mmrace.run: verdicts, determinism, schedules, results and errors."""
import pytest

import mmrace

TWO_THREADS = """mmrace 1
config strategy=classic geometry=small
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
thread P0.T1
  write 0x102000 3
  read 0x100000
  read 0x102000
"""


def results(res):
    return [op.result for op in res.ops]


def test_design_example_is_ok_and_deterministic(examples):
    prog = mmrace.parse_file(examples / "design_example.mmr")
    a, b = mmrace.run(prog), mmrace.run(prog)
    assert a.verdict == "ok" and a.check is None
    assert a.trace_hash == b.trace_hash and a.trace == b.trace
    # The child reads what the parent wrote before fork: COW shares the page.
    child = [op for op in a.ops if op.thread == "P1.T0"]
    assert child[0].result == "7"
    assert a.counters["pgfault"] >= 2


def test_a_different_schedule_gives_a_different_trace(examples):
    prog = mmrace.parse_file(examples / "design_example.mmr")
    a = mmrace.run(prog, schedule=[0, 0, 0, 0, 0, 0])
    b = mmrace.run(prog, schedule=[1, 1, 1, 1, 1, 1])
    assert a.verdict == b.verdict == "ok"
    assert a.trace_hash != b.trace_hash
    assert a.trace != b.trace


def test_fork_cow_semantics(examples):
    res = mmrace.run(mmrace.parse_file(examples / "fork_cow.mmr"))
    assert res.ok
    assert results(res) == ["0x200000", "ok", "P1", "ok", "22", "11", "ok", "33"]
    assert res.counters["cow_copy"] + res.counters["cow_reuse"] >= 2


@pytest.mark.parametrize("seed", range(30))
def test_random_and_pct_schedules_keep_sequential_semantics(seed):
    prog = mmrace.parse(TWO_THREADS)
    for sched in (mmrace.Random(seed), mmrace.PCT(seed, depth=3, steps=60)):
        res = mmrace.run(prog, schedule=sched)
        assert res.ok, res.message
        r = results(res)
        # T1 may run before T0's mmap (SIGSEGV) or after it.  Once its write went in,
        # its own read sees it; the mapping is never removed.
        assert r[3] in ("ok", "SIGSEGV")
        if r[3] == "ok":
            assert r[5] == "3" and r[4] in ("0", "1")
        else:
            assert r[5] in ("0", "SIGSEGV")


def test_recorded_schedule_replays_the_run():
    prog = mmrace.parse(TWO_THREADS)
    for seed in range(10):
        a = mmrace.run(prog, schedule=mmrace.Random(seed))
        words = a.schedule.split()
        assert words[:2] == ["schedule", "replay"]
        b = mmrace.run(prog, schedule=[int(w) for w in words[2:]])
        assert a.trace_hash == b.trace_hash
        assert results(a) == results(b)


def test_access_outside_a_mapping_is_sigsegv_and_permissions_hold():
    prog = mmrace.parse("""mmrace 1
process P0
thread P0.T0
  read 0x300000
  mmap 0x300000 pages=1 prot=r flags=private,anon,fixed
  read 0x300000
  write 0x300000 5
  mmap 0x310000 pages=1 prot=none flags=private,anon,fixed
  read 0x310000
""")
    res = mmrace.run(prog)
    assert res.ok
    assert results(res) == ["SIGSEGV", "0x300000", "0", "SIGSEGV", "0x310000", "SIGSEGV"]
    assert res.counters["sigsegv"] == 3


def test_top_down_placement_and_fixed_noreplace():
    prog = mmrace.parse("""mmrace 1
process P0
thread P0.T0
  mmap 0x0 pages=2 prot=rw flags=private,anon
  mmap 0x0 pages=1 prot=rw flags=private,anon
  mmap 0x400000 pages=1 prot=rw flags=private,anon,fixed
  mmap 0x400000 pages=1 prot=rw flags=private,anon,fixed_noreplace
""")
    r = results(mmrace.run(prog))
    first, second = int(r[0], 16), int(r[1], 16)
    assert second == first - 0x1000  # the next gap below, as unmapped_area_topdown
    assert r[2:] == ["0x400000", "EEXIST"]


def test_populate_faults_pages_in():
    prog = mmrace.parse("""mmrace 1
process P0
thread P0.T0
  mmap 0x500000 pages=3 prot=rw flags=private,anon,fixed,populate
  read 0x501000
""")
    res = mmrace.run(prog)
    assert results(res) == ["0x500000", "0"]
    assert res.counters["pgalloc_anon"] == 3


def test_unbuilt_ops_strategies_and_mutants_are_clear_errors():
    base = "mmrace 1\n{cfg}process P0\nthread P0.T0\n  {op}\n"
    # Every op of DESIGN §9 runs; a mutant not built yet is still a clear error.
    with pytest.raises(mmrace.NotBuilt, match="stackrot"):
        mmrace.run(base.format(cfg="config mutants=stackrot\n", op="read 0x100000"))
    # A built mutant of another strategy is refused, not silently ignored.
    with pytest.raises(ValueError, match="applies to strategy spf, not classic"):
        mmrace.run(base.format(cfg="config mutants=spf_no_seqcount_check\n", op="read 0x100000"))
    for strategy in ("spf", "pervma"):
        res = mmrace.run(base.format(cfg=f"config strategy={strategy}\n", op="read 0x100000"))
        assert res.verdict == "ok"


def test_budget_verdict():
    prog = mmrace.parse(TWO_THREADS)
    res = mmrace.run(prog, budget=5)
    assert res.verdict == "budget" and res.check == "budget"
    assert res.step == 6


def test_bad_arguments():
    prog = mmrace.parse(TWO_THREADS)
    with pytest.raises(TypeError):
        mmrace.run(prog, schedule=0.5)
    with pytest.raises(ValueError, match="unknown schedule policy '0'"):
        mmrace.run(prog, schedule="0 1")
    with pytest.raises(ValueError):
        mmrace.run(prog, budget=0)
