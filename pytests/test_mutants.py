"""The mutants of DESIGN §8 that are built: each reproducer in examples/mutants/ fails
with its mutant on and names the expected check, and the same program and schedule
pass on the correct model."""
import os
import re

import pytest

import mmrace
from mmrace.strategies import MUTANTS

HERE = os.path.dirname(__file__)
REPRO = os.path.join(HERE, "..", "examples", "mutants")

# mutant -> the check that must catch it (the catalogue's uaf/semantic/invariant, named
# as the run reports it).
EXPECTED = {
    "khugepaged_hotplug_lock_order": "lockdep",
    "spf_no_seqcount_check": "invariant",
    "pervma_fork_no_vma_write_lock": "linearizability",
    "khugepaged_no_revalidate": "use_after_free",
    "khugepaged_retract_no_ipi": "use_after_free",
    "spf_no_pmd_recheck": "pgtable",
    "uffd_copy_ignores_mmap_changing": "uffd_event_order",
    "gup_pin_no_early_cow": "invariant",
    "fork_shares_pinned_page": "invariant",
    "gup_vmas_after_retry": "use_after_free",
    "dirty_cow": "linearizability",
}


def load(name: str) -> str:
    with open(os.path.join(REPRO, name + ".mmr"), encoding="utf-8") as f:
        return f.read()


def test_every_reproducer_is_listed():
    files = sorted(f[:-4] for f in os.listdir(REPRO) if f.endswith(".mmr"))
    assert files == sorted(EXPECTED)
    assert set(EXPECTED) <= set(MUTANTS)


@pytest.mark.parametrize("mutant", sorted(EXPECTED))
def test_reproducer_fails_with_the_mutant_and_passes_without(mutant):
    text = load(mutant)
    assert f"mutants={mutant}" in text
    bad = mmrace.run(text)
    assert bad.verdict == ("lock_order" if EXPECTED[mutant] == "lockdep" else "violation"), bad.message
    assert bad.check == EXPECTED[mutant], bad.message
    good = mmrace.run(re.sub(r" mutants=\S+", "", text))
    assert good.verdict == "ok", good.message
