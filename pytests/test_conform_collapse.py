"""`mmrace conform` and MADV_COLLAPSE (issue 5): fixed collapse programs in the model and
on the host kernel, the host runner's probe, and the generator's "thp" feature."""
import functools
import re
import textwrap

import pytest

from mmrace import conform
from mmrace.conform import ARENA_BASE, PMD_PAGES, THP, random_program

RUNNER = conform.find_host_runner()
needs_host = pytest.mark.skipif(RUNNER is None, reason="mmrace-host not found (set MMRACE_HOST)")

PAGE = 4096
PMD = PMD_PAGES * PAGE
Z = ARENA_BASE + THP * PAGE  # the THP zone: 2 MiB aligned


def program(body: str, children: str = "") -> str:
    return ("mmrace 1\nconfig geometry=x86\nprocess P0\nthread P0.T0\n"
            + textwrap.indent(textwrap.dedent(body).strip() + "\n", "  ")
            + textwrap.dedent(children))


@functools.cache
def collapse_unsupported() -> str | None:
    """Why the host cannot run collapse ops as the model does, or None."""
    text = program(f"""
        mmap {Z:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
        write {Z:#x} 1
        madvise {Z:#x} pages={PMD_PAGES} advice=collapse
    """)
    result = conform.run_host(text, RUNNER)[-1]["result"]
    return result.partition(": ")[2] if result.startswith("unsupported") else None


def needs_collapse(f):
    """Skips where mmrace-host is missing or this kernel cannot collapse (Linux < 6.1,
    another THP policy...): the reason is the probe's."""
    @needs_host
    @functools.wraps(f)
    def wrapper(*args, **kw):
        if why := collapse_unsupported():
            pytest.skip(f"the host cannot run MADV_COLLAPSE as the model does: {why}")
        return f(*args, **kw)
    return wrapper


def results(text: str) -> list:
    return [op["result"] for op in conform.run_host(text, RUNNER)]


