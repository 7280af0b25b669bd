// Page-cache THPs (shmem, from collapse_file): one PMD-order folio holds HPAGE_PMD_NR
// consecutive indexes of a file (xarray's multi-index entry).  The model's i_pages keeps
// each index's page (head + index - folio->index); the folio's refcount holds one page
// cache reference per page, as collapse_file's folio_ref_add(new_folio, HPAGE_PMD_NR - 1).
//
// They stay whole and are mapped as Linux maps them: finish_fault maps one with a huge
// PMD (do_set_pmd) when the VMA covers its aligned range with a congruent pgoff and the
// PMD is empty, else with PTEs (the whole folio when it fits the VMA and the PTE table,
// as anonymous shmem does since 6.11, else the faulting page), with per-page mapcounts
// as for PTE-mapped anonymous THPs (mm/rmap.hpp).  Splitting a file PMD only clears it
// (the range refaults); MADV_COLLAPSE's collapse_pte_mapped_thp installs the PMD.  Only
// split_folio makes order-0 folios of it: truncate across it, MADV_PAGEOUT of part of it,
// and reclaim (shmem_writeout's split; the model never swaps shmem out).
//
// Deviations: no THP beyond i_size is mapped whole (do_set_pmd and the whole-folio PTE
// path fall back), which only a truncate whose split failed (a pin) can leave; and the
// model's shmem faults map read-only on a read fault even in a shared writable VMA (as
// if it needed write notification), so a later write refaults (a read-only file PMD is
// cleared and the write fault maps it writable).
#pragma once

#include "mm/filemap.hpp"
#include "mm/kernel.hpp"

namespace mmrace::mm {

// folio_contains: the folio at head holds page `index` of its file.
inline bool folio_contains(const Kernel& k, Pfn head, uint64_t index) {
    const Folio& f = k.folios[head];
    return index >= f.index && index - f.index < (uint64_t{1} << f.order);
}

}  // namespace mmrace::mm
