// The VMA side of the speculative page fault series (seed 000, Laurent Dufour's v7 on
// 4.15): the mm_rb rwlock around the VMA tree, the per-VMA sequence count and the VMA
// reference count.  Every function here is a no-op unless the strategy is spf
// (CONFIG_SPECULATIVE_PAGE_FAULT), so the other strategies' schedules are unchanged.
#pragma once

#include <cstdint>

#include "mm/mm_struct.hpp"

namespace mmrace::mm {

// mm_rb_write_lock / mm_rb_write_unlock ("mm: Protect mm_rb tree with a rwlock"): a
// writer changes the tree under it, with mmap_lock held for write.
void mm_rb_write_lock(mm_struct& mm);
void mm_rb_write_unlock(mm_struct& mm);

// vm_write_begin / vm_write_end ("mm: VMA sequence count"): bracket every change of
// what a speculative fault reads from vma: bounds, flags, page tables moving under it,
// PTEs zapped (unmap_page_range) and the anon_vma going (free_pgtables).  A section
// one writer opens inside its own (mremap's unmap of the range it moves) joins it.
// Without lockdep (vm_raw_write_begin): one writer may hold many VMAs' sections, as
// __vma_adjust and dup_mmap do.
void vm_write_begin(vm_area_struct* vma);
void vm_write_end(vm_area_struct* vma);

// get_vma: find_vma under the mm_rb read lock, taking a reference that keeps the VMA
// from being freed (not from changing).  Null if no VMA ends above addr.
vm_area_struct* get_vma(mm_struct& mm, uint64_t addr);
// put_vma: drop a reference; the last one frees the VMA (__free_vma).
void put_vma(vm_area_struct* vma);
// A writer's own reference on a VMA it must still touch after unmapping it (spf only;
// no-ops otherwise).
void hold_vma(vm_area_struct* vma);
void release_vma(vm_area_struct* vma);

// vma_has_changed: the VMA left the tree (RB_EMPTY_NODE) or its sequence count moved
// since the speculative fault read `sequence`.
bool vma_has_changed(vm_area_struct* vma, unsigned sequence);

}  // namespace mmrace::mm
