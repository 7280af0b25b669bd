#include "mm/khugepaged.hpp"
#include "mm/khugepaged_internal.hpp"

#include <algorithm>
#include <vector>

#include "check/report.hpp"
#include "fault/fault.hpp"
#include "kernel/cpu.hpp"
#include "mm/anon_vma.hpp"
#include "mm/filemap.hpp"
#include "mm/huge_memory.hpp"
#include "mm/lru.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/rmap.hpp"
#include "mm/swap.hpp"
#include "mm/vma_lock.hpp"
#include "mm/vmscan.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"

namespace mmrace::mm {

const char* scan_result_name(ScanResult r) {
    static constexpr const char* names[] = {
        "SCAN_FAIL", "SCAN_SUCCEED", "SCAN_PMD_NULL", "SCAN_PMD_NONE", "SCAN_PMD_MAPPED",
        "SCAN_EXCEED_NONE_PTE", "SCAN_EXCEED_SWAP_PTE", "SCAN_EXCEED_SHARED_PTE",
        "SCAN_PTE_NON_PRESENT", "SCAN_PTE_UFFD_WP", "SCAN_PTE_MAPPED_HUGEPAGE", "SCAN_PAGE_RO",
        "SCAN_LACK_REFERENCED_PAGE", "SCAN_PAGE_NULL", "SCAN_SCAN_ABORT", "SCAN_PAGE_COUNT",
        "SCAN_PAGE_LRU", "SCAN_PAGE_LOCK", "SCAN_PAGE_ANON", "SCAN_PAGE_COMPOUND",
        "SCAN_ANY_PROCESS", "SCAN_VMA_NULL", "SCAN_VMA_CHECK", "SCAN_ADDRESS_RANGE",
        "SCAN_DEL_PAGE_LRU", "SCAN_ALLOC_HUGE_PAGE_FAIL", "SCAN_CGROUP_CHARGE_FAIL",
        "SCAN_TRUNCATED", "SCAN_PAGE_HAS_PRIVATE", "SCAN_STORE_FAILED", "SCAN_COPY_MC",
        "SCAN_PAGE_FILLED",
    };
    return names[static_cast<size_t>(r)];
}

bool hpage_collapse_test_exit(const mm_struct& mm) { return mm.mm_users <= 0; }

Pfn alloc_charge_folio(Kernel& k) {
    k.rt.yield(MMR_SITE("alloc_charge_folio"), rt::Ev::yield);  // may sleep: reclaim, compaction
    Pfn folio = k.folios.alloc_order(hpage_pmd_order(k));
    k.counters.inc(folio == FolioPool::kNoPfn ? Counter::thp_collapse_alloc_failed : Counter::thp_collapse_alloc);
    return folio;
}

bool vma_holds_pmd_range(const Kernel& k, const vm_area_struct* vma) {
    uint64_t size = hpage_pmd_size(k);
    return vma->vm_end - vma->vm_start >= size && ((vma->vm_end - size) & ~(size - 1)) >= vma->vm_start;
}

ScanResult find_pmd_or_thp_or_none(Kernel& k, mm_struct& mm, uint64_t haddr, PmdRef* pmd) {
    *pmd = pmd_lookup(k, mm, haddr);  // mm_find_pmd
    if (!*pmd) return ScanResult::SCAN_PMD_NULL;
    pmd_t e = pmdp_get_lockless(k, *pmd, MMR_SITE("find_pmd_or_thp_or_none"));
    if (!e) return ScanResult::SCAN_PMD_NONE;
    if (pmd_trans_huge(e)) return ScanResult::SCAN_PMD_MAPPED;
    return ScanResult::SCAN_SUCCEED;
}

namespace {

using R = ScanResult;
using fault::vm_fault;

// /sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_{none,swap,shared} defaults.
uint64_t max_ptes_none(const Kernel& k) { return hpage_pmd_nr(k) - 1; }
uint64_t max_ptes_swap(const Kernel& k) { return hpage_pmd_nr(k) / 8; }
uint64_t max_ptes_shared(const Kernel& k) { return hpage_pmd_nr(k) / 2; }

// thp_vma_allowable_order(vma, vm_flags, tva_flags, PMD_ORDER) for collapse (not a
// fault): an anonymous private VMA that has faulted (anon_vma), without
// VM_NOHUGEPAGE, holding an aligned PMD range; khugepaged (TVA_ENFORCE_SYSFS,
// enabled=madvise) also needs VM_HUGEPAGE.  userfaultfd-armed VMAs are left alone
// (uffd is not modelled here).
bool collapse_vma_allowed(const Kernel& k, const vm_area_struct* vma, const collapse_control& cc) {
    if (!vma->vma_is_anonymous() || (vma->vm_flags & (VM_SHARED | VM_MAYSHARE))) return false;
    if (vma->vm_flags & (VM_NOHUGEPAGE | VM_UFFD_MISSING | VM_UFFD_WP)) return false;
    if (cc.is_khugepaged && !(vma->vm_flags & VM_HUGEPAGE)) return false;
    if (!vma_holds_pmd_range(k, vma)) return false;
    return vma->anon_vma != 0;
}

// collapse_vma_allowed, or for a file VMA file_collapse_allowed; khugepaged leaves
// shmem alone (shmem_enabled=never).
bool collapse_allowed(Kernel& k, const vm_area_struct* vma, const collapse_control& cc) {
    if (vma->vm_file >= 0) return !cc.is_khugepaged && file_collapse_allowed(k, vma);
    return collapse_vma_allowed(k, vma, cc);
}

// hugepage_vma_revalidate: after mmap_lock was (re)taken, look the VMA up afresh and
// check everything collapse relied on.  mmap_lock held.
R hugepage_vma_revalidate(Kernel& k, mm_struct& mm, uint64_t haddr, bool expect_anon,
                          vm_area_struct** vmap, const collapse_control& cc) {
    mmap_assert_locked(mm);
    if (hpage_collapse_test_exit(mm)) return R::SCAN_ANY_PROCESS;
    vm_area_struct* vma = *vmap = mm.find_vma(haddr);
    if (!vma) return R::SCAN_VMA_NULL;
    if (haddr < vma->vm_start || haddr + hpage_pmd_size(k) > vma->vm_end)  // thp_vma_suitable_order
        return R::SCAN_ADDRESS_RANGE;
    if (!collapse_allowed(k, vma, cc)) return R::SCAN_VMA_CHECK;
    if (expect_anon && (!vma->anon_vma || !vma->vma_is_anonymous())) return R::SCAN_PAGE_ANON;
    return R::SCAN_SUCCEED;
}

// is_refcount_suitable: only the mappings (and the swap cache) hold the folio; anything
// else (a GUP pin, an isolation, a fault in flight) makes it unsuitable.
bool is_refcount_suitable(const Folio& f) {
    return f.refcount == f.mapcount + ((f.flags & PG_swapcache) ? 1 : 0);
}

// The khugepaged vm_area the mutant khugepaged_no_revalidate keeps using: a freed (or
// freed and reused) VMA or PMD table is a use after free.  So is a detached one:
// khugepaged holds neither a reference nor rcu_read_lock, so once munmap has detached
// the VMA (remove_vma frees it at once before per-VMA locks, after a grace period
// since) nothing keeps its memory: the model's `freed`, set when the RCU callback runs,
// would only see the use in the runs where that came first.
void check_stale_use(Kernel& k, const vm_area_struct* vma, uint64_t serial, PmdRef pmd) {
    if (vma->freed || vma->detached || vma->serial != serial)
        check::violation(Check::use_after_free, "khugepaged uses a VMA that was detached or freed while mmap_lock was dropped");
    if (!k.tables[pmd.table].in_use)
        check::violation(Check::use_after_free, "khugepaged uses a PMD in a page table freed while mmap_lock was dropped");
}

// release_pte_pages: undo the isolation of what __collapse_huge_page_isolate got.
void release_pte_pages(Kernel& k, const std::vector<Pfn>& isolated) {
    for (Pfn p : isolated) {  // release_pte_folio
        folio_unlock(k, p);
        folio_putback_lru(k, p);
    }
}

// __collapse_huge_page_isolate: lock and isolate every page of the PTE table (which
// the cleared PMD no longer reaches); fails on a page someone else holds.  The PTE lock
// held; anon_vma and mmap_lock held for write.
R collapse_huge_page_isolate(Kernel& k, TableId pt, const collapse_control& cc,
                             std::vector<Pfn>& isolated) {
    uint64_t none_or_zero = 0, shared = 0, referenced = 0;
    R result = R::SCAN_SUCCEED;
    for (uint64_t i = 0; i < hpage_pmd_nr(k) && result == R::SCAN_SUCCEED; ++i) {
        pte_t pte = k.tables[pt].entries[i];
        if (pte_none(pte) || (pte_present(pte) && pte_special(pte))) {
            if (!cc.is_khugepaged || ++none_or_zero <= max_ptes_none(k)) continue;
            result = R::SCAN_EXCEED_NONE_PTE;
            break;
        }
        if (!pte_present(pte)) {
            result = R::SCAN_PTE_NON_PRESENT;
            break;
        }
        Pfn p = page_folio(k.folios, pte_pfn(pte));
        Folio& f = k.folios[p];
        // A page is shared if any part of its folio may be.
        if (folio_maybe_mapped_shared(k.folios, p) && cc.is_khugepaged && ++shared > max_ptes_shared(k)) {
            result = R::SCAN_EXCEED_SHARED_PTE;
            break;
        }
        // A large folio (PTE-mapped THP) is isolated once, at its first page here.
        if (f.order && std::find(isolated.begin(), isolated.end(), p) != isolated.end()) {
            if (pte & _PAGE_ACCESSED) ++referenced;
            continue;
        }
        if (!folio_trylock(k, p)) {
            result = R::SCAN_PAGE_LOCK;
            break;
        }
        if (!is_refcount_suitable(f)) {
            folio_unlock(k, p);
            result = R::SCAN_PAGE_COUNT;
            break;
        }
        if (!folio_isolate_lru(k, p)) {
            folio_unlock(k, p);
            result = R::SCAN_DEL_PAGE_LRU;
            break;
        }
        isolated.push_back(p);
        if (pte & _PAGE_ACCESSED) ++referenced;
    }
    // No writable PTE needed since "mm: Enable khugepaged to operate on non-writable
    // VMAs" (Linux 6.18): SCAN_PAGE_RO is gone from both the isolation and the scan.
    if (result == R::SCAN_SUCCEED && cc.is_khugepaged && !referenced)
        result = R::SCAN_LACK_REFERENCED_PAGE;
    if (result != R::SCAN_SUCCEED) {
        release_pte_pages(k, isolated);
        isolated.clear();
    }
    return result;
}

// __collapse_huge_page_copy + __collapse_huge_page_copy_succeeded: copy every page
// into the huge folio (a none or zero PTE gives a zeroed page), then clear the old
// PTEs and drop their mappings; the small folios are freed, a large one once its
// isolation is undone after the last of its PTEs.  mmap_lock held for write; the
// folios isolated and locked.
void collapse_huge_page_copy(Kernel& k, mm_struct& mm, TableId pt, Pfn folio,
                             const std::vector<Pfn>& isolated) {
    PteRef lock{pt, 0};
    for (uint64_t i = 0; i < hpage_pmd_nr(k); ++i) {
        pte_t pte = k.tables[pt].entries[i];
        Folio& dst = k.folios[folio + static_cast<Pfn>(i)];
        if (pte_present(pte) && !pte_special(pte)) dst.words = k.folios[pte_pfn(pte)].words;
        k.rt.yield(MMR_SITE("__collapse_huge_page_copy"), rt::Ev::yield, i);  // copy_mc_user_highpage
    }
    for (uint64_t i = 0; i < hpage_pmd_nr(k); ++i) {
        pte_t pte = k.tables[pt].entries[i];
        if (pte_none(pte)) continue;
        if (pte_special(pte)) {  // the zero page
            pte_lock(k, lock, MMR_SITE("__collapse_huge_page_copy_succeeded"));
            set_pte_at(k, PteRef{pt, i}, 0);  // ptep_clear
            pte_unlock(k, lock, MMR_SITE("__collapse_huge_page_copy_succeeded"));
            continue;
        }
        Pfn page = pte_pfn(pte);
        Pfn src = page_folio(k.folios, page);
        // Only a fault that kept using the table after the PMD was cleared can have put
        // a page there (seed 000's spf without the PMD re-check).
        if (std::find(isolated.begin(), isolated.end(), src) == isolated.end())
            check::violation(Check::pgtable, "a PTE appeared in the page table collapse retracted "
                                        "(a fault used it after the PMD was cleared)");
        bool large = k.folios[src].order;
        if (!large) {  // release_pte_folio
            folio_unlock(k, src);
            folio_putback_lru(k, src);
        }
        pte_lock(k, lock, MMR_SITE("__collapse_huge_page_copy_succeeded"));
        set_pte_at(k, PteRef{pt, i}, 0);
        folio_remove_rmap_pte(k, page, mm);
        pte_unlock(k, lock, MMR_SITE("__collapse_huge_page_copy_succeeded"));
        if (!large) free_swap_cache(k, src);  // free_folio_and_swap_cache
        k.folios.put(src);
    }
    for (Pfn src : isolated) {  // the compound_pagelist
        if (!k.folios[src].order) continue;
        folio_unlock(k, src);
        folio_putback_lru(k, src);
    }
}

// __collapse_huge_page_swapin: fault in every swap PTE of the range under mmap_lock
// read.  do_swap_page may drop the lock to wait for the folio (VM_FAULT_RETRY): the
// collapse then gives up (SCAN_PAGE_LOCK) with the lock released.  On success the lock
// is still held; on any failure it is released.
R collapse_huge_page_swapin(Kernel& k, mm_struct& mm, vm_area_struct* vma, uint64_t haddr, PmdRef pmd) {
    for (uint64_t i = 0; i < hpage_pmd_nr(k); ++i) {
        uint64_t addr = haddr + i * PAGE_SIZE;
        TableId pt = entry_table(pmd_entry(k, pmd));
        if (pt == kNoTable) {  // pte_offset_map_ro_nolock failed
            mmap_read_unlock(mm, MMR_SITE("__collapse_huge_page_swapin"));
            return R::SCAN_PMD_NULL;
        }
        vm_fault vmf{vma, fault::FAULT_FLAG_ALLOW_RETRY, addr, addr, PteRef{pt, i}, 0};
        vmf.orig_pte = ptep_get_lockless(k, vmf.pte, MMR_SITE("__collapse_huge_page_swapin"));
        if (!is_swap_pte(vmf.orig_pte)) continue;
        vmf.vma_flags = vma->vm_flags;
        vmf.pgoff = linear_page_index(vma, addr);
        vmf.anon_vma = vma->anon_vma;
        fault::vm_fault_t ret = fault::do_swap_page_for_khugepaged(k, vmf);
        if (ret & fault::VM_FAULT_RETRY) return R::SCAN_PAGE_LOCK;  // mmap_lock released
        if (ret & fault::VM_FAULT_ERROR) {
            mmap_read_unlock(mm, MMR_SITE("__collapse_huge_page_swapin"));
            return R::SCAN_FAIL;
        }
    }
    return R::SCAN_SUCCEED;
}

// collapse_huge_page, from its entry with mmap_lock held for read to its return with
// no lock held.  `unmapped`: how many swap PTEs the scan saw.
R collapse_huge_page(Kernel& k, mm_struct& mm, uint64_t haddr, vm_area_struct* vma,
                     uint64_t unmapped, const collapse_control& cc) {
    const bool stale = k.mutant(MutantId::khugepaged_no_revalidate);
    mmap_read_unlock(mm, MMR_SITE("collapse_huge_page"));
    Pfn folio = alloc_charge_folio(k);
    if (folio == FolioPool::kNoPfn) return R::SCAN_ALLOC_HUGE_PAGE_FAIL;
    auto out_nolock = [&](R r) {
        k.folios.put(folio);
        return r;
    };
    mmap_read_lock(mm, MMR_SITE("collapse_huge_page"));
    R result = hugepage_vma_revalidate(k, mm, haddr, true, &vma, cc);
    PmdRef pmd;
    if (result == R::SCAN_SUCCEED) result = find_pmd_or_thp_or_none(k, mm, haddr, &pmd);
    if (result != R::SCAN_SUCCEED) {
        mmap_read_unlock(mm, MMR_SITE("collapse_huge_page"));
        return out_nolock(result);
    }
    if (unmapped) {
        result = collapse_huge_page_swapin(k, mm, vma, haddr, pmd);
        if (result != R::SCAN_SUCCEED) return out_nolock(result);
    }
    uint64_t vma_serial = vma->serial;
    mmap_read_unlock(mm, MMR_SITE("collapse_huge_page"));
    // Prevent all access to page tables but gup_fast (the PMD flush's IPI) and rmap
    // (the anon_vma lock and the folio locks).
    mmap_write_lock(mm, MMR_SITE("collapse_huge_page"));
    // Seed 002 patch 2: the code under review called sum_vm_event(ALLOCSTALL) here,
    // whose get_online_cpus() takes cpu_hotplug_lock under mmap_lock, closing the cycle
    // mmap_lock -> cpu_hotplug_lock -> s_active -> mmap_lock (a sysfs write faults
    // under s_active; CPU hotplug drains s_active under cpu_hotplug_lock).  The fix
    // moved it before down_write; today's collapse_huge_page does not sum events at all.
    if (k.mutant(MutantId::khugepaged_hotplug_lock_order)) {
        kernel::cpus_read_lock(k);  // sum_vm_event -> get_online_cpus
        kernel::cpus_read_unlock(k);
    }
    auto out_up_write = [&](R r) {
        mmap_write_unlock(mm, MMR_SITE("collapse_huge_page"));
        return out_nolock(r);
    };
    if (stale) {
        // Seed 002's patch as first posted: the VMA and PMD found before the lock was
        // dropped are used as they are.
        check_stale_use(k, vma, vma_serial, pmd);
        if (hpage_collapse_test_exit(mm)) return out_up_write(R::SCAN_ANY_PROCESS);
    } else {
        result = hugepage_vma_revalidate(k, mm, haddr, true, &vma, cc);
        if (result != R::SCAN_SUCCEED) return out_up_write(result);
    }
    vma_start_write(vma);
    if (!stale) {  // check_pmd_still_valid
        PmdRef now;
        result = find_pmd_or_thp_or_none(k, mm, haddr, &now);
        if (result == R::SCAN_SUCCEED && (now.table != pmd.table || now.index != pmd.index))
            result = R::SCAN_FAIL;
        if (result != R::SCAN_SUCCEED) return out_up_write(result);
    }
    anon_vma* av = anon_vma_of(k, vma->anon_vma);
    anon_vma_lock_write(av);
    // pmdp_collapse_flush under the PMD lock: no walker can reach the PTE table once the
    // flush's IPI has been taken by every CPU (a speculative fault walks with IRQs off).
    pmd_lock(mm, MMR_SITE("collapse_huge_page"));
    uint64_t& e = pmd_entry(k, pmd);
    pmd_t old_pmd = e;
    if (stale && !old_pmd) {  // the stale PMD is empty now: nothing to collapse
        pmd_unlock(mm, MMR_SITE("collapse_huge_page"));
        anon_vma_unlock_write(av);
        return out_up_write(R::SCAN_PMD_NONE);
    }
    e = 0;
    flush_tlb_mm_range(k, mm, haddr, haddr + hpage_pmd_size(k));
    pmd_unlock(mm, MMR_SITE("collapse_huge_page"));
    TableId pt = entry_table(old_pmd);
    if (pt == kNoTable) throw ModelError("collapse_huge_page: the PMD is not a page table");
    std::vector<Pfn> isolated;
    PteRef lock{pt, 0};
    pte_lock(k, lock, MMR_SITE("collapse_huge_page"));
    result = collapse_huge_page_isolate(k, pt, cc, isolated);
    pte_unlock(k, lock, MMR_SITE("collapse_huge_page"));
    if (result != R::SCAN_SUCCEED) {
        pmd_lock(mm, MMR_SITE("collapse_huge_page"));
        e = old_pmd;  // pmd_populate: the PTE table comes back
        pmd_unlock(mm, MMR_SITE("collapse_huge_page"));
        anon_vma_unlock_write(av);
        return out_up_write(result);
    }
    // Every page is isolated and locked: rmap cannot reach them any more.
    anon_vma_unlock_write(av);
    collapse_huge_page_copy(k, mm, pt, folio, isolated);
    pmd_lock(mm, MMR_SITE("collapse_huge_page"));
    if (e) throw ModelError("collapse_huge_page: the cleared PMD was populated");
    folio_add_new_anon_rmap_pmd(k, folio, vma, haddr);
    folio_add_lru(k, folio);  // folio_add_lru_vma
    pgtable_trans_huge_deposit(k, pmd, pt);
    // folio_mk_pmd with vm_page_prot: a collapse in a PROT_NONE VMA (MADV_COLLAPSE,
    // or khugepaged in a VM_HUGEPAGE one; nothing in thp_vma_allowable_order refuses
    // it) makes a PROT_NONE huge PMD.
    pmd_t huge = folio_mk_pmd(folio, vma->vm_flags & VM_ACCESS_FLAGS) | _PAGE_DIRTY | _PAGE_ACCESSED;
    if (vma->vm_flags & VM_WRITE) huge |= _PAGE_RW;  // maybe_pmd_mkwrite
    e = huge;  // set_pmd_at
    pmd_unlock(mm, MMR_SITE("collapse_huge_page"));
    k.counters.inc(Counter::thp_collapse_ok);
    mmap_write_unlock(mm, MMR_SITE("collapse_huge_page"));
    return R::SCAN_SUCCEED;
}

// hpage_collapse_scan_pmd: under mmap_lock read and the PTE lock, decide whether the
// range is worth collapsing; if so collapse it (which returns with mmap_lock
// released: *mmap_locked becomes false).
R hpage_collapse_scan_pmd(Kernel& k, mm_struct& mm, vm_area_struct* vma, uint64_t haddr,
                          bool* mmap_locked, const collapse_control& cc) {
    mmap_assert_locked(mm);
    PmdRef pmd;
    R result = find_pmd_or_thp_or_none(k, mm, haddr, &pmd);
    if (result != R::SCAN_SUCCEED) return result;
    TableId pt = entry_table(pmd_entry(k, pmd));
    if (pt == kNoTable) return R::SCAN_PMD_NULL;  // pte_offset_map_lock failed
    PteRef lock{pt, 0};
    uint64_t none_or_zero = 0, unmapped = 0, shared = 0, referenced = 0;
    pte_lock(k, lock, MMR_SITE("hpage_collapse_scan_pmd"));
    for (uint64_t i = 0; i < hpage_pmd_nr(k) && result == R::SCAN_SUCCEED; ++i) {
        pte_t pte = ptep_get(k, PteRef{pt, i});
        if (is_swap_pte(pte)) {
            if (cc.is_khugepaged && ++unmapped > max_ptes_swap(k)) result = R::SCAN_EXCEED_SWAP_PTE;
            else if (!cc.is_khugepaged) ++unmapped;
            continue;
        }
        if (pte_none(pte) || pte_special(pte)) {
            if (cc.is_khugepaged && ++none_or_zero > max_ptes_none(k)) result = R::SCAN_EXCEED_NONE_PTE;
            continue;
        }
        Pfn folio = page_folio(k.folios, pte_pfn(pte));
        const Folio& f = k.folios[folio];
        if (!(f.flags & PG_anon)) result = R::SCAN_PAGE_ANON;
        else if (folio_maybe_mapped_shared(k.folios, folio) && cc.is_khugepaged && ++shared > max_ptes_shared(k))
            result = R::SCAN_EXCEED_SHARED_PTE;
        else if (!folio_test_lru(f)) result = R::SCAN_PAGE_LRU;
        else if (f.locked) result = R::SCAN_PAGE_LOCK;
        else if (!is_refcount_suitable(f)) result = R::SCAN_PAGE_COUNT;
        else if (pte & _PAGE_ACCESSED) ++referenced;
    }
    // No SCAN_PAGE_RO since Linux 6.18 (see collapse_huge_page_isolate).
    if (result == R::SCAN_SUCCEED && cc.is_khugepaged &&
        (!referenced || (unmapped && referenced < hpage_pmd_nr(k) / 2)))
        result = R::SCAN_LACK_REFERENCED_PAGE;
    pte_unlock(k, lock, MMR_SITE("hpage_collapse_scan_pmd"));
    if (result == R::SCAN_SUCCEED) {
        result = collapse_huge_page(k, mm, haddr, vma, unmapped, cc);
        *mmap_locked = false;
    }
    return result;
}

// madvise_collapse_errno
int madvise_collapse_errno(R r) {
    switch (r) {
        case R::SCAN_ALLOC_HUGE_PAGE_FAIL: return ops::ENOMEM_;
        case R::SCAN_CGROUP_CHARGE_FAIL:
        case R::SCAN_EXCEED_NONE_PTE: return ops::EBUSY_;
        case R::SCAN_PAGE_COUNT:
        case R::SCAN_PAGE_LOCK:
        case R::SCAN_PAGE_LRU:
        case R::SCAN_DEL_PAGE_LRU:
        case R::SCAN_PAGE_FILLED: return ops::EAGAIN_;
        default: return ops::EINVAL_;
    }
}

}  // namespace

std::string khugepaged_collapse(Kernel& k, int process, uint64_t addr) {
    mm_struct* mmp = process >= 0 && static_cast<size_t>(process) < k.processes.size()
                         ? k.processes[process].mm
                         : nullptr;
    if (!mmp) return scan_result_name(R::SCAN_ANY_PROCESS);  // not on khugepaged's list
    mm_struct& mm = *mmp;
    collapse_control cc{true};
    uint64_t haddr = addr & ~(hpage_pmd_size(k) - 1);
    mmap_read_lock(mm, MMR_SITE("khugepaged_scan_mm_slot"));
    vm_area_struct* vma = nullptr;
    R result = hugepage_vma_revalidate(k, mm, haddr, true, &vma, cc);
    bool mmap_locked = true;
    if (result == R::SCAN_SUCCEED) result = hpage_collapse_scan_pmd(k, mm, vma, haddr, &mmap_locked, cc);
    if (mmap_locked) mmap_read_unlock(mm, MMR_SITE("khugepaged_scan_mm_slot"));
    return result == R::SCAN_SUCCEED ? "0" : scan_result_name(result);
}

namespace {

// madvise_collapse's file branch: hpage_collapse_scan_file without mmap_lock, then
// for SCAN_PTE_MAPPED_HUGEPAGE collapse_pte_mapped_thp under mmap_write_lock (6.2-6.4;
// the read lock since 6.5).  Entered with mmap_lock held for read; returns without it.
R madvise_collapse_file(Kernel& k, mm_struct& mm, vm_area_struct* vma, uint64_t addr,
                        bool* mmap_locked, const collapse_control& cc) {
    address_space& f = *k.files[vma->vm_file];
    uint64_t pgoff = linear_page_index(vma, addr);
    mmap_read_unlock(mm, MMR_SITE("madvise_collapse"));
    *mmap_locked = false;
    R r = hpage_collapse_scan_file(k, mm, f, pgoff, cc);
    if (r != R::SCAN_PTE_MAPPED_HUGEPAGE) return r;
    mmap_write_lock(mm, MMR_SITE("madvise_collapse"));
    r = collapse_pte_mapped_thp(k, mm, addr);
    mmap_write_unlock(mm, MMR_SITE("madvise_collapse"));
    return r;
}

}  // namespace

int madvise_collapse(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end, bool* dropped) {
    mm_struct& mm = *vma->vm_mm;
    mmap_assert_locked(mm);
    collapse_control cc{false};
    if (!collapse_allowed(k, vma, cc)) return ops::EINVAL_;
    uint64_t size = hpage_pmd_size(k);
    uint64_t hstart = (start + size - 1) & ~(size - 1), hend = end & ~(size - 1);
    bool mmap_locked = true;
    uint64_t thps = 0;
    R last_fail = R::SCAN_FAIL;
    for (uint64_t addr = hstart; addr < hend; addr += size) {
        if (!mmap_locked) {
            mmap_read_lock(mm, MMR_SITE("madvise_collapse"));
            mmap_locked = true;
            R r = hugepage_vma_revalidate(k, mm, addr, false, &vma, cc);
            if (r != R::SCAN_SUCCEED) {
                last_fail = r;
                break;
            }
            hend = std::min(hend, vma->vm_end & ~(size - 1));
        }
        R r = vma->vm_file >= 0 ? madvise_collapse_file(k, mm, vma, addr, &mmap_locked, cc)
                                : hpage_collapse_scan_pmd(k, mm, vma, addr, &mmap_locked, cc);
        if (!mmap_locked) *dropped = true;
        bool go_on = true;
        switch (r) {
            case R::SCAN_SUCCEED:
            case R::SCAN_PMD_MAPPED: ++thps; break;
            // Whitelisted set of results where continuing is OK.
            case R::SCAN_PMD_NULL:
            case R::SCAN_PTE_NON_PRESENT:
            case R::SCAN_PTE_UFFD_WP:
            case R::SCAN_PAGE_RO:
            case R::SCAN_LACK_REFERENCED_PAGE:
            case R::SCAN_PAGE_NULL:
            case R::SCAN_PAGE_COUNT:
            case R::SCAN_PAGE_LOCK:
            case R::SCAN_PAGE_COMPOUND:
            case R::SCAN_PAGE_LRU:
            case R::SCAN_DEL_PAGE_LRU: last_fail = r; break;
            default: last_fail = r; go_on = false;
        }
        if (!go_on) break;
    }
    // The caller expects mmap_lock held on return.
    if (!mmap_locked) mmap_read_lock(mm, MMR_SITE("madvise_collapse"));
    // Unsigned, as upstream: a range inside one PMD that does not start at its boundary
    // has hstart > hend, and the wrapped count is never reached: EINVAL (SCAN_FAIL).
    return thps == (hend - hstart) / size ? 0 : madvise_collapse_errno(last_fail);
}

}  // namespace mmrace::mm
