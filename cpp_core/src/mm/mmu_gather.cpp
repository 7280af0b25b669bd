#include "mm/mmu_gather.hpp"

#include <algorithm>

#include "mm/kernel.hpp"

namespace mmrace::mm {

void tlb_gather_mmu(mmu_gather& tlb, Kernel& k, mm_struct& mm, bool fullmm) {
    tlb = mmu_gather{};
    tlb.k = &k;
    tlb.mm = &mm;
    tlb.fullmm = fullmm;
}

void tlb_remove_tlb_entry(mmu_gather& tlb, uint64_t addr) {
    tlb.start = std::min(tlb.start, addr & ~(PAGE_SIZE - 1));
    tlb.end = std::max(tlb.end, (addr & ~(PAGE_SIZE - 1)) + PAGE_SIZE);
}

void tlb_remove_folio(mmu_gather& tlb, Pfn pfn) { tlb.pages.push_back(pfn); }

void tlb_remove_table(mmu_gather& tlb, TableId t, uint64_t addr, uint64_t span) {
    // Freeing a table also invalidates the paging-structure caches for its range.
    tlb.start = std::min(tlb.start, addr);
    tlb.end = std::max(tlb.end, addr + span);
    tlb.tables.push_back(t);
}

void tlb_flush_mmu_tlbonly(mmu_gather& tlb) {
    if (tlb.fullmm) {
        if (tlb.start < tlb.end) flush_tlb_mm(*tlb.k, *tlb.mm);
    } else if (tlb.start < tlb.end) {
        flush_tlb_mm_range(*tlb.k, *tlb.mm, tlb.start, tlb.end);
    }
    tlb.start = UINT64_MAX;
    tlb.end = 0;
}

void tlb_flush_mmu(mmu_gather& tlb) {
    tlb_flush_mmu_tlbonly(tlb);
    // free_pages_and_swap_cache: an unmapped folio no swap PTE needs leaves the swap
    // cache before the unmap's reference is dropped.
    for (Pfn p : tlb.pages) {
        free_swap_cache(*tlb.k, p);
        tlb.k->folios.put(p);
    }
    tlb.pages.clear();
    for (TableId t : tlb.tables) tlb.k->tables.free(t);
    tlb.tables.clear();
}

void tlb_finish_mmu(mmu_gather& tlb) { tlb_flush_mmu(tlb); }

}  // namespace mmrace::mm
