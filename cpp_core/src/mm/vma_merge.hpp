// Merging VMAs (mm/vma.c: vma_merge_existing_range, vma_merge_new_range, vma_modify).
#pragma once

#include <cstdint>

#include "mm/mm_struct.hpp"

namespace mmrace::mm {

// vma_modify_flags: give [start, end) (inside vma) the flags newflags, merging it into
// a neighbour where upstream would, else splitting vma at start and end.  Returns the
// VMA that now covers [start, end).  mmap_lock held for write.
vm_area_struct* vma_modify_flags(mm_struct& mm, vm_area_struct* vma, uint64_t start,
                                 uint64_t end, uint64_t newflags);

// vma_merge_new_range: cover the new range [start, end) (flags, file, pgoff at start,
// and the anon_vma it brings, 0 for a fresh mapping) by expanding a neighbour.
// Returns it, or null if none can merge.  mmap_lock held for write.  With keep_locked
// the returned VMA stays inside the merge's write section (vma_write_begin), which the
// caller ends: the spf series' __vma_merge(..., keep_locked) for copy_vma, so that no
// speculative fault fills the merged range before the caller is done with it.
vm_area_struct* vma_merge_new_range(mm_struct& mm, uint64_t start, uint64_t end,
                                    uint64_t flags, int file, uint64_t pgoff,
                                    const vm_area_struct* src = nullptr,
                                    bool keep_locked = false);

}  // namespace mmrace::mm
