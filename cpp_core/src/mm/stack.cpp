#include "mm/stack.hpp"

#include "mm/anon_vma.hpp"
#include "mm/kernel.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/vma_lock.hpp"

namespace mmrace::mm {

uint64_t vm_start_gap(const vm_area_struct* vma) {
    if (!(vma->vm_flags & VM_GROWSDOWN)) return vma->vm_start;
    return vma->vm_start > kStackGuardGap ? vma->vm_start - kStackGuardGap : 0;
}

int expand_downwards(mm_struct& mm, vm_area_struct* vma, uint64_t addr) {
    mmap_assert_write_locked(mm);
    if (!(vma->vm_flags & VM_GROWSDOWN)) return 14;  // EFAULT
    addr &= ~(PAGE_SIZE - 1);
    if (addr < kMmapMinAddr) return 1;  // EPERM
    // Enforce stack_guard_gap against an accessible neighbour that is not a stack.
    if (vm_area_struct* prev = mm.find_vma_prev(vma->vm_start))
        if (!(prev->vm_flags & VM_GROWSDOWN) && (prev->vm_flags & VM_ACCESS_FLAGS) &&
            (addr < prev->vm_end || addr - prev->vm_end < kStackGuardGap))
            return 12;  // ENOMEM
    Kernel& k = Kernel::current();
    anon_vma_prepare(k, vma);
    if (addr >= vma->vm_start) return 0;  // somebody else expanded it already
    uint64_t grow = (vma->vm_start - addr) >> PAGE_SHIFT;
    if (grow > vma->vm_pgoff || vma->vm_end - addr > kRlimitStack) return 12;  // acct_stack_growth
    vma_write_begin(vma);  // c137381f71ae: expand_downwards write-locks the VMA
    // "We update the anon VMA tree": rmap walkers see the old bounds or the new ones.
    anon_vma* av = vma->anon_vma ? anon_vma_of(k, vma->anon_vma) : nullptr;
    if (av) anon_vma_lock_write(av);
    mm.vma_unlink(vma);
    vma->vm_start = addr;
    vma->vm_pgoff -= grow;
    mm.vma_link(vma);
    if (av) anon_vma_unlock_write(av);
    vma_write_end_spf(vma);
    return 0;
}

}  // namespace mmrace::mm
