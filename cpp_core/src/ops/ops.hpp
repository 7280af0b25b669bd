// The syscalls and user accesses of a simulated thread (DESIGN §9 ops).  Each runs on
// the calling simulated thread and returns the op's result as .mmr prints it.
#pragma once

#include <cstdint>
#include <string>

#include "mm/kernel.hpp"
#include "mmrace/program.hpp"

namespace mmrace::ops {

using mm::Kernel;

// ksys_mmap_pgoff -> vm_mmap_pgoff -> do_mmap (mm/mmap.c).  An address or an errno.
std::string sys_mmap(Kernel& k, const Op& op);
// A user load or store of one 8-byte word: the MMU (DESIGN §4).  The value / "ok", or
// SIGSEGV / SIGBUS, or OOM when the fault ran out of a pool (VM_FAULT_OOM).
std::string user_read(Kernel& k, uint64_t addr);
std::string user_write(Kernel& k, uint64_t addr, uint64_t value);
// copy_from_user of one word, in kernel mode: __might_fault (lockdep learns that the
// caller's locks come before mmap_lock), then the access; a fault the fault path cannot
// resolve is fixed up (kernelmode_fixup_or_oops) into false, i.e. -EFAULT.
bool copy_from_user(Kernel& k, uint64_t addr, uint64_t& value);
// kernfs_fop_write on a sysfs attribute of the cpuid device (fs/kernfs/file.c), as the
// seed 002 report shows it: the user copy runs under the node's active reference.
// "ok", EFAULT, or ENODEV while the CPU (and so the file) is offline.
std::string sysfs_write(Kernel& k, uint64_t addr);
// The kthread op `cpu_hotplug`: _cpu_down then _cpu_up of one CPU (kernel/cpu.c).  "0".
std::string cpu_hotplug(Kernel& k);
// kernel_clone -> copy_process -> copy_mm -> dup_mmap (kernel/fork.c).  Starts the
// child's threads; returns the child's name, or ENOMEM (the child never runs) when a
// page table cannot be allocated.
std::string sys_fork(Kernel& k, int child_process, const std::string& child_name);

// munmap(2).  "0" or an errno.
std::string sys_munmap(Kernel& k, uint64_t start, uint64_t pages);
// mprotect(2).  "0" or an errno.
std::string sys_mprotect(Kernel& k, uint64_t start, uint64_t pages, uint8_t prot);
// madvise(2).  "0" or an errno.
std::string sys_madvise(Kernel& k, uint64_t start, uint64_t pages, Advice advice);
// do_vmi_munmap with mmap_lock held for write (see munmap.cpp).
void do_munmap(Kernel& k, mm::mm_struct& mm, uint64_t start, uint64_t end, bool downgrade);
// do_exit: the calling thread leaves its mm; the last one out runs exit_mmap.
void do_exit(Kernel& k);
// exit_mmap (mm/mmap.c): tear down an mm nobody uses any more.  No locks held.
void exit_mmap(Kernel& k, mm::mm_struct& mm);

// mremap(2).  The new address or an errno.
std::string sys_mremap(Kernel& k, const Op& op);
// No VMA intersects [addr, addr + len).
bool range_is_free(const mm::mm_struct& mm, uint64_t addr, uint64_t len);
// get_unmapped_area for an anonymous mapping: the hint if free, else top-down; 0 if
// nothing fits.
uint64_t get_unmapped_area(const mm::mm_struct& mm, uint64_t hint, uint64_t len);

// The `smaps PNAME` kthread op: a /proc/PID/smaps read of process `process` under its
// mmap_lock (ops/smaps.cpp).  "vmas=V rss=N anon=M swap=K" in pages, or ESRCH when the
// process has not started or has exited.  No locks held on entry.
std::string proc_smaps(Kernel& k, int process);

// Errno names as .mmr prints them.
enum Errno : int { EPERM_ = 1, ENOENT_ = 2, EAGAIN_ = 11, ENODEV_ = 19, ENOMEM_ = 12, EACCES_ = 13, EFAULT_ = 14,
                   EBADF_ = 9, EBUSY_ = 16, EEXIST_ = 17, EINVAL_ = 22 };
std::string errno_name(int e);
std::string hex(uint64_t v);

}  // namespace mmrace::ops
