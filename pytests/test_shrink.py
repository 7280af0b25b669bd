"""mmrace.shrink and `mmrace shrink`: the mutants' reproducers shrink to programs that fail
with the same check under their mutant and pass without it."""
import json
from pathlib import Path

import pytest

import mmrace
from mmrace import shrink as shrink_module
from mmrace.shrink import Size, shrink
from test_cli import mmrace_cli

MUTANTS = sorted((Path(__file__).resolve().parent.parent / "examples" / "mutants").glob("*.mmr"))


@pytest.fixture(scope="module")
def shrunk():
    return {f.stem: shrink(f.read_text()) for f in MUTANTS}


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_the_shrunk_reproducer_fails_the_same_way_with_its_mutant_only(shrunk, path):
    res = shrunk[path.stem]
    first = mmrace.run(path.read_text(), trace=False)
    assert (res.verdict, res.check) == (first.verdict, first.check) != ("ok", None)
    again = mmrace.run(res.program, trace=False)
    assert (again.verdict, again.check) == (res.verdict, res.check), res.program
    without = mmrace.parse(res.program).with_config(mutants=None)
    assert mmrace.run(without, trace=False).ok, res.program
    for field in ("processes", "threads", "ops", "preemptions"):
        assert getattr(res.after, field) <= getattr(res.before, field), (field, res)
    assert res.program.splitlines()[-1].startswith("schedule replay")


def test_shrinking_removes_ops_and_preemptions_overall(shrunk):
    before = sum(r.before.ops for r in shrunk.values())
    after = sum(r.after.ops for r in shrunk.values())
    assert after < before / 2, (before, after)
    assert sum(r.after.preemptions for r in shrunk.values()) < sum(
        r.before.preemptions for r in shrunk.values())


def test_the_after_size_is_the_size_of_the_shrunk_program(shrunk):
    res = shrunk["dirty_cow"]
    p = mmrace.parse(res.program)
    threads = p.thread_count
    ops = sum(1 for line in res.program.splitlines() if line.startswith("  "))
    decisions = len(res.program.splitlines()[-1].split()) - 2
    assert (res.after.threads, res.after.ops, res.after.decisions) == (threads, ops, decisions)
    assert res.after.preemptions == len(mmrace.api.preempt_schedule(p).switches)


def test_shrinking_is_deterministic(shrunk):
    path = MUTANTS[0]
    again = shrink(path.read_text())
    assert again == shrunk[path.stem]


def test_a_program_that_does_not_fail_is_refused():
    with pytest.raises(ValueError, match="does not fail"):
        shrink("mmrace 1\nprocess P0\nthread P0.T0\n  read 0x100000\n")


def test_a_run_budget_stops_early_with_a_program_that_still_fails():
    path = MUTANTS[0]
    res = shrink(path.read_text(), max_runs=5)
    assert res.runs <= 8  # the budget, plus the size and trim runs
    assert mmrace.run(res.program, trace=False).verdict == res.verdict


def test_pins_and_their_handles_stay_consistent():
    # T1's dma ops use H1; removing the first pin renumbers it H0.
    text = """mmrace 1
config mutants=fork_shares_pinned_page
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  pin 0x100000 pages=1
  pin 0x100000 pages=1 flags=write
  write 0x100000 1
  fork P1
  dma_write H1 0 5
  dma_read H1 0
  read 0x100000
process P1 forked
thread P1.T0
  read 0x100000
  write 0x100000 3
schedule replay
"""
    first = mmrace.run(text, trace=False)
    assert not first.ok
    res = shrink(text)
    assert mmrace.run(res.program, trace=False).verdict == first.verdict
    # A candidate without the first pin: H1 becomes H0; without the second, its users go.
    parts = shrink_module._split(mmrace.parse(text).to_mmr())
    ops = {(0, i) for i in range(len(parts.threads()[0].ops))}
    no_first = shrink_module._with_ops(parts, ops - {(0, 1)}).render()
    assert "dma_write H0 0 5" in no_first and "dma_read H0 0" in no_first
    mmrace.parse(no_first)
    no_second = shrink_module._with_ops(parts, ops - {(0, 2)}).render()
    assert "dma_" not in no_second and no_second.count("pin ") == 1
    mmrace.parse(no_second)


BAD = [
    ("missing", None, [], "No such file"),
    ("malformed", "mmrace 1\nprocess P0\nthread P0.T0\n  mmapp 0x1000\n", [], ":4:3:"),
    ("bad schedule", "mmrace 1\nprocess P0\nthread P0.T0\n  read 0x100000\nschedule preempt 3:1 2:0\n",
     [], ":5:22:"),
    ("ok program", "mmrace 1\nprocess P0\nthread P0.T0\n  read 0x100000\n", [], "does not fail"),
    ("zero seconds", "mmrace 1\n", ["--max-seconds", "0"], "--max-seconds must be positive"),
    ("negative runs", "mmrace 1\n", ["--max-runs", "-3"], "--max-runs must be positive"),
    ("runs not a number", "mmrace 1\n", ["--max-runs", "lots"], "--max-runs: expected a number"),
]


@pytest.mark.parametrize("name,text,extra,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_exits_2_with_one_line_naming_it(tmp_path, name, text, extra, words):
    f = tmp_path / "in.mmr"
    if text is not None:
        f.write_text(text)
    p = mmrace_cli("shrink", str(f), *extra)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert words in p.stderr, p.stderr
    assert p.stdout == ""


def test_the_cli_writes_the_shrunk_program_and_prints_the_sizes(tmp_path):
    out = tmp_path / "small.mmr"
    src = str(MUTANTS[0])
    p = mmrace_cli("shrink", src, "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "before" in p.stdout and "after" in p.stdout and "preemptions" in p.stdout
    assert not mmrace.run(out.read_text(), trace=False).ok
    j = mmrace_cli("shrink", src, "--json")
    assert j.returncode == 0
    d = json.loads(j.stdout)
    assert d["program"] == out.read_text() and set(d["after"]) == set(Size.__dataclass_fields__)
    printed = mmrace_cli("shrink", src)
    assert printed.stdout.startswith("# shrunk: verdict ")
    assert mmrace.parse(printed.stdout).to_mmr() == mmrace.parse(out.read_text()).to_mmr()
