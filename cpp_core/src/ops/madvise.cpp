// madvise(2): do_madvise and madvise_walk_vmas (mm/madvise.c).  Built: MADV_DONTNEED
// (zap_page_range_single under the read lock), MADV_PAGEOUT (reclaim of the folios only
// this mm maps, under the read lock), MADV_HUGEPAGE and MADV_NOHUGEPAGE (vma flags,
// under the write lock), MADV_COLLAPSE (madvise_collapse, mm/khugepaged.cpp, under the
// read lock, which it may drop and retake).
#include "mm/huge_memory.hpp"
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

// zap_page_range_single: unmap the pages, keep the VMA.
int madvise_dontneed(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end) {
    if (vma->vm_flags & VM_LOCKED) return EINVAL_;  // madvise_dontneed_free_valid_vma
    mmu_gather tlb;
    tlb_gather_mmu(tlb, k, *vma->vm_mm);
    unmap_single_vma(tlb, vma, start, end);
    tlb_finish_mmu(tlb);
    return 0;
}

// madvise_cold_or_pageout_pte_range (pageout) over one PTE table's part of [addr, end):
// under the PTE lock, isolate every normal folio mapped here that no other PTE maps;
// then, with the lock dropped, reclaim them.  Private file mappings of a file the
// caller cannot write would only page out anonymous folios (can_do_file_pageout); every
// file of a program is its own, so all qualify.
void madvise_pageout_pte_range(Kernel& k, vm_area_struct* vma, uint64_t addr, uint64_t end) {
    // A huge PMD is split (and its folio with it) before pageout, as upstream does for
    // a folio it means to reclaim.
    split_huge_pmd(k, vma, addr);
    TableId t = pte_table_lookup(k, *vma->vm_mm, addr);
    if (t == kNoTable) return;
    PteRef lock_ref{t, 0};
    std::vector<Pfn> folio_list;
    pte_lock(k, lock_ref, MMR_SITE("madvise_cold_or_pageout_pte_range"));
    for (; addr < end; addr += PAGE_SIZE) {
        pte_t ptent = k.tables[t].entries[k.geo.index(addr, PTE_LEVEL)];
        if (!pte_present(ptent) || pte_special(ptent)) continue;  // vm_normal_folio
        Pfn p = pte_pfn(ptent);
        // Do not interfere with other mappings of this folio.
        if (k.folios[p].mapcount != 1) continue;
        if (folio_isolate_lru(k, p)) folio_list.push_back(p);
    }
    pte_unlock(k, lock_ref, MMR_SITE("madvise_cold_or_pageout_pte_range"));
    reclaim_pages(k, folio_list);
}

// madvise_pageout: can_madv_lru_vma refuses mlocked VMAs.
int madvise_pageout(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end) {
    if (vma->vm_flags & VM_LOCKED) return EINVAL_;
    uint64_t span = k.geo.span(PTE_LEVEL);
    for (uint64_t a = start; a < end;) {
        uint64_t next = std::min((a / span + 1) * span, end);
        madvise_pageout_pte_range(k, vma, a, next);
        a = next;
    }
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
        case Advice::hugepage:
        case Advice::nohugepage: *covered = madvise_hugepage(mm, vma, start, end, a)->vm_end; return 0;
        case Advice::collapse: {
            bool dropped = false;  // the walk looks each VMA up again anyway
            return madvise_collapse(k, vma, start, end, &dropped);
        }
        default: throw NotBuilt("madvise advice other than dontneed/pageout/hugepage/nohugepage/collapse");
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
