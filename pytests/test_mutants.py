"""The mutants of DESIGN §8 that are built: each reproducer in examples/mutants/ fails
with its mutant on and names the check the catalogue expects, and the same program and
schedule pass on the correct model."""
import os

import pytest

import mmrace
from mmrace import _core

HERE = os.path.dirname(__file__)
REPRO = os.path.join(HERE, "..", "examples", "mutants")

CATALOGUE = {m["name"]: m for m in _core.mutant_catalogue()}
VERDICT_OF = {c["name"]: c["verdict"] for c in _core.checks()}
BUILT = sorted(name for name, m in CATALOGUE.items() if m["built"])


def load(name: str) -> str:
    with open(os.path.join(REPRO, name + ".mmr"), encoding="utf-8") as f:
        return f.read()


def test_every_built_mutant_has_a_reproducer():
    files = sorted(f[:-4] for f in os.listdir(REPRO) if f.endswith(".mmr"))
    assert files == BUILT


def test_the_catalogue_names_checks_of_the_registry():
    assert {m["check"] for m in CATALOGUE.values()} <= set(VERDICT_OF)


@pytest.mark.parametrize("mutant", BUILT)
def test_reproducer_fails_with_the_mutant_and_passes_without(mutant):
    prog = mmrace.parse(load(mutant))
    assert f"mutants={mutant}" in prog.to_mmr()
    bad = mmrace.run(prog)
    expected = CATALOGUE[mutant]["check"]
    assert (bad.verdict, bad.check) == (VERDICT_OF[expected], expected), bad.message
    good = mmrace.run(prog.with_config(mutants=None))
    assert good.verdict == "ok", good.message
