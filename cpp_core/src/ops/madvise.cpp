// madvise(2): do_madvise and madvise_walk_vmas (mm/madvise.c).  Built: MADV_DONTNEED
// (zap_page_range_single under the read lock), MADV_PAGEOUT (reclaim of the folios only
// this mm maps, under the read lock), MADV_COLD (deactivation of those folios, under
// the read lock), MADV_HUGEPAGE and MADV_NOHUGEPAGE (vma flags,
// under the write lock), MADV_COLLAPSE (madvise_collapse, mm/khugepaged.cpp, under the
// read lock, which it may drop and retake).
#include "mm/filemap.hpp"
#include "mm/huge_memory.hpp"
#include "mm/lru.hpp"
#include "mm/rmap.hpp"
#include "mm/khugepaged.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/pgalloc.hpp"
#include "mm/unmap.hpp"
#include "mm/vmscan.hpp"
#include "mm/vma_merge.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

// madvise_need_mmap_write
bool need_mmap_write(Advice a) { return a == Advice::hugepage || a == Advice::nohugepage; }

// madvise_folio_pte_batch: how many PTEs from addr (below end) of table t map the
// pages of page's large folio in order, starting with page.  PTE lock held.
uint64_t madvise_folio_pte_batch(Kernel& k, TableId t, uint64_t addr, uint64_t end, Pfn page) {
    Pfn head = page_folio(k.folios, page);
    uint64_t nr = 0;
    uint64_t max = std::min((end - addr) >> PAGE_SHIFT, head + folio_nr_pages(k.folios, head) - page);
    for (; nr < max; ++nr) {
        pte_t pte = k.tables[t].entries[k.geo.index(addr + nr * PAGE_SIZE, PTE_LEVEL)];
        if (!pte_present(pte) || pte_special(pte) || pte_pfn(pte) != page + nr) break;
    }
    return nr;
}

// zap_page_range_single: unmap the pages, keep the VMA.
int madvise_dontneed(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end) {
    if (vma->vm_flags & VM_LOCKED) return EINVAL_;  // madvise_dontneed_free_valid_vma
    mmu_gather tlb;
    tlb_gather_mmu(tlb, k, *vma->vm_mm);
    unmap_single_vma(tlb, vma, start, end);
    tlb_finish_mmu(tlb);
    return 0;
}

// split_folio for madvise, with the folio locked and a reference taken by the caller
// under its page-table lock (dropped since), both released here.  0 on success.
int madvise_split_folio(Kernel& k, Pfn folio) {
    int err = split_folio(k, folio);
    folio_unlock(k, folio);
    k.folios.put(folio);
    return err;
}

// MADV_COLD's work on one folio only this mm maps, nr of whose pages PTEs of table t
// map from addr (madvise_cold_or_pageout_pte_range without `pageout`): the young PTEs
// made old (clear_young_dirty_ptes with CYDP_CLEAR_YOUNG) and their TLB entries
// gathered for the flush at tlb_finish_mmu, then PG_referenced cleared and the folio
// deactivated, so that reclaim takes it before the folios still in use.  No reclaim.
// PTE lock held.
void madvise_cold_ptes(Kernel& k, mmu_gather& tlb, TableId t, uint64_t addr, uint64_t nr, Pfn folio) {
    for (uint64_t i = 0; i < nr; ++i) {
        uint64_t a = addr + i * PAGE_SIZE;
        PteRef pte{t, k.geo.index(a, PTE_LEVEL)};
        pte_t e = ptep_get(k, pte);
        if (!(e & _PAGE_ACCESSED)) continue;
        set_pte_at(k, pte, e & ~_PAGE_ACCESSED);
        tlb_remove_tlb_entry(tlb, a);
    }
    k.folios[folio].flags &= ~PG_referenced;  // folio_clear_referenced
    folio_deactivate(k, folio);
}

// The same for a THP this mm alone maps with the huge PMD at addr: pmdp_invalidate and
// set_pmd_at of pmd_mkold (one step here, under the PMD lock), tlb_remove_pmd_tlb_entry,
// then as for PTEs.  PMD lock held.
void madvise_cold_pmd(Kernel& k, mmu_gather& tlb, PmdRef pmd, uint64_t addr, Pfn folio) {
    uint64_t& e = pmd_entry(k, pmd);
    if (e & _PAGE_ACCESSED) {
        e &= ~_PAGE_ACCESSED;
        tlb_remove_tlb_entry(tlb, addr);
        tlb_remove_tlb_entry(tlb, addr + hpage_pmd_size(k) - PAGE_SIZE);
    }
    k.folios[folio].flags &= ~PG_referenced;
    folio_deactivate(k, folio);
}

