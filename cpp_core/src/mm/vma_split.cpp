#include "mm/vma_split.hpp"

#include "mm/anon_vma.hpp"
#include "mm/huge_memory.hpp"
#include "mm/kernel.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/vma_lock.hpp"

namespace mmrace::mm {

vm_area_struct* split_vma(mm_struct& mm, vm_area_struct* vma, uint64_t addr, bool new_below) {
    mmap_assert_write_locked(mm);
    Kernel& k = Kernel::current();
    vma_write_begin(vma);  // vma_start_write
    vm_area_struct* n = mm.vm_area_dup(*vma);
    anon_vma_clone(k, n, vma);  // the new half is on every anon_vma the old one is
    // vma_prepare: i_mmap_rwsem, then the anon_vma lock, so that an rmap walker
    // (reclaim, split_folio) never finds the VMA with its bounds half changed.
    i_mmap_lock_write(k, vma->vm_file);
    anon_vma* av = vma->anon_vma ? anon_vma_of(k, vma->anon_vma) : nullptr;
    if (av) anon_vma_lock_write(av);
    // No huge PMD across the boundary.  After the VMA write lock, so that no THP fault
    // under the VMA lock can install one after the split.
    vma_adjust_trans_huge(k, vma, addr);
    mm.vma_unlink(vma);
    if (new_below) {
        n->vm_end = addr;
        vma->vm_pgoff += (addr - vma->vm_start) >> PAGE_SHIFT;
        vma->vm_start = addr;
    } else {
        n->vm_start = addr;
        n->vm_pgoff += (addr - vma->vm_start) >> PAGE_SHIFT;
        vma->vm_end = addr;
    }
    mm.vma_link(vma);
    mm.vma_link(n);
    if (av) anon_vma_unlock_write(av);  // vma_complete
    i_mmap_insert(k, n);  // vma_complete: the new half joins i_mmap
    i_mmap_unlock_write(k, vma->vm_file);
    vma_write_end_spf(vma);
    return n;
}

}  // namespace mmrace::mm
