// Reverse mapping (mm/rmap.c): a folio's mapcount and anon_vma bookkeeping as PTEs map
// and unmap it, and the rmap walk that finds every PTE mapping a folio, through its
// anon_vma (anonymous) or its file's i_mmap (page cache), for try_to_unmap.
#pragma once

#include <cstdint>

#include "mm/folio.hpp"
#include "mm/pgtable.hpp"
#include "mm/vma.hpp"

namespace mmrace::mm {

class Kernel;
struct mm_struct;

// linear_page_index: the page index of addr in vma (the file offset, or for anonymous
// memory the linear index anon folios are filed under).
inline uint64_t linear_page_index(const vm_area_struct* vma, uint64_t addr) {
    return vma->pgoff_at(addr);
}

// vma_address (mm/internal.h): where page pgoff of vma is mapped, or UINT64_MAX
// outside it.
inline uint64_t vma_address(const vm_area_struct* vma, uint64_t pgoff) {
    if (pgoff < vma->vm_pgoff || pgoff - vma->vm_pgoff >= vma->pages()) return UINT64_MAX;
    return vma->vm_start + ((pgoff - vma->vm_pgoff) << PAGE_SHIFT);
}

// folio_add_new_anon_rmap: the first mapping of a new anonymous folio at addr of vma
// (which has an anon_vma).  An exclusive folio gets vma's own anon_vma, a shared one the
// root (__folio_set_anon: "the _oldest_ possible anon_vma").  PTE lock held.
void folio_add_new_anon_rmap(Kernel& k, Pfn p, vm_area_struct* vma, uint64_t addr, bool exclusive);
// The same with the anon_vma (an id) and the folio's linear page index given (the
// series' __page_add_new_anon_rmap): a speculative fault read both when it began,
// since a merge or split may change vma while the fault holds only the PTE lock.
void __folio_add_new_anon_rmap(Kernel& k, Pfn p, uint64_t anon_vma, uint64_t index, bool exclusive);

// folio_add_anon_rmap_pte: one more mapping of an anonymous folio that keeps its
// anon_vma (do_swap_page on a swap-cache folio); RMAP_EXCLUSIVE marks the page
// exclusive.  Folio locked, PTE lock held.
void folio_add_anon_rmap_pte(Kernel& k, Pfn page, vm_area_struct* vma, uint64_t addr, bool exclusive);

// folio_move_anon_rmap: a folio only vma maps moves to vma's own anon_vma (do_wp_page
// reuse).  Folio locked.
// Takes the anon_vma id the fault read (vmf->anon_vma): a speculative fault's VMA may
// have been split and unmapped meanwhile, its anon_vma pointer cleared.
void folio_move_anon_rmap(Kernel& k, Pfn p, uint64_t anon_vma);

// __folio_add_rmap / __folio_remove_rmap at RMAP_LEVEL_PTE: nr consecutive pages from
// `page`, all of one folio, each mapped by one PTE more (fewer) in mm.  A small
// folio's mapcount is its page's; a large folio counts each page's PTE mappings and
// all its mappings on the head, with mm's share in the head's mm id slots.  PTE lock
// held.  The zero page has no mapcount.
void folio_add_rmap_ptes(Kernel& k, Pfn page, uint64_t nr, const mm_struct& mm);
void folio_remove_rmap_ptes(Kernel& k, Pfn page, uint64_t nr, const mm_struct& mm);
// folio_add_file_rmap_pte, folio_dup_file_rmap_pte, folio_remove_rmap_pte.
inline void folio_add_rmap_pte(Kernel& k, Pfn page, const mm_struct& mm) { folio_add_rmap_ptes(k, page, 1, mm); }
inline void folio_remove_rmap_pte(Kernel& k, Pfn page, const mm_struct& mm) {
    folio_remove_rmap_ptes(k, page, 1, mm);
}
// The same at RMAP_LEVEL_PMD: one huge PMD in mm maps the whole large folio at head.
// PMD lock held.
void folio_add_rmap_pmd(Kernel& k, Pfn head, const mm_struct& mm);
void folio_remove_rmap_pmd(Kernel& k, Pfn head, const mm_struct& mm);

// folio_maybe_mapped_shared (include/linux/mm.h): more than one mapping for a small
// folio; for a large one, a page mapped twice or a second mm in its mm id slots.
bool folio_maybe_mapped_shared(const FolioPool& pool, Pfn head);

// try_to_unmap (TTU_SYNC): unmap the folio from every PTE rmap finds.  An anonymous
// folio's PTEs become swap PTEs for folio->swap (it is in the swap cache), each taking a
// swap count; a page-cache folio's are cleared.  Each PTE is cleared and flushed from
// every TLB under its PTE lock (ptep_clear_flush) before the mapping's reference is
// dropped.  Folio locked, a reference held; takes the anon_vma lock or i_mmap_rwsem for
// read, then PTE locks.  The caller checks folio_mapped afterwards: a PTE rmap could not
// unmap (VM_LOCKED) leaves it mapped.
void try_to_unmap(Kernel& k, Pfn p);

// folio_referenced: how many PTEs mapping the folio had their young bit set, each
// cleared as it is counted (ptep_clear_young_notify: x86 clears the accessed bit without
// a TLB flush, so a CPU still holding the translation may touch the page unseen).  The
// rmap walk only trylocks the anon_vma or i_mmap_rwsem (rwc->try_lock): -1 when that
// failed (rwc->contended).  *vm_flags collects the flags of the VMAs that referenced it,
// and VM_LOCKED if a VMA maps it mlocked (the walk stops there).  is_locked: the
// caller holds the folio lock; otherwise a page-cache folio is trylocked for the walk
// and counts as referenced if that fails.  A reference held; takes the rmap lock for
// read, then PTE locks.
int folio_referenced(Kernel& k, Pfn p, bool is_locked, uint64_t* vm_flags);

}  // namespace mmrace::mm
