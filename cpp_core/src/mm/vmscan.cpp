#include "mm/vmscan.hpp"

#include "check/report.hpp"
#include "gup/gup.hpp"
#include "mm/filemap.hpp"
#include "mm/huge_memory.hpp"
#include "mm/kernel.hpp"
#include "mm/lru.hpp"
#include "mm/rmap.hpp"
#include "mm/swap.hpp"

namespace mmrace::mm {

namespace {

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

enum folio_references { FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, FOLIOREF_KEEP, FOLIOREF_ACTIVATE };

// folio_check_references: mapped folios start with young PTEs from the fault that
// mapped them, so a folio is only activated once it is seen used twice (PG_referenced
// from an earlier look, or two young PTEs), or once if it is executable file memory.
// Folio locked.
folio_references folio_check_references(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    uint64_t vm_flags = 0;
    int referenced_ptes = folio_referenced(k, p, true, &vm_flags);
    bool referenced_folio = f.flags & PG_referenced;  // folio_test_clear_referenced
    f.flags &= ~PG_referenced;
    if (vm_flags & VM_LOCKED) return FOLIOREF_ACTIVATE;
    if (referenced_ptes == -1) return FOLIOREF_KEEP;  // rmap lock contention
    bool file = folio_is_file_lru(k, p);
    if (referenced_ptes) {
        f.flags |= PG_referenced;
        if (referenced_folio || referenced_ptes > 1) return FOLIOREF_ACTIVATE;
        if ((vm_flags & VM_EXEC) && file) return FOLIOREF_ACTIVATE;
        return FOLIOREF_KEEP;
    }
    if (referenced_folio && file) return FOLIOREF_RECLAIM_CLEAN;
    return FOLIOREF_RECLAIM;
}

enum class Outcome { freed, keep, activate };

// One folio of shrink_folio_list.  Holds the isolation reference on entry and exit.
// A large anonymous folio is split first (no THP swap-out in the model: as when
// folio_alloc_swap fails for it), as is a shmem THP: its other pages join `folios`,
// isolated.
Outcome shrink_folio(Kernel& k, Pfn p, bool ignore_references, std::vector<Pfn>& folios) {
    Folio& f = k.folios[p];
    // Swap-backed: anonymous, or a swap-cache folio not mapped yet (a swap-in's).
    bool anon = f.flags & (PG_anon | PG_swapcache);
    k.counters.inc(anon ? Counter::pgscan_anon : Counter::pgscan_file);
    if (!folio_trylock(k, p)) return Outcome::keep;
    auto keep_locked = [&] {
        folio_unlock(k, p);
        return Outcome::keep;
    };
    // activate_locked: a kept swap-cache folio gives its slot back when swap is full.
    auto activate_locked = [&] {
        if ((f.flags & PG_swapcache) && vm_swap_full(k)) folio_free_swap(k, p);
        f.flags |= PG_active;
        k.counters.inc(Counter::pgactivate);
        folio_unlock(k, p);
        return Outcome::activate;
    };
    if (f.flags & PG_writeback) return keep_locked();
    folio_references refs = ignore_references ? FOLIOREF_RECLAIM : folio_check_references(k, p);
    if (refs == FOLIOREF_ACTIVATE) return activate_locked();
    if (refs == FOLIOREF_KEEP) return keep_locked();
    if (!anon && f.mapping >= 0 && k.files[f.mapping]->shmem) {
        // The model never swaps shmem out: its folios stay, activated.  A THP is split
        // first, as shmem_writeout splits one before swapping its pages (split_folio
        // clears its PMDs, as try_to_unmap's TTU_SPLIT_HUGE_PMD would); a pin or
        // another reference keeps it whole.  Its pages join `folios`, isolated.
        if (f.order) split_folio(k, p, &folios);
        return activate_locked();
    }
    if (!anon && f.mapping < 0) return keep_locked();  // truncated meanwhile
    // feb889fb40fa: a maybe-pinned folio is not put into the swap cache (try_to_unmap
    // would keep it mapped anyway, and the slot would be wasted).
    if (anon && !(f.flags & PG_swapcache) && gup::folio_maybe_dma_pinned(k, p)) return keep_locked();
    if (anon && f.order) {
        // can_split_folio, then split_folio_to_list: the pages go on as order-0 folios.
        if (f.refcount != f.mapcount + 1 || split_folio(k, p, &folios)) return activate_locked();
    }
    if (f.order) return activate_locked();  // not split
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
    if (!folio_test_lru(f)) return false;  // folio_test_clear_lru
    k.folios.get(p);
    lruvec_del_folio(k.lru, k.folios, p);
    f.isolated = true;
    return true;
}

void folio_putback_lru(Kernel& k, Pfn p) {
    k.folios[p].isolated = false;
    folio_add_lru(k, p);
    k.folios.put(p);
}

unsigned shrink_folio_list(Kernel& k, std::vector<Pfn>& folios, bool ignore_references) {
    unsigned freed = 0;
    size_t kept = 0;
    for (size_t i = 0; i < folios.size(); ++i) {
        Pfn p = folios[i];
        if (shrink_folio(k, p, ignore_references, folios) != Outcome::freed) {
            folios[kept++] = p;
            continue;
        }
        // The caches' references are gone: the isolation's is the last.
        k.folios[p].isolated = false;
        k.folios.put(p);
        if (k.folios[p].in_use)
            check::violation(Check::refcount, "a reclaimed folio (pfn " + std::to_string(p) +
                                             ") is still referenced");
        ++freed;
    }
    folios.resize(kept);
    return freed;
}

unsigned reclaim_pages(Kernel& k, std::vector<Pfn>& folios) {
    for (Pfn p : folios) k.folios[p].flags &= ~PG_active;
    unsigned freed = shrink_folio_list(k, folios, /*ignore_references=*/true);
    for (Pfn p : folios) folio_putback_lru(k, p);
    folios.clear();
    return freed;
}

}  // namespace mmrace::mm
