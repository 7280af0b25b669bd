#include "mm/pgalloc.hpp"

#include "check/report.hpp"
#include "sync/lockdep.hpp"

namespace mmrace::mm {

namespace {

// One level down from a PUD or PMD table entry; kNoTable if none.
TableId next_table(Kernel& k, TableId t, uint64_t addr, int level) {
    return entry_table(k.tables[t].entries[k.geo.index(addr, level)]);
}

}  // namespace

TableId pte_table_lookup(Kernel& k, mm_struct& mm, uint64_t addr) {
    auto it = mm.pgd.find(k.geo.index(addr, PGD_LEVEL));
    if (it == mm.pgd.end()) return kNoTable;
    TableId pmd = next_table(k, it->second, addr, PUD_LEVEL);
    if (pmd == kNoTable) return kNoTable;
    return next_table(k, pmd, addr, PMD_LEVEL);
}

namespace {

// One level of pte_alloc: the table under `slot`, allocating and installing it under
// mm->page_table_lock (pmd_install) if the slot is empty.  The allocation may sleep;
// the install re-checks the slot, as __pud_alloc/__pmd_alloc/__pte_alloc do.  A failed
// allocation fails the walk (-ENOMEM) even if another thread installed the table
// meanwhile, as upstream; the levels already installed stay for free_pgtables.  A
// huge PMD in the slot (installed meanwhile by a THP fault) yields kNoTable too: the
// caller tells the two apart with pmd_trans_huge(slot).
TableId alloc_level(Kernel& k, mm_struct& mm, uint64_t& slot, int level) {
    if (slot) return entry_table(slot);
    k.rt.yield(MMR_SITE("pte_alloc_one"), rt::Ev::yield, static_cast<uint64_t>(level));
    TableId fresh = k.tables.alloc(level);
    if (fresh == kNoTable) return kNoTable;
    mm.page_table_lock.spin_lock(MMR_SITE("pmd_install"));
    if (!slot) {
        slot = mk_table_entry(fresh);
        k.counters.inc(Counter::pte_alloc);
        fresh = kNoTable;
    }
    mm.page_table_lock.spin_unlock(MMR_SITE("pmd_install"));
    if (fresh != kNoTable) k.tables.free(fresh);
    return entry_table(slot);
}

}  // namespace

PmdRef pmd_lookup(Kernel& k, mm_struct& mm, uint64_t addr) {
    auto it = mm.pgd.find(k.geo.index(addr, PGD_LEVEL));
    if (it == mm.pgd.end()) return {};
    TableId pmd = next_table(k, it->second, addr, PUD_LEVEL);
    if (pmd == kNoTable) return {};
    return PmdRef{pmd, k.geo.index(addr, PMD_LEVEL)};
}

PmdRef pmd_alloc(Kernel& k, mm_struct& mm, uint64_t addr) {
    // The PGD is sparse: its slot is created on demand under page_table_lock too.
    uint64_t pgd_index = k.geo.index(addr, PGD_LEVEL);
    auto it = mm.pgd.find(pgd_index);
    TableId pud;
    if (it != mm.pgd.end()) {
        pud = it->second;
    } else {
        uint64_t slot = 0;
        pud = alloc_level(k, mm, slot, PUD_LEVEL);
        if (pud == kNoTable) return {};
        // Another thread may have installed one while we slept in the allocation.
        auto [pos, inserted] = mm.pgd.emplace(pgd_index, pud);
        if (!inserted) {
            k.tables.free(pud);
            pud = pos->second;
        }
    }
    uint64_t& pud_e = k.tables[pud].entries[k.geo.index(addr, PUD_LEVEL)];
    TableId pmd = alloc_level(k, mm, pud_e, PMD_LEVEL);
    if (pmd == kNoTable) return {};
    return PmdRef{pmd, k.geo.index(addr, PMD_LEVEL)};
}

PteRef pte_alloc(Kernel& k, mm_struct& mm, uint64_t addr) {
    PmdRef pmd = pmd_alloc(k, mm, addr);
    if (!pmd) return {};
    uint64_t& pmd_e = k.tables[pmd.table].entries[pmd.index];
    TableId pte = alloc_level(k, mm, pmd_e, PTE_LEVEL);
    if (pte == kNoTable) {
        PteRef none;
        none.pmd_huge = pmd_trans_huge(pmd_e);
        return none;
    }
    return PteRef{pte, k.geo.index(addr, PTE_LEVEL)};
}

pte_t ptep_get_lockless(Kernel& k, PteRef p, const rt::Site* site) {
    k.rt.yield(site, rt::Ev::access, p.table << 12 | p.index);
    return k.tables[p.table].entries[p.index];
}

pte_t ptep_get(Kernel& k, PteRef p) {
    sync::lockdep_assert_held(k.tables[p.table].ptl, sync::LockMode::any);
    return k.tables[p.table].entries[p.index];
}

void set_pte_at(Kernel& k, PteRef p, pte_t pte) {
    sync::lockdep_assert_held(k.tables[p.table].ptl, sync::LockMode::any);
    k.tables[p.table].entries[p.index] = pte;
}

namespace {

// A PTE lock lives in its page table's struct ptdesc: taking it after the table was
// freed is a use after free (a walker kept a table that was retracted and freed).
void check_table_live(Kernel& k, PteRef p) {
    if (!k.tables[p.table].in_use)
        check::violation(Check::use_after_free, "the PTE lock of freed page table " + std::to_string(p.table) +
                                               " is taken");
}

}  // namespace

void pte_lock(Kernel& k, PteRef p, const rt::Site* site) {
    check_table_live(k, p);
    k.tables[p.table].ptl.spin_lock(site);
}

bool pte_trylock(Kernel& k, PteRef p, const rt::Site* site) {
    check_table_live(k, p);
    return k.tables[p.table].ptl.spin_trylock(site);
}

void pte_unlock(Kernel& k, PteRef p, const rt::Site* site) {
    k.tables[p.table].ptl.spin_unlock(site);
}

}  // namespace mmrace::mm
