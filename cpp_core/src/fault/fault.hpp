// Page-fault handling: flags and return codes as in include/linux/mm_types.h, the
// per-fault state struct vm_fault, and the entry points of the fault path.
#pragma once

#include <cstdint>
#include <optional>

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
    // The 2018 series' flag: no mmap_lock, no VMA lock; PTE locks are taken with
    // pte_map_lock/pte_spinlock, which re-validate the VMA and PMD.
    FAULT_FLAG_SPECULATIVE = 1u << 13,
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
    VM_FAULT_FALLBACK = 0x000800,  // a huge page fault could not: fall back to PTEs
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
    // vma->vm_flags as read when the fault began ("mm: Cache some VMA fields in the
    // vm_fault structure"): a speculative fault must not see a half-done change.
    uint64_t vma_flags = 0;
    uint64_t pgoff = 0;  // linear_page_index(vma, address), read with vma_flags
    uint64_t anon_vma = 0;  // vma->anon_vma: read at the start (spf) or once prepared
    // Speculative faults: the VMA sequence count read at the start, the PMD table and
    // slot that point to the PTE table, and that PMD entry as read then (orig_pmd).
    unsigned sequence = 0;
    mm::TableId pmd_table = mm::kNoTable;
    uint64_t pmd_index = 0;
    uint64_t orig_pmd = 0;
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

// The VMA a try of the fault used before VM_FAULT_RETRY dropped its lock, with the
// allocation it was: only the fault_retry_stale_vma mutant looks at it again.
struct RetryVma {
    vm_area_struct* vma = nullptr;
    uint64_t serial = 0;
};

// The classic mmap_lock fault, from lock_mmap: in do_user_addr_fault to its end.
// No locks on entry or return.
// spf_vma: a VMA the speculative path found and holds a reference on, or null.
// retried: the VMA of a per-VMA-lock try that returned VM_FAULT_RETRY, or none.
UserFault classic_fault(Kernel& k, uint64_t address, uint32_t error_code, uint32_t flags,
                        vm_area_struct* spf_vma = nullptr, RetryVma retried = {});

// handle_mm_fault (mm/memory.c).  Called with mmap_lock held for read, or with
// FAULT_FLAG_VMA_LOCK with vma's read lock.  Returns with it held, except with
// VM_FAULT_RETRY or VM_FAULT_COMPLETED, when it was dropped (release_fault_lock).
vm_fault_t handle_mm_fault(Kernel& k, vm_area_struct* vma, uint64_t address, uint32_t flags);

// handle_pte_fault for a speculative fault (FAULT_FLAG_SPECULATIVE) whose walk filled
// vmf: no lock held.  VM_FAULT_RETRY means a check failed and the classic path must
// run; no lock is held on return.
vm_fault_t handle_pte_fault_speculative(Kernel& k, vm_fault& vmf);

// pte_map_lock / pte_spinlock for FAULT_FLAG_SPECULATIVE (fault/spf.cpp): with IRQs
// off, re-check the VMA and the PMD, spin_trylock the PTE lock and re-check the VMA
// under it.  True with the PTE lock held; false (the fault must abort) without.
bool spf_pte_map_lock(Kernel& k, vm_fault& vmf);

// release_fault_lock: drop whichever lock the fault holds (mmap_lock or the VMA lock).
void release_fault_lock(Kernel& k, vm_fault& vmf);

// mm_fault_error and the signal a failed fault ends in, once no lock is held.
UserFault mm_fault_result(Kernel& k, vm_fault_t fault);

// The per-VMA-lock fault of do_user_addr_fault (fault/pervma.cpp): handled (or a
// signal) under one VMA's lock, or nullopt to fall back to mmap_lock.  May add
// FAULT_FLAG_TRIED to *flags for the fallback, and sets *retried to the VMA it used
// when that VMA's fault returned VM_FAULT_RETRY.  No locks on entry or return.
std::optional<UserFault> pervma_fault(Kernel& k, uint64_t address, uint32_t error_code,
                                      uint32_t* flags, RetryVma* retried);

// The speculative fault (fault/spf.cpp): handled or a signal, or nullopt to fall back,
// with *vma set to a referenced VMA the classic path may reuse (can_reuse_spf_vma).
std::optional<UserFault> spf_fault(Kernel& k, uint64_t address, uint32_t error_code,
                                   uint32_t flags, vm_area_struct** vma);

// do_swap_page as mm/internal.h exports it to khugepaged (__collapse_huge_page_swapin):
// vmf filled with the swap PTE; mmap_lock held for read, dropped with VM_FAULT_RETRY.
vm_fault_t do_swap_page_for_khugepaged(Kernel& k, vm_fault& vmf);

// access_error (arch/x86/mm/fault.c): true if the VMA forbids this access.
bool access_error(uint32_t error_code, const vm_area_struct& vma);

}  // namespace mmrace::fault
