// The LRU scan of mm/vmscan.c.  Every function here runs on the reclaim thread with no
// lock held on entry or exit; the folio, rmap and PTE locks are taken inside
// shrink_folio_list and folio_referenced.
#include "mm/kswapd.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "mm/kernel.hpp"
#include "mm/lru.hpp"
#include "mm/rmap.hpp"
#include "mm/swap.hpp"
#include "mm/vmscan.hpp"

namespace mmrace::mm {

namespace {

constexpr uint64_t SWAP_CLUSTER_MAX = 32;
constexpr int DEF_PRIORITY = 12;

// struct scan_control, the part the model uses.
struct scan_control {
    uint64_t nr_to_reclaim;
    uint64_t nr_reclaimed = 0;
    int priority = DEF_PRIORITY;
    unsigned may_deactivate = 0;  // DEACTIVATE_ANON / DEACTIVATE_FILE
};
constexpr unsigned DEACTIVATE_ANON = 1, DEACTIVATE_FILE = 2;

bool is_active_lru(int lru) { return lru == LRU_ACTIVE_ANON || lru == LRU_ACTIVE_FILE; }
bool is_file_lru(int lru) { return lru >= LRU_INACTIVE_FILE; }

// can_reclaim_anon_pages: swap space is left to write anonymous folios to.
bool can_reclaim_anon_pages(Kernel& k) { return k.swap.inuse_pages < k.swap.total_slots(); }

uint64_t int_sqrt(uint64_t x) {
    uint64_t r = 0;
    while ((r + 1) * (r + 1) <= x) ++r;
    return r;
}

// inactive_is_low: the inactive list is smaller than the active one by more than
// inactive_ratio (1 below 1 GB of the type, int_sqrt(10 * GB) above).
bool inactive_is_low(Kernel& k, int inactive_lru) {
    uint64_t inactive = k.lru.size(inactive_lru), active = k.lru.size(inactive_lru + 1);
    uint64_t gb = (inactive + active) >> (30 - PAGE_SHIFT);
    uint64_t inactive_ratio = gb ? int_sqrt(10 * gb) : 1;
    return inactive * inactive_ratio < active;
}

// isolate_lru_folios: up to nr_to_scan folios from the tail of `lru` (oldest first),
// each with a reference, into dst.  Under lru_lock: one step.
void isolate_lru_folios(Kernel& k, uint64_t nr_to_scan, int lru, std::vector<Pfn>& dst) {
    k.rt.yield(MMR_SITE("isolate_lru_folios"), rt::Ev::lock_acquire, static_cast<uint64_t>(lru));
    for (uint64_t scan = 0; scan < nr_to_scan; ++scan) {
        Pfn p = k.lru.lists[static_cast<size_t>(lru)].tail;
        if (p == FolioPool::kNoPfn) break;
        folio_isolate_lru(k, p);  // folio_try_get + folio_test_clear_lru + list_move
        dst.push_back(p);
    }
}

// shrink_active_list: age nr_to_scan folios from the active list's tail.  Referenced
// executable file folios stay active; every other one is deactivated, its young bits
// cleared by the look (folio_referenced), to the head of the inactive list.
void shrink_active_list(Kernel& k, uint64_t nr_to_scan, int lru) {
    std::vector<Pfn> hold;
    isolate_lru_folios(k, nr_to_scan, lru, hold);
    k.counters.inc(Counter::pgrefill, hold.size());
    for (Pfn p : hold) {
        uint64_t vm_flags = 0;
        if (folio_referenced(k, p, false, &vm_flags) && (vm_flags & VM_EXEC) &&
            folio_is_file_lru(k, p))
            continue;  // l_active: stays active
        k.folios[p].flags &= ~PG_active;  // l_inactive
        k.counters.inc(Counter::pgdeactivate);
    }
    for (Pfn p : hold) folio_putback_lru(k, p);  // move_folios_to_lru
}

// shrink_inactive_list: isolate up to nr_to_scan folios from the tail, reclaim them,
// put back the survivors (activated ones to the active list).  Returns how many were
// freed.
uint64_t shrink_inactive_list(Kernel& k, uint64_t nr_to_scan, int lru) {
    std::vector<Pfn> folio_list;
    isolate_lru_folios(k, nr_to_scan, lru, folio_list);
    if (folio_list.empty()) return 0;
    k.counters.inc(Counter::pgscan_kswapd, folio_list.size());
    uint64_t nr_reclaimed = shrink_folio_list(k, folio_list, /*ignore_references=*/false);
    for (Pfn p : folio_list) folio_putback_lru(k, p);  // move_folios_to_lru
    k.counters.inc(Counter::pgsteal_kswapd, nr_reclaimed);
    return nr_reclaimed;
}

// shrink_list
uint64_t shrink_list(Kernel& k, int lru, uint64_t nr_to_scan, scan_control& sc) {
    if (is_active_lru(lru)) {
        if (sc.may_deactivate & (is_file_lru(lru) ? DEACTIVATE_FILE : DEACTIVATE_ANON))
            shrink_active_list(k, nr_to_scan, lru);
        return 0;
    }
    return shrink_inactive_list(k, nr_to_scan, lru);
}

// get_scan_count: how many folios of each list this pass scans.
std::array<uint64_t, NR_LRU_LISTS> get_scan_count(Kernel& k, const scan_control& sc) {
    std::array<uint64_t, NR_LRU_LISTS> nr{};
    bool anon = can_reclaim_anon_pages(k);
    for (int lru = 0; lru < NR_LRU_LISTS; ++lru)
        if (anon || is_file_lru(lru)) nr[static_cast<size_t>(lru)] = k.lru.size(lru) >> sc.priority;
    return nr;
}

// shrink_lruvec: the lists in turn, a batch at a time, until the pass's targets are
// scanned or enough was reclaimed; then age the active anon list if it is too big.
void shrink_lruvec(Kernel& k, scan_control& sc) {
    std::array<uint64_t, NR_LRU_LISTS> nr = get_scan_count(k, sc);
    while ((nr[LRU_INACTIVE_ANON] || nr[LRU_ACTIVE_FILE] || nr[LRU_INACTIVE_FILE]) &&
           sc.nr_reclaimed < sc.nr_to_reclaim) {
        for (int lru = 0; lru < NR_LRU_LISTS && sc.nr_reclaimed < sc.nr_to_reclaim; ++lru) {
            uint64_t& left = nr[static_cast<size_t>(lru)];
            if (!left) continue;
            uint64_t nr_to_scan = std::min(left, SWAP_CLUSTER_MAX);
            if (!is_active_lru(lru))
                nr_to_scan = std::min(nr_to_scan, sc.nr_to_reclaim - sc.nr_reclaimed);
            left -= nr_to_scan;
            sc.nr_reclaimed += shrink_list(k, lru, nr_to_scan, sc);
        }
    }
    if (can_reclaim_anon_pages(k) && inactive_is_low(k, LRU_INACTIVE_ANON))
        shrink_active_list(k, SWAP_CLUSTER_MAX, LRU_ACTIVE_ANON);
}

// shrink_node for one priority: which active lists may be deactivated is decided once
// per pass (prepare_scan_control).
void shrink_node(Kernel& k, scan_control& sc) {
    sc.may_deactivate = 0;
    if (inactive_is_low(k, LRU_INACTIVE_ANON)) sc.may_deactivate |= DEACTIVATE_ANON;
    if (inactive_is_low(k, LRU_INACTIVE_FILE)) sc.may_deactivate |= DEACTIVATE_FILE;
    shrink_lruvec(k, sc);
}

}  // namespace

std::string kswapd_reclaim(Kernel& k, uint64_t count) {
    scan_control sc{count};
    // balance_pgdat: raise the pressure (lower the priority) until the goal is met.
    for (sc.priority = DEF_PRIORITY; sc.priority >= 0 && sc.nr_reclaimed < count; --sc.priority) {
        k.rt.yield(MMR_SITE("balance_pgdat"), rt::Ev::yield, static_cast<uint64_t>(sc.priority));
        shrink_node(k, sc);
    }
    return "0";
}

}  // namespace mmrace::mm
