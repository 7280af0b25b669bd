// Stack VMAs that grow down (mm/mmap.c: expand_downwards, acct_stack_growth,
// stack_guard_gap; include/linux/mm.h: vm_start_gap).
#pragma once

#include <cstdint>

#include "mm/mm_struct.hpp"

namespace mmrace::mm {

constexpr uint64_t kStackGuardGap = 256ull << PAGE_SHIFT;  // stack_guard_gap default
constexpr uint64_t kRlimitStack = 8ull << 20;              // RLIMIT_STACK default

// vm_start_gap: where a VMA effectively starts for placement: a VM_GROWSDOWN VMA keeps
// the guard gap below it free.
uint64_t vm_start_gap(const vm_area_struct* vma);

// expand_downwards: grow vma down to cover addr.  mmap_lock held for write.  0, or an
// errno (EPERM below mmap_min_addr, ENOMEM inside another VMA's guard gap or past
// RLIMIT_STACK, EFAULT if vma does not grow down).
int expand_downwards(mm_struct& mm, vm_area_struct* vma, uint64_t addr);

}  // namespace mmrace::mm
