// Transparent huge pages (mm/huge_memory.c): PMD-order anonymous folios mapped by huge
// PMD leaves, the THP fault, the write-protect fault on a huge PMD, and splitting a
// huge PMD back into a PTE table.  Page-cache (shmem) THPs are mapped by huge PMDs too
// (do_set_pmd, mm/file_thp.hpp), without a deposited table; splitting such a PMD
// clears it.
//
// Policy modelled: /sys/kernel/mm/transparent_hugepage/enabled = madvise (a fault
// makes a huge PMD only in a VM_HUGEPAGE VMA) and use_zero_page = 0 (a read fault
// allocates a huge folio too, no huge zero page).  HPAGE_PMD_NR is the geometry's
// table size: 8 pages in `small`, 512 in `x86`.
//
// The PMD lock is mm->page_table_lock (pmd_lockptr without split PMD ptlocks), the
// lock pmd_install takes too, so a huge PMD and a PTE table never race into one slot.
//
// A large folio may be mapped by huge PMDs and by PTEs at once (mm/rmap.hpp keeps its
// mapcounts).  __split_huge_pmd turns a PMD mapping into PTE mappings of the same
// large folio; only split_folio (split_huge_page) makes order-0 folios of it, and
// only when nothing but its mappings holds it.  The model has no deferred split
// queue: a partly unmapped THP stays whole until freed, reclaimed or paged out.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

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

// thp_vma_suitable_order(vma, addr, PMD_ORDER): the aligned PMD range holding addr
// lies inside vma and, for a file VMA, vm_pgoff is congruent with its address modulo a
// PMD (so that a page-cache THP lines up with a PMD).
bool thp_vma_suitable_order(const Kernel& k, const vm_area_struct* vma, uint64_t addr);

// thp_vma_allowable_order(vma, vm_flags, TVA_ENFORCE_SYSFS?, PMD_ORDER) for the PMD
// range holding addr: an anonymous private VMA without VM_NOHUGEPAGE or userfaultfd,
// covering the whole aligned range; with enforce_sysfs (faults, khugepaged) it needs
// VM_HUGEPAGE as well (enabled=madvise).  MADV_COLLAPSE ignores the sysfs setting.
bool thp_vma_allowable(const Kernel& k, const vm_area_struct* vma, uint64_t addr, bool enforce_sysfs);

// The PMD part of __handle_mm_fault (mm/memory.c): create_huge_pmd on an empty PMD of
// a THP VMA, wp_huge_pmd / huge_pmd_set_accessed on a huge PMD.  nullopt: go on to the
// PTE level (VM_FAULT_FALLBACK, or no huge PMD involved).  Locks as handle_mm_fault.
std::optional<fault::vm_fault_t> handle_huge_pmd_fault(Kernel& k, fault::vm_fault& vmf);

// do_set_pmd (mm/memory.c; mm/huge_memory.c in recent kernels): finish_fault maps the
// page-cache THP at head with one huge PMD at an empty PMD.  The VMA must cover the
// aligned range with a congruent pgoff (thp_vma_suitable_order), not be VM_NOHUGEPAGE
// (vma_thp_disabled), the folio be PMD-order and within i_size; the PMD is writable only
// for a write fault in a VM_WRITE VMA (maybe_pmd_mkwrite(pmd_mkdirty)).  The caller's
// folio reference becomes the mapping's; no table is deposited (x86).  Folio locked;
// takes the PMD lock.  0, VM_FAULT_OOM, or VM_FAULT_FALLBACK (the PTE path maps it).
fault::vm_fault_t do_set_pmd(Kernel& k, vm_area_struct* vma, uint64_t vm_flags, uint64_t address,
                             bool write, Pfn head);

// __split_huge_pmd: if the PMD holding addr is huge (and maps `folio`, if given),
// split it into a PTE table (the deposited one) mapping the same large folio's pages,
// with the VMA's protection (PROT_NONE PTEs in a PROT_NONE VMA).  A page-cache THP's
// PMD is only cleared (its folio's reference and entire mapcount dropped, dirty and
// young passed to the folio): the range refaults.
// mmap_lock, the VMA lock or the folio's rmap lock held; takes the PMD lock.
void split_huge_pmd(Kernel& k, vm_area_struct* vma, uint64_t addr, Pfn folio = FolioPool::kNoPfn);

