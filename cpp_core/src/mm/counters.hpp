// Event counters of a run, named after the kernel's vmstat items (mm/vmstat.c
// vmstat_text), perf software events and trace events, lower-cased.
#pragma once

#include <array>
#include <cstdint>

namespace mmrace::mm {

#define MMRACE_COUNTERS(X)                                                              \
    X(pgfault)            /* PGFAULT: handle_mm_fault calls */                          \
    X(pgmajfault)         /* PGMAJFAULT: faults that waited for I/O */                  \
    X(fault_retry)        /* VM_FAULT_RETRY returned to do_user_addr_fault */           \
    X(fault_oom)          /* VM_FAULT_OOM returned to do_user_addr_fault */             \
    X(pgalloc_anon)       /* anonymous folios allocated by faults */                    \
    X(zero_page_map)      /* read faults that mapped the shared zero page */            \
    X(cow_copy)           /* wp_page_copy: a write fault copied the page */             \
    X(cow_reuse)          /* wp_page_reuse: a write fault reused the page */            \
    X(pte_alloc)          /* page-table pages allocated */                              \
    X(mmap_lock_wait)     /* mmap_lock acquisitions that had to wait */                 \
    X(pswpin)             /* PSWPIN: pages read from swap */                            \
    X(pswpout)            /* PSWPOUT: pages written to swap */                          \
    X(pgscan_anon)        /* PGSCAN_ANON: anonymous folios reclaim looked at */         \
    X(pgscan_file)        /* PGSCAN_FILE: page-cache folios reclaim looked at */        \
    X(pgsteal_anon)       /* PGSTEAL_ANON: anonymous folios reclaim freed */            \
    X(pgsteal_file)       /* PGSTEAL_FILE: page-cache folios reclaim freed */           \
    X(pgscan_kswapd)      /* PGSCAN_KSWAPD: folios the reclaim kthread isolated from inactive lists */ \
    X(pgsteal_kswapd)     /* PGSTEAL_KSWAPD: folios the reclaim kthread freed */        \
    X(pgactivate)         /* PGACTIVATE: folios moved to an active list */              \
    X(pgdeactivate)       /* PGDEACTIVATE: moved to inactive (shrink_active_list folios, MADV_COLD pages) */ \
    X(pgrefill)           /* PGREFILL: folios shrink_active_list scanned */             \
    X(smaps)              /* smaps walks that found the mm (mmrace) */                  \
    X(smaps_lock_hold_steps) /* scheduler steps smaps held mmap_lock, summed (mmrace) */ \
    X(smaps_lock_waiters) /* threads queued on mmap_lock when smaps released it (mmrace) */ \
    X(smaps_lock_contended) /* smaps walks that ended with a writer queued: mmap_lock_is_contended (mmrace) */ \
    X(spf)                /* PERF_COUNT_SW_SPF: faults handled speculatively */          \
    X(spf_vma_changed)    /* spf abort: VMA sequence moved, or it left the tree */      \
    X(spf_vma_noanon)     /* spf abort: no anon_vma yet (anon_vma_prepare needs mmap_lock) */ \
    X(spf_vma_notsup)     /* spf abort: file, stack, uffd or swap PTE, or no PTE table */ \
    X(spf_vma_access)     /* spf: the VMA forbids the access (SIGSEGV without mmap_lock) */ \
    X(spf_pmd_changed)    /* spf abort: the PMD changed under the fault */              \
    X(spf_ptl_busy)       /* spf abort: spin_trylock of the PTE lock failed (no trace event) */ \
    X(vma_lock_success)   /* VMA_LOCK_SUCCESS: faults handled under the VMA lock */     \
    X(vma_lock_abort)     /* VMA_LOCK_ABORT: lock_vma_under_rcu gave up */              \
    X(vma_lock_retry)     /* VMA_LOCK_RETRY: VM_FAULT_RETRY under the VMA lock */       \
    X(vma_lock_miss)      /* VMA_LOCK_MISS: the locked VMA was detached meanwhile */    \
    X(uffd_fault)         /* handle_userfault: userfaults that waited for a handler */  \
    X(uffd_fault_sigbus)  /* handle_userfault without FAULT_FLAG_ALLOW_RETRY: SIGBUS */ \
    X(uffd_copy)          /* UFFDIO_COPY: pages installed */                             \
    X(uffd_eagain)        /* UFFDIO_COPY/WRITEPROTECT: EAGAIN (mmap_changing) */         \
    X(sigsegv)                                                                          \
    X(sigbus)                                                                           \
    X(thp_fault_alloc)    /* THP_FAULT_ALLOC: huge PMDs a fault installed */            \
    X(thp_fault_fallback) /* THP_FAULT_FALLBACK: THP faults that fell back to PTEs */   \
    X(thp_split_pmd)      /* THP_SPLIT_PMD: huge PMDs split into PTE tables */          \
    X(thp_split_pmd_pinned) /* model only: of those, huge PMDs whose folio GUP held */  \
    X(thp_move_pmd)       /* model only: huge PMDs mremap moved whole (move_huge_pmd) */ \
    X(thp_collapse_alloc) /* THP_COLLAPSE_ALLOC: collapses that got a huge folio */     \
    X(thp_collapse_alloc_failed) /* THP_COLLAPSE_ALLOC_FAILED */                        \
    X(thp_collapse_ok)    /* collapse_huge_page installed a huge PMD (trace mm_collapse_huge_page) */ \
    X(thp_split_page)     /* THP_SPLIT_PAGE: large folios split (page-cache THPs) */        \
    X(thp_collapse_file)  /* collapse_file replaced small page-cache folios by a THP */

enum class Counter : uint8_t {
#define X(name) name,
    MMRACE_COUNTERS(X)
#undef X
    count_
};

inline constexpr const char* counter_names[] = {
#define X(name) #name,
    MMRACE_COUNTERS(X)
#undef X
};

struct Counters {
    std::array<uint64_t, static_cast<size_t>(Counter::count_)> v{};
    void inc(Counter c, uint64_t n = 1) { v[static_cast<size_t>(c)] += n; }
    uint64_t get(Counter c) const { return v[static_cast<size_t>(c)]; }
    void reset() { v.fill(0); }
};

}  // namespace mmrace::mm
