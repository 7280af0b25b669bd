// Splitting VMAs (mm/vma.c __split_vma).
#pragma once

#include <cstdint>

#include "mm/mm_struct.hpp"

namespace mmrace::mm {

// __split_vma: split vma at addr (page aligned, strictly inside it).  With new_below
// the new VMA is [vm_start, addr), else [addr, vm_end).  Returns the new VMA.
// mmap_lock held for write; takes the VMA write lock, i_mmap_rwsem and the anon_vma
// lock (vma_prepare) around the change of bounds.
vm_area_struct* split_vma(mm_struct& mm, vm_area_struct* vma, uint64_t addr, bool new_below);

}  // namespace mmrace::mm