// split_folio / split_huge_page_to_list_to_order(0) (__folio_split) for the large
// folio at head, anonymous or in the page cache: its huge PMDs are split
// (unmap_folio's TTU_SPLIT_HUGE_PMD; a file PMD is cleared), then, if only its
// mappings, the page cache (one reference per page) and the caller hold it
// (can_split_folio, folio_ref_freeze), every page becomes an order-0 folio that keeps
// its PTE mappings (and its page-cache slot and reference).
// Upstream the mappings are migration entries meanwhile and are restored after
// (remap_page); the model converts at once, which no walker can see half done.  The
// head keeps the caller's reference.  With `list` and an isolated folio (reclaim),
// the new folios join the list isolated, else the LRU; unmapped ones are freed.
// Folio locked, a reference held; takes the anon_vma lock for write (a page-cache
// folio: its file's i_mmap_rwsem for read), then PMD locks, then PTE locks.
// 0, -EBUSY (no anon_vma, or truncated) or -EAGAIN (other references).
int split_folio(Kernel& k, Pfn head, std::vector<Pfn>* list = nullptr);
// vma_adjust_trans_huge / split_huge_pmd_if_needed: a VMA boundary is about to be at
// addr; a huge PMD straddling it is split.  mmap_lock held for write.
void vma_adjust_trans_huge(Kernel& k, vm_area_struct* vma, uint64_t addr);

// zap_huge_pmd: the huge PMD at pmd (covering haddr) is cleared, its deposited table
// freed (an anonymous THP's; a file PMD has none) and its folio queued on the gather.  False if the PMD is not huge (any more):
// the caller zaps the PTE table.  Takes the PMD lock.
bool zap_huge_pmd(mmu_gather& tlb, vm_area_struct* vma, PmdRef pmd, uint64_t haddr);

// change_huge_pmd (mprotect): the huge PMD at pmd covering [haddr, haddr + HPAGE_PMD_SIZE),
// all of it in the range, takes vma's new protection in place (pmd_modify): PAGE_NONE
// for PROT_NONE (still huge, as x86 keeps _PAGE_PSE), read-only, or writable if the
// VMA may write and the folio is exclusive (can_change_pmd_writable).  The folio, its
// mapcounts and the deposited table stay.  False (the caller splits) if the PMD is not
// huge any more.  mmap_lock held for write; takes the PMD lock.
bool change_huge_pmd(mmu_gather& tlb, vm_area_struct* vma, PmdRef pmd, uint64_t haddr);

// move_huge_pmd (mremap's move_pgt_entry(HPAGE_PMD)): the huge PMD at old_pmd moves
// whole to new_pmd, with its deposited table (pmd_move_must_withdraw: the model keeps
// the deposit per entry, so it always follows an anonymous PMD); the folio, its rmap
// and its mapcounts stay (an anonymous VMA keeps vm_pgoff across the move).  The old
// range's TLB entries go before the PMD lock drops, as in move_ptes.  False, with
// nothing moved, if the old PMD is no longer huge or the new one is not none: the
// caller splits and moves PTEs.  mmap_lock held for write and the rmap locks
// (take_rmap_locks) by the caller; takes the PMD lock.
bool move_huge_pmd(Kernel& k, vm_area_struct* vma, PmdRef old_pmd, PmdRef new_pmd, uint64_t old_addr);

// copy_huge_pmd for fork: the parent's huge PMD at addr is shared with the child,
// write-protected in both (folio_try_dup_anon_rmap_pmd), unless the folio is exclusive
// and may be DMA-pinned: then it is split and -EAGAIN tells the caller to copy the
// PTEs (copy_present_pte copies pinned pages).  -EAGAIN too if there is no huge PMD,
// 0 when copied (or not copied at all: a file VMA refaults), -ENOMEM.  Both mmap_locks
// held for write; takes both PMD locks.
int copy_huge_pmd(Kernel& k, vm_area_struct* dst_vma, vm_area_struct* src_vma, uint64_t addr);

// pgtable_trans_huge_deposit / pgtable_trans_huge_withdraw, under the PMD lock.
void pgtable_trans_huge_deposit(Kernel& k, PmdRef pmd, TableId pgtable);
TableId pgtable_trans_huge_withdraw(Kernel& k, PmdRef pmd);

// folio_add_new_anon_rmap for a PMD mapping (RMAP_EXCLUSIVE): entire_mapcount 1, the
// mapping counted for vma's mm.
void folio_add_new_anon_rmap_pmd(Kernel& k, Pfn head, vm_area_struct* vma, uint64_t haddr);

}  // namespace mmrace::mm
