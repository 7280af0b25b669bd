// The classic fault path (DESIGN §5 `classic`): mmap_lock held for read around
// handle_mm_fault, with VM_FAULT_RETRY dropping it to wait and a retry that must look
// the VMA up again (seeds 001 and 003).
#include "check/report.hpp"
#include "fault/fault.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/spf_vma.hpp"
#include "mm/stack.hpp"
#include "ops/ops.hpp"

namespace mmrace::fault {

namespace {

// can_reuse_spf_vma (seed 000): with mmap_lock held, the VMA a speculative fault found
// may serve the classic fault if it is still in the tree and still covers addr.
// Drops the speculative reference.
bool can_reuse_spf_vma(vm_area_struct* vma, uint64_t addr) {
    bool ok = !vma->detached && vma->vm_start <= addr && addr < vma->vm_end;
    mm::put_vma(vma);
    return ok;
}

// lock_mm_and_find_vma (mm/memory.c, 6.5+): mmap_read_lock, then find_vma.  Below a
// VM_GROWSDOWN VMA it drops the read lock, takes the write lock (mmap_upgrade_trylock
// always fails upstream), looks the VMA up again and expands the stack, then
// downgrades.  Returns the VMA with mmap_lock held for read, or null with it released.
vm_area_struct* lock_mm_and_find_vma(Kernel& k, mm::mm_struct& mm, uint64_t addr,
                                     vm_area_struct* spf_vma) {
    mm::mmap_read_lock(mm, MMR_SITE("lock_mm_and_find_vma"));
    // can_reuse_spf_vma: the speculative path's VMA, if still in the tree and holding
    // addr; its reference goes either way (mmap_lock now keeps it alive).
    vm_area_struct* vma = spf_vma && can_reuse_spf_vma(spf_vma, addr) ? spf_vma : mm.find_vma(addr);
    if (vma && vma->vm_start <= addr) return vma;
    mm::mmap_read_unlock(mm, MMR_SITE("lock_mm_and_find_vma"));
    if (!vma || !(vma->vm_flags & mm::VM_GROWSDOWN)) return nullptr;
    mm::mmap_write_lock(mm, MMR_SITE("lock_mm_and_find_vma"));
    vma = mm.find_vma(addr);  // the VMA may have changed while unlocked
    if (vma && (vma->vm_start <= addr ||
                ((vma->vm_flags & mm::VM_GROWSDOWN) && !mm::expand_downwards(mm, vma, addr)))) {
        mm::mmap_write_downgrade(mm, MMR_SITE("lock_mm_and_find_vma"));
        return vma;
    }
    mm::mmap_write_unlock(mm, MMR_SITE("lock_mm_and_find_vma"));
    return nullptr;
}

// The fault_retry_stale_vma mutant (seeds 001, 003).  do_user_addr_fault
// (arch/x86/mm/fault.c) answers VM_FAULT_RETRY with `goto retry`, which runs
// lock_mm_and_find_vma again: while the lock was dropped for I/O or a userfault, the
// VMA may have been unmapped, split or merged, and freed.  The mutant retakes
// mmap_lock and goes on with the VMA of the try before.  A freed VMA (or its slot,
// reallocated) is KASAN's use-after-free; a live one is used as it now is.
vm_area_struct* relock_retry_vma(mm::mm_struct& mm, const RetryVma& before, uint64_t addr) {
    mm::mmap_read_lock(mm, MMR_SITE("do_user_addr_fault_retry"));
    if (before.vma->freed || before.vma->serial != before.serial)
        check::violation(Check::use_after_free,
                         "the fault retried at " + ops::hex(addr) +
                             " uses a VMA that was freed while mmap_lock was dropped");
    return before.vma;
}

UserFault bad_area(Kernel& k) {
    k.counters.inc(mm::Counter::sigsegv);
    return UserFault::sigsegv;
}

}  // namespace

UserFault classic_fault(Kernel& k, uint64_t address, uint32_t error_code, uint32_t flags,
                        vm_area_struct* spf_vma, RetryVma retried) {
    mm::mm_struct& mm = k.current_mm();
    const bool stale = k.mutant(MutantId::fault_retry_stale_vma);
    for (;;) {  // retry:
        vm_area_struct* vma = stale && retried.vma ? relock_retry_vma(mm, retried, address)
                                                   : lock_mm_and_find_vma(k, mm, address, spf_vma);
        spf_vma = nullptr;
        if (!vma) return bad_area(k);  // bad_area_nosemaphore
        if (access_error(error_code, *vma)) {
            mm::mmap_read_unlock(mm, MMR_SITE("bad_area_access_error"));
            return bad_area(k);
        }
        const RetryVma tried{vma, vma->serial};  // before the lock may drop
        vm_fault_t fault = handle_mm_fault(k, vma, address, flags);
        if (fault & VM_FAULT_COMPLETED) return UserFault::handled;
        if (fault & VM_FAULT_RETRY) {
            // mmap_lock was dropped: vma may be gone.  Look it up again (seed 001).
            k.counters.inc(mm::Counter::fault_retry);
            retried = tried;
            flags |= FAULT_FLAG_TRIED;
            continue;
        }
        mm::mmap_read_unlock(mm, MMR_SITE("do_user_addr_fault"));
        return mm_fault_result(k, fault);
    }
}

}  // namespace mmrace::fault
