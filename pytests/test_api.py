"""The Python API over a run: the reproducer replays every verdict on its own, verdicts
raise typed exceptions that carry it, and Programs change through with_config and
with_schedule (immutable), never by editing .mmr text."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import mmrace
from mmrace import _core

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CATALOGUE = {m["name"]: m for m in _core.mutant_catalogue()}

# A userfault no handler serves: the program's own deadlock.
DEADLOCK = """mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  read 0x100000
"""


def fork_cow() -> mmrace.Program:
    return mmrace.parse_file(EXAMPLES / "fork_cow.mmr")


def mutant(name: str) -> mmrace.Program:
    return mmrace.parse_file(EXAMPLES / "mutants" / f"{name}.mmr")


# (what, a function making the result); every verdict, and every check class a mutant
# of examples/mutants/ reaches.
RUNS = [
    ("ok", lambda: mmrace.run(fork_cow(), schedule=mmrace.Random(3))),
    ("deadlock", lambda: mmrace.run(DEADLOCK)),
    ("budget", lambda: mmrace.run(fork_cow(), budget=10)),
    ("budget under pct", lambda: mmrace.run(fork_cow(), budget=25, schedule=mmrace.PCT(4, 2))),
] + [(name, lambda name=name: mmrace.run(mutant(name)))
     for name in sorted(n for n, m in CATALOGUE.items() if m["built"])]


@pytest.mark.parametrize("what,make", RUNS, ids=[r[0] for r in RUNS])
def test_the_reproducer_alone_replays_every_verdict(what, make):
    res = make()
    again = mmrace.run(mmrace.parse(res.reproducer))
    assert (again.verdict, again.check, again.step, again.trace_hash) == \
        (res.verdict, res.check, res.step, res.trace_hash), res.reproducer
    assert again.reproducer == res.reproducer
    assert res.to_json()["program"] == res.reproducer  # the JSON's `program` is it


def test_the_runs_reach_every_verdict_and_the_mutants_checks():
    results = {what: make() for what, make in RUNS}
    assert {r.verdict for r in results.values()} == {"ok", "violation", "deadlock",
                                                     "lock_order", "budget"}
    checks = {results[n].check for n in CATALOGUE if n in results}
    assert {"use_after_free", "invariant", "pgtable", "linearizability", "uffd_event_order",
            "lockdep"} <= checks


def test_a_budget_that_is_not_the_default_is_in_the_reproducer():
    res = mmrace.run(fork_cow(), budget=10)
    assert res.budget == 10 and " budget=10" in res.reproducer.splitlines()[1]
    assert "budget=" not in mmrace.run(fork_cow()).reproducer
    # The program's own budget is the run's unless run() overrides it.
    small = fork_cow().with_config(budget=10)
    assert mmrace.run(small).verdict == "budget"
    assert mmrace.run(small, budget=mmrace.api.DEFAULT_BUDGET).verdict == "ok"


# --- exceptions -------------------------------------------------------------------------

EXCEPTIONS = [
    ("violation", lambda: mmrace.run(mutant("dirty_cow")), mmrace.Violation),
    ("lock_order", lambda: mmrace.run(mutant("khugepaged_hotplug_lock_order")), mmrace.LockOrder),
    ("deadlock", lambda: mmrace.run(DEADLOCK), mmrace.Deadlock),
    ("budget", lambda: mmrace.run(fork_cow(), budget=10), mmrace.BudgetExceeded),
]


@pytest.mark.parametrize("verdict,make,cls", EXCEPTIONS, ids=[e[0] for e in EXCEPTIONS])
def test_raise_for_verdict_raises_the_verdicts_class_with_the_reproducer(verdict, make, cls):
    res = make()
    assert res.verdict == verdict
    with pytest.raises(cls) as e:
        res.raise_for_verdict()
    err = e.value
    assert isinstance(err, mmrace.VerdictError) and isinstance(err, mmrace.MmraceError)
    assert err.result is res and err.reproducer == res.reproducer and err.check == res.check
    assert f"verdict {verdict} ({res.check})" in str(err) and res.reproducer in str(err)
    # Only its own class: a Deadlock is not a Violation.
    others = {c for _, _, c in EXCEPTIONS} - {cls}
    assert not any(isinstance(err, o) for o in others)


def test_raise_for_verdict_returns_for_ok():
    assert mmrace.run(fork_cow()).raise_for_verdict() is None


def test_model_error_is_an_mmrace_error_and_a_runtime_error():
    assert issubclass(mmrace.ModelError, mmrace.MmraceError)
    assert issubclass(mmrace.ModelError, RuntimeError)
    assert not issubclass(mmrace.ModelError, mmrace.VerdictError)


# --- Program.with_config, with_schedule --------------------------------------------------


def test_with_config_returns_a_new_program_and_leaves_the_old_one():
    p = fork_cow()
    before = p.to_mmr()
    q = p.with_config(strategy="spf", folios=64, swap_slots=0)
    assert p.to_mmr() == before
    assert q.to_mmr().splitlines()[1] == "config strategy=spf geometry=small folios=64 swap_slots=0"
    assert q.pool_limits == {"folios": 64, "swap_slots": 0}
    assert q.with_config(folios=None, swap_slots=None, strategy=None) == p  # defaults again


def test_with_config_sets_and_clears_mutants():
    p = mutant("dirty_cow")
    assert mmrace.run(p).verdict == "violation"
    clean = p.with_config(mutants=[])
    assert "mutants=" not in clean.to_mmr()
    assert mmrace.run(clean).verdict == "ok"
    assert clean.with_config(mutants=["dirty_cow"]) == p
    assert p.with_config(strategy="pervma", vma_lock=("swapin", "file")).to_mmr().splitlines()[1] \
        .endswith("vma_lock=swapin,file mutants=dirty_cow")


@pytest.mark.parametrize("changes,message", [
    ({"strategy": "spff"}, "with_config: unknown strategy 'spff'"),
    ({"mutants": ["dirty_co"]}, "with_config: unknown mutant 'dirty_co'"),
    ({"folios": 0}, "with_config: folios must be at least 1"),
    ({"colour": "red"}, "with_config: unknown config key 'colour'"),
    ({"budget": 0}, "with_config: budget must be at least 1 step"),
])
def test_with_config_rejects_bad_values_naming_them(changes, message):
    with pytest.raises(ValueError) as e:
        fork_cow().with_config(**changes)
    assert str(e.value).startswith(message), str(e.value)


def test_with_config_rejects_values_of_the_wrong_type():
    with pytest.raises(TypeError, match="folios"):
        fork_cow().with_config(folios=True)
    with pytest.raises(TypeError, match="strategy"):
        fork_cow().with_config(strategy=1.5)


def test_with_schedule_takes_what_run_takes():
    p = fork_cow()
    res = mmrace.run(p, schedule=mmrace.PCT(2, 3))
    for sched in (res.schedule, mmrace.PCT(2, 3), "pct seed=2 depth=3"):
        q = p.with_schedule(sched)
        assert mmrace.run(q).trace_hash == res.trace_hash
    assert p.with_schedule([0, 1, 1]).to_mmr().endswith("schedule replay 0 1 1\n")
    assert p.with_schedule([0, 1]).with_schedule(None) == p.with_schedule(None)
    assert "schedule" not in p.with_schedule(None).to_mmr()
    with pytest.raises(ValueError, match="unknown schedule policy 'nope'"):
        p.with_schedule("nope 1")


def test_op_results_are_typed():
    res = mmrace.run(fork_cow())
    op = res.ops[0]
    assert isinstance(op, mmrace.OpResult)
    assert (op.thread, op.index, op.op.split()[0], op.result) == ("P0.T0", 0, "mmap", "0x200000")
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.result = "x"
    assert res.to_json()["ops"][0] == {"thread": "P0.T0", "index": 0, "op": op.op,
                                       "result": "0x200000"}
