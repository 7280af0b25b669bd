// The per-VMA-lock fault (DESIGN §5 `pervma`, seed 003; upstream since 6.4): look the
// VMA up under RCU, read-lock that VMA alone, and handle the fault without mmap_lock.
// Anything the VMA lock cannot cover falls back to the classic path.
#include "fault/fault.hpp"
#include "mm/vma_lock.hpp"
#include "sync/rcu.hpp"

namespace mmrace::fault {

namespace {

// lock_vma_under_rcu (mm/memory.c, 6.4 with 657b5146955e): the VMA holding address,
// read-locked, or null (VMA_LOCK_ABORT) when this fault must take mmap_lock.  No locks
// on entry; on success only the VMA lock is held.
vm_area_struct* lock_vma_under_rcu(Kernel& k, mm::mm_struct& mm, uint64_t address) {
    sync::rcu_read_lock(MMR_SITE("lock_vma_under_rcu"));
    for (;;) {  // retry:
        vm_area_struct* vma = mm.mm_mt.mas_walk_rcu(address);
        if (!vma) break;  // inval
        // Only anonymous VMAs: file faults may call into ->fault, which may rely on
        // mmap_lock (6.4).  config vma_lock=file is 6.7, where filemap_fault learnt to
        // drop the VMA lock for I/O.
        bool anon = vma->vma_is_anonymous();
        if (!anon && !k.config.vma_lock_file) break;
        if (!vma_start_read(vma)) break;
        // After locking (657b5146955e): anon_vma_prepare needs mmap_lock, and the
        // lockless value could be stale (a file VMA's COW fault checks in
        // vmf_anon_prepare instead).  A userfaultfd-armed VMA must be able to drop
        // mmap_lock in handle_userfault (6.4: userfaultfd_armed falls back; 6.6's "mm:
        // handle userfaults under VMA lock", config vma_lock=uffd, drops the VMA lock
        // instead).  vm_start/vm_end may have changed before the lock: no stack
        // expansion here, unlike the mmap_lock lookup.
        bool uffd_armed = vma->vm_flags & (mm::VM_UFFD_MISSING | mm::VM_UFFD_WP);
        if ((anon && !vma->anon_vma) || (uffd_armed && !k.config.vma_lock_uffd) ||
            address < vma->vm_start || address >= vma->vm_end) {
            vma_end_read(vma);  // inval_end_read
            break;
        }
        if (vma->detached) {  // isolated after we found it: the area was replaced
            vma_end_read(vma);
            k.counters.inc(mm::Counter::vma_lock_miss);
            continue;
        }
        sync::rcu_read_unlock(MMR_SITE("lock_vma_under_rcu"));
        return vma;
    }
    sync::rcu_read_unlock(MMR_SITE("lock_vma_under_rcu"));
    k.counters.inc(mm::Counter::vma_lock_abort);
    return nullptr;
}

}  // namespace

// do_user_addr_fault's per-VMA part (arch/x86/mm/fault.c, 6.5+): VM_FAULT_RETRY and
// VM_FAULT_COMPLETED come back with the VMA lock already dropped.
std::optional<UserFault> pervma_fault(Kernel& k, uint64_t address, uint32_t error_code,
                                      uint32_t* flags, RetryVma* retried) {
    if (!(*flags & FAULT_FLAG_USER)) return std::nullopt;
    vm_area_struct* vma = lock_vma_under_rcu(k, k.current_mm(), address);
    if (!vma) return std::nullopt;
    if (access_error(error_code, *vma)) {  // 6.4: let the mmap_lock path report it
        vma_end_read(vma);
        return std::nullopt;
    }
    const RetryVma tried{vma, vma->serial};  // before the VMA lock may drop
    vm_fault_t fault = handle_mm_fault(k, vma, address, *flags | FAULT_FLAG_VMA_LOCK);
    if (!(fault & (VM_FAULT_RETRY | VM_FAULT_COMPLETED))) vma_end_read(vma);
    if (!(fault & VM_FAULT_RETRY)) {
        k.counters.inc(mm::Counter::vma_lock_success);
        return mm_fault_result(k, fault);
    }
    k.counters.inc(mm::Counter::vma_lock_retry);
    *retried = tried;  // the VMA lock is gone: only a stale pointer is left
    if (fault & VM_FAULT_MAJOR) *flags |= FAULT_FLAG_TRIED;
    return std::nullopt;
}

}  // namespace mmrace::fault
