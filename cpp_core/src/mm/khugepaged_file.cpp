// The file half of mm/khugepaged.c for shmem: hpage_collapse_scan_file, collapse_file,
// retract_page_tables and collapse_pte_mapped_thp.
//
// retract_page_tables follows 6.2-6.4: for each VMA mapping the range it takes that
// mm's mmap_lock with a trylock (or leaves the table for later, as
// khugepaged_add_pte_mapped_thp does), write-locks the VMA (6.4) and frees the emptied
// PTE table in collapse_and_free_pmd: pmdp_collapse_flush, then
// tlb_remove_table_sync_one, the IPI 2ba99c5e0881 added so that no gup_fast (IRQs off,
// no mmap_lock) still walks the table when it is freed.  Since 6.5 the kernel retracts
// without mmap_lock and frees through RCU (pte_free_defer), which every page-table walker
// survives by re-checking the PMD under the PTE lock (pte_offset_map_lock); the model's
// walkers do not re-check, so the model keeps the mmap_lock version.
#include <algorithm>
#include <string>
#include <vector>

#include "check/report.hpp"
#include "mm/file_thp.hpp"
#include "mm/huge_memory.hpp"
#include "mm/khugepaged_internal.hpp"
#include "mm/lru.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/pgalloc.hpp"
#include "mm/rmap.hpp"
#include "mm/tlb.hpp"
#include "mm/vma_lock.hpp"
#include "mm/vmscan.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"
#include "sync/irq.hpp"

