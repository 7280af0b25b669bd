// Reclaim of isolated folios (mm/vmscan.c shrink_folio_list, reclaim_pages), shared by
// MADV_PAGEOUT and by the LRU scan of the `reclaim COUNT` kthread op (mm/kswapd.hpp).
#pragma once

#include <vector>

#include "mm/folio.hpp"

namespace mmrace::mm {

class Kernel;

// folio_isolate_lru: take the folio off its LRU list for reclaim (PG_lru cleared), with
// a reference.  False if it is on no list: someone else isolated it, it has not joined
// one, or it is the zero page.  No scheduling point.
bool folio_isolate_lru(Kernel& k, Pfn p);

// folio_putback_lru: an isolated folio back at the head of the list its type and
// PG_active say, its isolation reference dropped (which frees it if that was the last).
void folio_putback_lru(Kernel& k, Pfn p);

// shrink_folio_list over isolated folios, oldest first.  Unless ignore_references (as
// MADV_PAGEOUT asks), each folio is first judged by folio_check_references: young PTEs
// (cleared as they are counted) earn a referenced mapped folio another trip around the
// inactive list (PG_referenced), or activation if it was referenced before, is mapped
// young more than once, is an executable file page, or is mlocked.  Then anonymous
// folios go to swap: add_to_swap, try_to_unmap (swap PTEs), write to the slot as I/O,
// then, if no one else holds the folio, out of the swap cache and freed.  Page-cache
// folios are unmapped and dropped when clean; dirty ones are activated (upstream
// reclaim no longer writes back file folios: pageout() returns PAGE_ACTIVATE for them,
// and the model has no flusher), as are shmem folios (shmem swap-out is not modelled)
// and folios still mapped after try_to_unmap (mlocked) or whose swap slot could not be
// had.  A folio locked by someone else or under writeback is kept as it is.  The swap
// write is waited for here (the model's reclaim is synchronous; upstream frees the folio
// on a later pass once writeback ended).
// Freed folios leave `folios`; the survivors stay in order, still isolated (PG_active
// set on those to activate), for the caller to put back.  Sleeps; no spinlock held;
// mmap_lock may be held.  Returns how many folios were freed.
unsigned shrink_folio_list(Kernel& k, std::vector<Pfn>& folios, bool ignore_references);

// reclaim_pages (MADV_PAGEOUT): PG_active cleared, shrink_folio_list ignoring
// references, then every survivor put back.  Returns how many folios were freed.
unsigned reclaim_pages(Kernel& k, std::vector<Pfn>& folios);

}  // namespace mmrace::mm
