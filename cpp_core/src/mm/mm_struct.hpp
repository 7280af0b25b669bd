// struct mm_struct (include/linux/mm_types.h): one address space.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "mm/maple_tree.hpp"
#include "mm/pgtable.hpp"
#include "mm/vma.hpp"
#include "sync/rwsem.hpp"
#include "sync/seqcount.hpp"
#include "sync/spinlock.hpp"

namespace mmrace::mm {

// mmap_base for top-down placement: as x86-64 without randomisation, TASK_SIZE less
// the stack gap, rounded down.
constexpr uint64_t kMmapBase = 0x7ff000000000ull;
constexpr uint64_t kMmapMinAddr = 0x10000;  // vm.mmap_min_addr

struct mm_struct {
    explicit mm_struct(int id_) : id(id_) {}

    int id;
    sync::RwSem mmap_lock{"&mm->mmap_lock"};
    sync::SpinLock page_table_lock{"&mm->page_table_lock"};  // upper page-table levels
    // The VMA tree, keyed by vm_end, as find_vma searches it (mm_mt in the kernel).
    MapleTree mm_mt;
    // spf: the 2018 series' mm_rb rwlock; a speculative fault looks VMAs up under its
    // read side, writers change the tree under its write side (mm_rb_write_lock).
    sync::RwLock mm_rb_lock{"&mm->mm_rb_lock"};
    // pervma: advanced by mmap_write_unlock/downgrade (vma_end_write_all), ending every
    // VMA write lock taken under that mmap_lock hold.
    int64_t mm_lock_seq = 0;
    std::map<uint64_t, TableId> pgd;  // PGD index -> PUD table
    uint64_t mmap_base = kMmapBase;
    int mm_users = 0;
    // MMF_HAS_PINNED: a FOLL_PIN ran on this mm, so fork must look for pinned pages.
    bool has_pinned = false;
    // mm->write_protect_seq: fork write-protects COW pages inside a write section; a
    // FOLL_PIN gup_fast backs off if it moved (57efa1fe5957).
    sync::SeqCount write_protect_seq{"&mm->write_protect_seq"};

    // find_vma (mm/mmap.c): the first VMA with vm_end > addr, or null.
    vm_area_struct* find_vma(uint64_t addr) const;
    // vma_lookup: the VMA containing addr, or null.
    vm_area_struct* vma_lookup(uint64_t addr) const;
    // The VMA that ends at or before addr with the highest end (find_vma_prev's prev).
    vm_area_struct* find_vma_prev(uint64_t addr) const;

    vm_area_struct* vm_area_alloc();
    // vm_area_dup (kernel/fork.c): a new VMA with orig's fields, its own locks, and no
    // anon_vma chain yet (anon_vma_clone/anon_vma_fork link it).
    vm_area_struct* vm_area_dup(const vm_area_struct& orig);
    // vm_area_free: classic frees at once; pervma through RCU (lockless walkers may
    // still hold it, 6.4's vm_area_free_rcu_cb); spf drops the tree's reference
    // (put_vma), so a speculative fault's get_vma keeps it.
    void vm_area_free(vm_area_struct* vma);
    // __free_vma: back to the allocator.  Not called directly: vm_area_free decides when.
    void free_vma_now(vm_area_struct* vma);
    void vma_link(vm_area_struct* vma);    // insert into the tree; mmap_lock held for write
    void vma_unlink(vm_area_struct* vma);  // remove from the tree; mmap_lock held for write
    size_t live_vmas() const { return vmas_.size() - free_vmas_.size(); }

private:
    std::vector<std::unique_ptr<vm_area_struct>> vmas_;  // storage; freed ones reused
    std::vector<vm_area_struct*> free_vmas_;
    uint64_t vma_serial_ = 0;
};

}  // namespace mmrace::mm
