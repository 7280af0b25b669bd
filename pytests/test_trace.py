"""`mmrace trace` and mmrace.trace: the text views pinned by golden files, the Perfetto
JSON checked as its importer reads it, the linearizability history, bad input."""
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import mmrace
from mmrace import _core, trace

HERE = Path(__file__).parent
EXAMPLES = HERE.parent / "examples"
GOLDEN = HERE / "golden"
PROGRAMS = sorted(EXAMPLES.glob("*.mmr")) + sorted((EXAMPLES / "mutants").glob("*.mmr"))

# Two threads of one process race a fault against munmap, under a fixed schedule with
# preemptions: small enough to read, and it takes mmap_lock, the PTL and a fault path.
SMALL = """mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 7
thread P0.T1
  read 0x100000
schedule replay 0 0 1 1 0 1 0 1
"""


def mmrace_cli(*args):
    return subprocess.run([sys.executable, "-m", "mmrace", *args], capture_output=True,
                          text=True, timeout=120)


def golden(name: str, text: str) -> None:
    """Compare with GOLDEN/name; MMRACE_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("MMRACE_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; MMRACE_UPDATE_GOLDEN=1 rewrites it"


# ---------------------------------------------------------------------------------------
# Text views

@pytest.mark.parametrize("view", ["text", "text_detailed", "columns"])
def test_the_text_views_of_a_small_run_are_pinned(view):
    res = mmrace.run(SMALL)
    if view == "columns":
        out = trace.to_columns(res)
    else:
        out = trace.to_text(res, detailed=view == "text_detailed")
    golden(f"trace_small_{view}.txt", out)


def test_the_short_text_keeps_every_op_and_lock_step_and_the_detailed_every_record():
    res = mmrace.run(SMALL)
    short = trace.to_text(res).splitlines()
    detailed = trace.to_text(res, detailed=True).splitlines()
    assert len(detailed) - len(short) == sum(1 for r in res.trace if r[3] in trace.DETAIL_ONLY)
    assert sum("op_begin" in line for line in short) == len(res.ops)
    assert any("mmap_lock" in line for line in short)


def test_locks_held_follow_the_lock_records():
    res = mmrace.run(SMALL)
    for s in trace.steps(res):
        if s.event == "lock_acquired":
            assert s.what in s.locks, s
    last = {}
    for s in trace.steps(res):
        last[s.thread] = s
    assert all(s.locks == () for s in last.values())  # every thread ends holding nothing


def test_columns_mark_a_switch_where_a_thread_is_preempted():
    res = mmrace.run(SMALL)
    lines = trace.to_columns(res).splitlines()
    assert any("| switch" in line for line in lines)
    header = next(line for line in lines if line.startswith("| P0.T0"))
    assert "P0.T1" in header


def test_every_lock_in_the_examples_traces_has_its_name():
    names = _core.lock_names()
    for path in PROGRAMS:
        res = mmrace.run(path.read_text())
        for _step, _who, site, event, arg in res.trace:
            if event in ("lock_acquired", "lock_release") and not site.startswith("folio_"):
                assert arg in names, f"{path.name}: {site} {event} {arg:#x} has no name"


# ---------------------------------------------------------------------------------------
# Perfetto

def check_perfetto(doc: dict, res) -> None:
    """What Perfetto's JSON importer needs, and what the view promises."""
    doc = json.loads(json.dumps(doc))
    assert isinstance(doc["traceEvents"], list) and doc["displayTimeUnit"] in ("ms", "ns")
    events = doc["traceEvents"]
    for e in events:
        assert e["ph"] in ("M", "X", "i", "B", "E"), e
        assert isinstance(e["pid"], int) and isinstance(e.get("tid", 0), int), e
        if e["ph"] != "M":
            assert isinstance(e["ts"], int) and e["ts"] >= 0 and e["name"], e
        if e["ph"] == "X":
            assert e["dur"] >= 0, e
    tracks = defaultdict(list)
    for e in events:
        if e["ph"] != "M":
            tracks[(e["pid"], e["tid"])].append(e)
    for track, evs in tracks.items():
        ts = [e["ts"] for e in evs]
        assert ts == sorted(ts), f"ts goes back on {track}"
        opened = defaultdict(int)
        stack = []  # X slices enclosing the current one
        for e in evs:
            if e["ph"] in ("B", "E"):
                opened[e["name"]] += 1 if e["ph"] == "B" else -1
                assert opened[e["name"]] >= 0, f"E without B on {track}"
            if e["ph"] != "X":
                continue
            end = e["ts"] + e["dur"]
            while stack and (stack[-1] < e["ts"] or (stack[-1] == e["ts"] and end > stack[-1])):
                stack.pop()
            assert not stack or end <= stack[-1], f"{e['name']} crosses its parent on {track}"
            stack.append(end)
        assert not any(opened.values()), f"a B without its E on {track}"
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "thread_name"}
    op_slices = [e for e in events if e.get("cat") == "op"]
    began = [(who, arg) for _s, who, _site, ev, arg in res.trace if ev == "op_begin"]
    assert sorted((e["args"]["thread"], e["args"]["index"]) for e in op_slices) == sorted(began)
    for e in op_slices:  # on its thread's own track
        assert names[(e["pid"], e["tid"])].startswith(e["args"]["thread"])
    fails = [e for e in events if e["ph"] == "i" and e.get("cat") == "failure"]
    if res.ok:
        assert fails == []
    else:
        assert len(fails) == 1
        assert fails[0]["args"] == {"verdict": res.verdict, "check": res.check,
                                    "message": res.message}


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_perfetto_json_is_valid_for_every_example_and_mutant_reproducer(path):
    res = mmrace.run(path.read_text())
    doc = res.to_perfetto()
    check_perfetto(doc, res)
    assert json.dumps(doc) == json.dumps(mmrace.run(path.read_text()).to_perfetto())  # deterministic


