// Tearing mappings down (mm/memory.c): unmap_vmas/zap_pte_range and free_pgtables.
#pragma once

#include <cstdint>

#include "mm/mmu_gather.hpp"
#include "mm/vma.hpp"

namespace mmrace::mm {

// unmap_single_vma: zap every PTE of vma in [start, end) into the gather (rmap removed
// now, references dropped after the flush).  mmap_lock held; the VMA is not
// reachable by new faults (detached, or the whole mm is going away).
void unmap_single_vma(mmu_gather& tlb, vm_area_struct* vma, uint64_t start, uint64_t end);

// free_pgtables / free_pgd_range: free the page tables that cover only addresses in
// [floor, ceiling) and overlap [start, end).  floor and ceiling are the neighbouring
// VMAs' edges, so no table another VMA still uses is freed.
void free_pgtables(mmu_gather& tlb, uint64_t start, uint64_t end, uint64_t floor,
                   uint64_t ceiling);

}  // namespace mmrace::mm
