// struct vm_area_struct (include/linux/mm_types.h): one mapping of an address space.
#pragma once

#include <cstdint>
#include <vector>

#include "sync/rwsem.hpp"
#include "sync/seqcount.hpp"

namespace mmrace::mm {

struct mm_struct;

// vm_flags bits, as in include/linux/mm.h.
enum VmFlag : uint64_t {
    VM_READ = 0x1,
    VM_WRITE = 0x2,
    VM_EXEC = 0x4,
    VM_SHARED = 0x8,
    VM_MAYREAD = 0x10,
    VM_MAYWRITE = 0x20,
    VM_MAYEXEC = 0x40,
    VM_MAYSHARE = 0x80,
    VM_GROWSDOWN = 0x100,
    VM_UFFD_MISSING = 0x200,
    VM_UFFD_WP = 0x1000,
    VM_LOCKED = 0x2000,
    // Charged to the commit limit (accountable_mapping).  Only merging looks at it here:
    // VMAs whose VM_ACCOUNT differs do not merge.
    VM_ACCOUNT = 0x00100000,
    VM_HUGEPAGE = 0x20000000,
    VM_NOHUGEPAGE = 0x40000000,
};
constexpr uint64_t VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

// What vm_area_dup copies: the mapping itself.  The per-VMA synchronisation of the
// speculative strategies (vm_area_struct below) belongs to one allocation and is never
// copied.
struct vm_area_fields {
    uint64_t vm_start = 0;
    uint64_t vm_end = 0;  // exclusive
    uint64_t vm_flags = 0;
    uint64_t vm_pgoff = 0;
    int vm_file = -1;     // index of the file, -1 for anonymous memory
    mm_struct* vm_mm = nullptr;
    bool detached = false;
    // The anon_vma new anonymous folios of this VMA get (an id into Kernel::anon_vmas;
    // 0 = none yet), and the anon_vma_chain: every anon_vma whose tree this VMA is on,
    // newest first (its own, then its parent's after fork, up to the root).  Merging and
    // anon_vma reuse depend on both (list_is_singular(&anon_vma_chain)).  A copy of a
    // VMA (vm_area_dup) must not keep the chain: anon_vma_clone/anon_vma_fork link it.
    uint64_t anon_vma = 0;
    std::vector<uint64_t> anon_vma_chain;

    bool vma_is_anonymous() const { return vm_file < 0; }
    // is_cow_mapping (include/linux/mm.h): private and may be written.
    bool is_cow_mapping() const { return (vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE; }
    uint64_t pages() const { return (vm_end - vm_start) >> 12; }
    // The file (or, for anonymous memory, linear) page offset of addr.
    uint64_t pgoff_at(uint64_t addr) const { return vm_pgoff + ((addr - vm_start) >> 12); }
    // vma_had_uncowed_parents: a forked VMA whose anon_vma chain reaches its parent's.
    bool had_uncowed_parents() const { return anon_vma && anon_vma_chain.size() != 1; }
};

struct vm_area_struct : vm_area_fields {
    // Which allocation of this slot it is: a lockless reader that kept a pointer tells
    // a freed and reused VMA from the one it found (a use after free).
    uint64_t serial = 0;
    bool freed = false;  // returned to the allocator (after RCU or the last put_vma)

    // spf (seed 000): vm_sequence, odd while a writer changes what a speculative fault
    // reads (vm_write_begin/vm_write_end), and vm_ref_count (get_vma/put_vma).
    sync::SeqCount vm_sequence{"&vma->vm_sequence"};
    int vm_write_depth = 0;  // nested vma_write_begin of one modifier (model bookkeeping)
    int64_t vm_ref_count = 0;
    // pervma (include/linux/mm.h, 6.4+): vm_lock, read-held by a fault that runs under
    // this VMA alone, and vm_lock_seq: equal to mm->mm_lock_seq while the VMA is write
    // locked (vma_start_write) until mmap_write_unlock advances mm_lock_seq.
    sync::RwSem vm_lock{"&vma->vm_lock->lock"};
    int64_t vm_lock_seq = -1;
};

}  // namespace mmrace::mm