# Each program: the host results expected of it on Linux >= 6.1 with 2 MiB PMDs, and why.
PROGRAMS = {
    # Content survives a collapse of two PMDs written by PTEs (no VM_HUGEPAGE, so no THP
    # at fault); collapsing a PMD-mapped range again is SCAN_PMD_MAPPED: success.
    "two_pmds": (f"""
        mmap {Z:#x} pages={2 * PMD_PAGES} prot=rw flags=private,anon,fixed
        write {Z + 8:#x} 11
        write {Z + PMD + 100 * PAGE:#x} 12
        madvise {Z:#x} pages={2 * PMD_PAGES} advice=collapse
        read {Z + 8:#x}
        read {Z + PMD + 100 * PAGE:#x}
        read {Z + 7 * PAGE:#x}
        madvise {Z:#x} pages={PMD_PAGES} advice=collapse
        write {Z + 9 * PAGE:#x} 13
        read {Z + 9 * PAGE:#x}
    """, [hex(Z), "ok", "ok", "0", "11", "12", "0", "0", "ok", "13"]),
    # Ranges without a whole PMD: inside one PMD but not from its start (hstart > hend:
    # EINVAL), from a boundary to before the next or across one (hstart == hend: 0);
    # across a boundary onto a whole untouched PMD (SCAN_PMD_NONE: EINVAL).
    "unaligned_ranges": (f"""
        mmap {Z:#x} pages={2 * PMD_PAGES} prot=rw flags=private,anon,fixed
        write {Z:#x} 1
        madvise {Z + 10 * PAGE:#x} pages=3 advice=collapse
        madvise {Z:#x} pages=3 advice=collapse
        madvise {Z + 500 * PAGE:#x} pages=600 advice=collapse
        madvise {Z + 100 * PAGE:#x} pages={PMD_PAGES} advice=collapse
        read {Z:#x}
    """, [hex(Z), "ok", "EINVAL", "0", "EINVAL", "0", "1"]),
    # A VMA holding no aligned PMD range is EINVAL whatever the range (thp_vma_allowable_
    # order's size check); MADV_NOHUGEPAGE forbids collapse; a VMA only read maps the
    # zero page and has no anon_vma (EINVAL); a PMD never touched has no PTE table
    # (SCAN_PMD_NONE: EINVAL), one only read in a VMA with an anon_vma collapses (Linux
    # 6.18 dropped SCAN_PAGE_RO), and so does a write-protected one.
    "refusals": (f"""
        mmap {Z + PAGE:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
        write {Z + PAGE:#x} 1
        madvise {Z + PAGE:#x} pages={PMD_PAGES} advice=collapse
        mmap {Z + 2 * PMD:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
        write {Z + 2 * PMD:#x} 2
        madvise {Z + 2 * PMD:#x} pages={PMD_PAGES} advice=nohugepage
        madvise {Z + 2 * PMD:#x} pages={PMD_PAGES} advice=collapse
        madvise {Z + 2 * PMD:#x} pages={PMD_PAGES} advice=hugepage
        madvise {Z + 2 * PMD:#x} pages={PMD_PAGES} advice=collapse
        mmap {Z + 4 * PMD:#x} pages={2 * PMD_PAGES} prot=rw flags=private,anon,fixed
        read {Z + 4 * PMD:#x}
        madvise {Z + 4 * PMD:#x} pages={PMD_PAGES} advice=collapse
        madvise {Z + 5 * PMD:#x} pages={PMD_PAGES} advice=collapse
        write {Z + 5 * PMD:#x} 3
        madvise {Z + 4 * PMD:#x} pages={PMD_PAGES} advice=collapse
        read {Z + 4 * PMD:#x}
        mprotect {Z + 5 * PMD:#x} pages={PMD_PAGES} prot=r
        madvise {Z + 5 * PMD:#x} pages={PMD_PAGES} advice=collapse
        read {Z + 5 * PMD:#x}
    """, [hex(Z + PAGE), "ok", "EINVAL", hex(Z + 2 * PMD), "ok", "0", "EINVAL", "0", "0",
          hex(Z + 4 * PMD), "0", "EINVAL", "EINVAL", "ok", "0", "0", "0", "0", "3"]),
    # Holes and splits: a collapse over a VMA cut by munmap stops at the first VMA that
    # holds no whole PMD; a read-only part is collapsed too (a writable PTE is enough),
    # and the huge PMD then follows the VMA's protection.
    "munmap_and_mprotect": (f"""
        mmap {Z:#x} pages={2 * PMD_PAGES} prot=rw flags=private,anon,fixed
        write {Z + 5 * PAGE:#x} 3
        write {Z + PMD + 5 * PAGE:#x} 4
        munmap {Z + 100 * PAGE:#x} pages=10
        madvise {Z:#x} pages={2 * PMD_PAGES} advice=collapse
        madvise {Z + PMD:#x} pages={PMD_PAGES} advice=collapse
        mprotect {Z + PMD + 200 * PAGE:#x} pages=20 prot=r
        madvise {Z + PMD:#x} pages={PMD_PAGES} advice=collapse
        mprotect {Z + PMD:#x} pages={PMD_PAGES} prot=r
        write {Z + PMD + 5 * PAGE:#x} 5
        read {Z + PMD + 5 * PAGE:#x}
        madvise {Z + PMD:#x} pages={PMD_PAGES} advice=dontneed
        read {Z + PMD + 5 * PAGE:#x}
        read {Z + 5 * PAGE:#x}
        read {Z + 100 * PAGE:#x}
    """, [hex(Z), "ok", "ok", "0", "EINVAL", "0", "0", "EINVAL", "0", "SIGSEGV", "4", "0",
          "0", "3", "SIGSEGV"]),
    # PROT_NONE: a whole THP made PROT_NONE stays PMD-mapped (change_huge_pmd), so a
    # collapse over it succeeds; FOLL_FORCE reads it; back to rw it reads as before.  A
    # THP split by a partial mprotect(PROT_NONE), then made PROT_NONE whole, and PTEs
    # of a VMA without VM_HUGEPAGE made PROT_NONE, both collapse (Linux does not refuse
    # a VMA without access), and keep their contents.
    "prot_none": (f"""
        mmap {Z:#x} pages={2 * PMD_PAGES} prot=rw flags=private,anon,fixed
        madvise {Z:#x} pages={2 * PMD_PAGES} advice=hugepage
        write {Z + 8:#x} 1
        write {Z + PMD + 8:#x} 2
        mprotect {Z:#x} pages={PMD_PAGES} prot=none
        madvise {Z:#x} pages={PMD_PAGES} advice=collapse
        read {Z + 8:#x}
        peek {Z + 8:#x}
        mprotect {Z:#x} pages={PMD_PAGES} prot=rw
        read {Z + 8:#x}
        mprotect {Z + PMD + PAGE:#x} pages=2 prot=none
        read {Z + PMD + 8:#x}
        read {Z + PMD + PAGE:#x}
        mprotect {Z + PMD:#x} pages={PMD_PAGES} prot=none
        madvise {Z + PMD:#x} pages={PMD_PAGES} advice=collapse
        mprotect {Z + PMD:#x} pages={PMD_PAGES} prot=r
        read {Z + PMD + 8:#x}
        mmap {Z + 2 * PMD:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
        write {Z + 2 * PMD + 3 * PAGE:#x} 3
        mprotect {Z + 2 * PMD:#x} pages={PMD_PAGES} prot=none
        madvise {Z + 2 * PMD:#x} pages={PMD_PAGES} advice=collapse
        mprotect {Z + 2 * PMD:#x} pages={PMD_PAGES} prot=r
        read {Z + 2 * PMD + 3 * PAGE:#x}
    """, [hex(Z), "0", "ok", "ok", "0", "0", "SIGSEGV", "1", "0", "1", "0", "2", "SIGSEGV", "0",
          "0", "0", "2", hex(Z + 2 * PMD), "ok", "0", "0", "0", "3"]),
    # A THP at fault (MADV_HUGEPAGE), fork, and private views: the child sees what the
    # parent wrote before fork, not after; the range the child maps afresh collapses.
    "fork": (f"""
        mmap {Z:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
        madvise {Z:#x} pages={PMD_PAGES} advice=hugepage
        write {Z + 3 * PAGE:#x} 21
        madvise {Z:#x} pages={PMD_PAGES} advice=collapse
        mmap {Z + 2 * PMD:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
        write {Z + 2 * PMD:#x} 22
        madvise {Z + 2 * PMD:#x} pages={PMD_PAGES} advice=collapse
        fork P1
        write {Z + 3 * PAGE:#x} 23
        read {Z + 3 * PAGE:#x}
    """, [hex(Z), "0", "ok", "0", hex(Z + 2 * PMD), "ok", "0", "P1", "ok", "23",
          # P1: one page from a PMD boundary is an empty range (hstart == hend): 0
          "21", "22", hex(Z + 2 * PMD), "ok", "0", "0", "24", "0"]),
    # shmem (MAP_SHARED|MAP_ANONYMOUS): collapse_file with holes; again on the THP (the
    # model split it back on the read: a new collapse, still 0); a range with no page at
    # all (SCAN_TRUNCATED) and one whose pgoff is not PMD-aligned with its address are
    # EINVAL; a read-only populated one collapses; the child of a fork sees the shmem
    # pages and collapses them again.
    "shmem": (f"""
        mmap {Z:#x} pages={PMD_PAGES} prot=rw flags=shared,anon,fixed
        write {Z:#x} 1
        write {Z + 256 * PAGE + 8:#x} 2
        madvise {Z:#x} pages={PMD_PAGES} advice=collapse
        read {Z + 256 * PAGE + 8:#x}
        madvise {Z:#x} pages={PMD_PAGES} advice=collapse
        mmap {Z + PMD:#x} pages={PMD_PAGES} prot=rw flags=shared,anon,fixed
        madvise {Z + PMD:#x} pages={PMD_PAGES} advice=collapse
        mmap {Z + 2 * PMD + PAGE:#x} pages={2 * PMD_PAGES} prot=rw flags=shared,anon,fixed
        write {Z + 2 * PMD + 2 * PAGE:#x} 3
        madvise {Z + 3 * PMD:#x} pages={PMD_PAGES} advice=collapse
        mmap {Z + 5 * PMD:#x} pages={PMD_PAGES} prot=r flags=shared,anon,fixed,populate
        madvise {Z + 5 * PMD:#x} pages={PMD_PAGES} advice=collapse
        fork P1
        read {Z:#x}
    """, [hex(Z), "ok", "ok", "0", "2", "0", hex(Z + PMD), "EINVAL", hex(Z + 2 * PMD + PAGE), "ok",
          "EINVAL", hex(Z + 5 * PMD), "0", "P1", "1",
          "2", "0", "ok", "4"]),
    # Collapses around a fork, where Linux shares the THP (copy_huge_pmd): the parent's
    # collapse of its shared huge PMD is SCAN_PMD_MAPPED (0); a write COWs it (the PMD
    # splits, the folio stays large and PTE-mapped in the parent), and collapsing that
    # copies it into a new THP; the child still reads the old value through the shared
    # huge PMD and collapses it too.  A populated shmem range mapped in both collapses
    # in the parent after the fork (both mappings are unmapped, then retracted).
    "fork_shared_thp": (f"""
        mmap {Z:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
        madvise {Z:#x} pages={PMD_PAGES} advice=hugepage
        write {Z + 5 * PAGE:#x} 31
        mmap {Z + PMD:#x} pages={PMD_PAGES} prot=rw flags=shared,anon,fixed,populate
        write {Z + PMD + 8:#x} 32
        fork P1
        madvise {Z:#x} pages={PMD_PAGES} advice=collapse
        write {Z + 5 * PAGE:#x} 33
        madvise {Z:#x} pages={PMD_PAGES} advice=collapse
        read {Z + 5 * PAGE:#x}
        madvise {Z + PMD:#x} pages={PMD_PAGES} advice=collapse
        read {Z + PMD + 8:#x}
    """, [hex(Z), "0", "ok", hex(Z + PMD), "ok", "P1", "0", "ok", "0", "33", "0", "32",
          # P1
          "31", "0", "31", "ok", "0", "32"]),
}
FORK_SHARED_THP_CHILD = f"""\
    process P1 forked
    thread P1.T0
      read {Z + 5 * PAGE:#x}
      madvise {Z:#x} pages={PMD_PAGES} advice=collapse
      read {Z + 5 * PAGE:#x}
      write {Z + PMD + 16:#x} 34
      madvise {Z + PMD:#x} pages={PMD_PAGES} advice=collapse
      read {Z + PMD + 8:#x}
"""
SHMEM_CHILD = f"""\
    process P1 forked
    thread P1.T0
      read {Z + 256 * PAGE + 8:#x}
      madvise {Z:#x} pages={PMD_PAGES} advice=collapse
      write {Z + 8:#x} 4
      read {Z + 8:#x}
"""
FORK_CHILD = f"""\
    process P1 forked
    thread P1.T0
      read {Z + 3 * PAGE:#x}
      read {Z + 2 * PMD:#x}
      mmap {Z + 2 * PMD:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
      write {Z + 2 * PMD + 8:#x} 24
      madvise {Z + 2 * PMD:#x} pages={PMD_PAGES} advice=collapse
      read {Z + 2 * PMD:#x}
      read {Z + 2 * PMD + 8:#x}
      madvise {Z + 2 * PMD:#x} pages=1 advice=collapse
"""