namespace mmrace::mm {

namespace {

using R = ScanResult;
constexpr int SINGLE_DEPTH_NESTING = 1;

// pmdp_collapse_flush's TLB flush.  The mutant khugepaged_retract_no_ipi flushes the
// way broadcast-invalidation hardware (arm64's TLBI, x86 paravirt flushes) does: every
// CPU's entries go at once and no CPU is interrupted, so nothing waits for a CPU with
// IRQs off.
void collapse_flush_tlb(Kernel& k, mm_struct& mm, uint64_t start, uint64_t end) {
    if (!k.mutant(MutantId::khugepaged_retract_no_ipi)) {
        flush_tlb_mm_range(k, mm, start, end);
        return;
    }
    for (auto& tlb : k.tlbs) tlb.flush_range(mm.id, start, end);
}

// collapse_and_free_pmd (6.2, with 2ba99c5e0881): clear the PMD, flush, make sure no
// lockless walker is still in the table, free it.  mmap_lock held for write; the PTE
// table maps nothing (collapse_file unmapped every page and holds their locks).
void collapse_and_free_pmd(Kernel& k, vm_area_struct* vma, uint64_t addr, PmdRef pmd) {
    mm_struct& mm = *vma->vm_mm;
    mmap_assert_write_locked(mm);
    pmd_lock(mm, MMR_SITE("collapse_and_free_pmd"));
    uint64_t& e = pmd_entry(k, pmd);
    TableId pt = entry_table(e);
    if (pt == kNoTable) {  // mmap_lock held: nothing else changes this PMD
        pmd_unlock(mm, MMR_SITE("collapse_and_free_pmd"));
        return;
    }
    for (uint64_t i = 0; i < hpage_pmd_nr(k); ++i)  // page_table_check_pte_clear_range
        if (!pte_none(k.tables[pt].entries[i]))
            check::violation(Check::pgtable, "retract_page_tables frees the PTE table at " + ops::hex(addr) +
                                            ", which still maps something");
    e = 0;  // pmdp_collapse_flush
    collapse_flush_tlb(k, mm, addr, addr + hpage_pmd_size(k));
    pmd_unlock(mm, MMR_SITE("collapse_and_free_pmd"));
    if (!k.mutant(MutantId::khugepaged_retract_no_ipi))
        sync::smp_call_function_sync(MMR_SITE("tlb_remove_table_sync_one"));
    k.tables.free(pt);  // pte_free
}

// retract_page_tables: the PTE tables of [pgoff, pgoff + HPAGE_PMD_NR) in every VMA
// that maps the range PMD-aligned and has no private pages (anon_vma).  The new folio
// is locked; takes i_mmap_rwsem for write, then each mm's mmap_lock by trylock.
void retract_page_tables(Kernel& k, address_space& f, uint64_t pgoff) {
    uint64_t size = hpage_pmd_size(k);
    f.i_mmap_rwsem.down_write(MMR_SITE("retract_page_tables"));
    std::vector<vm_area_struct*> vmas = f.i_mmap;  // stable: i_mmap_rwsem held
    for (vm_area_struct* vma : vmas) {
        if (vma->anon_vma) continue;  // MAP_PRIVATE with COWed pages: not worth it
        if (pgoff < vma->vm_pgoff || pgoff >= vma->vm_pgoff + vma->pages()) continue;
        uint64_t addr = vma->vm_start + ((pgoff - vma->vm_pgoff) << PAGE_SHIFT);
        if (addr % size || vma->vm_end < addr + size) continue;
        mm_struct& mm = *vma->vm_mm;
        // Trylock: the fault path takes mmap_lock before the folio lock held here.
        if (!mmap_write_trylock(mm, MMR_SITE("retract_page_tables"))) continue;
        PmdRef pmd;
        if (!hpage_collapse_test_exit(mm) && !(vma->vm_flags & VM_UFFD_WP) &&
            find_pmd_or_thp_or_none(k, mm, addr, &pmd) == R::SCAN_SUCCEED) {
            vma_write_begin(vma);  // 6.4: no fault under the VMA lock uses the table
            collapse_and_free_pmd(k, vma, addr, pmd);
            vma_write_end_spf(vma);
        }
        mmap_write_unlock(mm, MMR_SITE("retract_page_tables"));
    }
    f.i_mmap_rwsem.up_write(MMR_SITE("retract_page_tables"));
}

// The rollback of collapse_file: every old folio back as it was.
void putback_pagelist(Kernel& k, const std::vector<Pfn>& pagelist) {
    for (Pfn p : pagelist) {
        folio_unlock(k, p);
        folio_putback_lru(k, p);
        k.folios.put(p);
    }
}

// One index of collapse_file's scan: lock, isolate and unmap the small folio p, then
// check that only collapse_file's references are left.  SCAN_SUCCEED adds it to the
// pagelist, locked, isolated and referenced.
R collapse_file_take(Kernel& k, address_space& f, Pfn p, std::vector<Pfn>& pagelist) {
    k.folios.get(p);  // under the xa_lock upstream: before anything can sleep
    if (!folio_trylock(k, p)) {
        k.folios.put(p);
        return R::SCAN_PAGE_LOCK;
    }
    auto fail = [&](R r) {
        folio_unlock(k, p);
        k.folios.put(p);
        return r;
    };
    if (k.folios[p].mapping != f.id) return fail(R::SCAN_TRUNCATED);
    if (!folio_isolate_lru(k, p)) return fail(R::SCAN_DEL_PAGE_LRU);
    if (k.folios[p].mapcount) try_to_unmap(k, p);
    // Ours, the page cache's, the isolation's: any other (a pin, a mapping rmap could
    // not remove) and a new user could still reach the old page.
    if (k.folios[p].refcount != 3) {
        folio_putback_lru(k, p);
        return fail(R::SCAN_PAGE_COUNT);
    }
    pagelist.push_back(p);
    return R::SCAN_SUCCEED;
}

// collapse_file for shmem.  No locks on entry or return.
R collapse_file(Kernel& k, address_space& f, uint64_t start, const collapse_control& cc) {
    uint64_t nr = hpage_pmd_nr(k), end = start + nr;
    Pfn nf = alloc_charge_folio(k);
    if (nf == FolioPool::kNoPfn) return R::SCAN_ALLOC_HUGE_PAGE_FAIL;
    k.folios[nf].locked = true;  // __folio_set_locked: nobody else can see it yet
    k.folios[nf].lock_owner = k.rt.self();
    std::vector<Pfn> pagelist;
    std::vector<uint64_t> holes;
    R result = R::SCAN_SUCCEED;
    for (uint64_t index = start; index < end && result == R::SCAN_SUCCEED; ++index) {
        auto it = f.i_pages.find(index);
        if (it == f.i_pages.end()) {
            auto next = f.i_pages.lower_bound(index);
            if (index == start && (next == f.i_pages.end() || next->first >= end))
                result = R::SCAN_TRUNCATED;  // truncated or hole-punched: nothing left
            holes.push_back(index);          // nr_none: the THP's page stays zeroed
            continue;
        }
        if (folio_test_large(k.folios, it->second)) {
            Pfn h = page_folio(k.folios, it->second);
            result = k.folios[h].order == hpage_pmd_order(k) && k.folios[h].index == start
                         ? R::SCAN_PTE_MAPPED_HUGEPAGE
                         : R::SCAN_PAGE_COMPOUND;
            break;
        }
        result = collapse_file_take(k, f, it->second, pagelist);
    }
    // A hole a fault filled meanwhile (upstream parks XA_RETRY_ENTRY in the holes so
    // that none can be; the model gives up instead), checked before and after the copy.
    auto hole_filled = [&] {
        return std::any_of(holes.begin(), holes.end(), [&](uint64_t i) { return f.i_pages.count(i) > 0; });
    };
    auto rollback = [&](R r) {
        putback_pagelist(k, pagelist);
        folio_unlock_nosched(k, nf);
        k.folios.put(nf);
        return r;
    };
    if (result == R::SCAN_SUCCEED && hole_filled()) result = R::SCAN_FAIL;
    if (result != R::SCAN_SUCCEED) return rollback(result);
    for (Pfn p : pagelist) {  // copy_mc_highpage: the old folios are locked and unmapped
        k.folios[nf + static_cast<Pfn>(k.folios[p].index - start)].words = k.folios[p].words;
        k.rt.yield(MMR_SITE("collapse_file"), rt::Ev::yield, p);
    }
    if (hole_filled()) return rollback(R::SCAN_FAIL);
    // Join all the small entries into a single multi-index entry: no scheduling point
    // from here to the stores, as under the xa_lock.
    Folio& nfo = k.folios[nf];
    nfo.mapping = f.id;
    nfo.index = start;
    nfo.flags |= PG_uptodate | PG_dirty;  // shmem: folio_mark_dirty
    nfo.refcount += static_cast<int64_t>(nr) - 1;  // one page-cache reference per page
    for (uint64_t index = start; index < end; ++index) f.i_pages[index] = nf + static_cast<Pfn>(index - start);
    folio_add_lru(k, nf);
    k.counters.inc(Counter::thp_collapse_file);
    retract_page_tables(k, f, start);
    folio_unlock(k, nf);
    for (Pfn p : pagelist) {  // the collapse has succeeded: free the old folios
        k.folios[p].mapping = -1;
        k.folios[p].isolated = false;
        folio_unlock(k, p);
        for (int i = 0; i < 3; ++i) k.folios.put(p);  // folio_put_refs(folio, 3)
    }
    return cc.is_khugepaged ? R::SCAN_SUCCEED : R::SCAN_PTE_MAPPED_HUGEPAGE;
}

}  // namespace

bool file_collapse_allowed(Kernel& k, const vm_area_struct* vma) {
    if (vma->vm_file < 0 || !k.files[vma->vm_file]->shmem) return false;
    if (vma->vm_flags & (VM_NOHUGEPAGE | VM_UFFD_MISSING | VM_UFFD_WP)) return false;
    // thp_vma_suitable_order at the VMA's end: a whole PMD range inside, address and
    // pgoff congruent.
    return vma_holds_pmd_range(k, vma) && thp_vma_suitable_order(k, vma, vma->vm_end - hpage_pmd_size(k));
}

R hpage_collapse_scan_file(Kernel& k, mm_struct&, address_space& f, uint64_t start,
                           const collapse_control& cc) {
    // The scan's checks (present, on the LRU, refcount) are collapse_file's again under
    // the folio locks; the model goes straight there.  khugepaged's max_ptes_none does
    // not apply: khugepaged leaves shmem alone (shmem_enabled=never).
    return collapse_file(k, f, start, cc);
}

namespace {

// collapse_pte_mapped_thp's steps 1-2 for the PTE table at pmd: every PTE maps the
// page of the THP at head for its offset, or nothing (SCAN_FAIL: something else, e.g.
// a private COW copy; SCAN_PTE_NON_PRESENT: a swap PTE); then they are cleared, the
// folio's PTE mapcounts and references dropped (folio_remove_rmap_ptes,
// folio_ref_sub).  The TLB flush is the table's (pmdp_collapse_flush).  Folio locked,
// mmap_lock held for write; takes the PTE lock.
R clear_pte_mapped_thp(Kernel& k, vm_area_struct* vma, PmdRef pmd, Pfn head) {
    TableId pt = entry_table(pmd_entry(k, pmd));
    if (pt == kNoTable) return R::SCAN_SUCCEED;
    PteRef lock_ref{pt, 0};
    pte_lock(k, lock_ref, MMR_SITE("collapse_pte_mapped_thp"));
    auto& entries = k.tables[pt].entries;
    R result = R::SCAN_SUCCEED;
    for (uint64_t i = 0; i < hpage_pmd_nr(k) && result == R::SCAN_SUCCEED; ++i) {
        if (pte_none(entries[i])) continue;
        if (!pte_present(entries[i])) result = R::SCAN_PTE_NON_PRESENT;
        else if (pte_special(entries[i]) || pte_pfn(entries[i]) != head + i) result = R::SCAN_FAIL;
    }
    int64_t mapped = 0;
    for (uint64_t i = 0; i < hpage_pmd_nr(k) && result == R::SCAN_SUCCEED; ++i) {
        if (pte_none(entries[i])) continue;
        if (pte_dirty(entries[i])) k.folios[head].flags |= PG_dirty;
        entries[i] = 0;  // ptep_clear
        folio_remove_rmap_pte(k, head + static_cast<Pfn>(i), *vma->vm_mm);
        ++mapped;
    }
    pte_unlock(k, lock_ref, MMR_SITE("collapse_pte_mapped_thp"));
    k.folios[head].refcount -= mapped;  // folio_ref_sub: the caller holds another
    return result;
}

}  // namespace

R collapse_pte_mapped_thp(Kernel& k, mm_struct& mm, uint64_t addr) {
    mmap_assert_write_locked(mm);
    uint64_t haddr = addr & ~(hpage_pmd_size(k) - 1);
    vm_area_struct* vma = mm.vma_lookup(haddr);
    if (!vma || vma->vm_file < 0 || haddr + hpage_pmd_size(k) > vma->vm_end) return R::SCAN_VMA_CHECK;
    PmdRef pmd;
    R result = find_pmd_or_thp_or_none(k, mm, haddr, &pmd);
    if (result == R::SCAN_PMD_MAPPED) return result;
    if (result == R::SCAN_PMD_NULL) return R::SCAN_SUCCEED;  // no page table here at all
    if (vma->vm_flags & VM_UFFD_WP) return R::SCAN_PTE_UFFD_WP;
    address_space& f = *k.files[vma->vm_file];
    auto it = f.i_pages.find(vma->pgoff_at(haddr));
    if (it == f.i_pages.end()) return R::SCAN_PAGE_NULL;
    Pfn head = page_folio(k.folios, it->second);
    k.folios.get(head);
    folio_lock(k, head);  // filemap_lock_folio
    const Folio& fo = k.folios[head];
    if (fo.order != hpage_pmd_order(k) || fo.mapping != f.id || fo.index != vma->pgoff_at(haddr)) {
        result = R::SCAN_PAGE_COMPOUND;
    } else {
        vma_write_begin(vma);
        result = clear_pte_mapped_thp(k, vma, pmd, head);  // steps 1-2
        if (result == R::SCAN_SUCCEED) {
            collapse_and_free_pmd(k, vma, haddr, pmd);  // steps 3-4
            // Step 5, install_pmd (MADV_COLLAPSE): set_huge_pmd -> do_set_pmd, folio_get.
            if (do_set_pmd(k, vma, vma->vm_flags, haddr, false, head)) result = R::SCAN_FAIL;
            else k.folios.get(head);
        }
        vma_write_end_spf(vma);
    }
    folio_unlock(k, head);
    k.folios.put(head);
    return result;
}

}  // namespace mmrace::mm
