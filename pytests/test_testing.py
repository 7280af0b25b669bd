"""mmrace.testing.check and the Hypothesis profiles mmrace.testing registers."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

import mmrace
from mmrace import api
from mmrace.testing import PROFILES, check

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LOCK_ORDER = EXAMPLES / "mutants" / "khugepaged_hotplug_lock_order.mmr"  # Random(13) fails
DEADLOCK = """mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  read 0x100000
"""


def test_check_returns_the_ok_result_of_one_run():
    prog = mmrace.parse_file(EXAMPLES / "fork_cow.mmr")
    res = check(prog, mmrace.Random(5))
    assert res.ok and res.trace_hash == mmrace.run(prog, mmrace.Random(5)).trace_hash
    assert check(prog.to_mmr(), [0, 1, 1]).trace_hash == mmrace.run(prog, [0, 1, 1]).trace_hash


@pytest.mark.parametrize("text,schedule,budget,cls", [
    (LOCK_ORDER.read_text(), mmrace.Random(13), None, mmrace.LockOrder),
    ((EXAMPLES / "mutants" / "dirty_cow.mmr").read_text(), None, None, mmrace.Violation),
    (DEADLOCK, None, None, mmrace.Deadlock),
    ((EXAMPLES / "fork_cow.mmr").read_text(), None, 10, mmrace.BudgetExceeded),
], ids=["lock_order", "violation", "deadlock", "budget"])
def test_a_failed_run_raises_its_verdicts_error_an_assertion_error(text, schedule, budget, cls):
    with pytest.raises(cls) as e:
        check(text, schedule, budget=budget)
    err = e.value
    assert isinstance(err, AssertionError) and isinstance(err, mmrace.VerdictError)
    res = err.result
    msg = str(err)
    assert msg.startswith(f"verdict {res.verdict} ({res.check}) at step {res.step}: {res.message}")
    assert f"cat > repro.mmr <<'EOF'\n{res.reproducer}EOF\nmmrace run repro.mmr\n" in msg
    assert res.reproducer.rstrip().splitlines()[-1].startswith("schedule replay")
    back = pickle.loads(pickle.dumps(err))  # sent back by a worker process (xdist)
    assert type(back) is cls and str(back) == msg and back.reproducer == res.reproducer


def test_the_printed_lines_pasted_into_a_shell_replay_the_failure(tmp_path):
    with pytest.raises(mmrace.VerdictError) as e:
        check(LOCK_ORDER.read_text(), mmrace.Random(13))
    script = str(e.value).split("\n\n", 2)[-1]  # after the message and the header line
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    p = subprocess.run(["bash", "-c", script + "mmrace run --json repro.mmr\n"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr  # exit 1: the run found a bug
    assert (tmp_path / "repro.mmr").read_text() == e.value.reproducer
    assert f'"trace_hash": "{e.value.result.trace_hash}"' in p.stdout


def test_a_pct_schedule_without_steps_uses_the_programs_first_run_length():
    prog = mmrace.parse_file(LOCK_ORDER)
    steps = api.pct_steps(prog)
    assert steps != 1000  # else this test could not tell the two apart
    for seed in range(20):
        own = mmrace.run(prog, mmrace.PCT(seed, 3, steps), trace=False)
        try:
            got = check(prog, mmrace.PCT(seed, 3)).trace_hash
        except mmrace.VerdictError as e:
            got = e.result.trace_hash
        assert got == own.trace_hash, seed
    # The same from a schedule string and from the program's own schedule line.
    own = mmrace.run(prog, mmrace.PCT(1, 2, steps), trace=False)
    assert own.ok
    assert check(prog, "pct seed=1 depth=2").trace_hash == own.trace_hash
    assert check(prog.with_schedule(mmrace.PCT(1, 2))).trace_hash == own.trace_hash


def test_a_drawn_preempt_schedule_runs_as_mmrace_run_runs_it():
    prog = mmrace.parse_file(EXAMPLES / "fork_cow.mmr")
    preempt = mmrace.Preempt(((1, 0), (3, 1)))
    assert check(prog, preempt).trace_hash == mmrace.run(prog, preempt).trace_hash


def test_a_model_error_propagates_as_itself(monkeypatch):
    def broken(*args, **kwargs):
        raise mmrace.ModelError("handle_userfault: a registered VMA without a context")
    monkeypatch.setattr(api, "run", broken)
    with pytest.raises(mmrace.ModelError, match="handle_userfault"):
        check(DEADLOCK)


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="budget"):
        check(DEADLOCK, budget=0)
    with pytest.raises(ValueError):
        check("mmrace 1\nprocess P0\nthread P0.T0\n  frobnicate\n")


def test_importing_mmrace_testing_registers_the_three_profiles():
    assert set(PROFILES) == {"mmrace-dev", "mmrace-ci", "mmrace-nightly"}
    dev, ci, nightly = (settings.get_profile(n) for n in ("mmrace-dev", "mmrace-ci",
                                                           "mmrace-nightly"))
    assert all(p.deadline is None and HealthCheck.too_slow in p.suppress_health_check
               for p in (dev, ci, nightly))
    assert ci.derandomize and ci.database is None and not dev.derandomize
    assert dev.database is not None and nightly.database is not None
    assert dev.max_examples < ci.max_examples < nightly.max_examples
    assert Phase.explain in nightly.phases
    assert settings.get_current_profile_name() not in PROFILES  # registered, not loaded
