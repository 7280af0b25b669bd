// Reclaim by scanning the LRU lists (mm/vmscan.c: balance_pgdat / shrink_node ->
// shrink_lruvec -> shrink_list -> shrink_inactive_list / shrink_active_list), run by
// the `reclaim COUNT` kthread op as kswapd would.
#pragma once

#include <cstdint>
#include <string>

namespace mmrace::mm {

class Kernel;

// Reclaims up to `count` folios: priority passes from DEF_PRIORITY down to 0, each
// scanning lruvec_lru_size >> priority folios of every evictable list (SWAP_CLUSTER_MAX
// at a time, oldest first), until `count` are freed.  The active lists are aged
// (shrink_active_list) when their inactive list is low (inactive_is_low).  Anonymous
// lists are not scanned when no swap slot is free (can_reclaim_anon_pages).
// Deviations: get_scan_count's swappiness balance is not modelled (both types are
// scanned by size, as SCAN_EQUAL); no shrinkers, no writeback throttling; and a
// batch is cut to the folios still wanted, so that no more than `count` are freed
// (upstream may overshoot by up to a batch).
// Runs on a kernel thread, no locks held; takes folio locks, rmap locks and PTE locks,
// never mmap_lock.  Returns "0" (the counters pgscan_kswapd, pgsteal_kswapd, pgactivate,
// pgdeactivate and pgrefill say what it did).
std::string kswapd_reclaim(Kernel& k, uint64_t count);

}  // namespace mmrace::mm
