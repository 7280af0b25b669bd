"""COW with GUP and pins, after tools/testing/selftests/mm/cow.c, on every strategy.

Each case is a small .mmr program whose results the kernel's cow.c expects: a process
sees its own writes and not its relative's after fork, and a pinned page stays the
pinning process's page while its mapping stands (a R/O pin taken after fork unshares it,
a pin taken before fork makes fork copy it for the child).  After munmap, mremap or
MADV_DONTNEED the device keeps the old page.  THP-backed variants of these cases come
when THP is modelled."""
import pytest

import mmrace

STRATEGIES = ["classic", "spf", "pervma"]
A = 0x100000


def run(strategy: str, body: str, files: str = "") -> list:
    text = f"mmrace 1\nconfig strategy={strategy}\n{files}{body}"
    res = mmrace.run(text)
    assert res.verdict == "ok", (res.check, res.message)
    return [o["result"] for o in res.ops]


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
