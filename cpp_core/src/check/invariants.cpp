#include "check/invariants.hpp"

#include <algorithm>
#include <unordered_map>

#include "check/report.hpp"
#include "mm/kernel.hpp"
#include "ops/ops.hpp"

namespace mmrace::check {

using namespace mm;

// Every swap slot's count matches the swap PTEs holding it; SWAP_HAS_CACHE matches the
// swap cache.  Check "swap_accounting".
void check_swap_accounting(Kernel& k, const std::unordered_map<uint64_t, int64_t>& swap_ptes);

namespace {

[[noreturn]] void bad(const std::string& check, const mm_struct& mm, const std::string& what) {
    violation(check, "mm " + std::to_string(mm.id) + ": " + what);
}

void check_vmas(const mm_struct& mm) {
    uint64_t prev_end = 0;
    for (const auto& [key, v] : mm.mm_mt) {
        std::string r = ops::hex(v->vm_start) + "-" + ops::hex(v->vm_end);
        if (key != v->vm_end) bad("invariant", mm, "VMA " + r + " filed under the wrong end");
        if (v->vm_start >= v->vm_end || (v->vm_start | v->vm_end) % PAGE_SIZE)
            bad("invariant", mm, "VMA " + r + " is empty or unaligned");
        if (v->vm_start < prev_end) bad("invariant", mm, "VMA " + r + " overlaps its predecessor");
        if (v->vm_mm != &mm || v->detached) bad("invariant", mm, "VMA " + r + " is not this mm's");
        prev_end = v->vm_end;
    }
}

// Visits every PTE of mm: fn(addr, pte).  Checks that every reachable table is live.
template <class Fn>
void for_each_pte(Kernel& k, const mm_struct& mm, Fn fn) {
    auto live = [&](TableId t, uint64_t base) {
        if (!k.tables[t].in_use)
            bad("use_after_free", mm, "page table " + std::to_string(t) + " at " + ops::hex(base) +
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
                TableId pte = entry_table(k.tables[pmd].entries[j]);
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
    std::string at = "PTE at " + ops::hex(addr);
    if (!v) bad("invariant", mm, at + " lies outside every VMA");
    if (is_swap_pte(p)) {
        // A swap PTE holds a live slot, in a VMA whose anon_vma rmap reaches (it was an
        // anonymous page of this VMA, or of the one fork copied it from).
        swp_entry_t e = pte_to_swp_entry(p);
        if (!k.swap.valid(e) || !k.swap.slot(e).in_use || !k.swap.slot(e).count)
            bad("use_after_free", mm, at + " is a swap PTE for free swap slot " + std::to_string(e.val));
        if (!v->anon_vma || (v->vm_flags & VM_SHARED))
            bad("rmap", mm, at + " is a swap PTE in a VMA rmap cannot reach it through");
        return;
    }
    if (pte_write(p) && !(v->vm_flags & VM_WRITE))
        bad("invariant", mm, at + " is writable in a VMA without VM_WRITE");
    if (pte_hw_present(p) && !(v->vm_flags & VM_ACCESS_FLAGS))
        bad("invariant", mm, at + " is accessible in a PROT_NONE VMA");
    if (pte_special(p)) return;
    const Folio& f = k.folios[pte_pfn(p)];
    if (!f.in_use) bad("use_after_free", mm, at + " maps freed pfn " + std::to_string(pte_pfn(p)));
    if (v->vm_file >= 0) {
        // A file VMA maps its file's page-cache page for that offset, or (private) an
        // anonymous COW copy, and never anything past EOF: truncate zaps both.
        uint64_t pgoff = v->pgoff_at(addr);
        if (pgoff >= k.files[v->vm_file]->size_pages())
            bad("invariant", mm, at + " maps page " + std::to_string(pgoff) + " of " +
                                     k.files[v->vm_file]->name + ", past its end");
        if (!(f.flags & PG_anon) && (f.mapping != v->vm_file || f.index != pgoff))
            bad("invariant", mm, at + " maps a folio that is not " + k.files[v->vm_file]->name +
                                     "'s page " + std::to_string(pgoff));
    }
    if (f.flags & PG_anon) {
        // rmap must find this PTE: the folio's anon_vma is on the VMA's chain and its
        // index is this address's linear page index (so vma_address gives it back).
        const auto& chain = v->anon_vma_chain;
        if (!f.anon_vma || !anon_vma_of(k, f.anon_vma)->in_use)
            bad("rmap", mm, at + " maps an anonymous folio whose anon_vma is gone");
        if (std::find(chain.begin(), chain.end(), f.anon_vma) == chain.end())
            bad("rmap", mm, at + " maps an anonymous folio whose anon_vma does not reach the VMA");
        if (f.index != v->pgoff_at(addr))
            bad("rmap", mm, at + " maps an anonymous folio filed under page index " +
                                 std::to_string(f.index) + ", not " + std::to_string(v->pgoff_at(addr)));
    }
    if (pte_write(p) && (f.flags & PG_anon) && (!(f.flags & PG_anon_exclusive) || f.mapcount != 1))
        bad("invariant", mm, at + " is writable but its anonymous folio is shared (mapcount " +
                                 std::to_string(f.mapcount) + ")");
}

}  // namespace

void check_mm(Kernel& k, mm_struct& mm) {
    check_vmas(mm);
    for_each_pte(k, mm, [&](uint64_t addr, pte_t p) { check_pte(k, mm, addr, p); });
}

void check_folio_accounting(Kernel& k) {
    std::unordered_map<Pfn, int64_t> maps;
    std::unordered_map<uint64_t, int64_t> swap_ptes;
    for (mm_struct* mm : k.process_mm)
        if (mm)
            for_each_pte(k, *mm, [&](uint64_t, pte_t p) {
                if (is_swap_pte(p)) ++swap_ptes[pte_to_swp_entry(p).val];
                else if (pte_present(p) && !pte_special(p)) ++maps[pte_pfn(p)];
            });
    check_swap_accounting(k, swap_ptes);
    for (Pfn p = 1; p < k.folios.high_water(); ++p) {
        const Folio& f = k.folios[p];
        if (!f.in_use) continue;
        int64_t m = maps.count(p) ? maps[p] : 0;
        std::string who = "pfn " + std::to_string(p);
        if (f.mapcount != m)
            violation("folio_accounting", who + ": mapcount " + std::to_string(f.mapcount) +
                                              " but " + std::to_string(m) + " PTEs map it");
        // References: one per mapping, one for the page cache or the swap cache.
        int64_t cache = (f.mapping >= 0 ? 1 : 0) + ((f.flags & PG_swapcache) ? 1 : 0);
        if (f.refcount != f.mapcount + cache)
            violation("folio_accounting", who + ": refcount " + std::to_string(f.refcount) +
                                              " but mapcount " + std::to_string(f.mapcount) +
                                              (f.mapping >= 0 ? " + the page cache" : "") +
                                              ((f.flags & PG_swapcache) ? " + the swap cache" : ""));
        if (f.isolated || f.locked || (f.flags & PG_writeback))
            violation("folio_accounting", who + " is still isolated, locked or under writeback "
                                                "with no op in flight");
        if (f.mapping >= 0 && k.files[f.mapping]->i_pages.count(f.index) == 0)
            violation("folio_accounting", who + " claims a page-cache slot it does not hold");
    }
}

void check_swap_accounting(Kernel& k, const std::unordered_map<uint64_t, int64_t>& swap_ptes) {
    uint64_t used = 0;
    for (uint64_t i = 1; i <= k.swap.highest_bit; ++i) {
        const swap_slot& s = k.swap.swap_map[i];
        std::string who = "swap slot " + std::to_string(i);
        auto it = swap_ptes.find(i);
        int64_t ptes = it == swap_ptes.end() ? 0 : it->second;
        if (s.in_use != (s.count || s.has_cache))
            violation("swap_accounting", who + (s.in_use ? " is held by nothing" : " is free but held"));
        if (s.in_use) ++used;
        if (static_cast<int64_t>(s.count) != ptes)
            violation("swap_accounting", who + ": swap count " + std::to_string(s.count) + " but " +
                                             std::to_string(ptes) + " swap PTEs hold it");
        auto c = k.swap.swap_cache.find(i);
        if (s.has_cache != (c != k.swap.swap_cache.end()))
            violation("swap_accounting", who + (s.has_cache ? " has SWAP_HAS_CACHE but no folio in the swap cache"
                                                            : " has a swap-cache folio without SWAP_HAS_CACHE"));
        if (c != k.swap.swap_cache.end()) {
            const Folio& f = k.folios[c->second];
            if (!f.in_use || !(f.flags & PG_swapcache) || f.swap != i)
                violation("swap_accounting", who + "'s swap-cache folio pfn " + std::to_string(c->second) +
                                                 " is not in the swap cache for it");
        }
    }
    if (used != k.swap.inuse_pages)
        violation("swap_accounting", std::to_string(used) + " swap slots in use but inuse_pages " +
                                         std::to_string(k.swap.inuse_pages));
}

void check_quiescent(Kernel& k) {
    for (mm_struct* mm : k.process_mm)
        if (mm) check_mm(k, *mm);
    check_folio_accounting(k);
}

const char* leak_check_name() { return "leak"; }

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
    for (mm_struct* mm : k.process_mm)
        if (mm) vmas += mm->live_vmas();
    if (vmas) s += std::to_string(vmas) + " VMAs, ";
    if (s.empty()) return s;
    return s.substr(0, s.size() - 2) + " left after every process exited";
}

}  // namespace mmrace::check
