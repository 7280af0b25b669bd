#include "check/invariants.hpp"

#include <algorithm>
#include <vector>

#include "check/report.hpp"
#include "gup/gup.hpp"
#include "mm/kernel.hpp"
#include "mm/lru.hpp"
#include "ops/ops.hpp"

namespace mmrace::check {

using namespace mm;

namespace {

// What the page tables say about folios and swap slots, counted in one walk: the
// present PTEs that map each pfn and the swap PTEs that hold each slot.  The storage
// is per OS thread and kept, so that a check at every quiescent point allocates
// nothing once warm (the checks never nest: a nested run finishes inside an op).
struct PteCounts {
    std::vector<int64_t> maps;       // by pfn, [0, folios.high_water()): present PTEs
    std::vector<int64_t> huge;       // by pfn: huge PMDs mapping the folio it heads
    std::vector<int64_t> swap_ptes;  // by slot, [0, swap.highest_bit]
    std::vector<int64_t> pins;       // by pfn: how many held pin handles pin it

    static PteCounts& zeroed(const Kernel& k) {
        thread_local PteCounts c;
        c.maps.assign(k.folios.high_water(), 0);
        c.huge.assign(k.folios.high_water(), 0);
        c.swap_ptes.assign(k.swap.highest_bit + 1, 0);
        c.pins.assign(k.folios.high_water(), 0);
        for (const auto& h : k.pins)
            if (h.held)
                for (Pfn p : h.pages)
                    if (p != kZeroPfn && p < c.pins.size()) ++c.pins[p];
        return c;
    }
    // A huge PMD maps its folio once (the head's entire mapcount).
    void add_huge(pmd_t e) {
        if (pmd_pfn(e) < huge.size()) ++huge[pmd_pfn(e)];
    }
    // Entries out of range are left to check_pte, which reports them.
    void add(pte_t p) {
        if (is_swap_pte(p)) {
            uint64_t slot = pte_to_swp_entry(p).val;
            if (slot < swap_ptes.size()) ++swap_ptes[slot];
        } else if (pte_present(p) && !pte_special(p) && pte_pfn(p) < maps.size()) {
            ++maps[pte_pfn(p)];
        }
    }
};

[[noreturn]] void bad(Check check, const mm_struct& mm, const std::string& what) {
    violation(check, "mm " + std::to_string(mm.id) + ": " + what);
}

// Messages are built only on failure (lambdas): these checks run at every quiescent
// point and must not allocate when everything holds.
void check_vmas(const mm_struct& mm) {
    uint64_t prev_end = 0;
    for (const auto& [key, v] : mm.mm_mt) {
        // An init-capture: clang before 16 cannot capture a structured binding.
        auto r = [&, v = v] { return "VMA " + ops::hex(v->vm_start) + "-" + ops::hex(v->vm_end); };
        if (key != v->vm_end) bad(Check::invariant, mm, r() + " filed under the wrong end");
        if (v->vm_start >= v->vm_end || (v->vm_start | v->vm_end) % PAGE_SIZE)
            bad(Check::invariant, mm, r() + " is empty or unaligned");
        if (v->vm_start < prev_end) bad(Check::invariant, mm, r() + " overlaps its predecessor");
        if (v->vm_mm != &mm || v->detached) bad(Check::invariant, mm, r() + " is not this mm's");
        prev_end = v->vm_end;
    }
}

// Visits every PTE of mm: fn(addr, pte), and every huge PMD: huge(addr, pmd).  Checks
// that every reachable table is live.
template <class Fn, class Huge>
void for_each_pte(Kernel& k, const mm_struct& mm, Fn fn, Huge huge) {
    auto live = [&](TableId t, uint64_t base) {
        if (!k.tables[t].in_use)
            bad(Check::use_after_free, mm, "page table " + std::to_string(t) + " at " + ops::hex(base) +
                                          " is reachable but freed");
    };
    unsigned s3 = k.geo.shift(PGD_LEVEL), s2 = k.geo.shift(PUD_LEVEL), s1 = k.geo.shift(PMD_LEVEL);
    for (const auto& [gi, pud] : mm.pgd) {
        live(pud, gi << s3);
        for (uint64_t i = 0; i < k.geo.entries(); ++i) {
            TableId pmd = entry_table(k.tables[pud].entries[i]);
            if (pmd == kNoTable) continue;
            uint64_t b2 = (gi << s3) | (i << s2);
            live(pmd, b2);
            for (uint64_t j = 0; j < k.geo.entries(); ++j) {
                uint64_t pmd_e = k.tables[pmd].entries[j];
                TableId dep = k.tables[pmd].deposited[j];
                if (pmd_trans_huge(pmd_e)) {
                    // An anonymous THP's PMD has a table deposited; a file THP's none (x86).
                    Pfn h = pmd_pfn(pmd_e);
                    bool anon = h < k.folios.high_water() && (k.folios[h].flags & PG_anon);
                    if (anon && (dep == kNoTable || !k.tables[dep].in_use))
                        bad(Check::pgtable, mm, "huge PMD at " + ops::hex(b2 | (j << s1)) +
                                               " has no live deposited page table");
                    if (!anon && dep != kNoTable)
                        bad(Check::pgtable, mm, "a page table is deposited under a file huge PMD at " +
                                               ops::hex(b2 | (j << s1)));
                    huge(b2 | (j << s1), pmd_e);
                    continue;
                }
                if (dep != kNoTable)
                    bad(Check::pgtable, mm, "a page table is deposited under a PMD that is not huge");
                TableId pte = entry_table(pmd_e);
                if (pte == kNoTable) continue;
                uint64_t b1 = b2 | (j << s1);
                live(pte, b1);
                for (uint64_t e = 0; e < k.geo.entries(); ++e)
                    if (pte_t p = k.tables[pte].entries[e]) fn(b1 | (e << PAGE_SHIFT), p);
            }
        }
    }
}

void check_pte(Kernel& k, const mm_struct& mm, uint64_t addr, pte_t p) {
    const vm_area_struct* v = mm.vma_lookup(addr);
    auto at = [&] { return "PTE at " + ops::hex(addr); };
    if (!v) bad(Check::invariant, mm, at() + " lies outside every VMA");
    if (is_swap_pte(p)) {
        // A swap PTE holds a live slot, in a VMA whose anon_vma rmap reaches (it was an
        // anonymous page of this VMA, or of the one fork copied it from).
        swp_entry_t e = pte_to_swp_entry(p);
        if (!k.swap.valid(e) || !k.swap.slot(e).in_use || !k.swap.slot(e).count)
            bad(Check::use_after_free, mm, at() + " is a swap PTE for free swap slot " + std::to_string(e.val));
        if (!v->anon_vma || (v->vm_flags & VM_SHARED))
            bad(Check::rmap, mm, at() + " is a swap PTE in a VMA rmap cannot reach it through");
        return;
    }
    if (pte_write(p) && !(v->vm_flags & VM_WRITE))
        bad(Check::invariant, mm, at() + " is writable in a VMA without VM_WRITE");
    if (pte_hw_present(p) && !(v->vm_flags & VM_ACCESS_FLAGS))
        bad(Check::invariant, mm, at() + " is accessible in a PROT_NONE VMA");
    // The other way round would be a NUMA hinting PTE, which the model never makes.
    if (pte_protnone(p) && (v->vm_flags & VM_ACCESS_FLAGS))
        bad(Check::invariant, mm, at() + " is PROT_NONE in an accessible VMA");
    if (pte_special(p)) return;
    if (pte_pfn(p) >= k.folios.high_water())
        bad(Check::use_after_free, mm, at() + " maps pfn " + std::to_string(pte_pfn(p)) +
                                      ", which this run never allocated");
    Pfn page = pte_pfn(p);
    if (!k.folios[page].in_use) bad(Check::use_after_free, mm, at() + " maps freed pfn " + std::to_string(page));
    // A page of a large folio sits at its offset from the head: index and mapping are
    // the head's.
    const Folio& f = k.folios[page_folio(k.folios, page)];
    uint64_t index = f.index + (page - page_folio(k.folios, page));
    if (v->vm_file >= 0) {
        // A file VMA maps its file's page-cache page for that offset, or (private) an
        // anonymous COW copy, and never anything past EOF: truncate zaps both.
        uint64_t pgoff = v->pgoff_at(addr);
        if (pgoff >= k.files[v->vm_file]->size_pages())
            bad(Check::invariant, mm, at() + " maps page " + std::to_string(pgoff) + " of " +
                                     k.files[v->vm_file]->name + ", past its end");
        if (!(f.flags & PG_anon) && (f.mapping != v->vm_file || index != pgoff))
            bad(Check::invariant, mm, at() + " maps a folio that is not " + k.files[v->vm_file]->name +
                                     "'s page " + std::to_string(pgoff));
    }
    if (f.flags & PG_anon) {
        // rmap must find this PTE: the folio's anon_vma is on the VMA's chain and its
        // index is this address's linear page index (so vma_address gives it back).
        const auto& chain = v->anon_vma_chain;
        if (!f.anon_vma || f.anon_vma > k.anon_vmas.size() || !anon_vma_of(k, f.anon_vma)->in_use)
            bad(Check::rmap, mm, at() + " maps an anonymous folio whose anon_vma is gone");
        if (std::find(chain.begin(), chain.end(), f.anon_vma) == chain.end())
            bad(Check::rmap, mm, at() + " maps an anonymous folio whose anon_vma does not reach the VMA");
        if (index != v->pgoff_at(addr))
            bad(Check::rmap, mm, at() + " maps an anonymous folio filed under page index " +
                                 std::to_string(index) + ", not " + std::to_string(v->pgoff_at(addr)));
    }
    // folio_precise_page_mapcount: the page's PTE mappings and the folio's PMD ones.
    int64_t page_mapcount = f.order ? k.folios[page].page_mapcount + f.entire_mapcount : f.mapcount;
    if (pte_write(p) && (f.flags & PG_anon) && (!PageAnonExclusive(k.folios, page) || page_mapcount != 1))
        bad(Check::invariant, mm, at() + " is writable but its anonymous page is shared (mapcount " +
                                 std::to_string(page_mapcount) + ")");
}

// A huge PMD: inside one VMA that may have it, PROT_NONE exactly when the VMA is,
// mapping the head of a live PMD-order folio that rmap finds here: an anonymous one,
// writable only when exclusive, or its file's page-cache THP for that offset, inside
// i_size, writable only in a shared VMA.
void check_huge_pmd(Kernel& k, const mm_struct& mm, uint64_t addr, pmd_t e) {
    uint64_t size = k.geo.span(PTE_LEVEL);
    const vm_area_struct* v = mm.vma_lookup(addr);
    auto at = [&] { return "huge PMD at " + ops::hex(addr); };
    if (!v || v->vm_start > addr || v->vm_end < addr + size)
        bad(Check::invariant, mm, at() + " does not lie inside one VMA");
    if (pte_write(e) && !(v->vm_flags & VM_WRITE))
        bad(Check::invariant, mm, at() + " is writable in a VMA without VM_WRITE");
    // change_huge_pmd gives a huge PMD its VMA's protection in place: PAGE_NONE exactly
    // when the VMA has no access (no NUMA hinting in the model).
    bool accessible = v->vm_flags & VM_ACCESS_FLAGS;
    if (pmd_hw_present(e) && !accessible) bad(Check::invariant, mm, at() + " is accessible in a PROT_NONE VMA");
    if (!pmd_hw_present(e) && accessible) bad(Check::invariant, mm, at() + " is PROT_NONE in an accessible VMA");
    if (!pmd_hw_present(e) && !pmd_protnone(e)) bad(Check::invariant, mm, at() + " is neither present nor PROT_NONE");
    Pfn h = pmd_pfn(e);
    if (h >= k.folios.high_water() || !k.folios[h].in_use)
        bad(Check::use_after_free, mm, at() + " maps a freed pfn " + std::to_string(h));
    const Folio& f = k.folios[h];
    if (f.tail || f.order != k.geo.bits)
        bad(Check::invariant, mm, at() + " maps pfn " + std::to_string(h) + ", not the head of a PMD-order folio");
    if (!(f.flags & PG_anon)) {
        if (v->vm_file < 0 || f.mapping != v->vm_file || f.index != v->pgoff_at(addr))
            bad(Check::rmap, mm, at() + " maps a folio that is not its file's THP for this offset");
        if (f.index + k.geo.entries() > k.files[v->vm_file]->size_pages())
            bad(Check::invariant, mm, at() + " maps a file THP past the file's end");
        if (pte_write(e) && !(v->vm_flags & VM_SHARED))
            bad(Check::invariant, mm, at() + " maps a file THP writable in a private VMA");
        return;
    }
    const auto& chain = v->anon_vma_chain;
    if (std::find(chain.begin(), chain.end(), f.anon_vma) == chain.end() || f.index != v->pgoff_at(addr))
        bad(Check::rmap, mm, at() + " maps a folio rmap would not find here");
    if (pte_write(e) && (!PageAnonExclusive(k.folios, h) || f.mapcount != 1))
        bad(Check::invariant, mm, at() + " is writable but its folio is not exclusive");
}

// check_mm, also counting the PTEs into c when it is given.
void walk_mm(Kernel& k, mm_struct& mm, PteCounts* c) {
    check_vmas(mm);
    for_each_pte(
        k, mm,
        [&](uint64_t addr, pte_t p) {
            check_pte(k, mm, addr, p);
            if (c) c->add(p);
        },
        [&](uint64_t addr, pmd_t e) {
            check_huge_pmd(k, mm, addr, e);
            if (c) c->add_huge(e);
        });
}

// Every swap slot's count matches the swap PTEs holding it; SWAP_HAS_CACHE matches the
// swap cache.  Check "swap_accounting".  Only the slots this run allocated can be in
// use (swap_info_struct::highest_bit).
void check_swap_accounting(Kernel& k, const PteCounts& c) {
    const swap_info_struct& si = k.swap;
    auto who = [](uint64_t i) { return "swap slot " + std::to_string(i); };
    uint64_t used = 0, has_cache = 0;
    for (uint64_t i = 1; i <= si.highest_bit; ++i) {
        const swap_slot& s = si.swap_map[i];
        if (s.in_use != (s.count || s.has_cache))
            violation(Check::swap_accounting, who(i) + (s.in_use ? " is held by nothing" : " is free but held"));
        used += s.in_use;
        has_cache += s.has_cache;
        if (static_cast<int64_t>(s.count) != c.swap_ptes[i])
            violation(Check::swap_accounting, who(i) + ": swap count " + std::to_string(s.count) + " but " +
                                             std::to_string(c.swap_ptes[i]) + " swap PTEs hold it");
    }
    // Each swap-cache entry is a slot with SWAP_HAS_CACHE; as many entries as such slots
    // then means no slot has SWAP_HAS_CACHE without a folio in the swap cache.
    for (const auto& [i, pfn] : si.swap_cache) {
        if (!si.valid(swp_entry_t{i}) || !si.swap_map[i].has_cache)
            violation(Check::swap_accounting, who(i) + " has a swap-cache folio without SWAP_HAS_CACHE");
        const Folio* f = pfn < k.folios.high_water() ? &k.folios[pfn] : nullptr;
        if (!f || !f->in_use || !(f->flags & PG_swapcache) || f->swap != i)
            violation(Check::swap_accounting, who(i) + "'s swap-cache folio pfn " + std::to_string(pfn) +
                                             " is not in the swap cache for it");
    }
    if (has_cache != si.swap_cache.size())
        for (uint64_t i = 1; i <= si.highest_bit; ++i)
            if (si.swap_map[i].has_cache && !si.swap_cache.count(i))
                violation(Check::swap_accounting, who(i) + " has SWAP_HAS_CACHE but no folio in the swap cache");
    if (used != si.inuse_pages)
        violation(Check::swap_accounting, std::to_string(used) + " swap slots in use but inuse_pages " +
                                         std::to_string(si.inuse_pages));
}

// A large folio's mapcounts against the page tables: each page's PTE mappings, the
// huge PMDs, and folio_mapcount their sum; its mm id slots account for no more than
// that, and one of them for all of it unless it may be mapped shared.
void check_large_mapcounts(const Kernel& k, const PteCounts& c, Pfn head) {
    const Folio& f = k.folios[head];
    auto who = [head] { return "large folio pfn " + std::to_string(head); };
    int64_t total = c.huge[head];
    if (f.entire_mapcount != c.huge[head])
        violation(Check::folio_accounting, who() + ": entire mapcount " + std::to_string(f.entire_mapcount) +
                                          " but " + std::to_string(c.huge[head]) + " huge PMDs map it");
    for (Pfn i = 0; i < folio_nr_pages(k.folios, head); ++i) {
        int64_t m = c.maps[head + i];
        if (k.folios[head + i].page_mapcount != m)
            violation(Check::folio_accounting, who() + ": page " + std::to_string(i) + " has mapcount " +
                                              std::to_string(k.folios[head + i].page_mapcount) + " but " +
                                              std::to_string(m) + " PTEs map it");
        total += m;
    }
    if (f.mapcount != total)
        violation(Check::folio_accounting, who() + ": mapcount " + std::to_string(f.mapcount) + " but " +
                                          std::to_string(total) + " mappings");
    int64_t tracked = f.mm_id_mapcount[0] + f.mm_id_mapcount[1];
    bool one_owns_all = f.mm_id_mapcount[0] == total || f.mm_id_mapcount[1] == total;
    if (tracked > total || (!f.maybe_mapped_shared && !one_owns_all))
        violation(Check::folio_accounting, who() + ": its mm id slots hold " + std::to_string(tracked) +
                                          " of " + std::to_string(total) + " mappings" +
                                          (f.maybe_mapped_shared ? "" : ", yet it counts as exclusive"));
}

// The folio and swap accounting against PTE counts of every mm.
void check_accounting(Kernel& k, const PteCounts& c) {
    check_swap_accounting(k, c);
    for (Pfn p = 1; p < k.folios.high_water(); ++p) {
        const Folio& f = k.folios[p];
        if (!f.in_use) continue;
        auto who = [p] { return "pfn " + std::to_string(p); };
        if (f.tail) continue;  // a large folio's counts live in its head
        if (f.order) {
            check_large_mapcounts(k, c, p);
        } else if (f.mapcount != c.maps[p] || c.huge[p]) {
            violation(Check::folio_accounting, who() + ": mapcount " + std::to_string(f.mapcount) +
                                              " but " + std::to_string(c.maps[p]) + " PTEs map it");
        }
        // References: one per mapping, one for the page cache or the swap cache, and
        // per pin a handle holds GUP_PIN_COUNTING_BIAS (order 0) or one (a large folio,
        // whose pins are counted in _pincount, through any of its pages).  A page-cache
        // THP holds one page-cache reference per page (mm/file_thp.hpp).
        int64_t cache = (f.mapping >= 0 ? int64_t{1} << f.order : 0) + ((f.flags & PG_swapcache) ? 1 : 0);
        int64_t pins = c.pins[p];
        for (size_t i = 1; i < (size_t{1} << f.order); ++i) pins += c.pins[p + i];
        if (f.pincount != pins)
            violation(Check::folio_accounting, who() + ": pincount " + std::to_string(f.pincount) +
                                              " but " + std::to_string(pins) + " pins hold it");
        cache += f.order ? f.pincount : f.pincount * gup::GUP_PIN_COUNTING_BIAS;
        if (f.refcount != f.mapcount + cache)
            violation(Check::folio_accounting, who() + ": refcount " + std::to_string(f.refcount) +
                                              " but mapcount " + std::to_string(f.mapcount) +
                                              (f.mapping >= 0 ? " + the page cache" : "") +
                                              ((f.flags & PG_swapcache) ? " + the swap cache" : "") +
                                              (f.pincount ? " + pins" : ""));
        if (f.isolated || f.locked || (f.flags & PG_writeback))
            violation(Check::folio_accounting, who() + " is still isolated, locked or under writeback "
                                                  "with no op in flight");
        if (f.mapping >= 0 && k.files[f.mapping]->i_pages.count(f.index) == 0)
            violation(Check::folio_accounting, who() + " claims a page-cache slot it does not hold");
    }
    check_lru(k);
}

}  // namespace

void check_mm(Kernel& k, mm_struct& mm) { walk_mm(k, mm, nullptr); }

void check_folio_accounting(Kernel& k) {
    PteCounts& c = PteCounts::zeroed(k);
    for (const process& pr : k.processes)
        if (pr.mm)
            for_each_pte(
                k, *pr.mm, [&](uint64_t, pte_t p) { c.add(p); }, [&](uint64_t, pmd_t e) { c.add_huge(e); });
    check_accounting(k, c);
}

void check_quiescent(Kernel& k) {
    // One walk of the page tables serves the structural checks and the accounting.
    PteCounts& c = PteCounts::zeroed(k);
    for (const process& pr : k.processes)
        if (pr.mm) walk_mm(k, *pr.mm, &c);
    check_accounting(k, c);
}


std::string find_leaks(Kernel& k) {
    std::string s;
    size_t cached = 0;  // files outlive processes: their page cache is not a leak
    for (const auto& f : k.files) cached += f->i_pages.size();
    // Nor is a clean swap-cache folio no swap PTE needs any more: upstream leaves such
    // folios (a zap that found the folio locked, a swap-in that lost a race) to later
    // reclaim or to the swap allocator's scan.  Anything else holding a slot is a leak.
    size_t slots = 0;
    for (uint64_t i = 1; i <= k.swap.highest_bit; ++i) {
        const swap_slot& sl = k.swap.swap_map[i];
        if (!sl.in_use) continue;
        auto c = k.swap.swap_cache.find(i);
        const Folio* f = c == k.swap.swap_cache.end() ? nullptr : &k.folios[c->second];
        if (!sl.count && f && f->refcount == 1 && !f->mapcount && !f->locked &&
            !(f->flags & PG_writeback))
            ++cached;
        else
            ++slots;
    }
    if (k.folios.in_use() > cached) s += std::to_string(k.folios.in_use() - cached) + " folios, ";
    if (slots) s += std::to_string(slots) + " swap slots, ";
    size_t avs = k.anon_vmas.live();
    if (avs) s += std::to_string(avs) + " anon_vmas, ";
    if (k.tables.in_use()) s += std::to_string(k.tables.in_use()) + " page tables, ";
    size_t vmas = 0;
    for (const process& pr : k.processes)
        if (pr.mm) vmas += pr.mm->live_vmas();
    if (vmas) s += std::to_string(vmas) + " VMAs, ";
    if (s.empty()) return s;
    return s.substr(0, s.size() - 2) + " left after every process exited";
}

}  // namespace mmrace::check
