// The fault entry (DESIGN §5, "fault/entry"): one function every strategy passes
// through, as arch/x86/mm/fault.c do_user_addr_fault is in the kernel.
#include "fault/fault.hpp"
#include "mmrace/run.hpp"

namespace mmrace::fault {

bool access_error(uint32_t error_code, const vm_area_struct& vma) {
    if (error_code & X86_PF_WRITE) return !(vma.vm_flags & mm::VM_WRITE);
    // A read that faulted on a present PTE is a protection fault.
    if (error_code & X86_PF_PROT) return true;
    return !(vma.vm_flags & mm::VM_ACCESS_FLAGS);
}

UserFault do_user_addr_fault(Kernel& k, uint64_t address, uint32_t error_code) {
    uint32_t flags = FAULT_FLAG_DEFAULT;
    if (error_code & X86_PF_USER) flags |= FAULT_FLAG_USER;
    if (error_code & X86_PF_WRITE) flags |= FAULT_FLAG_WRITE;
    vm_area_struct* spf_vma = nullptr;
    RetryVma retried;
    switch (k.config.strategy) {
        case Strategy::classic:
            break;
        case Strategy::spf:
            if (auto done = spf_fault(k, address, error_code, flags, &spf_vma)) return *done;
            break;
        case Strategy::pervma:
            if (auto done = pervma_fault(k, address, error_code, &flags, &retried)) return *done;
            break;
    }
    return classic_fault(k, address, error_code, flags, spf_vma, retried);  // lock_mmap:
}

UserFault mm_fault_result(Kernel& k, vm_fault_t fault) {
    if (!(fault & VM_FAULT_ERROR)) return UserFault::handled;
    if (fault & VM_FAULT_SIGBUS) {
        k.counters.inc(mm::Counter::sigbus);
        return UserFault::sigbus;
    }
    if (fault & VM_FAULT_OOM) {
        // pagefault_out_of_memory leaves it to the OOM killer and the access is
        // retried; the model has no OOM killer, so the access fails with OOM.
        k.counters.inc(mm::Counter::fault_oom);
        return UserFault::oom;
    }
    k.counters.inc(mm::Counter::sigsegv);  // VM_FAULT_SIGSEGV
    return UserFault::sigsegv;
}

}  // namespace mmrace::fault
