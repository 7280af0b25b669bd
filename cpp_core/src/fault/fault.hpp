// Page-fault handling: flags and return codes as in include/linux/mm_types.h, the
// per-fault state struct vm_fault, and the entry points of the fault path.
#pragma once

#include <cstdint>

#include "mm/kernel.hpp"
#include "mm/pgalloc.hpp"

namespace mmrace::fault {

using mm::Kernel;
using mm::vm_area_struct;

// enum fault_flag
enum FaultFlag : uint32_t {
    FAULT_FLAG_WRITE = 1u << 0,
    FAULT_FLAG_MKWRITE = 1u << 1,
    FAULT_FLAG_ALLOW_RETRY = 1u << 2,
    FAULT_FLAG_RETRY_NOWAIT = 1u << 3,
    FAULT_FLAG_KILLABLE = 1u << 4,
    FAULT_FLAG_TRIED = 1u << 5,
    FAULT_FLAG_USER = 1u << 6,
    FAULT_FLAG_REMOTE = 1u << 7,
    FAULT_FLAG_INSTRUCTION = 1u << 8,
    FAULT_FLAG_INTERRUPTIBLE = 1u << 9,
    FAULT_FLAG_UNSHARE = 1u << 10,
    FAULT_FLAG_ORIG_PTE_VALID = 1u << 11,
    FAULT_FLAG_VMA_LOCK = 1u << 12,
};
constexpr uint32_t FAULT_FLAG_DEFAULT =
    FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE | FAULT_FLAG_INTERRUPTIBLE;

// vm_fault_t bits
enum VmFault : uint32_t {
    VM_FAULT_OOM = 0x000001,
    VM_FAULT_SIGBUS = 0x000002,
    VM_FAULT_MAJOR = 0x000004,
    VM_FAULT_SIGSEGV = 0x000040,
    VM_FAULT_NOPAGE = 0x000100,
    VM_FAULT_LOCKED = 0x000200,
    VM_FAULT_RETRY = 0x000400,
    VM_FAULT_COMPLETED = 0x004000,
};
using vm_fault_t = uint32_t;
constexpr vm_fault_t VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV;

struct vm_fault {
    vm_area_struct* vma;
    uint32_t flags;
    uint64_t address;       // page aligned
    uint64_t real_address;  // the faulting address
    mm::PteRef pte;         // set once the PTE table exists
    mm::pte_t orig_pte = 0;
};

// x86 page-fault error code bits (arch/x86/include/asm/trap_pf.h).
constexpr uint32_t X86_PF_PROT = 1, X86_PF_WRITE = 2, X86_PF_USER = 4;

// What a user access fault ends in: handled (retry the access), a signal, or
// VM_FAULT_OOM with no OOM killer to make room (a pool bounded by config is empty).
enum class UserFault : uint8_t { handled, sigsegv, sigbus, oom };

// do_user_addr_fault (arch/x86/mm/fault.c): the fault entry for a user access.
// Takes no locks on entry and holds none on return.  Dispatches by the configured
// strategy; every strategy falls back to the classic path.
UserFault do_user_addr_fault(Kernel& k, uint64_t address, uint32_t error_code);

// The classic mmap_lock fault, from lock_mmap: in do_user_addr_fault to its end.
// No locks on entry or return.
UserFault classic_fault(Kernel& k, uint64_t address, uint32_t error_code, uint32_t flags);

// handle_mm_fault (mm/memory.c).  Called with mmap_lock held for read.  Returns with
// it held, except with VM_FAULT_RETRY or VM_FAULT_COMPLETED, when it was dropped.
vm_fault_t handle_mm_fault(Kernel& k, vm_area_struct* vma, uint64_t address, uint32_t flags);

// access_error (arch/x86/mm/fault.c): true if the VMA forbids this access.
bool access_error(uint32_t error_code, const vm_area_struct& vma);

}  // namespace mmrace::fault
