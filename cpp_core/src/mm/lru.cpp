#include "mm/lru.hpp"

#include <string>

#include "check/report.hpp"
#include "mm/kernel.hpp"

namespace mmrace::mm {

namespace {
constexpr Pfn kNil = FolioPool::kNoPfn;
}

const char* lru_list_name(int lru) {
    static constexpr const char* kNames[] = {"inactive_anon", "active_anon", "inactive_file",
                                             "active_file"};
    return lru >= 0 && lru < NR_LRU_LISTS ? kNames[lru] : "none";
}

bool folio_is_file_lru(Kernel& k, Pfn p) {
    const Folio& f = k.folios[p];
    if (f.flags & (PG_anon | PG_swapcache)) return false;
    return !(f.mapping >= 0 && k.files[f.mapping]->shmem);
}

lru_list folio_lru_list(Kernel& k, Pfn p) {
    int lru = folio_is_file_lru(k, p) ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON;
    if (k.folios[p].flags & PG_active) lru += 1;  // LRU_ACTIVE
    return static_cast<lru_list>(lru);
}

void lruvec_add_folio(lruvec& l, FolioPool& folios, Pfn p, lru_list lru) {
    Folio& f = folios[p];
    if (f.lru != kNoLru || f.isolated || !f.in_use)
        check::violation(Check::lru, "pfn " + std::to_string(p) + " added to the LRU while on " +
                                    lru_list_name(f.lru) + (f.isolated ? ", isolated" : "") +
                                    (f.in_use ? "" : ", freed"));
    lru_head& h = l.lists[static_cast<size_t>(lru)];
    f.lru = lru;
    f.lru_prev = kNil;
    f.lru_next = h.head;
    if (h.head != kNil) folios[h.head].lru_prev = p;
    else h.tail = p;
    h.head = p;
    ++h.nr;
}

void lruvec_del_folio(lruvec& l, FolioPool& folios, Pfn p) {
    Folio& f = folios[p];
    if (f.lru == kNoLru) check::violation(Check::lru, "pfn " + std::to_string(p) + " leaves no LRU list");
    lru_head& h = l.lists[static_cast<size_t>(f.lru)];
    if (f.lru_prev != kNil) folios[f.lru_prev].lru_next = f.lru_next;
    else h.head = f.lru_next;
    if (f.lru_next != kNil) folios[f.lru_next].lru_prev = f.lru_prev;
    else h.tail = f.lru_prev;
    --h.nr;
    f.lru = kNoLru;
    f.lru_prev = f.lru_next = kNil;
}

void folio_add_lru(Kernel& k, Pfn p) {
    if (p == kZeroPfn) return;
    lruvec_add_folio(k.lru, k.folios, p, folio_lru_list(k, p));
}

void folio_mark_accessed(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    if (!(f.flags & PG_referenced)) {
        f.flags |= PG_referenced;
        return;
    }
    if (f.flags & PG_active) return;
    // folio_activate: only a folio on the LRU moves (an isolated one is its
    // reclaimer's to put back).
    if (folio_test_lru(f)) {
        lruvec_del_folio(k.lru, k.folios, p);
        f.flags |= PG_active;
        lruvec_add_folio(k.lru, k.folios, p, folio_lru_list(k, p));
        k.counters.inc(Counter::pgactivate);
    }
    f.flags &= ~PG_referenced;
}

void folio_deactivate(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    if (!folio_test_lru(f) || !(f.flags & PG_active)) return;
    lruvec_del_folio(k.lru, k.folios, p);
    f.flags &= ~(PG_active | PG_referenced);
    lruvec_add_folio(k.lru, k.folios, p, folio_lru_list(k, p));
    k.counters.inc(Counter::pgdeactivate, folio_nr_pages(k.folios, p));
}

void check_lru(Kernel& k) {
    uint64_t on_lists = 0;
    for (int lru = 0; lru < NR_LRU_LISTS; ++lru) {
        const lru_head& h = k.lru.lists[static_cast<size_t>(lru)];
        auto bad = [&](Pfn p, const char* what) {
            check::violation(Check::lru, std::string(lru_list_name(lru)) + " list: pfn " +
                                        std::to_string(p) + " " + what);
        };
        uint64_t n = 0;
        Pfn prev = kNil;
        for (Pfn p = h.head; p != kNil; prev = p, p = k.folios[p].lru_next) {
            if (p == kZeroPfn || p >= k.folios.high_water()) bad(p, "was never allocated");
            const Folio& f = k.folios[p];
            if (!f.in_use) bad(p, "is free");
            if (f.lru != lru) bad(p, "names another list");
            if (f.isolated) bad(p, "is isolated");
            if (f.lru_prev != prev) bad(p, "has a broken back link");
            if (++n > h.nr) bad(p, "is past the list's count");
        }
        if (n != h.nr || prev != h.tail) bad(h.tail, "ends the list, whose count or tail is wrong");
        on_lists += n;
    }
    // With no op in flight nothing is isolated, and the model has no per-CPU batches
    // (cpu_fbatches) for a folio to wait in: every live folio is on a list.
    uint64_t marked = 0;
    for (Pfn p = 1; p < k.folios.high_water(); ++p) {
        if (!k.folios[p].in_use) continue;
        if (k.folios[p].tail) continue;  // a large folio is on it by its head
        if (!folio_test_lru(k.folios[p]))
            check::violation(Check::lru, "pfn " + std::to_string(p) +
                                        " is in use but on no LRU list (a new folio joins one: "
                                        "folio_add_lru)");
        ++marked;
    }
    if (marked != on_lists)
        check::violation(Check::lru, std::to_string(marked) + " folios say they are on an LRU list, " +
                                    std::to_string(on_lists) + " are");
}

}  // namespace mmrace::mm