def test_perfetto_nests_locks_and_faults_inside_ops_and_names_the_tracks():
    res = mmrace.run(SMALL)
    doc = res.to_perfetto()
    events = doc["traceEvents"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"P0.T0", "P0.T1"} <= names
    cats = {e.get("cat") for e in events if e["ph"] == "X"}
    assert {"op", "lock", "fault"} <= cats
    ops = [e for e in events if e.get("cat") in ("op", "exit")]
    for e in events:
        if e.get("cat") in ("lock", "fault") and e["pid"] == trace.PID_THREADS:
            assert any(o["tid"] == e["tid"] and o["ts"] <= e["ts"] and
                       e["ts"] + e["dur"] <= o["ts"] + o["dur"] for o in ops), e


def test_the_events_have_their_own_track():
    res = mmrace.run((EXAMPLES / "mutants" / "khugepaged_retract_no_ipi.mmr").read_text())
    events = res.to_perfetto()["traceEvents"]
    ev = [e for e in events if e["ph"] == "i" and e.get("cat") == "event"]
    kinds = {r[3] for r in res.trace if r[3] in trace.EVENT_KINDS}
    assert len(ev) == sum(1 for r in res.trace if r[3] in trace.EVENT_KINDS)
    assert kinds and all(e["pid"] == trace.PID_EVENTS for e in ev)


# ---------------------------------------------------------------------------------------
# The linearizability history

