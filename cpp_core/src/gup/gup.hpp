// get_user_pages and friends (mm/gup.c): the kernel's own accesses to user memory by
// page, with references (FOLL_GET) or pins (FOLL_PIN), and the pin accounting of
// include/linux/mm.h.  DESIGN §6.
#pragma once

#include <cstdint>
#include <vector>

#include "mm/kernel.hpp"

namespace mmrace::gup {

using mm::Kernel;
using mm::Pfn;
using mm::mm_struct;
using mm::vm_area_struct;

// enum gup_flags (include/linux/mm_types.h) and the internal ones (mm/internal.h).
enum FollFlag : uint32_t {
    FOLL_WRITE = 1u << 0,
    FOLL_GET = 1u << 1,
    FOLL_FORCE = 1u << 3,
    FOLL_NOWAIT = 1u << 4,
    FOLL_LONGTERM = 1u << 8,
    FOLL_TOUCH = 1u << 16,
    FOLL_TRIED = 1u << 17,
    FOLL_REMOTE = 1u << 18,
    FOLL_PIN = 1u << 19,
    FOLL_FAST_ONLY = 1u << 20,
    FOLL_UNLOCKABLE = 1u << 21,
};

// include/linux/mm.h: an order-0 folio's pins are counted in its refcount.
constexpr int64_t GUP_PIN_COUNTING_BIAS = 1024;

// Errnos GUP returns, negated as in the kernel.
constexpr long EFAULT_ = 14, ENOMEM_ = 12, EBUSY_ = 16, EAGAIN_ = 11, EMLINK_ = 31;

// folio_maybe_dma_pinned: an order-0 folio is maybe pinned when its refcount reaches
// the bias (false positives with huge refcounts are accepted upstream too).
bool folio_maybe_dma_pinned(const Kernel& k, Pfn p);

// try_grab_folio: FOLL_GET takes a reference, FOLL_PIN the bias (and pincount), neither
// nothing (a GUP that keeps no pages: populate); the zero page is never pinned
// (c8070b787519).  False if the folio is already free.
bool try_grab_folio(Kernel& k, Pfn p, uint32_t flags);
// gup_put_folio / unpin_user_page: drops what try_grab_folio took; the last put frees.
// An unpin checks sanity_check_pinned_pages (an anonymous pinned page stays exclusive).
void gup_put_folio(Kernel& k, Pfn p, uint32_t flags);

// gup_must_unshare (include/linux/mm.h): must a read-only FOLL_PIN unshare this page
// (break COW early) before pinning it?  vma may be null (gup_fast).
bool gup_must_unshare(const Kernel& k, const vm_area_struct* vma, uint32_t flags, Pfn p);

// __get_user_pages: mmap_lock held for read.  Fills pages with grabbed folios, starting
// at `start`; returns how many, or a negative errno if none.  With `locked`
// (FOLL_UNLOCKABLE) a fault may drop mmap_lock: then *locked becomes false and the
// count so far is returned.
long __get_user_pages(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages, uint32_t flags,
                      std::vector<Pfn>& pages, bool* locked);

// __get_user_pages_locked: with *locked true, mmap_lock is held for read on entry; it
// may be dropped and retaken to retry with FOLL_TRIED.  Returns with *locked telling
// whether it is still held.  Pages got, or a negative errno.
long __get_user_pages_locked(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages,
                             std::vector<Pfn>& pages, bool* locked, uint32_t flags);

// get_user_pages_unlocked: no lock on entry or return.
long get_user_pages_unlocked(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages,
                             std::vector<Pfn>& pages, uint32_t flags);

// get_user_pages (get_user_pages_remote with FOLL_REMOTE): the caller holds mmap_lock
// for read, and it is never dropped.
long get_user_pages(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages, uint32_t flags,
                    std::vector<Pfn>& pages);

// gup_fast_fallback -> pin_user_pages_fast / get_user_pages_fast: the lockless walk with
// IRQs off for current->mm, then the slow path (get_user_pages_unlocked) for the rest.
// No locks on entry or return.
long gup_fast_fallback(Kernel& k, uint64_t start, long nr_pages, uint32_t flags,
                       std::vector<Pfn>& pages);

// pin_user_pages (FOLL_PIN), mmap_lock taken here.  No locks on entry or return.
long pin_user_pages(Kernel& k, uint64_t start, long nr_pages, uint32_t flags,
                    std::vector<Pfn>& pages);

// unpin_user_pages
void unpin_user_pages(Kernel& k, const std::vector<Pfn>& pages);

// __access_remote_vm (mm/memory.c): one 8-byte word at addr of mm with FOLL_FORCE, as
// /proc/pid/mem and ptrace do.  False if the page cannot be got (the caller's -EIO).
bool access_remote_vm(Kernel& k, mm_struct& mm, uint64_t addr, uint64_t* value, bool write);

// sanity_check_pinned_pages for one folio (DEBUG_VM).
void sanity_check_pinned_page(const Kernel& k, Pfn p);

}  // namespace mmrace::gup
