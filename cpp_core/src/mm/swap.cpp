// Swap slots and the swap cache (mm/swapfile.c, mm/swap_state.c, mm/page_io.c).
#include "mm/swap.hpp"

#include <algorithm>

#include "check/report.hpp"
#include "mm/filemap.hpp"
#include "mm/kernel.hpp"

namespace mmrace::mm {

namespace {

// What folio_wait_writeback waits on: write I/O, a pending event, not a thread.
struct WritebackWait final : rt::Waitable {
    Pfn p;
    explicit WritebackWait(Pfn p_) : p(p_) {}
    std::string describe() const override { return "writeback of pfn " + std::to_string(p); }
};

[[noreturn]] void bad_entry(const char* who, swp_entry_t e) {
    check::violation(Check::use_after_free, std::string(who) + " on free swap slot " + std::to_string(e.val));
}

// The slot is freed once neither a swap PTE nor the swap cache holds it
// (swap_entries_free).
void maybe_free_slot(Kernel& k, swp_entry_t e) {
    swap_slot& s = k.swap.slot(e);
    if (s.count || s.has_cache) return;
    s.in_use = false;
    s.words.clear();
    --k.swap.inuse_pages;
    k.swap.free_slots.set_free(e.val);
}

// put_swap_folio: the swap cache no longer holds the slot.
void put_swap_folio(Kernel& k, swp_entry_t e) {
    swap_slot& s = k.swap.slot(e);
    if (!s.in_use || !s.has_cache) bad_entry("put_swap_folio", e);
    s.has_cache = false;
    maybe_free_slot(k, e);
}

// end_folio_writeback without a scheduling point (the I/O completion event runs it).
void folio_end_writeback(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    f.flags &= ~PG_writeback;
    std::vector<uint32_t> waiters;
    waiters.swap(f.writeback_waiters);
    for (uint32_t t : waiters) k.rt.wake(t);
}

}  // namespace

void swap_info_struct::reset(uint64_t slots) {
    // Only the slots the last run allocated were touched; the words' storage is freed
    // with them (std::map keeps none).
    for (uint64_t i = 1; i <= highest_bit; ++i) {
        swap_slot& s = swap_map[i];
        s.in_use = false;
        s.count = 0;
        s.has_cache = false;
        s.words.clear();
    }
    if (swap_map.empty()) swap_map.emplace_back();  // the header
    max = slots + 1;
    free_slots.clear();
    highest_bit = 0;
    swap_cache.clear();
    inuse_pages = 0;
}

bool vm_swap_full(Kernel& k) { return k.swap.inuse_pages * 2 > k.swap.total_slots(); }

bool add_to_swap(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    swap_info_struct& si = k.swap;
    // folio_alloc_swap: the lowest free slot (deterministic; the cluster allocator's
    // order is not modelled).
    swp_entry_t e{0};
    if (size_t lowest = si.free_slots.find_first_free(); lowest != FreeIdTree::npos) {
        e.val = lowest;
        si.free_slots.set_used(lowest);
    } else {
        if (si.highest_bit + 1 >= si.max) return false;  // every slot is in use
        e.val = ++si.highest_bit;
        if (e.val == si.swap_map.size()) si.swap_map.emplace_back();
    }
    swap_slot& s = k.swap.slot(e);
    s.count = 0;
    s.words.clear();
    s.in_use = true;
    s.has_cache = true;
    ++k.swap.inuse_pages;
    // add_to_swap_cache
    k.folios.get(p);
    f.flags |= PG_swapcache;
    f.swap = e.val;
    k.swap.swap_cache[e.val] = p;
    f.flags |= PG_dirty;  // folio_mark_dirty
    return true;
}

bool swap_duplicate(Kernel& k, swp_entry_t e) {
    if (!k.swap.valid(e)) bad_entry("swap_duplicate", e);
    swap_slot& s = k.swap.slot(e);
    if (!s.in_use || (!s.count && !s.has_cache)) return false;
    ++s.count;
    return true;
}

void swap_free(Kernel& k, swp_entry_t e) {
    if (!k.swap.valid(e)) bad_entry("swap_free", e);
    swap_slot& s = k.swap.slot(e);
    if (!s.in_use || !s.count)
        check::violation(Check::swap_accounting, "swap_free of slot " + std::to_string(e.val) +
                                                " whose swap count is 0");
    --s.count;
    maybe_free_slot(k, e);
}

Pfn swap_cache_get_folio(Kernel& k, swp_entry_t e) {
    auto it = k.swap.swap_cache.find(e.val);
    if (it == k.swap.swap_cache.end()) return FolioPool::kNoPfn;
    k.folios.get(it->second);
    return it->second;
}

void delete_from_swap_cache(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    swp_entry_t e{f.swap};
    if (!(f.flags & PG_swapcache) || k.swap.swap_cache.count(e.val) == 0 ||
        k.swap.swap_cache[e.val] != p)
        check::violation(Check::swap_accounting, "pfn " + std::to_string(p) +
                                                " leaves a swap cache slot it does not hold");
    k.swap.swap_cache.erase(e.val);  // __delete_from_swap_cache
    f.flags &= ~PG_swapcache;
    f.swap = 0;
    put_swap_folio(k, e);
    k.folios.put(p);  // the swap cache's reference
}

bool folio_free_swap(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    // folio_swapcache_freeable, folio_swapped
    if (!(f.flags & PG_swapcache) || (f.flags & PG_writeback)) return false;
    if (k.swap.slot(swp_entry_t{f.swap}).count) return false;
    delete_from_swap_cache(k, p);
    f.flags |= PG_dirty;  // folio_set_dirty: the swap copy is gone
    return true;
}

void free_swap_and_cache(Kernel& k, swp_entry_t e) {
    if (!k.swap.valid(e)) bad_entry("free_swap_and_cache", e);
    swap_slot& s = k.swap.slot(e);
    if (!s.in_use || !s.count)
        check::violation(Check::swap_accounting, "free_swap_and_cache of slot " + std::to_string(e.val) +
                                                " whose swap count is 0");
    --s.count;
    if (s.count) return;
    if (!s.has_cache) {
        maybe_free_slot(k, e);
        return;
    }
    // __try_to_reclaim_swap(si, offset, TTRS_UNMAPPED | TTRS_FULL)
    Pfn p = swap_cache_get_folio(k, e);
    if (p == FolioPool::kNoPfn) return;
    if (folio_trylock(k, p)) {
        Folio& f = k.folios[p];
        bool need = f.mapcount == 0 || vm_swap_full(k);
        // Recheck under the folio lock: still this slot's, and only the cache holds it.
        if (need && (f.flags & PG_swapcache) && f.swap == e.val && !(f.flags & PG_writeback) &&
            k.swap.slot(e).count == 0) {
            delete_from_swap_cache(k, p);
            f.flags |= PG_dirty;
        }
        folio_unlock(k, p);
    }
    k.folios.put(p);
}

void free_swap_cache(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    if ((f.flags & PG_swapcache) && f.mapcount == 0 && folio_trylock(k, p)) {
        folio_free_swap(k, p);
        folio_unlock(k, p);
    }
}

void swap_read_folio(Kernel& k, Pfn p, swp_entry_t e) {
    k.counters.inc(Counter::pswpin);
    k.rt.note(MMR_SITE("swap_read_folio"), rt::Ev::io_submit, p);
    Kernel* kp = &k;
    uint64_t slot = e.val;
    k.rt.post_event(MMR_SITE("swap_read_end_io"), nullptr, [kp, p, slot] {
        // The slot cannot go meanwhile: SWAP_HAS_CACHE holds it until the folio leaves
        // the swap cache, which needs the folio lock the I/O holds.
        Folio& f = kp->folios[p];
        f.words = kp->swap.swap_map[slot].words;
        f.flags |= PG_uptodate;
        folio_unlock_nosched(*kp, p);
    });
}

void swap_writeout(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    uint64_t slot = f.swap;
    f.flags |= PG_writeback;  // folio_start_writeback
    k.counters.inc(Counter::pswpout);
    k.rt.note(MMR_SITE("swap_writeout"), rt::Ev::io_submit, p);
    // The device reads the folio while the I/O runs; what it stores is the content at
    // submission.  A later change dirties the folio again (it is unmapped; whoever maps
    // it back marks the PTE or the folio dirty), so reclaim will not free it.
    auto words = std::make_shared<std::map<uint32_t, uint64_t>>(f.words);
    Kernel* kp = &k;
    k.rt.post_event(MMR_SITE("swap_write_end_io"), nullptr, [kp, p, slot, words] {
        kp->swap.swap_map[slot].words = *words;
        folio_end_writeback(*kp, p);
    });
    folio_unlock(k, p);
}

void folio_wait_writeback(Kernel& k, Pfn p) {
    sync::might_sleep(MMR_SITE("folio_wait_writeback"));
    while (k.folios[p].flags & PG_writeback) {
        WritebackWait w(p);
        k.folios[p].writeback_waiters.push_back(k.rt.self());
        k.rt.wait(MMR_SITE("folio_wait_writeback"), &w);
    }
}

}  // namespace mmrace::mm
