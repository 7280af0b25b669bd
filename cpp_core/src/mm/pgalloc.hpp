// Walking and populating page tables (mm/memory.c: __pud_alloc, __pmd_alloc,
// __pte_alloc, pte_offset_map_lock; mm/pagewalk.c for the lockless walk).
#pragma once

#include <cstdint>

#include "mm/kernel.hpp"

namespace mmrace::mm {

// Where a PTE lives: its PTE table and the index in it.
struct PteRef {
    TableId table = kNoTable;
    uint64_t index = 0;
    // pte_alloc found a huge PMD where the PTE table would be (pte_offset_map_lock
    // fails): not out of memory, the fault returns and the access retries.
    bool pmd_huge = false;
    explicit operator bool() const { return table != kNoTable; }
};

// Where a PMD entry lives: its PMD table and the index in it.
struct PmdRef {
    TableId table = kNoTable;
    uint64_t index = 0;
    explicit operator bool() const { return table != kNoTable; }
};

// The PMD entry covering addr, or an empty PmdRef if the PGD or PUD level is empty.
// Caller holds mmap_lock or the VMA lock.  Not a scheduling point.
PmdRef pmd_lookup(Kernel& k, mm_struct& mm, uint64_t addr);
// pud_alloc + pmd_alloc: as pte_alloc, down to the PMD entry.  Empty when out of
// page-table memory.
PmdRef pmd_alloc(Kernel& k, mm_struct& mm, uint64_t addr);

// The PTE table covering addr, or kNoTable if an upper level is empty.  No lock: the
// caller holds mmap_lock (or, later, what its strategy requires) so tables cannot be
// freed under it.  Not a scheduling point.
TableId pte_table_lookup(Kernel& k, mm_struct& mm, uint64_t addr);

// pud_alloc + pmd_alloc + pte_alloc: make sure a PTE table covers addr, allocating
// missing levels under mm->page_table_lock as pmd_install does.  Caller holds
// mmap_lock.  Returns the PTE, or an empty PteRef when out of page-table memory.
PteRef pte_alloc(Kernel& k, mm_struct& mm, uint64_t addr);

// ptep_get_lockless: read a PTE without its lock (a scheduling point: another thread
// may change it right after).
pte_t ptep_get_lockless(Kernel& k, PteRef p, const rt::Site* site);
// ptep_get / set_pte_at under the PTE lock (lockdep-asserted).
pte_t ptep_get(Kernel& k, PteRef p);
void set_pte_at(Kernel& k, PteRef p, pte_t pte);

// pte_offset_map_lock's lock half: takes the split PTE lock of p's table.
void pte_lock(Kernel& k, PteRef p, const rt::Site* site);
void pte_unlock(Kernel& k, PteRef p, const rt::Site* site);
// spin_trylock of the PTE lock (the speculative fault's pte_map_lock).
bool pte_trylock(Kernel& k, PteRef p, const rt::Site* site);

}  // namespace mmrace::mm
