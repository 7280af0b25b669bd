"""Issue 14: every value the CLI and run() take goes through one schedule parser, a
printed replay replays, the JSON carries what replays it, and exit codes mean one thing."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import mmrace
from mmrace import _core, cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# A userfault no handler serves: the program's own deadlock.
DEADLOCK = """mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  read 0x100000
"""


def mmrace_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmrace", *args], capture_output=True,
                          text=True, timeout=120)


# (what, file, extra CLI arguments, the verdict it gives)
VERDICTS = [
    ("ok", EXAMPLES / "fork_cow.mmr", ["--schedule", "random seed=3"], "ok"),
    ("violation", EXAMPLES / "mutants" / "dirty_cow.mmr", [], "violation"),
    ("deadlock", None, [], "deadlock"),
    ("lock_order", EXAMPLES / "mutants" / "khugepaged_hotplug_lock_order.mmr", [], "lock_order"),
    ("budget", EXAMPLES / "fork_cow.mmr", ["--budget", "10"], "budget"),
    ("budget under pct", EXAMPLES / "fork_cow.mmr",
     ["--budget", "25", "--schedule", "pct seed=4 depth=2"], "budget"),
]


def _file(path: Path | None, tmp_path: Path) -> str:
    if path is not None:
        return str(path)
    f = tmp_path / "deadlock.mmr"
    f.write_text(DEADLOCK)
    return str(f)


@pytest.mark.parametrize("what,path,extra,verdict", VERDICTS, ids=[v[0] for v in VERDICTS])
def test_the_printed_replay_command_replays_every_verdict(what, path, extra, verdict, tmp_path):
    f = _file(path, tmp_path)
    first = mmrace_cli("run", f, "--json", *extra)
    out = json.loads(first.stdout)
    assert out["verdict"] == verdict, out["message"]
    assert first.returncode == (0 if verdict == "ok" else 1)
    # JSON: its schedule and budget replay the run; so does its program text on its own.
    again = json.loads(mmrace_cli("run", f, "--json", "--schedule", out["schedule"],
                                  "--budget", str(out["budget"])).stdout)
    assert (again["verdict"], again["trace_hash"]) == (verdict, out["trace_hash"])
    saved = tmp_path / "replay.mmr"
    saved.write_text(out["program"])
    from_program = json.loads(mmrace_cli("run", str(saved), "--json",
                                         "--budget", str(out["budget"])).stdout)
    assert (from_program["verdict"], from_program["trace_hash"]) == (verdict, out["trace_hash"])
    if verdict == "ok":
        return
    # The human form prints a replay command: run it as a shell would.
    human = mmrace_cli("run", f, *extra)
    line = next(x for x in human.stdout.splitlines() if x.strip().startswith("replay: "))
    argv = shlex.split(line.split("replay: ", 1)[1])
    assert argv[:2] == ["mmrace", "run"]
    if "--budget" in extra:
        assert "--budget" in argv
    replayed = json.loads(mmrace_cli(*argv[1:], "--json").stdout)
    assert (replayed["verdict"], replayed["trace_hash"]) == (verdict, out["trace_hash"])


@pytest.mark.parametrize("what,path,extra,verdict", VERDICTS, ids=[v[0] for v in VERDICTS])
def test_run_takes_a_results_schedule_as_it_is(what, path, extra, verdict, tmp_path):
    prog = mmrace.parse_file(_file(path, tmp_path))
    kw = {}
    if "--budget" in extra:
        kw["budget"] = int(extra[extra.index("--budget") + 1])
    if "--schedule" in extra:
        kw["schedule"] = extra[extra.index("--schedule") + 1]
    res = mmrace.run(prog, **kw)
    assert res.verdict == verdict
    again = mmrace.run(prog, schedule=res.schedule, budget=res.budget)
    assert (again.verdict, again.trace_hash) == (verdict, res.trace_hash)
    assert mmrace.run(res.reproducer, budget=res.budget).trace_hash == res.trace_hash
    assert mmrace.run(res.reproducer).trace_hash == res.trace_hash  # it holds the budget


BAD_SCHEDULES = [
    ("replay -1", "expected a number, got '-1'"),
    ("random seed=-1", "expected a number, got '-1'"),
    ("pct seed=1 depth=-3", "expected a number, got '-3'"),
    ("replay 99999999999999999999999", "number out of range"),
    ("random seed=18446744073709551616", "number out of range"),
    ("random", "missing seed="),
    ("random sed=5", "sed"),
    ("pct seed=1 depth=0", "depth must be at least 1"),
    ("pct seed=1 depth=99999999", "depth"),
    ("", "empty schedule"),
    ("   ", "empty schedule"),
    ("foo 1 2", "unknown schedule policy 'foo'"),
    ("replay 1\nreplay 2", "a schedule is one line"),
]


@pytest.mark.parametrize("text,message", BAD_SCHEDULES, ids=[b[0] or "empty" for b in BAD_SCHEDULES])
def test_a_bad_schedule_is_a_usage_error_with_the_file_parsers_message(text, message, examples):
    p = mmrace_cli("run", str(examples / "fork_cow.mmr"), "--schedule", text)
    assert p.returncode == cli.EXIT_USAGE, p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("mmrace: --schedule:") and message in p.stderr, p.stderr
    # The Python API: the same parser, the same message.
    prog = mmrace.parse_file(examples / "fork_cow.mmr")
    with pytest.raises(ValueError) as e:
        mmrace.run(prog, schedule=text)
    assert str(e.value).split(":", 3)[3] == p.stderr.split(":", 4)[4].rstrip("\n")


@pytest.mark.parametrize("schedule", [[-1], [2**64], [1, "x"]])
def test_run_rejects_a_bad_replay_list_with_valueerror(schedule):
    prog = mmrace.parse_file(EXAMPLES / "fork_cow.mmr")
    with pytest.raises(ValueError, match="<schedule>:1:"):
        mmrace.run(prog, schedule=schedule)


@pytest.mark.parametrize("sched", [mmrace.Random(-1), mmrace.PCT(seed=1, depth=0),
                                   mmrace.PCT(seed=1, depth=2, steps=-5)])
def test_run_rejects_bad_schedule_objects_with_valueerror(sched):
    prog = mmrace.parse_file(EXAMPLES / "fork_cow.mmr")
    with pytest.raises(ValueError, match="<schedule>:1:"):
        mmrace.run(prog, schedule=sched)


@pytest.mark.parametrize("budget", ["99999999999999999999", "0", "-4", "lots"])
def test_a_bad_budget_is_a_usage_error(budget, examples):
    p = mmrace_cli("run", str(examples / "fork_cow.mmr"), "--budget", budget)
    assert p.returncode == cli.EXIT_USAGE and "Traceback" not in p.stderr
    assert "--budget" in p.stderr, p.stderr


@pytest.mark.parametrize("budget", [0, -1, 2**64, 1.5, True])
def test_run_rejects_a_bad_budget_with_valueerror(budget):
    prog = mmrace.parse_file(EXAMPLES / "fork_cow.mmr")
    with pytest.raises(ValueError, match="budget"):
        mmrace.run(prog, budget=budget)


def test_schedule_strings_round_trip_through_the_parser():
    for text in ("replay", "replay 0 1 18446744073709551615", "random seed=7",
                 "pct seed=1 depth=3", "pct seed=2 depth=1024 steps=40"):
        sched = mmrace.parse_schedule(text)
        assert str(sched) == text
        assert mmrace.parse_schedule("schedule " + text) == sched


def test_an_internal_model_error_exits_3_with_its_replay(monkeypatch, capsys, examples):
    """A ModelError means a bug of mmrace: its own exit code and a replay command.  No
    valid program is known to raise one (that would be a bug to fix), so the core's run
    is replaced by one that raises it as the core does."""
    def raising_run(program, schedule, budget, trace):
        err = _core.ModelError("handle_userfault: a registered VMA without a userfaultfd context")
        err.schedule = "schedule replay 0 0 1"
        err.reproducer = err.program = _core.replay_mmr(program, err.schedule)
        raise err
    monkeypatch.setattr(_core, "run", raising_run)
    rc = cli.main(["run", str(examples / "fork_cow.mmr"), "--budget", "77"])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_MODEL_ERROR == 3
    assert "internal model error" in err and "handle_userfault" in err
    assert f"replay: mmrace run {examples / 'fork_cow.mmr'} --schedule 'replay 0 0 1' --budget 77" in err


def test_exit_codes_are_distinct():
    codes = [cli.EXIT_OK, cli.EXIT_VERDICT, cli.EXIT_USAGE, cli.EXIT_MODEL_ERROR,
             cli.EXIT_NOT_BUILT, cli.EXIT_INTERRUPTED]
    assert len(set(codes)) == len(codes)


def test_version():
    p = mmrace_cli("--version")
    assert p.returncode == 0
    assert p.stdout.strip() == f"mmrace {mmrace.__version__}"
    assert mmrace.__version__[0].isdigit()


def test_a_closed_output_pipe_is_no_traceback(tmp_path):
    """`mmrace run F | head -1`: the reader goes away while the ops are printed."""
    lines = ["mmrace 1", "process P0", "thread P0.T0",
             *[f"  read 0x{0x100000 + 8 * i:x}" for i in range(20000)]]
    f = tmp_path / "many.mmr"
    f.write_text("\n".join(lines) + "\n")
    p = subprocess.Popen([sys.executable, "-m", "mmrace", "run", str(f), "--budget", "50"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == cli.EXIT_PIPE_CLOSED, err
    assert "Traceback" not in err
