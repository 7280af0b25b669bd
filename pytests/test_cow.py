"""COW with GUP and pins, after tools/testing/selftests/mm/cow.c, on every strategy.

Each case is a small .mmr program whose results the kernel's cow.c expects: a process
sees its own writes and not its relative's after fork, and a pinned page stays the
pinning process's page while its mapping stands (a R/O pin taken after fork unshares it,
a pin taken before fork makes fork copy it for the child).  After munmap, mremap or
MADV_DONTNEED the device keeps the old page.  The THP-backed variants (cow.c's
run_with_thp*) follow at the end."""
import pytest

import mmrace

STRATEGIES = ["classic", "spf", "pervma"]
A = 0x100000


def run(strategy: str, body: str, files: str = "") -> list:
    text = f"mmrace 1\nconfig strategy={strategy}\n{files}{body}"
    res = mmrace.run(text)
    assert res.verdict == "ok", (res.check, res.message)
    return [o.result for o in res.ops]


def proc(name: str, ops: str, forked: bool = False) -> str:
    lines = "".join(f"  {line.strip()}\n" for line in ops.strip().splitlines())
    return f"process {name}{' forked' if forked else ''}\nthread {name}.T0\n{lines}"


MAP = f"mmap {A:#x} pages=1 prot=rw flags=private,anon,fixed"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fork_then_writes_on_either_side_stay_private(strategy):
    got = run(strategy, proc("P0", f"""
        {MAP}
        write {A:#x} 1
        fork P1
        write {A:#x} 2
        read {A:#x}
    """) + proc("P1", f"""
        read {A:#x}
        write {A:#x} 3
        read {A:#x}
    """, forked=True))
    assert got == [hex(A), "ok", "P1", "ok", "2", "1", "ok", "3"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("flags", ["", "flags=fast", "flags=longterm", "flags=longterm,fast"])
def test_ro_pin_after_fork_unshares(strategy, flags):
    """cow.c "R/O GUP pin on shared anon page": the pin must see the parent's later
    writes, so GUP breaks COW (FAULT_FLAG_UNSHARE) for it."""
    got = run(strategy, proc("P0", f"""
        {MAP}
        write {A:#x} 1
        fork P1
        pin {A:#x} pages=1 {flags}
        write {A:#x} 2
        dma_read H0 0
        unpin H0
    """) + proc("P1", f"""
        read {A:#x}
    """, forked=True))
    assert got == [hex(A), "ok", "P1", "H0", "ok", "2", "0", "1"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("flags", ["flags=write", "flags=write,fast", "", "flags=fast"])
def test_pin_before_fork_is_copied_for_the_child(strategy, flags):
    """cow.c "vmsplice/pin before fork": fork copies a maybe-pinned exclusive page for
    the child (copy_present_page), so the parent and the device keep sharing theirs."""
    got = run(strategy, proc("P0", f"""
        {MAP}
        write {A:#x} 1
        pin {A:#x} pages=1 {flags}
        fork P1
        write {A:#x} 2
        dma_read H0 0
        unpin H0
    """) + proc("P1", f"""
        read {A:#x}
        write {A:#x} 3
    """, forked=True))
    assert got == [hex(A), "ok", "H0", "P1", "ok", "2", "0", "1", "ok"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_writable_pin_device_writes_reach_the_process_after_fork(strategy):
    got = run(strategy, proc("P0", f"""
        {MAP}
        write {A:#x} 1
        pin {A:#x} pages=1 flags=write,longterm
        fork P1
        dma_write H0 8 7
        read {A + 8:#x}
    """) + proc("P1", f"""
        read {A + 8:#x}
    """, forked=True))
    assert got == [hex(A), "ok", "H0", "P1", "ok", "7", "0"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("change, after", [
    (f"munmap {A:#x} pages=1", "SIGSEGV"),
    (f"madvise {A:#x} pages=1 advice=dontneed", "0"),
    (f"mremap {A:#x} pages=1 new_pages=1 flags=maymove,fixed to={A + 0x10000:#x}", "SIGSEGV"),
])
def test_pin_keeps_the_page_after_munmap_mremap_dontneed(strategy, change, after):
    got = run(strategy, proc("P0", f"""
        {MAP}
        write {A:#x} 1
        pin {A:#x} pages=1 flags=write
        {change}
        read {A:#x}
        dma_read H0 0
        dma_write H0 0 5
        read {A:#x}
    """))
    assert got[4:] == [after, "1", "ok", after]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mremap_moves_the_pinned_page_with_the_mapping(strategy):
    got = run(strategy, proc("P0", f"""
        {MAP}
        write {A:#x} 1
        pin {A:#x} pages=1 flags=write
        mremap {A:#x} pages=1 new_pages=1 flags=maymove,fixed to={A + 0x10000:#x}
        dma_write H0 0 5
        read {A + 0x10000:#x}
    """))
    assert got == [hex(A), "ok", "H0", hex(A + 0x10000), "ok", "5"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_poke_into_private_file_mapping_never_reaches_the_page_cache(strategy):
    got = run(strategy, proc("P0", f"""
        file_write F 0 7
        mmap {A:#x} pages=1 prot=r flags=private,file:F:0,fixed
        mmap {A + 0x10000:#x} pages=1 prot=r flags=shared,file:F:0,fixed
        poke {A:#x} 9
        peek {A:#x}
        read {A + 0x10000:#x}
        poke {A + 0x10000:#x} 9
    """), files="file F pages=1\n")
    assert got == ["ok", hex(A), hex(A + 0x10000), "ok", "9", "7", "EIO"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_bad_handles_are_errors_not_crashes(strategy):
    got = run(strategy, proc("P0", f"""
        {MAP}
        pin {A:#x} pages=1
        dma_write H0 0 1
        unpin H0
        unpin H0
        dma_read H0 0
    """))
    assert got == [hex(A), "H0", "EACCES", "0", "EINVAL", "EINVAL"]


# --- THP-backed variants (cow.c run_with_thp, run_with_thp_swap, run_with_pte_mapped_thp,
# run_with_single_pte_of_thp, run_with_partial_mremap_thp, run_with_partial_shared_thp).
# Geometry small: a PMD maps 8 pages (0x8000 bytes); A is PMD-aligned, so the first write
# into the VM_HUGEPAGE VMA faults a THP (thp_fault_alloc proves it).  Every page gets its
# own value, so a pin of the wrong page of the THP reads the wrong one.

THP_PAGES = 8
B = A + 0x40000  # where partial_mremap_thp moves half of the THP


def thp_fill() -> str:
    ops = [f"mmap {A:#x} pages={THP_PAGES} prot=rw flags=private,anon,fixed",
           f"madvise {A:#x} pages={THP_PAGES} advice=hugepage"]
    ops += [f"write {A + i * 0x1000:#x} {10 + i}" for i in range(THP_PAGES)]
    return "\n".join(ops)


# variant -> (ops after the fill, the page the case works on, pages left at A).  As
# upstream, a PMD split leaves a PTE-mapped large folio.
THP_VARIANTS = {
    # run_with_thp: the THP PMD-mapped; the case works on a tail page.
    "thp": ("", A + 0x1000, THP_PAGES),
    # run_with_thp_swap: MADV_PAGEOUT.  Upstream may swap the THP out whole (THP_SWAP);
    # here reclaim splits it (split_folio) and swaps out its pages (pswpout counts them).
    "thp_swap": (f"madvise {A:#x} pages={THP_PAGES} advice=pageout", A + 0x1000, THP_PAGES),
    # run_with_pte_mapped_thp: mprotect one page and back PTE-maps the THP.
    "pte_mapped_thp": (f"mprotect {A + 0x1000:#x} pages=1 prot=r\n"
                       f"mprotect {A + 0x1000:#x} pages=1 prot=rw", A + 0x1000, THP_PAGES),
    # run_with_single_pte_of_thp: PTE-mapped, then all but the first page zapped.
    "single_pte_of_thp": (f"mprotect {A + 0x1000:#x} pages=1 prot=r\n"
                          f"mprotect {A + 0x1000:#x} pages=1 prot=rw\n"
                          f"madvise {A + 0x1000:#x} pages={THP_PAGES - 1} advice=dontneed", A, 1),
    # run_with_partial_mremap_thp: the second half moved away (the PMD is split).
    "partial_mremap_thp": (f"mmap {B:#x} pages={THP_PAGES // 2} prot=none flags=private,anon,fixed\n"
                           f"mremap {A + THP_PAGES // 2 * 0x1000:#x} pages={THP_PAGES // 2} "
                           f"new_pages={THP_PAGES // 2} flags=maymove,fixed to={B:#x}",
                           A + 0x1000, THP_PAGES // 2),
    # run_with_partial_shared_thp shares only the first page with a child (MADV_DONTFORK
    # on the rest), which exits.  No MADV_DONTFORK here: the child (Q) gets every page,
    # reads the first and exits, so all pages were shared once (fork shares the huge PMD).
    "partial_shared_thp": ("fork Q", A + 0x1000, THP_PAGES),
}


def thp_run(strategy: str, variant: str, p0: str, p1: str = "", thp_faults: int = 1):
    """Runs the fill, the variant and then the case's P0 ops (and P1's, if it forks P1).
    Returns P0's results after the fill and variant, P1's, and the counters.  The fill's
    THP fault and thp_faults - 1 later ones must have made THPs."""
    extra, _, _ = THP_VARIANTS[variant]
    prologue = (thp_fill() + "\n" + extra).strip()
    body = proc("P0", prologue + "\n" + p0)
    if p1:
        body += proc("P1", p1, forked=True)
    if variant == "partial_shared_thp":
        body += proc("Q", f"read {A:#x}", forked=True)
    text = f"mmrace 1\nconfig strategy={strategy} geometry=small\n{body}"
    res = mmrace.run(text)
    assert res.verdict == "ok", (res.check, res.message)
    skip = len(prologue.splitlines())
    p0_results = [o.result for o in res.ops if o.thread == "P0.T0"][skip:]
    p1_results = [o.result for o in res.ops if o.thread == "P1.T0"]
    c = res.counters
    assert c["thp_fault_alloc"] == thp_faults  # it really was a THP
    if variant == "thp_swap":
        assert c["pswpout"] == THP_PAGES
    if variant not in ("thp", "partial_shared_thp"):
        assert c["thp_split_pmd"] >= 1
    return p0_results, p1_results, c


def focus(variant):
    _, f, _ = THP_VARIANTS[variant]
    return f, str(10 + (f - A) // 0x1000)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", THP_VARIANTS)
@pytest.mark.parametrize("mprotect", [False, True])
def test_thp_cow_after_fork(strategy, variant, mprotect):
    """cow.c "Basic COW after fork" (and "with mprotect() optimization"): the child keeps
    the old content of the page the parent writes after fork, and the reverse."""
    f, old = focus(variant)
    _, _, n = THP_VARIANTS[variant]
    mp = (f"mprotect {A:#x} pages={n} prot=r\nmprotect {A:#x} pages={n} prot=rw\n" if mprotect else "")
    p0, p1, _ = thp_run(strategy, variant, f"""
        fork P1
        {mp}write {f:#x} 2
        read {f:#x}
    """, f"""
        read {f:#x}
        write {f:#x} 3
        read {f:#x}
    """)
    assert p0[0] == "P1" and p0[-2:] == ["ok", "2"]
    assert p1 == [old, "ok", "3"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", THP_VARIANTS)
@pytest.mark.parametrize("flags", ["flags=longterm", "flags=longterm,fast"])
def test_thp_ro_pin_on_shared_page_unshares(strategy, variant, flags):
    """cow.c "R/O GUP pin on R/O-mapped shared page" (GUP and GUP-fast): the R/O pin
    taken after fork must see the parent's later write: GUP unshares the page first."""
    f, old = focus(variant)
    p0, p1, _ = thp_run(strategy, variant, f"""
        fork P1
        pin {f:#x} pages=1 {flags}
        write {f:#x} 2
        dma_read H0 0
        unpin H0
    """, f"""
        read {f:#x}
    """)
    assert p0 == ["P1", "H0", "ok", "2", "0"]
    assert p1 == [old]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", THP_VARIANTS)
@pytest.mark.parametrize("flags", ["flags=longterm", "flags=longterm,fast"])
def test_thp_ro_pin_on_previously_shared_page_unshares(strategy, variant, flags):
    """cow.c "R/O GUP pin on R/O-mapped previously-shared page": the child only reads
    and exits; wherever its exit lands, the pin follows the parent's write."""
    f, _ = focus(variant)
    p0, _, _ = thp_run(strategy, variant, f"""
        fork P1
        pin {f:#x} pages=1 {flags}
        write {f:#x} 2
        dma_read H0 0
        unpin H0
    """, f"""
        read {A:#x}
    """)
    assert p0 == ["P1", "H0", "ok", "2", "0"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", THP_VARIANTS)
@pytest.mark.parametrize("flags", ["flags=longterm", "flags=longterm,fast"])
def test_thp_ro_pin_on_exclusive_page(strategy, variant, flags):
    """cow.c "R/O GUP pin on R/O-mapped exclusive page": mprotect(PROT_READ), pin,
    mprotect(PROT_READ|PROT_WRITE), write: the exclusive page is reused, the pin sees it.
    On the PMD-mapped THP the pin holds the THP whole: nothing is split."""
    f, _ = focus(variant)
    _, _, n = THP_VARIANTS[variant]
    p0, _, c = thp_run(strategy, variant, f"""
        mprotect {A:#x} pages={n} prot=r
        pin {f:#x} pages=1 {flags}
        mprotect {A:#x} pages={n} prot=rw
        write {f:#x} 2
        dma_read H0 0
        unpin H0
    """)
    assert p0 == ["0", "H0", "0", "ok", "2", "0"]
    if variant == "thp":
        assert c["thp_split_pmd"] == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", THP_VARIANTS)
@pytest.mark.parametrize("flags", ["flags=write,longterm", "flags=write,longterm,fast", "", "flags=fast"])
def test_thp_pin_before_fork_is_copied_for_the_child(strategy, variant, flags):
    """cow.c "R/O-mapping a page registered as iouring fixed buffer" and the pin before
    fork: fork copies the maybe-pinned page for the child (a pinned THP: copy_huge_pmd's
    folio_try_dup_anon_rmap_pmd fails, the PMD is split and its pages copied), so the
    device keeps sharing the parent's page and the child keeps the old content."""
    f, old = focus(variant)
    p0, p1, c = thp_run(strategy, variant, f"""
        pin {f:#x} pages=1 {flags}
        fork P1
        write {f:#x} 2
        dma_read H0 0
        unpin H0
    """, f"""
        read {f:#x}
        write {f:#x} 3
    """)
    assert p0 == ["H0", "P1", "ok", "2", "0"]
    assert p1 == [old, "ok"]
    if variant == "thp":
        assert c["thp_split_pmd_pinned"] == 1  # fork split the THP the pin held whole


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", THP_VARIANTS)
@pytest.mark.parametrize("flags", ["", "flags=fast", "flags=write", "flags=write,fast"])
def test_thp_pin_of_every_page_after_fork(strategy, variant, flags):
    """A pin of all the pages left at A after fork (GUP takes a THP's pages at once,
    page_increm / gup_fast_pmd_leaf): each pinned page is the parent's, in order."""
    _, _, n = THP_VARIANTS[variant]
    last = A + (n - 1) * 0x1000
    p0, p1, _ = thp_run(strategy, variant, f"""
        fork P1
        pin {A:#x} pages={n} {flags}
        write {last:#x} 2
        dma_read H0 {(n - 1) * 0x1000}
        dma_read H0 0
        unpin H0
    """, f"""
        read {last:#x}
    """)
    assert p0 == ["P1", "H0", "ok", "2", "10" if n > 1 else "2", "0"]
    assert p1 == [str(10 + n - 1)]


THP_CHANGES = [
    (f"munmap {A:#x} pages={THP_PAGES}", "SIGSEGV", False),  # zap_huge_pmd: no split
    (f"munmap {A + 0x1000:#x} pages=1", "SIGSEGV", True),
    # Whole: zap_huge_pmd; the read after it faults a fresh THP (no huge zero page).
    (f"madvise {A:#x} pages={THP_PAGES} advice=dontneed", "0", False),
    (f"madvise {A + 0x1000:#x} pages=2 advice=dontneed", "0", True),
    # Whole, to a PMD-aligned place: move_huge_pmd moves the huge PMD, no split.
    (f"mremap {A:#x} pages={THP_PAGES} new_pages={THP_PAGES} flags=maymove,fixed to={B:#x}", "SIGSEGV", False),
    (f"mremap {A:#x} pages=2 new_pages=2 flags=maymove,fixed to={B:#x}", "SIGSEGV", True),
    (f"mprotect {A:#x} pages=2 prot=r", "11", True),
    # Reclaim keeps a maybe-pinned folio whole and mapped: no split at all.
    (f"madvise {A:#x} pages={THP_PAGES} advice=pageout", "11", False),
]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("flags", ["flags=write", "flags=write,fast"])
@pytest.mark.parametrize("change, after, splits", THP_CHANGES)
def test_thp_pin_survives_munmap_mremap_dontneed_split(strategy, flags, change, after, splits):
    """A write pin of a tail page of a PMD-mapped THP across munmap, MADV_DONTNEED,
    mremap, mprotect and pageout, whole or partial: the device keeps the page (a PMD
    split keeps the pin on the large folio, none is lost or doubled: the folio accounting
    checks it at every quiescent point), and where the mapping stands the device and the
    process still share it (pageout leaves a pinned page mapped)."""
    refault = change.startswith("madvise") and f"pages={THP_PAGES} advice=dontneed" in change
    p0, _, c = thp_run(strategy, "thp", f"""
        pin {A + 0x1000:#x} pages=1 {flags}
        {change}
        read {A + 0x1000:#x}
        dma_read H0 0
        dma_write H0 0 5
        read {A + 0x1000:#x}
        unpin H0
    """, thp_faults=2 if refault else 1)
    assert p0[0] == "H0"
    assert p0[2:] == [after, "11", "ok", "5" if after == "11" else after, "0"]
    assert c["thp_split_pmd_pinned"] == (1 if splits else 0)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("flags", ["flags=write", "flags=write,fast"])
def test_thp_mremap_moves_the_pinned_thp_page(strategy, flags):
    p0, _, _ = thp_run(strategy, "thp", f"""
        pin {A + 0x1000:#x} pages=1 {flags}
        mremap {A:#x} pages={THP_PAGES} new_pages={THP_PAGES} flags=maymove,fixed to={B:#x}
        dma_write H0 0 5
        read {B + 0x1000:#x}
        read {B + 0x2000:#x}
    """)
    assert p0 == ["H0", hex(B), "ok", "5", "12"]
