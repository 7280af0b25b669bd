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
    uint32_t flags = FAULT_FLAG_DEFAULT | FAULT_FLAG_USER;
    if (error_code & X86_PF_WRITE) flags |= FAULT_FLAG_WRITE;
    switch (k.config.strategy) {
        case Strategy::classic:
            break;
        case Strategy::spf:
        case Strategy::pervma:
            // Rejected by check_built() before the run; kept exhaustive for the compiler.
            throw NotBuilt(std::string("strategy ") + strategy_name(k.config.strategy));
    }
    return classic_fault(k, address, error_code, flags);
}

}  // namespace mmrace::fault
