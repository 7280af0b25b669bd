// Page tables: four levels (PGD, PUD, PMD, PTE) as on x86-64 with 4-level paging.
//
// Each PUD/PMD/PTE table is a page-table page with its own lifetime and, for PTE
// tables, its own split PTE lock (ptlock_ptr in include/linux/mm.h).  The PGD is kept
// sparse per mm, because the `small` geometry (8 entries a table, so that a PMD maps
// 8 pages and small programs reach THP) leaves many address bits to the top level.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "mm/folio.hpp"
#include "mm/free_id_tree.hpp"
#include "mmrace/program.hpp"
#include "sync/spinlock.hpp"

namespace mmrace::mm {

constexpr uint64_t PAGE_SHIFT = 12;
constexpr uint64_t PAGE_SIZE = 1ull << PAGE_SHIFT;
constexpr uint64_t TASK_SIZE = 1ull << 47;

enum Level : int { PTE_LEVEL = 0, PMD_LEVEL = 1, PUD_LEVEL = 2, PGD_LEVEL = 3 };

struct PtGeometry {
    unsigned bits;  // index bits per table level: 3 (small) or 9 (x86)
    explicit PtGeometry(Geometry g) : bits(g == Geometry::small ? 3 : 9) {}
    uint64_t entries() const { return 1ull << bits; }
    unsigned shift(int level) const { return PAGE_SHIFT + bits * static_cast<unsigned>(level); }
    // The index of addr in a table of `level` (the PGD index is not masked).
    uint64_t index(uint64_t addr, int level) const {
        uint64_t i = addr >> shift(level);
        return level == PGD_LEVEL ? i : (i & (entries() - 1));
    }
    uint64_t span(int level) const { return 1ull << shift(level + 1); }  // bytes one table maps
};

// A PTE: bit 0 present, 1 write, 2 dirty, 3 young, 4 special (no struct page: the zero
// page), pfn from bit 12.  A PMD/PUD entry: bit 0 present, the table id from bit 12.
using pte_t = uint64_t;
constexpr pte_t _PAGE_PRESENT = 1u << 0;
constexpr pte_t _PAGE_RW = 1u << 1;
constexpr pte_t _PAGE_DIRTY = 1u << 2;
constexpr pte_t _PAGE_ACCESSED = 1u << 3;
constexpr pte_t _PAGE_SPECIAL = 1u << 4;
// A PROT_NONE mapping: present to the kernel (pte_present, pte_protnone), absent to the
// MMU, as x86's _PAGE_PROTNONE.
constexpr pte_t _PAGE_PROTNONE = 1u << 5;
// A swap PTE (include/linux/swapops.h): not present, not PROT_NONE, not none.  The
// model marks it with _PAGE_SWP_ENTRY so that slot 0 would still differ from pte_none,
// and keeps PageAnonExclusive of the swapped-out page in _PAGE_SWP_EXCLUSIVE
// (pte_swp_exclusive, x86's _PAGE_SWP_EXCLUSIVE).  The slot is stored from bit 12.
constexpr pte_t _PAGE_SWP_ENTRY = 1u << 6;
constexpr pte_t _PAGE_SWP_EXCLUSIVE = 1u << 7;
// userfaultfd write protection (include/linux/userfaultfd_k.h, x86's _PAGE_UFFD_WP and
// _PAGE_SWP_UFFD_WP): a software bit of a present PTE, and its twin in a swap PTE, so
// that swap-out and swap-in keep it.  pte_mkuffd_wp also write-protects, as on x86.
constexpr pte_t _PAGE_UFFD_WP = 1u << 8;
constexpr pte_t _PAGE_SWP_UFFD_WP = 1u << 9;
inline bool pte_uffd_wp(pte_t p) { return p & _PAGE_UFFD_WP; }
inline pte_t pte_mkuffd_wp(pte_t p) { return (p | _PAGE_UFFD_WP) & ~_PAGE_RW; }
inline pte_t pte_clear_uffd_wp(pte_t p) { return p & ~_PAGE_UFFD_WP; }
inline bool pte_swp_uffd_wp(pte_t p) { return p & _PAGE_SWP_UFFD_WP; }
inline pte_t pte_swp_mkuffd_wp(pte_t p) { return p | _PAGE_SWP_UFFD_WP; }
inline pte_t pte_swp_clear_uffd_wp(pte_t p) { return p & ~_PAGE_SWP_UFFD_WP; }
inline bool pte_none(pte_t p) { return p == 0; }
inline bool pte_present(pte_t p) { return p & (_PAGE_PRESENT | _PAGE_PROTNONE); }
inline bool pte_protnone(pte_t p) { return (p & (_PAGE_PRESENT | _PAGE_PROTNONE)) == _PAGE_PROTNONE; }
// The entry made PAGE_NONE (vm_page_prot of a VMA without access): _PAGE_PROTNONE in
// place of _PAGE_PRESENT, the other bits kept.
inline pte_t pte_mkprotnone(pte_t p) { return (p & ~_PAGE_PRESENT) | _PAGE_PROTNONE; }
// What the hardware walker sees.
inline bool pte_hw_present(pte_t p) { return p & _PAGE_PRESENT; }
inline bool pte_write(pte_t p) { return p & _PAGE_RW; }
inline bool pte_special(pte_t p) { return p & _PAGE_SPECIAL; }
inline Pfn pte_pfn(pte_t p) { return static_cast<Pfn>(p >> PAGE_SHIFT); }
inline pte_t mk_pte(Pfn pfn, bool write) {
    return (static_cast<pte_t>(pfn) << PAGE_SHIFT) | _PAGE_PRESENT | (write ? _PAGE_RW : 0);
}
inline pte_t pte_wrprotect(pte_t p) { return p & ~_PAGE_RW; }
inline pte_t pte_mkwrite(pte_t p) { return p | _PAGE_RW; }
inline pte_t pte_mkdirty(pte_t p) { return p | _PAGE_DIRTY; }
inline pte_t pte_mkyoung(pte_t p) { return p | _PAGE_ACCESSED; }
inline pte_t pte_mkspecial(pte_t p) { return p | _PAGE_SPECIAL; }
inline bool pte_dirty(pte_t p) { return p & _PAGE_DIRTY; }

// swp_entry_t: one swap device (type 0), so an entry is its slot offset.  0 is never a
// slot (the swap header lives there), so folio->swap == 0 means "none".
struct swp_entry_t {
    uint64_t val = 0;
    bool operator==(const swp_entry_t&) const = default;
};
inline bool is_swap_pte(pte_t p) { return !pte_none(p) && !pte_present(p); }
inline swp_entry_t pte_to_swp_entry(pte_t p) { return swp_entry_t{p >> PAGE_SHIFT}; }
inline pte_t swp_entry_to_pte(swp_entry_t e) { return (e.val << PAGE_SHIFT) | _PAGE_SWP_ENTRY; }
inline bool pte_swp_exclusive(pte_t p) { return p & _PAGE_SWP_EXCLUSIVE; }
inline pte_t pte_swp_mkexclusive(pte_t p) { return p | _PAGE_SWP_EXCLUSIVE; }
inline pte_t pte_swp_clear_exclusive(pte_t p) { return p & ~_PAGE_SWP_EXCLUSIVE; }

using TableId = uint32_t;
constexpr TableId kNoTable = UINT32_MAX;
// A huge PMD leaf (pmd_trans_huge, x86's _PAGE_PSE): maps a PMD-order folio whose
// head pfn is stored from bit 12, with the PTE's present/write/dirty/young bits.  As
// on x86, a PROT_NONE huge PMD keeps _PAGE_PSE and trades _PAGE_PRESENT for
// _PAGE_PROTNONE (pmd_modify with PAGE_NONE): still a huge leaf to the kernel
// (pmd_present, pmd_trans_huge), absent to the MMU.  No PMD-level swap or migration
// entries are modelled, so _PAGE_PSE never meets _PAGE_SWP_EXCLUSIVE (the same bit).
using pmd_t = uint64_t;
constexpr pmd_t _PAGE_PSE = 1u << 7;
inline bool pmd_trans_huge(pmd_t e) { return e & _PAGE_PSE; }
inline bool pmd_protnone(pmd_t e) { return pmd_trans_huge(e) && pte_protnone(e); }
// What the hardware walker sees (pte_hw_present's twin).
inline bool pmd_hw_present(pmd_t e) { return e & _PAGE_PRESENT; }
inline pmd_t mk_huge_pmd(Pfn head, bool write) { return mk_pte(head, write) | _PAGE_PSE; }
// folio_mk_pmd(folio, vma->vm_page_prot) for a private anonymous VMA: read-only
// (maybe_pmd_mkwrite adds the write bit), or PAGE_NONE when the VMA has no access.
inline pmd_t folio_mk_pmd(Pfn head, bool accessible) {
    pmd_t e = mk_huge_pmd(head, false);
    return accessible ? e : pte_mkprotnone(e);
}
// pmd_modify: the pfn, _PAGE_PSE, dirty and young stay; the protection is replaced by
// read-only or PAGE_NONE (the write bit is the caller's: can_change_pmd_writable).
inline pmd_t pmd_modify(pmd_t e, bool accessible) {
    pmd_t keep = e & ~(_PAGE_PRESENT | _PAGE_RW | _PAGE_PROTNONE);
    return keep | (accessible ? _PAGE_PRESENT : _PAGE_PROTNONE);
}
inline Pfn pmd_pfn(pmd_t e) { return pte_pfn(e); }
inline uint64_t mk_table_entry(TableId id) { return (static_cast<uint64_t>(id) << PAGE_SHIFT) | 1; }
// The table an upper-level entry points to; kNoTable for none and for a huge leaf.
inline TableId entry_table(uint64_t e) {
    return e && !pmd_trans_huge(e) ? static_cast<TableId>(e >> PAGE_SHIFT) : kNoTable;
}

struct PageTable {
    int level = PTE_LEVEL;
    bool in_use = false;
    std::vector<uint64_t> entries;
    sync::SpinLock ptl{"ptlock"};  // the split PTE lock (PTE tables only)
    // PMD tables: the PTE table deposited under each huge PMD entry
    // (pgtable_trans_huge_deposit), kept for the split; kNoTable if none.
    std::vector<TableId> deposited;
};

// Page-table pages (config pgtables=N of them), allocated lowest id first (a
// FreeIdTree of the freed ids: O(log n) an allocation or free).  Storage
// grows on demand and is kept across runs: reset() frees every table without
// releasing anything (pools are reset between runs, not rebuilt).
class PageTablePool {
public:
    explicit PageTablePool(PtGeometry geo) : geo_(geo) {}
    // pagetable_alloc: a zeroed table of `level`, or kNoTable when all `limit` tables
    // are in use.
    TableId alloc(int level);
    void free(TableId id);
    PageTable& operator[](TableId id) { return *tables_[id]; }
    // Frees every table; `limit` tables may be allocated in the next run.
    void reset(size_t limit);
    size_t in_use() const { return used_; }
    size_t limit() const { return limit_; }

private:
    PtGeometry geo_;
    std::vector<std::unique_ptr<PageTable>> tables_;  // unique_ptr: stable as it grows
    size_t nr_ = 0;               // ids [0, nr_) handed out since reset()
    FreeIdTree free_;             // freed ids, all below nr_
    size_t limit_ = 0;
    size_t used_ = 0;
};

}  // namespace mmrace::mm
