// khugepaged and MADV_COLLAPSE (mm/khugepaged.c, as upstream today): collapse the
// order-0 anonymous pages of one PMD range into a PMD-order folio mapped by a huge PMD
// (DESIGN §6, seed 002).
//
// The collapse scans under mmap_read_lock, swaps missing pages in under it (do_swap_page
// may drop it: the collapse then fails with SCAN_PAGE_LOCK), drops it to allocate, takes
// mmap_write_lock and looks the VMA up again (hugepage_vma_revalidate: Kirill
// Shutemov's review of seed 002), write-locks the VMA (pervma), takes the anon_vma lock,
// clears the PMD and flushes the TLBs (pmdp_collapse_flush: the IPI waits for the
// speculative fault's IRQs-off walk), isolates and copies the pages, deposits the old
// PTE table under the new huge PMD and installs it.
//
// spf: the 2018 series' cover letter (seed 000) relies on the PMD re-check under the
// PTE lock to see a collapse; the model's collapse does not open a vm_write_begin
// section (later revisions of the series added one, which makes the PMD re-check a
// second line of defence).  File THP (collapse_file,
// retract_page_tables) is in khugepaged_file.cpp.
#pragma once

#include <cstdint>
#include <string>

#include "mm/kernel.hpp"

namespace mmrace::mm {

// enum scan_result (mm/khugepaged.c).
enum class ScanResult : uint8_t {
    SCAN_FAIL,
    SCAN_SUCCEED,
    SCAN_PMD_NULL,
    SCAN_PMD_NONE,
    SCAN_PMD_MAPPED,
    SCAN_EXCEED_NONE_PTE,
    SCAN_EXCEED_SWAP_PTE,
    SCAN_EXCEED_SHARED_PTE,
    SCAN_PTE_NON_PRESENT,
    SCAN_PTE_UFFD_WP,
    SCAN_PTE_MAPPED_HUGEPAGE,
    SCAN_PAGE_RO,
    SCAN_LACK_REFERENCED_PAGE,
    SCAN_PAGE_NULL,
    SCAN_SCAN_ABORT,
    SCAN_PAGE_COUNT,
    SCAN_PAGE_LRU,
    SCAN_PAGE_LOCK,
    SCAN_PAGE_ANON,
    SCAN_PAGE_COMPOUND,
    SCAN_ANY_PROCESS,
    SCAN_VMA_NULL,
    SCAN_VMA_CHECK,
    SCAN_ADDRESS_RANGE,
    SCAN_DEL_PAGE_LRU,
    SCAN_ALLOC_HUGE_PAGE_FAIL,
    SCAN_CGROUP_CHARGE_FAIL,
    SCAN_TRUNCATED,
    SCAN_PAGE_HAS_PRIVATE,
    SCAN_STORE_FAILED,
    SCAN_COPY_MC,
    SCAN_PAGE_FILLED,
};
const char* scan_result_name(ScanResult r);

// The kthread op `collapse PNAME ADDR`: khugepaged_scan_mm_slot on the one PMD range
// holding ADDR of process `process` (khugepaged's sysfs limits: max_ptes_none
// HPAGE_PMD_NR - 1, max_ptes_swap HPAGE_PMD_NR / 8, max_ptes_shared HPAGE_PMD_NR / 2;
// enabled=madvise, so the VMA needs VM_HUGEPAGE).  No locks on entry or return.
// Returns "0" (SCAN_SUCCEED) or the scan_result's name.
std::string khugepaged_collapse(Kernel& k, int process, uint64_t addr);

// madvise_collapse for [start, end) of vma (MADV_COLLAPSE): mmap_lock held for read on
// entry and on return, though it may have been dropped (*dropped is then set: the
// caller must look VMAs up again).  Returns 0 or a positive errno as madvise gives it.
int madvise_collapse(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end, bool* dropped);

}  // namespace mmrace::mm
