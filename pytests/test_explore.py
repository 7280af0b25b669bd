"""_core.explore: the explore loop from Python, with the GIL released and Ctrl-C."""
import os
import signal
import threading
import time

import pytest

import mmrace
from mmrace import _core
from races import SPF_MPROTECT_RACE

RACE = SPF_MPROTECT_RACE


def test_a_correct_program_ends_ok_under_every_schedule_family():
    res = _core.explore(RACE.format(mutants=""), policies=["random", "pct"], max_runs=100)
    assert res["runs"] == 100 and res["verdicts"] == {"ok": 100}
    assert res["failures"] == [] and res["stopped"] == "done"
    assert 0 < res["pct_steps"] < 1000  # learned from a first run, not the policy's default
    assert res["runs_per_second"] > 0


def test_a_failure_comes_back_with_a_reproducer():
    prog = mmrace.parse(RACE.format(mutants=" mutants=spf_no_seqcount_check"))
    res = _core.explore(prog, policies=["random", "pct"], max_runs=2000, stop_at_first_failure=True)
    assert res["stopped"] == "failure"
    (f,) = res["failures"]
    assert f["verdict"] == "violation" and f["check"] == "invariant"
    again = mmrace.run(f["program"])
    assert (again.verdict, again.message) == (f["verdict"], f["message"])
    assert mmrace.run(prog, schedule=f["schedule"]).trace_hash == again.trace_hash


def test_a_generator_gives_each_seed_its_program():
    seen = []

    def gen(seed):
        seen.append(seed)
        return _core.random_workload(seed)

    res = _core.explore(gen, policies=["random", "pct"], first_seed=10, max_runs=6, pct_steps=300)
    assert res["runs"] == 6 and seen == [10, 11, 12]


def test_progress_is_reported_and_its_exceptions_propagate():
    calls = []
    _core.explore(RACE.format(mutants=""), max_runs=5, progress=calls.append)
    assert calls and calls[-1]["runs"] == 5

    def boom(_):
        raise RuntimeError("from progress")

    with pytest.raises(RuntimeError, match="from progress"):
        _core.explore(RACE.format(mutants=""), max_runs=5, progress=boom, progress_seconds=0)


def test_ctrl_c_stops_the_loop_with_keyboard_interrupt():
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            _core.explore(RACE.format(mutants=""), max_runs=10**9)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 30


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown policy 'dfs'"):
        _core.explore(RACE.format(mutants=""), policies=["dfs"])
    with pytest.raises(ValueError, match="no replay list"):
        _core.explore(RACE.format(mutants=""), policies=[])
    with pytest.raises(TypeError, match="the program of seed 3 must be a Program or .mmr text, not int"):
        _core.explore(lambda seed: 42, first_seed=3, max_runs=1)
    with pytest.raises(ValueError, match="^<source>:1:"):
        _core.explore("process\n", max_runs=1)
    with pytest.raises(ValueError, match="^<the program of seed 0>:1:"):
        _core.explore(lambda seed: "process\n", max_runs=1)
