"""The reclaim and smaps kthread ops through the Python API: reclaim is invisible to
the program (a page swapped out reads back the same), smaps reports what it walked and
how long it held mmap_lock, and both race the process under every strategy."""
import re

import pytest

import mmrace

SMAPS = re.compile(r"vmas=\d+ rss=\d+ anon=\d+ swap=\d+|ESRCH")


def results(res):
    return [op.result for op in res.ops]


def test_example_runs_and_reclaims_without_changing_content(examples):
    res = mmrace.run(mmrace.parse_file(examples / "reclaim_smaps.mmr"))
    assert res.ok, res.message
    r = results(res)
    assert r[:4] == ["0x100000", "ok", "ok", "ok"]
    assert r[6:10] == ["1", "2", "3", "0"]  # whatever reclaim took, it reads back
    k0 = [op.result for op in res.ops if op.thread == "K0"]
    assert [k0[1], k0[3]] == ["0", "0"]
    assert all(SMAPS.fullmatch(k0[i]) for i in (0, 2, 4))
    assert res.counters["pgsteal_kswapd"] >= 1
    assert res.counters["smaps"] >= 1  # later walks may find the process gone (ESRCH)


@pytest.mark.parametrize("strategy", ["classic", "spf", "pervma"])
@pytest.mark.parametrize("seed", range(15))
def test_reclaim_and_smaps_race_the_process(examples, strategy, seed):
    text = (examples / "reclaim_smaps.mmr").read_text()
    prog = mmrace.parse(text).with_config(strategy=strategy)
    for sched in (mmrace.Random(seed), mmrace.PCT(seed, depth=3, steps=200)):
        res = mmrace.run(prog, schedule=sched)
        assert res.ok, res.message
        r = results(res)
        # T0 wrote the anonymous pages itself: its reads see them, swapped out or not.
        assert r[6:9] == ["1", "2", "3"]
        for op in res.ops:
            if op.op.startswith("smaps"):
                assert SMAPS.fullmatch(op.result)
        assert res.counters["smaps_lock_hold_steps"] >= 0


def test_smaps_of_an_exited_process_is_esrch():
    res = mmrace.run(mmrace.parse("""mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  exit
kthread K0
  smaps P0
  reclaim 4
"""))
    assert res.ok, res.message
    assert results(res) == ["0x100000", "0", "ESRCH", "0"]
