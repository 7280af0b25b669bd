// What mm/khugepaged.c shares between its anonymous half (khugepaged.cpp) and its file
// half (khugepaged_file.cpp).  Not for use elsewhere.
#pragma once

#include <cstdint>

#include "mm/filemap.hpp"
#include "mm/khugepaged.hpp"
#include "mm/pgalloc.hpp"
#include "mm/pgtable.hpp"

namespace mmrace::mm {

// struct collapse_control: who collapses, khugepaged (sysfs limits apply) or
// MADV_COLLAPSE.
struct collapse_control {
    bool is_khugepaged;
};

// hpage_collapse_test_exit: the mm's last user is gone (exit_mmap runs or ran).
bool hpage_collapse_test_exit(const mm_struct& mm);

// alloc_charge_folio: a PMD-order folio for a collapse (counted THP_COLLAPSE_ALLOC or
// THP_COLLAPSE_ALLOC_FAILED), or kNoPfn (SCAN_ALLOC_HUGE_PAGE_FAIL).  May sleep.
Pfn alloc_charge_folio(Kernel& k);

// __thp_vma_allowable_orders' size check outside a fault: thp_vma_suitable_order at
// vm_end - HPAGE_PMD_SIZE, i.e. the VMA holds a whole aligned PMD range.  Without one,
// MADV_COLLAPSE is EINVAL even where its range has no PMD to collapse.
bool vma_holds_pmd_range(const Kernel& k, const vm_area_struct* vma);

// find_pmd_or_thp_or_none: SCAN_SUCCEED for a PMD pointing to a PTE table (*pmd set),
// SCAN_PMD_NULL, SCAN_PMD_NONE or SCAN_PMD_MAPPED.  A lockless read of the PMD.
ScanResult find_pmd_or_thp_or_none(Kernel& k, mm_struct& mm, uint64_t haddr, PmdRef* pmd);

// thp_vma_allowable_order(vma, vm_flags, 0, PMD_ORDER) for MADV_COLLAPSE of a file
// VMA: shmem only (a regular file needs CONFIG_READ_ONLY_THP_FOR_FS and a file nobody
// has open for write: the model's files are always writable), no VM_NOHUGEPAGE, and
// thp_vma_suitable_order at the VMA's end (its address and pgoff congruent modulo a PMD,
// at least one PMD range inside it).
bool file_collapse_allowed(Kernel& k, const vm_area_struct* vma);

// hpage_collapse_scan_file + collapse_file for the PMD range of shmem `f` from page
// `start` (aligned): the small page-cache folios are replaced by one PMD-order folio
// and retract_page_tables removes the emptied PTE tables.  No locks on entry or
// return.  SCAN_PTE_MAPPED_HUGEPAGE (for MADV_COLLAPSE) or SCAN_SUCCEED on success.
ScanResult hpage_collapse_scan_file(Kernel& k, mm_struct& mm, address_space& f, uint64_t start,
                                    const collapse_control& cc);

// collapse_pte_mapped_thp(mm, addr, install_pmd = true), for MADV_COLLAPSE: the page
// cache holds a PMD-order folio for addr's range; mm's PTE table there, if it maps
// nothing but that folio's pages at their offsets, is emptied and freed, and the folio
// mapped by a huge PMD (set_huge_pmd).  SCAN_PMD_MAPPED if it already is.  mmap_lock
// held for write (6.2-6.4; the read lock since 6.5).
ScanResult collapse_pte_mapped_thp(Kernel& k, mm_struct& mm, uint64_t addr);

}  // namespace mmrace::mm