// The huge PMD part of madvise_cold_or_pageout_pte_range: a THP only this mm maps is
// isolated whole (pageout: cold is null) or deactivated (cold: its TLB gather) if the
// range covers its PMD, else split (and its pages looked at as PTEs: true).  false
// when done with this PMD.  Takes the PMD lock.
bool madvise_cold_or_pageout_huge_pmd(Kernel& k, vm_area_struct* vma, PmdRef pmd, uint64_t addr,
                                      uint64_t end, mmu_gather* cold, std::vector<Pfn>& folio_list) {
    mm_struct& mm = *vma->vm_mm;
    pmd_lock(mm, MMR_SITE("madvise_cold_or_pageout_pte_range"));
    uint64_t e = pmd_entry(k, pmd);
    if (!pmd_trans_huge(e)) {  // split meanwhile: a PTE table now
        pmd_unlock(mm, MMR_SITE("madvise_cold_or_pageout_pte_range"));
        return true;
    }
    Pfn folio = pmd_pfn(e);
    bool whole = end - addr == hpage_pmd_size(k);
    // Do not interfere with other mappings of this folio.
    bool shared = folio_maybe_mapped_shared(k.folios, folio);
    if (!shared && whole) {
        if (cold) madvise_cold_pmd(k, *cold, pmd, addr, folio);
        else if (folio_isolate_lru(k, folio)) folio_list.push_back(folio);
    }
    bool split = !shared && !whole && folio_trylock(k, folio);
    if (split) k.folios.get(folio);
    pmd_unlock(mm, MMR_SITE("madvise_cold_or_pageout_pte_range"));
    return split && madvise_split_folio(k, folio) == 0;
}

// madvise_cold_or_pageout_pte_range over one PMD's part of [addr, end): under the PTE
// lock, isolate (pageout: cold is null) or deactivate (cold: its TLB gather) every
// folio mapped here that no other mapping shares.  A large folio the range does not
// map whole is split first, with the lock dropped, and its pages looked at again.
// Then, with the lock dropped, reclaim the isolated ones.  Private file mappings of a
// file the caller cannot write would only page out anonymous folios
// (can_do_file_pageout); every file of a program is its own, so all qualify.
void madvise_cold_or_pageout_pte_range(Kernel& k, vm_area_struct* vma, uint64_t addr, uint64_t end,
                                       mmu_gather* cold) {
    std::vector<Pfn> folio_list;
    PmdRef pmd = pmd_lookup(k, *vma->vm_mm, addr);
    if (pmd && pmd_trans_huge(pmd_entry(k, pmd)) &&
        !madvise_cold_or_pageout_huge_pmd(k, vma, pmd, addr, end, cold, folio_list)) {
        reclaim_pages(k, folio_list);
        return;
    }
    TableId t = pte_table_lookup(k, *vma->vm_mm, addr);
    if (t == kNoTable) return;
    PteRef lock_ref{t, 0};
    pte_lock(k, lock_ref, MMR_SITE("madvise_cold_or_pageout_pte_range"));
    for (uint64_t nr = 1; addr < end; addr += nr * PAGE_SIZE) {
        nr = 1;
        pte_t ptent = k.tables[t].entries[k.geo.index(addr, PTE_LEVEL)];
        if (!pte_present(ptent) || pte_special(ptent)) continue;  // vm_normal_folio
        Pfn page = pte_pfn(ptent);
        Pfn folio = page_folio(k.folios, page);
        if (folio_test_large(k.folios, page)) {
            nr = madvise_folio_pte_batch(k, t, addr, end, page);
            if (nr < folio_nr_pages(k.folios, folio)) {
                if (folio_maybe_mapped_shared(k.folios, folio) || !folio_trylock(k, folio)) continue;
                k.folios.get(folio);
                pte_unlock(k, lock_ref, MMR_SITE("madvise_cold_or_pageout_pte_range"));
                int err = madvise_split_folio(k, folio);
                if (entry_table(pmd_entry(k, pmd)) != t) return;  // pte_offset_map_lock failed
                pte_lock(k, lock_ref, MMR_SITE("madvise_cold_or_pageout_pte_range"));
                if (!err) nr = 0;  // look at the same address again
                continue;
            }
        }
        // Do not interfere with other mappings of this folio; a large folio is mapped
        // whole here, so it is exclusive if it has as many mappings as pages.
        if (!folio_test_lru(k.folios[folio]) ||
            static_cast<uint64_t>(k.folios[folio].mapcount) != folio_nr_pages(k.folios, folio))
            continue;
        if (cold) madvise_cold_ptes(k, *cold, t, addr, nr, folio);
        else if (folio_isolate_lru(k, folio)) folio_list.push_back(folio);
    }
    pte_unlock(k, lock_ref, MMR_SITE("madvise_cold_or_pageout_pte_range"));
    reclaim_pages(k, folio_list);
}

