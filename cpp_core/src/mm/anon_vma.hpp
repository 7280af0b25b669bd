// anon_vma bookkeeping as far as it decides reuse and merging (mm/rmap.c,
// mm/vma.c).  The reverse map itself (anon_vma trees walked by rmap) comes with reclaim.
#pragma once

#include "mm/kernel.hpp"

namespace mmrace::mm {

// anon_vma_prepare (via vmf_anon_prepare): give vma an anon_vma before its first
// anonymous page, reusing a compatible neighbour's (find_mergeable_anon_vma).  mmap_lock
// held for read; the assignment is made under page_table_lock as upstream does.
void anon_vma_prepare(Kernel& k, vm_area_struct* vma);

// anon_vma_fork: the child's VMA gets a new anon_vma chained to the parent's.
void anon_vma_fork(Kernel& k, vm_area_struct* child, const vm_area_struct* parent);

// is_mergeable_anon_vma (mm/vma.c, 6.12+): can src's anon_vma (src_anon; src may be
// null for a new range) and tgt's be one after a merge?
bool is_mergeable_anon_vma(const vm_area_struct* src, uint64_t src_anon,
                           const vm_area_struct* tgt);

}  // namespace mmrace::mm
