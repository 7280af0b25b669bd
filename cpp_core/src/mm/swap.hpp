// Swap (mm/swapfile.c, mm/swap_state.c, include/linux/swap.h): one swap device of
// config swap_slots=N slots, each with its swap count (swap_map: the swap PTEs that hold it, plus
// SWAP_HAS_CACHE while the swap cache holds a folio for it) and its content on the
// device (sparse words, like Folio::words); and the swap cache (swap_address_space),
// slot -> folio, through which swap-out and swap-in meet.
//
// In the model the swap count, SWAP_HAS_CACHE and the swap cache change together in
// steps without scheduling points, so the windows in which upstream has SWAP_HAS_CACHE
// set but no folio in the cache yet (swapcache_prepare's -EEXIST) never open.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "mm/folio.hpp"
#include "mm/free_id_tree.hpp"
#include "mm/pgtable.hpp"

namespace mmrace::mm {

class Kernel;
struct vm_area_struct;

struct swap_slot {
    bool in_use = false;     // allocated: count > 0 or has_cache
    uint32_t count = 0;      // swap_count(si->swap_map[offset]): the swap PTEs
    bool has_cache = false;  // SWAP_HAS_CACHE
    std::map<uint32_t, uint64_t> words;  // what swap_writeout wrote (zero if absent)
};

struct swap_info_struct {
    // si->max: slots [1, max) exist (config swap_slots=N); slot 0 is the header.
    uint64_t max = 1;
    // Where folio_alloc_swap looks (si->lowest_bit and si->highest_bit before the
    // cluster allocator): the freed slots, all at or below highest_bit, and none above
    // highest_bit was allocated since reset().  A FreeIdTree rather than lowest_bit and
    // a scan, so that taking the lowest free slot costs O(log n).
    FreeIdTree free_slots;
    uint64_t highest_bit = 0;
    // si->swap_map with each slot's content, [0, highest_bit] in use in this run.
    // Storage grows on demand and is kept across runs (a deque: references stay valid
    // while it grows).
    std::deque<swap_slot> swap_map;
    std::map<uint64_t, Pfn> swap_cache;  // swap_address_space: slot -> folio
    uint64_t inuse_pages = 0;
    // Frees every slot; the device has `slots` slots in the next run.
    void reset(uint64_t slots);
    swap_slot& slot(swp_entry_t e) { return swap_map.at(e.val); }
    // An entry for a slot this run may have allocated; any other is free by definition.
    bool valid(swp_entry_t e) const { return e.val > 0 && e.val <= highest_bit; }
    uint64_t total_slots() const { return max - 1; }  // total_swap_pages
};

// vm_swap_full / mem_cgroup_swap_full: more than half the device is in use.
bool vm_swap_full(Kernel& k);

// folio_alloc_swap + add_to_swap_cache (add_to_swap in mm/vmscan.c before 6.18): the
// lowest free slot, SWAP_HAS_CACHE set, the folio in the swap cache with one more
// reference, PG_swapcache, folio->swap; then folio_mark_dirty, since the folio's content
// exists nowhere else.  Folio locked.  false, changing nothing, if every slot is in use
// (folio_alloc_swap's -ENOMEM): shrink_folio_list then keeps the folio (activate_locked).
bool add_to_swap(Kernel& k, Pfn p);

// swap_duplicate: one more swap PTE holds the slot (fork, try_to_unmap_one).  Under the
// PTE lock.  false (-ENOENT) if the slot holds nothing.
bool swap_duplicate(Kernel& k, swp_entry_t e);

// swap_free: a swap PTE no longer holds the slot; the slot is freed when neither PTEs
// nor the swap cache hold it.  Under the PTE lock.
void swap_free(Kernel& k, swp_entry_t e);

// swap_cache_get_folio: the folio the swap cache holds for e, with a reference, or
// kNoPfn.
Pfn swap_cache_get_folio(Kernel& k, swp_entry_t e);

// delete_from_swap_cache: the folio leaves the swap cache (its reference dropped) and
// the slot loses SWAP_HAS_CACHE (put_swap_folio), freed if no swap PTE holds it.  Folio
// locked, not under writeback.
void delete_from_swap_cache(Kernel& k, Pfn p);

// folio_free_swap: drop the folio's swap cache entry if no swap PTE holds the slot any
// more; the folio is then dirty (its only copy).  Folio locked.  true if freed.
bool folio_free_swap(Kernel& k, Pfn p);

// free_swap_and_cache (free_swap_and_cache_nr): a zapped swap PTE drops its count; if
// only the swap cache holds the slot then, try to reclaim that folio
// (__try_to_reclaim_swap with TTRS_UNMAPPED | TTRS_FULL): trylock, and drop it from the
// cache if it is unmapped or swap is full.  Under the PTE lock.
void free_swap_and_cache(Kernel& k, swp_entry_t e);

// free_swap_cache (mm/swap_state.c): after an unmap, an unmapped folio whose slot no
// swap PTE holds leaves the swap cache, if its lock can be had.  No lock needed.
void free_swap_cache(Kernel& k, Pfn p);

// swap_read_folio for a folio just added to the swap cache for e: read I/O, an event
// that fills the folio from the slot, marks it uptodate and unlocks it.  Counts pswpin.
void swap_read_folio(Kernel& k, Pfn p, swp_entry_t e);

// swap_writeout: the folio (locked, in the swap cache, dirty-cleared) goes under
// writeback and is unlocked; write I/O, an event that stores the content it had at
// submission in the slot and ends writeback.  Counts pswpout.
void swap_writeout(Kernel& k, Pfn p);

// folio_wait_writeback: sleep until PG_writeback is clear.
void folio_wait_writeback(Kernel& k, Pfn p);

}  // namespace mmrace::mm