def fixed_program(name: str) -> str:
    body, _ = PROGRAMS[name]
    children = {"fork": FORK_CHILD, "shmem": SHMEM_CHILD, "fork_shared_thp": FORK_SHARED_THP_CHILD}
    return program(body, children.get(name, ""))


@needs_collapse
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_host_collapses_as_linux_documents(name):
    """The host results themselves, so that a model agreeing with a host that fails
    every collapse (or succeeds at all of them) cannot pass unnoticed."""
    assert results(fixed_program(name)) == PROGRAMS[name][1]


@needs_collapse
@pytest.mark.parametrize("strategy", [None, "spf", "pervma"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_collapse_programs_conform(name, strategy):
    text = conform.with_strategy(fixed_program(name), strategy)
    assert conform.conform(text, RUNNER) == []


@needs_host
def test_collapse_ops_are_skipped_with_the_probes_reason_or_run():
    text = fixed_program("two_pmds")
    why = collapse_unsupported()
    if why is None:
        assert "0" in results(text)[3]
    else:
        with pytest.raises(conform.Skipped, match=re.escape(why)):
            conform.conform(text, RUNNER)


# Part of a THP paged out, then collapsed: with swap the collapse must read the pages
# back (__collapse_huge_page_swapin) and its first do_swap_page drops mmap_lock to wait
# for the I/O (VM_FAULT_RETRY: SCAN_PAGE_LOCK, EAGAIN); without swap nothing went out.
PAGEOUT_THEN_COLLAPSE = program(f"""
    mmap {Z:#x} pages={PMD_PAGES} prot=rw flags=private,anon,fixed
    write {Z + 8:#x} 1
    write {Z + 200 * PAGE:#x} 2
    madvise {Z:#x} pages={PMD_PAGES} advice=collapse
    madvise {Z + 100 * PAGE:#x} pages=4 advice=pageout
    madvise {Z:#x} pages={PMD_PAGES} advice=collapse
    read {Z + 8:#x}
""")


@pytest.mark.parametrize("swap, collapse", [(True, "EAGAIN"), (False, "0")])
def test_the_model_runs_with_the_hosts_swap(monkeypatch, swap, collapse):
    monkeypatch.setattr(conform, "host_has_swap", lambda: swap)
    assert ("swap_slots=0" in conform.as_on_host(PAGEOUT_THEN_COLLAPSE)) == (not swap)
    ops = conform.run_model(PAGEOUT_THEN_COLLAPSE).ops
    assert [op.result for op in ops] == [hex(Z), "ok", "ok", "0", "0", collapse, "1"]


@needs_collapse
def test_pageout_then_collapse_conforms_with_the_hosts_swap():
    assert conform.conform(PAGEOUT_THEN_COLLAPSE, RUNNER) == []


# ---------------------------------------------------------------------------------------
# The generator.

def thp_programs(n: int) -> list[str]:
    return [t for t in (random_program(s) for s in range(n)) if "config geometry=x86" in t]


def test_the_thp_feature_collapses_in_the_thp_zone():
    texts = thp_programs(300)
    assert len(texts) >= 30
    collapses = [line for t in texts for line in t.splitlines() if "advice=collapse" in line]
    assert len(collapses) >= 50
    zone = range(ARENA_BASE + THP * PAGE, ARENA_BASE + (THP + 4 * PMD_PAGES) * PAGE)
    assert all(int(line.split()[1], 16) in zone for line in collapses)
    aligned = [line for line in collapses if (int(line.split()[1], 16) - zone.start) % PMD == 0]
    assert 0 < len(aligned) < len(collapses)  # aligned and unaligned ranges both
    words = "".join(texts)
    for word in ("advice=hugepage", "advice=nohugepage", f"pages={2 * PMD_PAGES}", "fork",
                 "munmap", "mprotect", "advice=dontneed"):
        assert word in words, word


def test_the_thp_feature_makes_file_thps_from_shmem():
    """Some generated programs collapse a shmem range in the model (collapse_file), so
    that conform compares file THPs with the host too."""
    texts = [t for t in thp_programs(600) if "shared,anon" in t]
    assert len(texts) >= 20
    made = sum(dict(conform.run_model(t).counters).get("thp_collapse_file", 0) for t in texts)
    assert made >= 3


def test_only_thp_programs_change_the_geometry_and_use_the_thp_zone():
    zone = range(ARENA_BASE + THP * PAGE, ARENA_BASE + (THP + 4 * PMD_PAGES) * PAGE)
    for seed in range(300):
        text = random_program(seed)
        in_zone = any(int(a, 16) in zone for a in re.findall(r"0x[0-9a-f]+", text))
        assert ("config geometry=x86" in text) == in_zone, seed
        assert in_zone or "advice=collapse" not in text, seed


@needs_collapse
def test_random_thp_programs_conform():
    seeds = [s for s in range(400) if "advice=collapse" in random_program(s)][:40]
    outcomes = [conform.check(f"seed {s}", random_program(s), RUNNER) for s in seeds]
    assert [(o.name, o.differences) for o in outcomes if o.status == "differ"] == []
    assert sum(o.status == "identical" for o in outcomes) >= 30


@needs_collapse
def test_random_thp_programs_do_not_depend_on_parent_child_order():
    seeds = [s for s in range(400) if "advice=collapse" in (t := random_program(s))
             and "fork" in t][:25]
    for seed in seeds:
        assert conform.order_dependence(random_program(seed), RUNNER) == [], seed
