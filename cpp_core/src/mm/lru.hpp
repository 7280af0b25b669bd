// The LRU lists (include/linux/mmzone.h enum lru_list and struct lruvec,
// include/linux/mm_inline.h lruvec_add_folio / lruvec_del_folio, mm/swap.c folio_add_lru
// and folio_mark_accessed): the order in which reclaim looks at folios.
//
// One lruvec for the whole machine (one node, no memcg).  Lists are intrusive through
// Folio::lru_prev / lru_next, so joining and leaving allocate nothing.  A folio joins at
// the head; reclaim takes from the tail, so the tail holds the folios that have gone
// longest without being added or rotated.
//
// Simplifications, each a choice of timing the kernel also allows: folio_add_lru adds
// at once (upstream batches per CPU in cpu_fbatches.lru_add and drains later, so a new
// folio may be off the LRU for a while; reclaim then just does not see it yet); and
// lru_lock is not a scheduling point (every list change is one step, as under the
// spinlock with IRQs off).  No unevictable list: mlocked folios stay evictable and
// reclaim activates them (folio_check_references sees VM_LOCKED).  No MGLRU.
#pragma once

#include <array>
#include <cstdint>

#include "mm/folio.hpp"

namespace mmrace::mm {

class Kernel;

enum lru_list : int8_t {
    LRU_INACTIVE_ANON = 0,
    LRU_ACTIVE_ANON = 1,
    LRU_INACTIVE_FILE = 2,
    LRU_ACTIVE_FILE = 3,
    NR_LRU_LISTS = 4,
};
const char* lru_list_name(int lru);

struct lru_head {
    Pfn head = FolioPool::kNoPfn;  // newest
    Pfn tail = FolioPool::kNoPfn;  // oldest
    uint64_t nr = 0;
};

struct lruvec {
    std::array<lru_head, NR_LRU_LISTS> lists{};
    void reset() { lists.fill(lru_head{}); }
    uint64_t size(int lru) const { return lists[static_cast<size_t>(lru)].nr; }  // lruvec_lru_size
};

// folio_is_file_lru: not swap-backed.  Anonymous folios, swap-cache folios and shmem
// page-cache folios live on the anon lists (PG_swapbacked), other page-cache folios on
// the file lists.
bool folio_is_file_lru(Kernel& k, Pfn p);
// folio_lru_list: the list a folio belongs on, by type and PG_active.
lru_list folio_lru_list(Kernel& k, Pfn p);

// lruvec_add_folio / lruvec_del_folio: link at the head, unlink.  The folio's list is
// remembered in Folio::lru, so that a folio whose type changes while on a list (a
// swap-cache folio mapped and made anonymous) leaves the list it is on.
void lruvec_add_folio(lruvec& l, FolioPool& folios, Pfn p, lru_list lru);
void lruvec_del_folio(lruvec& l, FolioPool& folios, Pfn p);

inline bool folio_test_lru(const Folio& f) { return f.lru != kNoLru; }

// folio_add_lru (and folio_add_lru_vma): a folio the caller just made (a fault's new
// anonymous folio, a page-cache or swap-cache folio) joins the head of its list and
// sets PG_lru.  Any locks; no scheduling point.
void folio_add_lru(Kernel& k, Pfn p);

// folio_mark_accessed (mm/swap.c): a second access to an inactive folio activates it
// (folio_activate), a first one only sets PG_referenced.  No scheduling point.
void folio_mark_accessed(Kernel& k, Pfn p);

// folio_deactivate (mm/swap.c, lru_deactivate): an active folio on the LRU moves to
// the head of its inactive list, PG_active and PG_referenced cleared, counted in
// pgdeactivate by pages; any other folio stays as it is.  Upstream batches this per CPU
// (cpu_fbatches.lru_deactivate) and moves the folio at the drain; here at once, as
// folio_add_lru.  Any locks; no scheduling point.
void folio_deactivate(Kernel& k, Pfn p);

// Checks the lists: links consistent, counts right, every folio on them live and on
// the list its Folio::lru names, none isolated, and every live folio on one.  Check
// "lru".  At a quiescent point.
void check_lru(Kernel& k);

}  // namespace mmrace::mm