@pytest.mark.parametrize("mutant", ["dirty_cow", "pervma_fork_no_vma_write_lock"])
def test_a_linearizability_failure_shows_its_history_with_the_ops_that_do_not_fit(mutant):
    res = mmrace.run((EXAMPLES / "mutants" / f"{mutant}.mmr").read_text())
    assert res.check == "linearizability"
    h = res.lin_history
    assert h["pages"] in res.message
    marks = [o["mark"] for o in h["ops"]]
    assert "stuck" in marks and h["linearized"] == marks.count("linearized")
    events = res.to_perfetto()["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "process_name"}
    assert procs[trace.PID_LIN] == f"linearizability: pages {h['pages']}"
    lin = [e for e in events if e["pid"] == trace.PID_LIN and e["ph"] == "X"]
    assert len(lin) == len(h["ops"])
    assert any(e["args"]["mark"] == "stuck" and e["cname"] == "terrible" for e in lin)
    for e in lin:  # [invocation, response] on its thread's track, as steps of the run
        begin = next(s for s, who, _site, ev, arg in res.trace
                     if ev == "op_begin" and (who, arg) == (e["args"]["thread"], e["args"]["index"]))
        assert e["ts"] == begin
    text = res.to_trace_text()
    assert "linearizability history of" in text and "stuck" in text


def test_no_history_without_a_linearizability_failure():
    for path in (EXAMPLES / "fork_cow.mmr", EXAMPLES / "mutants" / "spf_no_pmd_recheck.mmr"):
        res = mmrace.run(path.read_text())
        assert res.check != "linearizability" and res.lin_history is None
        assert not any(e["pid"] == trace.PID_LIN for e in res.to_perfetto()["traceEvents"])


# ---------------------------------------------------------------------------------------
# The command

def test_trace_command_writes_perfetto_to_out(tmp_path):
    out = tmp_path / "t.json"
    p = mmrace_cli("trace", str(EXAMPLES / "mutants" / "dirty_cow.mmr"), "--format", "perfetto",
                   "--out", str(out))
    assert p.returncode == 1 and p.stdout == "", p.stderr  # a bug found
    res = mmrace.run((EXAMPLES / "mutants" / "dirty_cow.mmr").read_text())
    assert json.loads(out.read_text()) == json.loads(json.dumps(trace.to_perfetto(
        res, str(EXAMPLES / "mutants" / "dirty_cow.mmr"))))


def test_trace_command_prints_text_and_follows_schedule():
    path = str(EXAMPLES / "fork_cow.mmr")
    p = mmrace_cli("trace", path)
    assert p.returncode == 0 and p.stdout.startswith(f"{path}: verdict ok"), p.stderr
    q = mmrace_cli("trace", path, "--schedule", "replay 1 1 1 1", "--format", "columns")
    res = mmrace.run(open(path).read(), schedule="replay 1 1 1 1")
    assert q.returncode == 0 and q.stdout == f"{path}: " + trace.to_columns(res)


@pytest.mark.parametrize("args, says", [
    (["no/such/file.mmr"], "no/such/file.mmr"),
    (["{ex}", "--schedule", "replay x"], "--schedule:1:"),
    (["{ex}", "--format", "svg"], "invalid choice: 'svg'"),
    (["{ex}", "--budget", "0"], "budget"),
])
def test_trace_command_bad_input_exits_2_with_one_clear_line(args, says):
    args = [a.replace("{ex}", str(EXAMPLES / "fork_cow.mmr")) for a in args]
    p = mmrace_cli("trace", *args)
    assert p.returncode == 2 and p.stdout == ""
    assert says in p.stderr and "Traceback" not in p.stderr, p.stderr


@pytest.mark.parametrize("mutant, cat", [("pervma_fork_no_vma_write_lock", "rcu"),
                                         ("khugepaged_retract_no_ipi", "irq")])
def test_rcu_read_sections_and_irq_off_sections_are_slices(mutant, cat):
    res = mmrace.run((EXAMPLES / "mutants" / f"{mutant}.mmr").read_text())
    begin, end = {"rcu": ("rcu_read_lock", "rcu_read_unlock"), "irq": ("irq_disable", "irq_enable")}[cat]
    slices = [e for e in res.to_perfetto()["traceEvents"] if e.get("cat") == cat]
    assert slices
    for e in slices:  # each from an outermost begin to its end, on the same thread
        thread = [r for r in res.trace if r[0] == e["ts"] and r[3] == begin]
        assert thread, e
        last = max(r[0] for r in res.trace if r[1] == thread[0][1])
        closed = any(r[0] == e["ts"] + e["dur"] and r[3] == end and r[1] == thread[0][1]
                     for r in res.trace)
        assert closed or (not res.ok and e["ts"] + e["dur"] == last), e  # open at the failure
