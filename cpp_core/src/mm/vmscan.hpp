// Reclaim of a given list of folios (mm/vmscan.c reclaim_pages -> shrink_folio_list),
// used by MADV_PAGEOUT (and later by a `reclaim COUNT` kthread op).
#pragma once

#include <vector>

#include "mm/folio.hpp"

namespace mmrace::mm {

class Kernel;

// folio_isolate_lru: take the folio off the LRU for reclaim, with a reference.  False
// if someone else isolated it already (or it is the zero page).
bool folio_isolate_lru(Kernel& k, Pfn p);

// reclaim_pages: shrink_folio_list over isolated folios with ignore_references (as
// MADV_PAGEOUT asks), then put back what was not freed.  Anonymous folios go to swap:
// add_to_swap, try_to_unmap (swap PTEs), write to the slot as I/O, then, if no one else
// holds the folio, out of the swap cache and freed.  Page-cache folios are unmapped and
// dropped when clean; dirty ones stay (upstream reclaim no longer writes back file
// folios: pageout() returns PAGE_ACTIVATE for them), as do shmem folios (shmem
// swap-out is not modelled) and folios locked, under writeback or still mapped.
// The swap write is waited for here (the model's reclaim is synchronous; upstream
// frees the folio on a later pass once writeback ended).  Sleeps; no spinlock held;
// mmap_lock may be held.  Returns how many folios were freed.
unsigned reclaim_pages(Kernel& k, std::vector<Pfn>& folios);

}  // namespace mmrace::mm
