#include "mm/vmscan.hpp"

#include "check/report.hpp"
#include "mm/filemap.hpp"
#include "mm/kernel.hpp"
#include "mm/rmap.hpp"
#include "mm/swap.hpp"

namespace mmrace::mm {

namespace {

// folio_putback_lru: back on the LRU, the isolation reference dropped.
void folio_putback_lru(Kernel& k, Pfn p) {
    k.folios[p].isolated = false;
    k.folios.put(p);
}

// __remove_mapping: free the folio from its swap cache or page cache if the cache and
// the isolation hold the only references (folio_ref_freeze(folio, 2)) and it is clean.
// Folio locked.
bool remove_mapping(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    if (f.refcount != 2 || (f.flags & PG_dirty)) return false;
    if (f.flags & PG_swapcache) {
        delete_from_swap_cache(k, p);  // __delete_from_swap_cache + put_swap_folio
        return true;
    }
    if (f.mapping < 0) return false;
    address_space& as = *k.files[f.mapping];
    as.i_pages.erase(f.index);  // __filemap_remove_folio
    f.mapping = -1;
    k.folios.put(p);  // the page cache's reference
    return true;
}

enum class Outcome { freed, keep };

// One folio of shrink_folio_list.  Holds the isolation reference on entry and exit.
Outcome shrink_folio(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    bool anon = f.flags & PG_anon;
    k.counters.inc(anon ? Counter::pgscan_anon : Counter::pgscan_file);
    if (!folio_trylock(k, p)) return Outcome::keep;
    auto keep_locked = [&] {
        folio_unlock(k, p);
        return Outcome::keep;
    };
    // activate_locked: a kept swap-cache folio gives its slot back when swap is full.
    auto activate_locked = [&] {
        if ((f.flags & PG_swapcache) && vm_swap_full(k)) folio_free_swap(k, p);
        return keep_locked();
    };
    if (f.flags & PG_writeback) return keep_locked();
    if (!anon && f.mapping >= 0 && k.files[f.mapping]->shmem) return activate_locked();
    if (!anon && f.mapping < 0) return keep_locked();  // truncated meanwhile
    if (anon && !(f.flags & PG_swapcache) && !add_to_swap(k, p)) return activate_locked();
    if (f.mapcount) {
        try_to_unmap(k, p);
        if (f.mapcount) return activate_locked();
    }
    if (f.flags & PG_dirty) {
        if (!anon) return activate_locked();  // pageout(): PAGE_ACTIVATE for file folios
        // pageout -> swap_writeout: folio_clear_dirty_for_io, writeback, unlocked.
        f.flags &= ~PG_dirty;
        swap_writeout(k, p);
        folio_wait_writeback(k, p);
        // PAGE_SUCCESS: dirtied again, or locked by someone, means keep.
        if (f.flags & PG_dirty) return Outcome::keep;
        if (!folio_trylock(k, p)) return Outcome::keep;
        if ((f.flags & (PG_dirty | PG_writeback)) || f.mapcount) return keep_locked();
    }
    if (!remove_mapping(k, p)) return keep_locked();
    folio_unlock(k, p);
    k.counters.inc(anon ? Counter::pgsteal_anon : Counter::pgsteal_file);
    return Outcome::freed;
}

}  // namespace

bool folio_isolate_lru(Kernel& k, Pfn p) {
    if (p == kZeroPfn) return false;
    Folio& f = k.folios[p];
    if (f.isolated) return false;
    f.isolated = true;
    k.folios.get(p);
    return true;
}

unsigned reclaim_pages(Kernel& k, std::vector<Pfn>& folios) {
    unsigned freed = 0;
    for (Pfn p : folios) {
        if (shrink_folio(k, p) == Outcome::freed) {
            // The caches' references are gone: the isolation's is the last.
            k.folios[p].isolated = false;
            k.folios.put(p);
            if (k.folios[p].in_use)
                check::violation("refcount", "a reclaimed folio (pfn " + std::to_string(p) +
                                                 ") is still referenced");
            ++freed;
        } else {
            folio_putback_lru(k, p);
        }
    }
    folios.clear();
    return freed;
}

}  // namespace mmrace::mm