// The page walk of madvise_cold_page_range / madvise_pageout_page_range: each PMD's
// part of [start, end) in turn.
void madvise_cold_or_pageout_page_range(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end,
                                        mmu_gather* cold) {
    uint64_t span = k.geo.span(PTE_LEVEL);
    for (uint64_t a = start; a < end;) {
        uint64_t next = std::min((a / span + 1) * span, end);
        madvise_cold_or_pageout_pte_range(k, vma, a, next, cold);
        a = next;
    }
}

// madvise_pageout: can_madv_lru_vma refuses mlocked VMAs.
int madvise_pageout(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end) {
    if (vma->vm_flags & VM_LOCKED) return EINVAL_;
    madvise_cold_or_pageout_page_range(k, vma, start, end, nullptr);
    return 0;
}

// madvise_cold (mm/madvise.c): can_madv_lru_vma refuses mlocked VMAs; the folios only
// this mm maps move to the inactive LRU, nothing is reclaimed.  The PTEs it made old
// are flushed from the TLBs once, at tlb_finish_mmu.  (lru_add_drain has nothing to
// drain: the model adds folios to the LRU at once, mm/lru.hpp.)
int madvise_cold(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end) {
    if (vma->vm_flags & VM_LOCKED) return EINVAL_;
    mmu_gather tlb;
    tlb_gather_mmu(tlb, k, *vma->vm_mm);
    madvise_cold_or_pageout_page_range(k, vma, start, end, &tlb);
    tlb_finish_mmu(tlb);
    return 0;
}

// hugepage_madvise + madvise_update_vma.  Returns the VMA now covering the range.
vm_area_struct* madvise_hugepage(mm_struct& mm, vm_area_struct* vma, uint64_t start,
                                 uint64_t end, Advice a) {
    uint64_t f = vma->vm_flags;
    f = a == Advice::hugepage ? (f | VM_HUGEPAGE) & ~VM_NOHUGEPAGE
                              : (f | VM_NOHUGEPAGE) & ~VM_HUGEPAGE;
    if (f == vma->vm_flags) return vma;
    return vma_modify_flags(mm, vma, start, end, f);
}

// madvise_vma_behavior for one VMA's part [start, end).  Sets *covered to where the
// walk continues.
int madvise_vma(Kernel& k, mm_struct& mm, vm_area_struct* vma, uint64_t start, uint64_t end,
                Advice a, uint64_t* covered) {
    *covered = vma->vm_end;
    switch (a) {
        case Advice::dontneed: return madvise_dontneed(k, vma, start, end);
        case Advice::pageout: return madvise_pageout(k, vma, start, end);
        case Advice::cold: return madvise_cold(k, vma, start, end);
        case Advice::hugepage:
        case Advice::nohugepage: *covered = madvise_hugepage(mm, vma, start, end, a)->vm_end; return 0;
        case Advice::collapse: {
            bool dropped = false;  // the walk looks each VMA up again anyway
            return madvise_collapse(k, vma, start, end, &dropped);
        }
        default: throw NotBuilt("madvise advice other than dontneed/pageout/cold/hugepage/nohugepage/collapse");
    }
}

// madvise_walk_vmas: visit every VMA in [start, end); a hole makes the result ENOMEM
// but the walk goes on.
int madvise_walk_vmas(Kernel& k, mm_struct& mm, uint64_t start, uint64_t end, Advice a) {
    int unmapped_error = 0;
    vm_area_struct* vma = mm.find_vma(start);
    for (;;) {
        if (!vma) return ENOMEM_;
        if (start < vma->vm_start) {
            unmapped_error = ENOMEM_;
            start = vma->vm_start;
            if (start >= end) break;
        }
        uint64_t tmp = std::min(vma->vm_end, end), covered = 0;
        if (int error = madvise_vma(k, mm, vma, start, tmp, a, &covered)) return error;
        start = std::max(tmp, covered);
        if (start >= end) break;
        vma = mm.find_vma(start);
    }
    return unmapped_error;
}

}  // namespace

std::string sys_madvise(Kernel& k, uint64_t start, uint64_t pages, Advice advice) {
    mm_struct& mm = k.current_mm();
    uint64_t end = start + pages * PAGE_SIZE;
    bool write = need_mmap_write(advice);
    if (write) mmap_write_lock(mm, MMR_SITE("do_madvise"));
    else mmap_read_lock(mm, MMR_SITE("do_madvise"));
    int error = madvise_walk_vmas(k, mm, start, end, advice);
    if (write) mmap_write_unlock(mm, MMR_SITE("do_madvise"));
    else mmap_read_unlock(mm, MMR_SITE("do_madvise"));
    return error ? errno_name(error) : "0";
}

}  // namespace mmrace::ops
