"""Reproducers of past model faults (pytests/regressions/*.mmr): each file's first comment
says what it was.  With its mutant each fails the check named below, not with a model
error; without it, it runs ok: the mutant's damage is what the check sees."""
from pathlib import Path

import pytest

import mmrace

HERE = Path(__file__).parent / "regressions"
CHECKS = {
    "khugepaged_stale_vma_protnone_pmd.mmr": "invariant",
    "khugepaged_stale_vma_detached.mmr": "use_after_free",
}


def test_every_regression_file_has_its_check():
    assert sorted(p.name for p in HERE.glob("*.mmr")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_regression_fails_its_check_with_the_mutant_and_passes_without(name):
    prog = mmrace.parse((HERE / name).read_text())
    res = mmrace.run(prog, trace=False)
    assert (res.verdict, res.check) == ("violation", CHECKS[name]), res.message
    assert mmrace.run(prog.with_config(mutants=None), trace=False).ok
