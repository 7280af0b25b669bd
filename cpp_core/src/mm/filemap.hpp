// Files and the page cache (include/linux/fs.h struct address_space, mm/filemap.c,
// mm/truncate.c).  A file's pages live in the page cache; a page that is not cached
// is read by I/O, which the policy schedules as an event, and a fault that has to wait
// for it drops mmap_lock and returns VM_FAULT_RETRY (seed 001).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mm/folio.hpp"
#include "mm/vma.hpp"
#include "sync/rwsem.hpp"

namespace mmrace::mm {

class Kernel;

struct address_space {
    int id = -1;
    std::string name;
    uint64_t i_size = 0;                  // bytes
    // A shmem file behind MAP_SHARED|MAP_ANONYMOUS (shmem_zero_setup): pages are born
    // zeroed without I/O, and the file dies with its last mapping.
    bool shmem = false;
    std::map<uint64_t, Pfn> i_pages;      // the page cache, by page index
    std::vector<vm_area_struct*> i_mmap;  // the VMAs that map the file (rmap)
    sync::RwSem i_rwsem{"&sb->s_type->i_mutex_key"};            // inode_lock
    sync::RwSem invalidate_lock{"&mapping->invalidate_lock"};   // filemap_invalidate_lock
    sync::RwSem i_mmap_rwsem{"&mapping->i_mmap_rwsem"};         // i_mmap_lock_*

    uint64_t size_pages() const { return (i_size + 4095) / 4096; }
};

// folio_lock / folio_trylock / folio_unlock (mm/filemap.c).  folio_lock may sleep.
void folio_lock(Kernel& k, Pfn p);
bool folio_trylock(Kernel& k, Pfn p);
void folio_unlock(Kernel& k, Pfn p);
// Releases PG_locked and wakes every waiter (folio_wake_bit); no scheduling point, so
// that an I/O completion event may call it.
void folio_unlock_nosched(Kernel& k, Pfn p);

// vma_link_file / unlink_file_vma: a file VMA enters or leaves its file's i_mmap,
// under i_mmap_rwsem for write.  Nothing for anonymous VMAs.
void vma_link_file(Kernel& k, vm_area_struct* vma);
void unlink_file_vma(Kernel& k, vm_area_struct* vma);
// For splits and merges, which change a file VMA's bounds under i_mmap_rwsem
// (vma_prepare / vma_complete): lock, insert or remove with the lock held, unlock.
// `file` < 0 does nothing.
void i_mmap_lock_write(Kernel& k, int file);
void i_mmap_unlock_write(Kernel& k, int file);
void i_mmap_insert(Kernel& k, vm_area_struct* vma);
void i_mmap_remove(Kernel& k, vm_area_struct* vma);

// filemap_fault.  mmap_lock held for read.  Returns VM_FAULT_LOCKED with *page the
// page at pgoff, its folio (maybe a page-cache THP) locked and referenced, VM_FAULT_SIGBUS past EOF, or VM_FAULT_RETRY with mmap_lock
// dropped after waiting for read I/O (FAULT_FLAG_ALLOW_RETRY).
uint32_t filemap_fault(Kernel& k, vm_area_struct* vma, uint64_t pgoff, uint32_t flags, Pfn* page);

// write(2) of one word at the start of page `pgoff` (generic_perform_write): reads the
// page in if needed, extends i_size.  "ok".
std::string file_write(Kernel& k, address_space& f, uint64_t pgoff, uint64_t value);

// truncate(2) to `pages` pages (do_truncate -> truncate_setsize -> truncate_pagecache):
// unmaps the pages past the new end from every mapping, COWed copies included, and
// drops them from the page cache.  "0".
std::string do_truncate(Kernel& k, address_space& f, uint64_t pages);

}  // namespace mmrace::mm
