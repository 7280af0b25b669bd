#include "mm/unmap.hpp"

#include "check/report.hpp"
#include "mm/huge_memory.hpp"
#include "mm/kernel.hpp"
#include "mm/pgalloc.hpp"
#include "mm/rmap.hpp"
#include "mm/swap.hpp"

namespace mmrace::mm {

namespace {

// zap_pte_range over the part of [addr, end) that one PTE table covers.
void zap_pte_range(mmu_gather& tlb, mm_struct& mm, uint64_t addr, uint64_t end) {
    Kernel& k = *tlb.k;
    TableId t = pte_table_lookup(k, mm, addr);
    if (t == kNoTable) return;
    PteRef lock_ref{t, 0};
    pte_lock(k, lock_ref, MMR_SITE("zap_pte_range"));
    for (; addr < end; addr += PAGE_SIZE) {
        pte_t& e = k.tables[t].entries[k.geo.index(addr, PTE_LEVEL)];
        if (pte_none(e)) continue;
        pte_t old = e;
        e = 0;  // ptep_get_and_clear_full
        if (is_swap_pte(old)) {  // zap_nonpresent_ptes: no translation to flush
            free_swap_and_cache(k, pte_to_swp_entry(old));
            continue;
        }
        tlb_remove_tlb_entry(tlb, addr);
        if (!pte_special(old)) {
            Pfn page = pte_pfn(old);
            Folio& folio = k.folios[page_folio(k.folios, page)];
            // zap_present_folio_ptes: a dirty PTE of a page-cache folio dirties the folio.
            if (!(folio.flags & PG_anon) && pte_dirty(old)) folio.flags |= PG_dirty;
            folio_remove_rmap_pte(k, page, mm);
            tlb_remove_folio(tlb, page_folio(k.folios, page));
        }
    }
    pte_unlock(k, lock_ref, MMR_SITE("zap_pte_range"));
}

bool table_empty(Kernel& k, TableId t) {
    for (uint64_t e : k.tables[t].entries)
        if (e) return false;
    return true;
}

struct FreeRange {
    uint64_t start, end, floor, ceiling;
};

// Frees the table under `entry` (a table of `level` covering [base, base + its span))
// and the tables below it, as far as they lie inside [floor, ceiling).
void free_table(mmu_gather& tlb, uint64_t& entry, int level, uint64_t base, const FreeRange& r) {
    Kernel& k = *tlb.k;
    TableId t = entry_table(entry);
    if (t == kNoTable) return;
    uint64_t cover = 1ull << k.geo.shift(level + 1);
    if (level > PTE_LEVEL) {
        uint64_t child = 1ull << k.geo.shift(level);
        for (uint64_t i = 0; i < k.geo.entries(); ++i) {
            uint64_t cb = base + i * child;
            if (cb >= r.end || cb + child <= r.start) continue;
            free_table(tlb, k.tables[t].entries[i], level - 1, cb, r);
        }
    }
    if (base < r.floor || base + cover > r.ceiling) return;
    if (!table_empty(k, t))
        check::violation(Check::pgtable, "freeing a non-empty page table covering " +
                                        std::to_string(base) + ".." + std::to_string(base + cover));
    entry = 0;  // pmd_clear / pud_clear
    tlb_remove_table(tlb, t, base, cover);
}

}  // namespace

void unmap_single_vma(mmu_gather& tlb, vm_area_struct* vma, uint64_t start, uint64_t end) {
    Kernel& k = *tlb.k;
    start = std::max(start, vma->vm_start);
    end = std::min(end, vma->vm_end);
    uint64_t span = k.geo.span(PTE_LEVEL);
    for (uint64_t a = start; a < end;) {
        uint64_t next = std::min((a / span + 1) * span, end);
        // zap_pmd_range: a huge PMD goes whole, or is split first.
        PmdRef pmd = pmd_lookup(k, *vma->vm_mm, a);
        if (pmd && pmd_trans_huge(pmd_entry(k, pmd))) {
            if (next - a != span) split_huge_pmd(k, vma, a);
            else if (zap_huge_pmd(tlb, vma, pmd, a)) {
                a = next;
                continue;
            }
        }
        zap_pte_range(tlb, *vma->vm_mm, a, next);
        a = next;
    }
}

void free_pgtables(mmu_gather& tlb, uint64_t start, uint64_t end, uint64_t floor,
                   uint64_t ceiling) {
    Kernel& k = *tlb.k;
    mm_struct& mm = *tlb.mm;
    FreeRange r{start, end, floor, ceiling};
    unsigned pgd_shift = k.geo.shift(PGD_LEVEL);
    for (auto it = mm.pgd.lower_bound(start >> pgd_shift);
         it != mm.pgd.end() && (it->first << pgd_shift) < end;) {
        uint64_t entry = mk_table_entry(it->second);
        free_table(tlb, entry, PUD_LEVEL, it->first << pgd_shift, r);
        it = entry ? std::next(it) : mm.pgd.erase(it);
    }
}

}  // namespace mmrace::mm
