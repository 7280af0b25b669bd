#include "mm/filemap.hpp"

#include <algorithm>

#include "fault/fault.hpp"
#include "mm/file_thp.hpp"
#include "mm/huge_memory.hpp"
#include "mm/kernel.hpp"
#include "mm/lru.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/mmu_gather.hpp"
#include "mm/unmap.hpp"
#include "mm/vma_lock.hpp"
#include "sync/lockdep.hpp"

namespace mmrace::mm {

namespace {

using fault::FAULT_FLAG_ALLOW_RETRY;
using fault::FAULT_FLAG_RETRY_NOWAIT;
using fault::FAULT_FLAG_TRIED;

// What a thread waiting for a folio lock waits on; the holder is a thread, or read
// I/O (no thread: the completion is a pending event, so it is not a deadlock).
struct FolioLockWait final : rt::Waitable {
    Kernel* k;
    Pfn p;
    FolioLockWait(Kernel* k_, Pfn p_) : k(k_), p(p_) {}
    std::string describe() const override { return "folio lock of pfn " + std::to_string(p); }
    void holders(std::vector<rt::Tid>& out) const override {
        if ((*k).folios[p].lock_owner != rt::kNoThread) out.push_back((*k).folios[p].lock_owner);
    }
};

}  // namespace

void folio_unlock_nosched(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    f.locked = false;
    f.lock_owner = rt::kNoThread;
    std::vector<uint32_t> waiters;
    waiters.swap(f.lock_waiters);
    for (uint32_t t : waiters) k.rt.wake(t);
}

namespace {

// A new page-cache folio for `index`, locked for read I/O and not uptodate; the read
// completes as an event that fills it (zeroes: nothing is ever written back yet) and
// unlocks it.  The caller gets a reference, the page cache holds another.
Pfn add_and_read(Kernel& k, address_space& f, uint64_t index, bool read) {
    Pfn p = k.folios.alloc();
    if (p == FolioPool::kNoPfn) return p;
    Folio& fo = k.folios[p];
    fo.flags = 0;
    fo.mapping = f.id;
    fo.index = index;
    k.folios.get(p);  // the page cache's reference
    f.i_pages[index] = p;
    folio_add_lru(k, p);  // filemap_add_folio
    if (!read) {  // a page past EOF being written: zeroed, no I/O
        fo.flags |= PG_uptodate;
        return p;
    }
    fo.locked = true;
    fo.lock_owner = rt::kNoThread;
    k.rt.note(MMR_SITE("filemap_read_folio"), rt::Ev::io_submit, p);
    Kernel* kp = &k;
    k.rt.post_event(MMR_SITE("read_io_complete"), nullptr, [kp, p] {
        kp->folios[p].flags |= PG_uptodate;
        folio_unlock_nosched(*kp, p);
    });
    return p;
}

// The cached page for index with a reference on its folio, or a new folio under read
// I/O.
Pfn find_or_read(Kernel& k, address_space& f, uint64_t index) {
    auto it = f.i_pages.find(index);
    if (it != f.i_pages.end()) {
        k.folios.get(page_folio(k.folios, it->second));
        return it->second;
    }
    return add_and_read(k, f, index, !f.shmem && index < f.size_pages());
}

// unmap_mapping_range(mapping, from, 0, even_cows=1): zap every page at or after page
// `from` in every VMA mapping the file, private COW copies included.
void unmap_mapping_range(Kernel& k, address_space& f, uint64_t from) {
    f.i_mmap_rwsem.down_read(MMR_SITE("unmap_mapping_range"));
    for (size_t i = 0; i < f.i_mmap.size(); ++i) {
        vm_area_struct* v = f.i_mmap[i];
        uint64_t last = v->vm_pgoff + v->pages();
        if (last <= from) continue;
        uint64_t start = v->vm_start + (std::max(from, v->vm_pgoff) - v->vm_pgoff) * PAGE_SIZE;
        mmu_gather tlb;
        tlb_gather_mmu(tlb, k, *v->vm_mm);
        unmap_single_vma(tlb, v, start, v->vm_end);
        tlb_finish_mmu(tlb);
    }
    f.i_mmap_rwsem.up_read(MMR_SITE("unmap_mapping_range"));
}

// truncate_inode_pages (shmem_undo_range for shmem): drop every cached page at or
// after page `from`.  A THP across the new end is split first (truncate_inode_partial_folio:
// split_folio, which unmaps its PMDs); if that fails (a pin, a racing reference) the
// folio stays whole with its pages past the end zeroed, as a dirty folio does upstream,
// and the walk goes on after it.  i_rwsem and invalidate_lock held for write.
void truncate_inode_pages(Kernel& k, address_space& f, uint64_t from) {
    uint64_t next = from;
    for (auto it = f.i_pages.lower_bound(next); it != f.i_pages.end(); it = f.i_pages.lower_bound(next)) {
        Pfn p = page_folio(k.folios, it->second);
        k.folios.get(p);
        folio_lock(k, p);  // waits for read I/O in flight
        Folio& fo = k.folios[p];
        uint64_t nr = uint64_t{1} << fo.order;
        if (fo.mapping == f.id && fo.order && fo.index < from) {
            if (split_folio(k, p) != 0) {
                for (uint64_t i = from - fo.index; i < nr; ++i) k.folios[p + static_cast<Pfn>(i)].words.clear();
                next = fo.index + nr;  // folio_zero_range; the folio stays in the cache
            }
        } else if (fo.mapping == f.id && fo.index >= from) {  // nobody removed it while we slept
            for (uint64_t i = 0; i < nr; ++i) f.i_pages.erase(fo.index + i);
            fo.mapping = -1;
            for (uint64_t i = 0; i < nr; ++i) k.folios.put(p);  // the page cache's references
        }
        folio_unlock(k, p);
        k.folios.put(p);
    }
}

}  // namespace

void folio_lock(Kernel& k, Pfn p) {
    sync::might_sleep(MMR_SITE("folio_lock"));
    k.rt.yield(MMR_SITE("folio_lock"), rt::Ev::lock_acquire, p);
    while (k.folios[p].locked) {
        FolioLockWait w(&k, p);
        k.folios[p].lock_waiters.push_back(k.rt.self());
        k.rt.wait(MMR_SITE("folio_lock"), &w);
    }
    k.folios[p].locked = true;
    k.folios[p].lock_owner = k.rt.self();
}

bool folio_trylock(Kernel& k, Pfn p) {
    k.rt.yield(MMR_SITE("folio_trylock"), rt::Ev::lock_acquire, p);
    if (k.folios[p].locked) return false;
    k.folios[p].locked = true;
    k.folios[p].lock_owner = k.rt.self();
    return true;
}

void folio_unlock(Kernel& k, Pfn p) {
    folio_unlock_nosched(k, p);
    k.rt.yield(MMR_SITE("folio_unlock"), rt::Ev::lock_release, p);
}

void i_mmap_lock_write(Kernel& k, int file) {
    if (file >= 0) k.files[file]->i_mmap_rwsem.down_write(MMR_SITE("i_mmap_lock_write"));
}

void i_mmap_unlock_write(Kernel& k, int file) {
    if (file >= 0) k.files[file]->i_mmap_rwsem.up_write(MMR_SITE("i_mmap_unlock_write"));
}

void i_mmap_insert(Kernel& k, vm_area_struct* vma) {
    if (vma->vm_file < 0) return;
    address_space& f = *k.files[vma->vm_file];
    sync::lockdep_assert_held(f.i_mmap_rwsem, sync::LockMode::write);
    f.i_mmap.push_back(vma);
}

void i_mmap_remove(Kernel& k, vm_area_struct* vma) {
    if (vma->vm_file < 0) return;
    address_space& f = *k.files[vma->vm_file];
    sync::lockdep_assert_held(f.i_mmap_rwsem, sync::LockMode::write);
    f.i_mmap.erase(std::remove(f.i_mmap.begin(), f.i_mmap.end(), vma), f.i_mmap.end());
}

void vma_link_file(Kernel& k, vm_area_struct* vma) {
    i_mmap_lock_write(k, vma->vm_file);
    i_mmap_insert(k, vma);
    i_mmap_unlock_write(k, vma->vm_file);
}

void unlink_file_vma(Kernel& k, vm_area_struct* vma) {
    if (vma->vm_file < 0) return;
    address_space& f = *k.files[vma->vm_file];
    i_mmap_lock_write(k, vma->vm_file);
    i_mmap_remove(k, vma);
    bool last = f.i_mmap.empty();
    i_mmap_unlock_write(k, vma->vm_file);
    // The last mapping of a shmem object drops the last file reference:
    // shmem_evict_inode truncates its page cache.
    if (f.shmem && last) truncate_inode_pages(k, f, 0);
}

uint32_t filemap_fault(Kernel& k, vm_area_struct* vma, uint64_t index, uint32_t flags, Pfn* page) {
    address_space& f = *k.files[vma->vm_file];
    // The fault's lock, mmap_lock or (config vma_lock=file, 6.7) the VMA lock:
    // maybe_unlock_mmap_for_io and lock_folio_maybe_drop_mmap use release_fault_lock.
    auto release_fault_lock = [&] {
        if (flags & fault::FAULT_FLAG_VMA_LOCK) vma_end_read(vma);
        else mmap_read_unlock(*vma->vm_mm, MMR_SITE("filemap_fault"));
    };
    uint32_t ret = 0;
    // maybe_unlock_mmap_for_io: a fault that may retry does not sleep on I/O holding
    // mmap_lock, on its first attempt only (fault_flag_allow_retry_first): a retried
    // fault that cannot get memory must end in VM_FAULT_OOM, not retry forever.
    bool may_drop =
        (flags & (FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_RETRY_NOWAIT | FAULT_FLAG_TRIED)) ==
        FAULT_FLAG_ALLOW_RETRY;
    bool dropped = false;
    for (;;) {
        if (index >= f.size_pages()) return fault::VM_FAULT_SIGBUS;
        Pfn p;
        if (auto it = f.i_pages.find(index); it != f.i_pages.end()) {
            p = page_folio(k.folios, it->second);
            k.folios.get(p);
        } else if (f.shmem) {  // shmem_fault -> shmem_get_folio_gfp: a zeroed page, no I/O
            p = find_or_read(k, f, index);
            if (p == FolioPool::kNoPfn) return fault::VM_FAULT_OOM;
        } else {  // no page in the page cache at all: do_sync_mmap_readahead
            k.counters.inc(Counter::pgmajfault);
            ret |= fault::VM_FAULT_MAJOR;
            if (may_drop && !dropped) {
                release_fault_lock();
                dropped = true;
            }
            f.invalidate_lock.down_read(MMR_SITE("filemap_fault"));
            p = find_or_read(k, f, index);
            f.invalidate_lock.up_read(MMR_SITE("filemap_fault"));
            if (p == FolioPool::kNoPfn) return dropped ? ret | fault::VM_FAULT_RETRY : fault::VM_FAULT_OOM;
        }
        // lock_folio_maybe_drop_mmap
        if (!folio_trylock(k, p)) {
            if (may_drop && !dropped) {
                release_fault_lock();
                dropped = true;
            }
            folio_lock(k, p);
        }
        // Truncated, or split (truncate, reclaim) so that it no longer holds index.
        bool truncated = k.folios[p].mapping != f.id || !folio_contains(k, p, index);
        if (truncated || dropped) {
            // The VMA may be gone once mmap_lock was dropped: the caller retries and
            // looks it up again.
            folio_unlock(k, p);
            k.folios.put(p);
            if (dropped) return ret | fault::VM_FAULT_RETRY;
            continue;  // retry_find
        }
        if (index >= f.size_pages()) {  // recheck i_size under the folio lock
            folio_unlock(k, p);
            k.folios.put(p);
            return fault::VM_FAULT_SIGBUS;
        }
        // A page-cache THP stays whole: finish_fault maps it (mm/file_thp.hpp).
        *page = p + static_cast<Pfn>(index - k.folios[p].index);
        return ret | fault::VM_FAULT_LOCKED;
    }
}

std::string file_write(Kernel& k, address_space& f, uint64_t pgoff, uint64_t value) {
    f.i_rwsem.down_write(MMR_SITE("generic_file_write_iter"));
    Pfn page = find_or_read(k, f, pgoff);  // write_begin
    if (page == FolioPool::kNoPfn) {
        f.i_rwsem.up_write(MMR_SITE("generic_file_write_iter"));
        return "ENOMEM";
    }
    Pfn p = page_folio(k.folios, page);
    folio_lock(k, p);
    // Only a THP split while we slept changes the page's folio; the page stays cached
    // (truncation needs i_rwsem, held here).
    if (page_folio(k.folios, page) != p) {
        folio_unlock(k, p);
        k.folios.put(p);
        p = page_folio(k.folios, page);
        k.folios.get(p);
        folio_lock(k, p);
    }
    k.folios[page].write_word(0, value);  // copy_folio_from_iter_atomic
    folio_mark_accessed(k, p);            // write_begin's FGP_ACCESSED
    k.folios[p].flags |= PG_dirty;
    f.i_size = std::max(f.i_size, pgoff * PAGE_SIZE + 8);  // write_end: i_size_write
    folio_unlock(k, p);
    k.folios.put(p);
    f.i_rwsem.up_write(MMR_SITE("generic_file_write_iter"));
    return "ok";
}

std::string do_truncate(Kernel& k, address_space& f, uint64_t pages) {
    f.i_rwsem.down_write(MMR_SITE("do_truncate"));
    f.invalidate_lock.down_write(MMR_SITE("do_truncate"));
    uint64_t old_pages = f.size_pages();
    f.i_size = pages * PAGE_SIZE;  // truncate_setsize: i_size_write first
    if (pages < old_pages || f.i_pages.lower_bound(pages) != f.i_pages.end()) {
        // truncate_pagecache: unmap, drop from the cache, unmap again (a racing
        // private COW of a page being dropped may have mapped it meanwhile).
        unmap_mapping_range(k, f, pages);
        truncate_inode_pages(k, f, pages);
        unmap_mapping_range(k, f, pages);
    }
    f.invalidate_lock.up_write(MMR_SITE("do_truncate"));
    f.i_rwsem.up_write(MMR_SITE("do_truncate"));
    return "0";
}

}  // namespace mmrace::mm
