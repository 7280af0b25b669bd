"""The `mmrace` command: JSON shape, exit codes, errors, Ctrl-C."""
import _thread
import json
import os
import random
import signal
import subprocess
import sys
import threading

import pytest

import mmrace


def mmrace_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mmrace", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def test_run_json_on_the_design_example(examples):
    p = mmrace_cli("run", str(examples / "design_example.mmr"), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"verdict", "check", "message", "step", "ops", "counters", "trace_hash",
                        "schedule", "budget", "user_wait", "program"}
    assert out["verdict"] == "ok" and out["check"] is None and out["user_wait"] is False
    assert [o["thread"] for o in out["ops"]] == ["P0.T0"] * 3 + ["P0.T1", "P1.T0"]
    assert out["ops"][0] == {"thread": "P0.T0", "index": 0,
                             "op": "mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed",
                             "result": "0x100000"}
    assert len(out["trace_hash"]) == 16
    again = json.loads(mmrace_cli("run", str(examples / "design_example.mmr"), "--json").stdout)
    assert again["trace_hash"] == out["trace_hash"]
    other = mmrace_cli("run", str(examples / "design_example.mmr"), "--json",
                       "--schedule", "replay 1 1 1 1 1 1")
    assert json.loads(other.stdout)["trace_hash"] != out["trace_hash"]


def test_human_output(examples):
    p = mmrace_cli("run", str(examples / "fork_cow.mmr"))
    assert p.returncode == 0
    assert "verdict ok" in p.stdout and "trace_hash" in p.stdout


def test_violation_verdict_exits_1(tmp_path):
    f = tmp_path / "budget.mmr"
    f.write_text("mmrace 1\nprocess P0\nthread P0.T0\n  mmap 0x100000 pages=1 prot=rw "
                 "flags=private,anon,fixed\n  write 0x100000 1\n")
    p = mmrace_cli("run", str(f), "--json", "--budget", "2")
    assert p.returncode == 1
    assert json.loads(p.stdout)["verdict"] == "budget"


MALFORMED = [
    ("mmrace 1\nprocess P0\nthread P0.T0\n  mmapp 0x1000 pages=1\n", 4, 3, "unknown op"),
    ("mmrace 1\nprocess P0\nthread P0.T0\n  write 0x100000 7x\n", 4, 18, "number"),
    ("mmrace 1\nprocess P0\nthread P0.T0\n  read 0x100004\n", 4, 8, "aligned"),
    ("mmrace 1\nprocess P0\nthread P9.T0\n  read 0x100000\n", 3, 8, "P9"),
    ("mmrace 1\nprocess P0\nthread P0.T0\nthread P0.T0\n", 4, 8, "duplicate"),
]


@pytest.mark.parametrize("text,line,col,words", MALFORMED)
def test_malformed_files_exit_2_with_position(tmp_path, text, line, col, words):
    f = tmp_path / "bad.mmr"
    f.write_text(text)
    p = mmrace_cli("run", str(f), "--json")
    assert p.returncode == 2
    assert f"{f}:{line}:" in p.stderr, p.stderr
    assert words in p.stderr, p.stderr
    with pytest.raises(ValueError, match=f"^<string>:{line}:"):
        mmrace.parse(text)


def test_random_bytes_exit_2(tmp_path):
    rng = random.Random(1)
    for i in range(20):
        f = tmp_path / f"junk{i}.mmr"
        f.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
        p = mmrace_cli("run", str(f))
        assert p.returncode == 2, (f.read_bytes(), p.stdout, p.stderr)
        assert str(f) + ":" in p.stderr


def test_missing_file_exits_2_and_an_unbuilt_mutant_exits_4(tmp_path):
    assert mmrace_cli("run", str(tmp_path / "nope.mmr")).returncode == 2
    f = tmp_path / "unbuilt.mmr"
    f.write_text("mmrace 1\nconfig mutants=stackrot\nprocess P0\nthread P0.T0\n  read 0x100000\n")
    p = mmrace_cli("run", str(f))
    assert p.returncode == 4 and "stackrot" in p.stderr and "not built" in p.stderr


def long_program(threads=4, ops=20000):
    lines = ["mmrace 1", "process P0"]
    for t in range(threads):
        lines.append(f"thread P0.T{t}")
        if t == 0:
            lines.append("  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed")
        lines += [f"  write 0x{0x100000 + 8 * (i % 512):x} {i}" for i in range(ops)]
    return "\n".join(lines) + "\n"


def test_ctrl_c_stops_a_long_run_with_keyboardinterrupt():
    prog = mmrace.parse(long_program())
    # Python's own SIGINT handler, whatever this process inherited: a job started in the
    # background by a non-interactive shell ignores SIGINT, and interrupt_main then
    # does nothing.
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.05, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in range(50):  # far longer than the timer
                mmrace.run(prog, schedule=mmrace.Random(1), budget=10**9, trace=False)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)


# A sysfs write that faults on a registered range nobody serves hangs; cpu_hotplug then
# waits for the s_active the write holds.  Linux hangs the same way: the run says so.
OWN_HANG = """mmrace 1
process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  uffd_register 0x200000 pages=1 mode=missing
  sysfs_write 0x200000
kthread cpuhp
  cpu_hotplug
schedule random seed=7
"""


def test_run_says_when_a_deadlock_is_the_programs_own(tmp_path):
    (tmp_path / "hang.mmr").write_text(OWN_HANG)
    p = mmrace_cli("run", str(tmp_path / "hang.mmr"))
    assert p.returncode == 1
    assert "cpuhp on s_active" in p.stdout and "the program's own hang" in p.stdout
    j = json.loads(mmrace_cli("run", str(tmp_path / "hang.mmr"), "--json").stdout)
    assert (j["verdict"], j["user_wait"]) == ("deadlock", True)
    # the same hang with a handler that serves the fault is no hang at all
    served = OWN_HANG.replace("kthread cpuhp", "thread P0.T1\n  uffd_serve 1 value=7\nkthread cpuhp")
    (tmp_path / "served.mmr").write_text(served)
    assert mmrace_cli("run", str(tmp_path / "served.mmr")).returncode == 0
