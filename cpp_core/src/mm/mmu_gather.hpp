// struct mmu_gather (mm/mmu_gather.c, include/asm-generic/tlb.h): zap PTEs, flush the
// TLBs, and only then free the pages and page tables that were unmapped.  Freeing
// before the flush would let another CPU write through a stale translation into a page
// that already belongs to someone else.
#pragma once

#include <cstdint>
#include <vector>

#include "mm/folio.hpp"
#include "mm/pgtable.hpp"

namespace mmrace::mm {

class Kernel;
struct mm_struct;

struct mmu_gather {
    Kernel* k = nullptr;
    mm_struct* mm = nullptr;
    bool fullmm = false;          // exit_mmap: the whole address space goes
    uint64_t start = UINT64_MAX;  // the range whose translations must be flushed
    uint64_t end = 0;
    std::vector<Pfn> pages;       // references to drop after the flush
    std::vector<TableId> tables;  // page tables to free after the flush
};

// tlb_gather_mmu / tlb_gather_mmu_fullmm
void tlb_gather_mmu(mmu_gather& tlb, Kernel& k, mm_struct& mm, bool fullmm = false);
// tlb_remove_tlb_entry: addr's translation must be flushed.
void tlb_remove_tlb_entry(mmu_gather& tlb, uint64_t addr);
// __tlb_remove_folio_pages: drop this mapping's folio reference after the flush.
void tlb_remove_folio(mmu_gather& tlb, Pfn pfn);
// pte_free_tlb / pmd_free_tlb / pud_free_tlb: free a page table after the flush.
void tlb_remove_table(mmu_gather& tlb, TableId t, uint64_t addr, uint64_t span);
// tlb_flush_mmu_tlbonly: flush the gathered range on every CPU.
void tlb_flush_mmu_tlbonly(mmu_gather& tlb);
// tlb_flush_mmu: flush, then free what was gathered.
void tlb_flush_mmu(mmu_gather& tlb);
// tlb_finish_mmu
void tlb_finish_mmu(mmu_gather& tlb);

}  // namespace mmrace::mm
