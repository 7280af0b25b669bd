// Transparent huge pages (mm/huge_memory.c): PMD-order anonymous folios mapped by huge
// PMD leaves, the THP fault, the write-protect fault on a huge PMD, and splitting a
// huge PMD back into a PTE table.
//
// Policy modelled: /sys/kernel/mm/transparent_hugepage/enabled = madvise (a fault
// makes a huge PMD only in a VM_HUGEPAGE VMA) and use_zero_page = 0 (a read fault
// allocates a huge folio too, no huge zero page).  HPAGE_PMD_NR is the geometry's
// table size: 8 pages in `small`, 512 in `x86`.
//
// The PMD lock is mm->page_table_lock (pmd_lockptr without split PMD ptlocks), the
// lock pmd_install takes too, so a huge PMD and a PTE table never race into one slot.
//
// Shortcut: large folios are never mapped by PTEs here.  __split_huge_pmd splits the
// folio as well (split_huge_page's result, at once), and fork's copy_huge_pmd always
// takes upstream's "may be pinned" path (split, then copy PTEs), so a large folio has
// at most one mapping, a huge PMD, and entire_mapcount is 0 or 1.  GUP follows a huge
// PMD without splitting it (follow_huge_pmd, gup_fast_pmd_leaf) and counts pins the
// large-folio way; a later split moves them to the pages' order-0 folios.
#pragma once

#include <cstdint>
#include <optional>

#include "fault/fault.hpp"
#include "mm/mmu_gather.hpp"
#include "mm/pgalloc.hpp"

namespace mmrace::mm {

// HPAGE_PMD_NR / HPAGE_PMD_ORDER / HPAGE_PMD_SIZE of the run's geometry.
inline uint64_t hpage_pmd_nr(const Kernel& k) { return k.geo.entries(); }
inline unsigned hpage_pmd_order(const Kernel& k) { return k.geo.bits; }
inline uint64_t hpage_pmd_size(const Kernel& k) { return k.geo.span(PTE_LEVEL); }

// pmd_lock / spin_unlock(pmd_ptl).
void pmd_lock(mm_struct& mm, const rt::Site* site);
void pmd_unlock(mm_struct& mm, const rt::Site* site);
// The PMD entry (lockless read: pmdp_get_lockless is a scheduling point).
uint64_t& pmd_entry(Kernel& k, PmdRef pmd);
uint64_t pmdp_get_lockless(Kernel& k, PmdRef pmd, const rt::Site* site);

// thp_vma_allowable_order(vma, vm_flags, TVA_ENFORCE_SYSFS?, PMD_ORDER) for the PMD
// range holding addr: an anonymous private VMA without VM_NOHUGEPAGE or userfaultfd,
// covering the whole aligned range; with enforce_sysfs (faults, khugepaged) it needs
// VM_HUGEPAGE as well (enabled=madvise).  MADV_COLLAPSE ignores the sysfs setting.
bool thp_vma_allowable(const Kernel& k, const vm_area_struct* vma, uint64_t addr, bool enforce_sysfs);

// The PMD part of __handle_mm_fault (mm/memory.c): create_huge_pmd on an empty PMD of
// a THP VMA, wp_huge_pmd / huge_pmd_set_accessed on a huge PMD.  nullopt: go on to the
// PTE level (VM_FAULT_FALLBACK, or no huge PMD involved).  Locks as handle_mm_fault.
std::optional<fault::vm_fault_t> handle_huge_pmd_fault(Kernel& k, fault::vm_fault& vmf);

// __split_huge_pmd: if the PMD holding addr is huge, split it into a PTE table (the
// deposited one) mapping the folio's pages, now order-0 folios.  mmap_lock (or the VMA
// lock) held; takes the PMD lock.
void split_huge_pmd(Kernel& k, vm_area_struct* vma, uint64_t addr);
// vma_adjust_trans_huge / split_huge_pmd_if_needed: a VMA boundary is about to be at
// addr; a huge PMD straddling it is split.  mmap_lock held for write.
void vma_adjust_trans_huge(Kernel& k, vm_area_struct* vma, uint64_t addr);

// zap_huge_pmd: the huge PMD at pmd (covering haddr) is cleared, its deposited table
// freed and its folio queued on the gather.  False if the PMD is not huge (any more):
// the caller zaps the PTE table.  Takes the PMD lock.
bool zap_huge_pmd(mmu_gather& tlb, vm_area_struct* vma, PmdRef pmd, uint64_t haddr);

// change_huge_pmd (mprotect): the huge PMD at pmd covering [haddr, haddr + HPAGE_PMD_SIZE),
// all of it in the range, takes vma's new protection: read-only, or writable if the VMA
// may write and the folio is exclusive (can_change_pmd_writable).  False (the caller
// splits) if the PMD is not huge any more, or for PROT_NONE, which the model keeps to
// PTEs.  mmap_lock held for write; takes the PMD lock.
bool change_huge_pmd(mmu_gather& tlb, vm_area_struct* vma, PmdRef pmd, uint64_t haddr);

// copy_huge_pmd for fork: the parent's huge PMD at addr.  Both mmap_locks held for
// write.  Returns -EAGAIN (as upstream for a folio that may be pinned) after splitting
// it: the caller copies the PTEs.  0 if there was no huge PMD.  *pinned_head is the
// split folio's head pfn if it was exclusive and maybe DMA-pinned (upstream it stays
// one large folio, so every exclusive page of it is copied for the child, not only the
// pinned ones), else kNoPfn.
int copy_huge_pmd(Kernel& k, vm_area_struct* src_vma, uint64_t addr, Pfn* pinned_head);

// pgtable_trans_huge_deposit / pgtable_trans_huge_withdraw, under the PMD lock.
void pgtable_trans_huge_deposit(Kernel& k, PmdRef pmd, TableId pgtable);
TableId pgtable_trans_huge_withdraw(Kernel& k, PmdRef pmd);

// folio_add_new_anon_rmap for a PMD mapping (RMAP_EXCLUSIVE): entire_mapcount 1.
void folio_add_new_anon_rmap_pmd(Kernel& k, Pfn head, vm_area_struct* vma, uint64_t haddr);

}  // namespace mmrace::mm
