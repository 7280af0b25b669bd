"""`mmrace hunt`, `mmrace mutants`, `mmrace bench` and mmrace.testing.explore: the same
finding whatever --jobs is, reproducers on disk, bad input, Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import mmrace
from mmrace import _core, findings
from mmrace.testing import explore
from mmrace.workload import FEATURES
from races import SPF_MPROTECT_RACE

RACE = SPF_MPROTECT_RACE
BUGGY = RACE.format(mutants=" mutants=spf_no_seqcount_check")
# A mutant the generated workloads reach in a few hundred seeds, past the first chunk
# (seed 507 of seed 0), so that --jobs 2 finds it while an earlier chunk still runs.
MUTANT = "khugepaged_no_revalidate"


def hunt(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "mmrace", "hunt", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def test_explore_reports_the_lowest_failing_seed_whatever_the_jobs():
    one = explore(BUGGY, policy="mixed", runs=4000, jobs=1, seed=5)
    two = explore(BUGGY, policy="mixed", runs=4000, jobs=2, seed=5)
    assert one.stopped == two.stopped == "failure"
    assert one.findings == two.findings and len(one.findings) == 1
    assert (one.runs, one.verdicts) == (two.runs, two.verdicts)
    f = one.findings[0]
    assert mmrace.run(f.program).check == f.check == "invariant"


def test_explore_counts_every_run_of_a_correct_program():
    r = explore(RACE.format(mutants=""), policy="pct", runs=600, jobs=2)
    assert (r.runs, r.verdicts, r.findings, r.stopped) == (600, {"ok": 600}, [], "done")
    assert r.runs_per_s > 0 and r.lin_gave_up == 0


def test_explore_keeps_going_and_stops_on_time():
    r = explore(BUGGY, runs=600, jobs=2, stop_at_first_failure=False)
    assert r.runs == 600 and len(r.findings) == r.verdicts["violation"] > 1
    t = explore(RACE.format(mutants=""), seconds=1.0, jobs=2)
    assert t.stopped == "time" and t.runs > 0 and 0.9 < t.seconds < 10


@pytest.mark.parametrize("kwargs, message", [
    ({}, "give a program or workload="),
    ({"program": RACE, "policy": "dfs"}, "policy='dfs'"),
    ({"program": RACE, "runs": 0}, "runs=0"),
    ({"program": RACE, "seconds": -1}, "seconds=-1"),
    ({"program": RACE, "jobs": 0}, "jobs=0"),
    ({"program": "process\n"}, "<program>:1:"),
])
def test_explore_names_a_bad_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        explore(**kwargs)


def test_a_finding_is_saved_once_and_never_over_another_file(tmp_path):
    a = findings.save(tmp_path, "invariant", "violation", "text a\n")
    assert a.name.startswith("invariant-") and a.read_text() == "text a\n"
    assert findings.save(tmp_path, "invariant", "violation", "text a\n") == a
    a.write_text("another job's file\n")  # the same name, other text: a new name
    b = findings.save(tmp_path, "invariant", "violation", "text a\n")
    assert b != a and b.read_text() == "text a\n" and a.read_text() == "another job's file\n"


def test_hunt_on_generated_workloads_finds_the_same_bug_whatever_the_jobs(tmp_path):
    outs = []
    for jobs in ("1", "2"):
        p = hunt("--mutant", MUTANT, "--runs", "3000", "--jobs", jobs, "--json",
                 "--out", str(tmp_path / jobs))
        assert p.returncode == 1, p.stderr
        outs.append(json.loads(p.stdout))
    one, two = outs
    assert one["found"] and one["check"] == two["check"] and one["strategy"] == "classic"
    assert one["findings"][0]["seed"] == two["findings"][0]["seed"]
    assert one["runs"] == two["runs"] and one["lin_gave_up"] == two["lin_gave_up"] == 0
    saved = open(one["reproducer"]).read()
    assert saved == open(two["reproducer"]).read()
    res = mmrace.run(saved)  # the saved file replays the finding: with its mutant only
    assert res.check == one["check"]
    assert mmrace.run(mmrace.parse(saved).with_config(mutants=None)).ok


def test_hunt_on_a_file_prints_the_path_and_the_replay_command(tmp_path):
    f = tmp_path / "race.mmr"
    f.write_text(BUGGY)
    p = hunt(str(f), "--runs", "2000", "--jobs", "1", "--out", str(tmp_path / "out"))
    assert p.returncode == 1, p.stderr
    (saved,) = (tmp_path / "out").iterdir()
    assert saved.name.startswith("invariant-") and saved.suffix == ".mmr"
    assert f"replay: mmrace run {tmp_path / 'out' / saved.name}" in p.stdout
    assert "linearizability groups given up (not checked): 0" in p.stdout
    ok = tmp_path / "ok.mmr"
    ok.write_text(RACE.format(mutants=""))
    p = hunt(str(ok), "--runs", "300", "--json", "--out", str(tmp_path / "none"))
    out = json.loads(p.stdout)
    assert p.returncode == 0 and not out["found"] and out["runs"] == 300
    assert out["reproducer"] is None and not (tmp_path / "none").exists()


def _bad_inputs(tmp_path):
    bad_schedule = tmp_path / "bad_schedule.mmr"
    bad_schedule.write_text(RACE.format(mutants="") + "schedule replay 0 x\n")
    return [
        ([str(tmp_path / "missing.mmr")], "missing.mmr: No such file or directory"),
        ([str(bad_schedule)], "bad_schedule.mmr:14:19: expected a number"),
        (["--mutant", "no_such_bug"], "--mutant no_such_bug: unknown mutant"),
        (["--mutant", "dirtycow"], "unknown mutant (did you mean dirty_cow?"),
        (["--strategy", "lockless"], "argument --strategy: invalid choice: 'lockless'"),
        (["--budget", "0"], "argument --budget: expected a positive number of seconds, got '0'"),
        (["--runs", "-1"], "argument --runs: expected a positive number of runs, got '-1'"),
        (["--jobs", "0"], "argument --jobs: expected a positive number of processes"),
        (["--mutant", "pervma_fork_no_vma_write_lock", "--strategy", "classic"], "not classic"),
        (["--vma-lock", "swapin"], "vma_lock=swapin is for strategy pervma, not classic"),
        (["--strategy", "pervma", "--vma-lock", "swapin,anon"], "anon"),
        (["--features", "fork,countres"], "unknown feature 'countres' (did you mean counters?)"),
        (["--features", ","], "--features: expected a comma-separated list"),
    ]


@pytest.mark.parametrize("args, features", [
    (["--mutant", "pervma_fork_no_vma_write_lock"], ["fork", "counters"]),  # its aim
    (["--mutant", "pervma_fork_no_vma_write_lock", "--features", "all"], list(FEATURES)),
    (["--mutant", "gup_pin_no_early_cow"], list(FEATURES)),  # no aim: every feature
    (["--features", "fork,gup"], ["fork", "gup"]),
])
def test_hunt_aims_its_workloads_at_the_features_named(tmp_path, args, features):
    p = hunt(*args, "--runs", "2", "--jobs", "1", "--json", "--out", str(tmp_path))
    assert p.returncode in (0, 1), p.stderr
    assert json.loads(p.stdout)["features"] == features


def test_hunt_bad_input_exits_2_with_a_message_naming_it(tmp_path):
    for args, message in _bad_inputs(tmp_path):
        p = hunt(*args, "--runs" if "--runs" not in args and "--budget" not in args else "--seed",
                 "1", cwd=tmp_path)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert message in p.stderr, (args, p.stderr)
        assert "Traceback" not in p.stderr and p.stdout == ""


def test_bench_bad_seconds_exits_2():
    p = subprocess.run([sys.executable, "-m", "mmrace", "bench", "--seconds", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "expected a positive number of seconds" in p.stderr


def test_ctrl_c_stops_the_hunt_with_its_findings_on_disk(tmp_path):
    out = tmp_path / "found"
    proc = subprocess.Popen([sys.executable, "-m", "mmrace", "hunt", "--budget", "60",
                             "--keep-going", "--mutant", MUTANT, "--jobs", "2", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out.is_dir() and any(out.iterdir())):
        time.sleep(0.1)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - t0 < 10 and "Traceback" not in stderr
    assert "mmrace hunt: interrupted:" in stdout and "verdicts: ok" in stdout
    saved = sorted(out.iterdir())
    assert saved and all(str(p) in stdout for p in saved)
    for p in saved:
        assert not mmrace.run(p.read_text()).ok


def test_mutants_lists_the_catalogue_with_the_shipped_reproducers():
    p = subprocess.run([sys.executable, "-m", "mmrace", "mutants", "--json"],
                       capture_output=True, text=True, timeout=60)
    rows = json.loads(p.stdout)
    assert p.returncode == 0 and [r["name"] for r in rows] == _core.mutant_names()
    for r in rows:
        assert {"reference", "origin", "seed", "strategies", "check", "built"} <= set(r)
        if r["built"]:
            assert r["reproducer"].endswith(f"{r['name']}.mmr"), r["name"]
            res = mmrace.run(r["text"])
            assert res.check == r["check"] or res.verdict == "lock_order", r["name"]
    dirty = next(r for r in rows if r["name"] == "dirty_cow")
    assert dirty["seed"] == 122 and dirty["origin"] == []
    human = subprocess.run([sys.executable, "-m", "mmrace", "mutants"], capture_output=True,
                           text=True, timeout=60).stdout
    assert "dirty_cow: built; CVE-2016-5195" in human and "schedule random seed=122" in human


def test_bench_reports_rates_and_peak_rss():
    p = subprocess.run([sys.executable, "-m", "mmrace", "bench", "--seconds", "1", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["executions_per_s"] > 0 and out["steps_per_s"] > out["executions_per_s"]
    assert 10 < out["peak_rss_mib"] < 4096


def test_keep_going_saves_one_reproducer_per_signature(tmp_path):
    f = tmp_path / "race.mmr"
    f.write_text(BUGGY)
    p = hunt(str(f), "--runs", "1500", "--jobs", "2", "--keep-going", "--out", str(tmp_path / "o"))
    assert p.returncode == 1, p.stderr
    (saved,) = (tmp_path / "o").iterdir()  # every failure of this program is one bug
    assert f"invariant: {saved} (+" in p.stdout and "more of this signature)" in p.stdout


def test_a_program_keeps_its_own_step_budget():
    tight = BUGGY.replace("config strategy=spf", "config strategy=spf budget=5")
    r = explore(tight, runs=50, jobs=1, stop_at_first_failure=False)
    assert r.verdicts == {"budget": 50}
    assert explore(tight, runs=50, jobs=1, budget=1000).verdicts.get("budget") is None
