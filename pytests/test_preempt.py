"""The preempt schedule kind (docs/schedules.md), the schedule strategies and PCT's steps."""
import pytest
from hypothesis import find, given, settings
from hypothesis.errors import InvalidArgument

import mmrace
from mmrace import api, strategies
from test_cli import mmrace_cli

RACE = """mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  read 0x100000
thread P0.T1
  read 0x100000
  write 0x101000 3
  munmap 0x100000 pages=1
"""


def test_preempt_prints_and_parses_in_the_file_grammar():
    s = mmrace.Preempt(switches=((3, 0), (12, 1)))
    assert str(s) == "preempt 3:0 12:1"
    assert mmrace.parse_schedule("schedule preempt 3:0 12:1") == s
    assert mmrace.parse_schedule("preempt") == mmrace.Preempt()
    p = mmrace.parse(RACE).with_schedule(s)
    assert p.to_mmr().endswith("schedule preempt 3:0 12:1\n")


@pytest.mark.parametrize("text,col,words", [
    ("preempt 4", 9, "DECISION:CHOICE"),
    ("preempt 4:1 9:x", 15, "expected a number"),
    ("preempt 9:0 4:1", 13, "sorted by decision"),
    ("preempt 4:0 4:1", 13, "does not come after decision 4"),
])
def test_a_malformed_entry_is_an_error_at_its_column(text, col, words):
    with pytest.raises(ValueError, match=f"^--schedule:1:{col}: .*{words}"):
        mmrace.parse_schedule(text, "--schedule")


def test_no_entries_is_the_empty_replay_list():
    p = mmrace.parse(RACE)
    assert mmrace.run(p, schedule=mmrace.Preempt()).trace_hash == mmrace.run(p, schedule=[]).trace_hash


def test_a_runs_preempt_form_replays_it_and_counts_its_switches():
    p = mmrace.parse(RACE)
    assert api.preempt_schedule(p) == mmrace.Preempt()
    counts = set()
    for seed in range(30):
        res = mmrace.run(p, schedule=mmrace.Random(seed))
        pre = api.preempt_schedule(p, mmrace.Random(seed))
        again = mmrace.run(p, schedule=pre)
        assert (again.verdict, again.trace_hash) == (res.verdict, res.trace_hash)
        assert again.schedule == res.schedule  # results keep the replay form
        counts.add(len(pre.switches))
    assert len(counts) > 2


def test_each_switch_is_one_preemption_of_the_current_thread():
    # Decision 0 starts the run (no thread is current: options[0 % 2], T0, as replay
    # picks); at decision 1 T0 is running and k=0 switches to the next thread, T1.
    p = mmrace.parse(RACE)
    assert mmrace.run(p, schedule=mmrace.Preempt(((0, 0),))).schedule == mmrace.run(p).schedule
    assert api.preempt_schedule(p, mmrace.Preempt(((0, 0),))) == mmrace.Preempt()
    res = mmrace.run(p, schedule=mmrace.Preempt(((1, 0),)))
    assert res.schedule.split()[2:4] == ["0", "1"]
    assert api.preempt_schedule(p, res.schedule) == mmrace.Preempt(((1, 0),))


def test_the_cli_takes_a_preempt_schedule(tmp_path):
    f = tmp_path / "race.mmr"
    f.write_text(RACE)
    assert mmrace_cli("run", str(f), "--schedule", "preempt 0:0 5:1").returncode == 0
    bad = mmrace_cli("run", str(f), "--schedule", "preempt 5:1 0:0")
    assert bad.returncode == 2 and "--schedule:1:13:" in bad.stderr


@settings(max_examples=50, deadline=None)
@given(strategies.schedules())
def test_schedules_draws_sorted_distinct_switches_that_run(s):
    decisions = [d for d, _ in s.switches]
    assert decisions == sorted(set(decisions)) and len(decisions) <= 3
    assert mmrace.run(RACE, schedule=s).ok


def test_schedules_shrink_toward_fewer_earlier_switches_and_smaller_k():
    s = find(strategies.schedules(max_preemptions=5), lambda s: len(s.switches) >= 2)
    assert s == mmrace.Preempt(((0, 0), (1, 0)))


def test_pct_draws_pct_schedules_with_steps_left_to_the_front_end():
    s = find(strategies.pct(), lambda s: True)
    assert s == mmrace.PCT(seed=0, depth=3, steps=0)
    with pytest.raises(InvalidArgument, match="depth=0"):
        strategies.pct(depth=0)
    with pytest.raises(InvalidArgument, match="max_preemptions=-1"):
        strategies.schedules(max_preemptions=-1)


def test_pct_steps_is_the_length_of_a_run_that_lets_each_thread_run_on():
    p = mmrace.parse(RACE)
    decisions = len(mmrace.run(p, schedule=[]).schedule.split()) - 2
    assert api.pct_steps(p) == max(decisions, 1) > 1
    one = mmrace.parse("mmrace 1\nprocess P0\nthread P0.T0\n  read 0x100000\n")
    assert api.pct_steps(one) == 1
