#include "mm/huge_memory.hpp"

#include <algorithm>

#include "check/report.hpp"
#include "gup/gup.hpp"
#include "mm/anon_vma.hpp"
#include "mm/mm_struct.hpp"
#include "mm/filemap.hpp"
#include "mm/lru.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/rmap.hpp"
#include "mm/vma_lock.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"
#include "sync/lockdep.hpp"

namespace mmrace::mm {

using fault::vm_fault;
using fault::vm_fault_t;

void pmd_lock(mm_struct& mm, const rt::Site* site) { mm.page_table_lock.spin_lock(site); }
void pmd_unlock(mm_struct& mm, const rt::Site* site) { mm.page_table_lock.spin_unlock(site); }

uint64_t& pmd_entry(Kernel& k, PmdRef pmd) { return k.tables[pmd.table].entries[pmd.index]; }

uint64_t pmdp_get_lockless(Kernel& k, PmdRef pmd, const rt::Site* site) {
    k.rt.yield(site, rt::Ev::access, pmd.table << 12 | pmd.index);
    return pmd_entry(k, pmd);
}

void pgtable_trans_huge_deposit(Kernel& k, PmdRef pmd, TableId pgtable) {
    TableId& slot = k.tables[pmd.table].deposited[pmd.index];
    if (slot != kNoTable) throw ModelError("pgtable_trans_huge_deposit: a table is already deposited");
    slot = pgtable;
}

TableId pgtable_trans_huge_withdraw(Kernel& k, PmdRef pmd) {
    TableId& slot = k.tables[pmd.table].deposited[pmd.index];
    TableId t = slot;
    if (t == kNoTable) throw ModelError("pgtable_trans_huge_withdraw: no deposited table");
    slot = kNoTable;
    // A deposited table is unreachable: a PTE in it was installed by someone who
    // walked to it before it was retracted (seed 000's collapse race) and is lost.
    if (!k.tables[t].in_use)
        check::violation(Check::use_after_free, "the table deposited under a huge PMD was freed");
    for (uint64_t e : k.tables[t].entries)
        if (e)
            check::violation(Check::pgtable, "a PTE was installed in the table deposited under a huge PMD "
                                        "(a fault used a page table that collapse had retracted)");
    return t;
}

void folio_add_new_anon_rmap_pmd(Kernel& k, Pfn head, vm_area_struct* vma, uint64_t haddr) {
    __folio_add_new_anon_rmap(k, head, vma->anon_vma, linear_page_index(vma, haddr), true);
    k.folios[head].mapcount = 0;  // folio_set_large_mapcount(folio, 1, vma) through the PMD's
    folio_add_rmap_pmd(k, head, *vma->vm_mm);
}

bool thp_vma_suitable_order(const Kernel& k, const vm_area_struct* vma, uint64_t addr) {
    uint64_t size = hpage_pmd_size(k);
    uint64_t haddr = addr & ~(size - 1);
    if (!vma->vma_is_anonymous() && ((vma->vm_start >> PAGE_SHIFT) - vma->vm_pgoff) % hpage_pmd_nr(k)) return false;
    return haddr >= vma->vm_start && haddr + size <= vma->vm_end;
}

bool thp_vma_allowable(const Kernel& k, const vm_area_struct* vma, uint64_t addr, bool enforce_sysfs) {
    if (!vma->vma_is_anonymous() || (vma->vm_flags & (VM_SHARED | VM_MAYSHARE))) return false;
    if (vma->vm_flags & (VM_NOHUGEPAGE | VM_UFFD_MISSING | VM_UFFD_WP)) return false;
    if (enforce_sysfs && !(vma->vm_flags & VM_HUGEPAGE)) return false;
    return thp_vma_suitable_order(k, vma, addr);
}

namespace {

// vmf_anon_prepare: under the VMA lock a missing anon_vma needs mmap_lock: retry.
vm_fault_t vmf_anon_prepare(Kernel& k, vm_fault& vmf) {
    if (vmf.vma->anon_vma) return 0;
    if (vmf.flags & fault::FAULT_FLAG_VMA_LOCK) {
        fault::release_fault_lock(k, vmf);
        return fault::VM_FAULT_RETRY;
    }
    anon_vma_prepare(k, vmf.vma);
    return 0;
}

// do_huge_pmd_anonymous_page + __do_huge_pmd_anonymous_page: a huge folio mapped by a
// huge PMD at an empty PMD.  VM_FAULT_FALLBACK when no huge folio is free.
vm_fault_t do_huge_pmd_anonymous_page(Kernel& k, vm_fault& vmf, PmdRef pmd) {
    vm_area_struct* vma = vmf.vma;
    mm_struct& mm = *vma->vm_mm;
    uint64_t haddr = vmf.address & ~(hpage_pmd_size(k) - 1);
    if (vm_fault_t ret = vmf_anon_prepare(k, vmf)) return ret;
    k.rt.yield(MMR_SITE("vma_alloc_folio"), rt::Ev::yield);
    Pfn folio = k.folios.alloc_order(hpage_pmd_order(k));
    if (folio == FolioPool::kNoPfn) {
        k.counters.inc(Counter::thp_fault_fallback);
        return fault::VM_FAULT_FALLBACK;
    }
    TableId pgtable = k.tables.alloc(PTE_LEVEL);  // pte_alloc_one
    if (pgtable == kNoTable) {
        k.folios.put(folio);
        return fault::VM_FAULT_OOM;
    }
    pmd_lock(mm, MMR_SITE("__do_huge_pmd_anonymous_page"));
    uint64_t& e = pmd_entry(k, pmd);
    if (e) {  // someone populated the PMD meanwhile
        pmd_unlock(mm, MMR_SITE("__do_huge_pmd_anonymous_page"));
        k.tables.free(pgtable);
        k.folios.put(folio);
        return 0;
    }
    // A PROT_NONE VMA is reached only by a FOLL_FORCE GUP: the PMD is PAGE_NONE.
    pmd_t entry = folio_mk_pmd(folio, vma->vm_flags & VM_ACCESS_FLAGS) | _PAGE_DIRTY | _PAGE_ACCESSED;
    if (vma->vm_flags & VM_WRITE) entry |= _PAGE_RW;  // maybe_pmd_mkwrite
    folio_add_new_anon_rmap_pmd(k, folio, vma, haddr);
    folio_add_lru(k, folio);  // folio_add_lru_vma
    pgtable_trans_huge_deposit(k, pmd, pgtable);
    e = entry;  // set_pmd_at
    pmd_unlock(mm, MMR_SITE("__do_huge_pmd_anonymous_page"));
    k.counters.inc(Counter::thp_fault_alloc);
    return 0;
}

// huge_pmd_set_accessed: the access bits of a huge PMD that already allows the access.
vm_fault_t huge_pmd_set_accessed(Kernel& k, vm_fault& vmf, PmdRef pmd, pmd_t orig) {
    mm_struct& mm = *vmf.vma->vm_mm;
    pmd_lock(mm, MMR_SITE("huge_pmd_set_accessed"));
    uint64_t& e = pmd_entry(k, pmd);
    if (e == orig) {
        e |= _PAGE_ACCESSED;
        if (vmf.flags & fault::FAULT_FLAG_WRITE) e |= _PAGE_DIRTY;
    }
    pmd_unlock(mm, MMR_SITE("huge_pmd_set_accessed"));
    return 0;
}

// do_huge_pmd_wp_page: a write (or a GUP unshare: FAULT_FLAG_UNSHARE) on a
// write-protected huge PMD.  Reused in place when the folio is exclusive (or only this
// mapping references it): a write makes the PMD writable, an unshare leaves it as it
// is, the page being exclusive now is all GUP needs.  Otherwise the PMD is split and
// the PTE-level fault copies the page (VM_FAULT_FALLBACK), as upstream since 5.8.
// Upstream sleeps in folio_lock when the trylock fails; the model splits then.  A
// FOLL_FORCE write into a VMA without VM_WRITE (read-only, or PROT_NONE: the PMD is
// then PAGE_NONE) reuses too, but leaves the PMD read-only (maybe_pmd_mkwrite): GUP
// follows it because the page is exclusive now (can_follow_write_pmd).
vm_fault_t do_huge_pmd_wp_page(Kernel& k, vm_fault& vmf, PmdRef pmd, pmd_t orig) {
    bool unshare = vmf.flags & fault::FAULT_FLAG_UNSHARE;
    vm_area_struct* vma = vmf.vma;
    mm_struct& mm = *vma->vm_mm;
    pmd_lock(mm, MMR_SITE("do_huge_pmd_wp_page"));
    uint64_t& e = pmd_entry(k, pmd);
    if (e != orig) {
        pmd_unlock(mm, MMR_SITE("do_huge_pmd_wp_page"));
        return 0;
    }
    Pfn head = pmd_pfn(orig);
    Folio& f = k.folios[head];
    bool reuse = f.flags & PG_anon_exclusive;
    if (!reuse && folio_trylock(k, head)) {
        if (f.refcount == 1) {
            folio_move_anon_rmap(k, head, vmf.anon_vma ? vmf.anon_vma : vma->anon_vma);
            f.flags |= PG_anon_exclusive;
            reuse = true;
        }
        folio_unlock(k, head);
    }
    if (reuse && unshare) {
        pmd_unlock(mm, MMR_SITE("do_huge_pmd_wp_page"));
        return 0;
    }
    if (reuse) {
        e |= _PAGE_DIRTY | _PAGE_ACCESSED;  // pmd_mkyoung(pmd_mkdirty())
        if (vma->vm_flags & VM_WRITE) e |= _PAGE_RW;  // maybe_pmd_mkwrite; pmdp_set_access_flags
        pmd_unlock(mm, MMR_SITE("do_huge_pmd_wp_page"));
        k.counters.inc(Counter::cow_reuse);
        return 0;
    }
    pmd_unlock(mm, MMR_SITE("do_huge_pmd_wp_page"));
    split_huge_pmd(k, vma, vmf.address);
    return fault::VM_FAULT_FALLBACK;
}

// __split_huge_pmd_locked for a page-cache THP's PMD (its !vma_is_anonymous branch):
// pmdp_huge_clear_flush, the PMD's dirty and young bits passed to the folio, its
// entire mapcount and reference dropped.  No table was deposited; the range refaults.
// PMD lock held.
void split_file_pmd_locked(Kernel& k, vm_area_struct* vma, PmdRef pmd, uint64_t haddr) {
    uint64_t& e = pmd_entry(k, pmd);
    pmd_t old = e;
    Pfn head = pmd_pfn(old);
    Folio& f = k.folios[head];
    e = 0;
    flush_tlb_mm_range(k, *vma->vm_mm, haddr, haddr + hpage_pmd_size(k));
    if (pte_dirty(old)) f.flags |= PG_dirty;            // folio_mark_dirty
    if (old & _PAGE_ACCESSED) f.flags |= PG_referenced;  // folio_set_referenced
    folio_remove_rmap_pmd(k, head, *vma->vm_mm);
    k.counters.inc(Counter::thp_split_pmd);
    k.folios.put(head);
}

// __split_huge_pmd_locked for an anonymous huge PMD: the deposited table maps every
// page of the folio with the VMA's protection (mk_pte with vm_page_prot: PAGE_NONE in
// a PROT_NONE VMA, which a PROT_NONE huge PMD lies in) and the PMD's write, dirty and
// young bits.  As upstream the write bit is the PMD's even if an mprotect(PROT_NONE)
// has changed the VMA but not yet this PMD (a reclaimer's split meanwhile): that
// mprotect's change_pte_range then takes it away.  The folio stays large: each
// PTE takes a reference and a page mapcount instead of the PMD's entire mapcount, and
// each page inherits the head's PageAnonExclusive.  GUP's references and pins stay on
// the folio.  PMD lock held.
void split_huge_pmd_locked(Kernel& k, vm_area_struct* vma, PmdRef pmd, uint64_t haddr) {
    sync::lockdep_assert_held(vma->vm_mm->page_table_lock, sync::LockMode::any);
    uint64_t& e = pmd_entry(k, pmd);
    pmd_t old = e;
    Pfn head = pmd_pfn(old);
    Folio& f = k.folios[head];
    uint64_t nr = hpage_pmd_nr(k);
    if (!(f.flags & PG_anon)) {
        split_file_pmd_locked(k, vma, pmd, haddr);
        return;
    }
    if (gup::folio_maybe_dma_pinned(k, head)) k.counters.inc(Counter::thp_split_pmd_pinned);
    TableId pt = pgtable_trans_huge_withdraw(k, pmd);
    if (pte_dirty(old)) f.flags |= PG_dirty;  // folio_set_dirty
    bool anon_exclusive = PageAnonExclusive(k.folios, head);
    bool accessible = vma->vm_flags & VM_ACCESS_FLAGS;
    f.refcount += static_cast<int64_t>(nr) - 1;  // folio_ref_add(folio, HPAGE_PMD_NR - 1)
    for (uint64_t i = 0; i < nr; ++i) {
        Pfn page = head + static_cast<Pfn>(i);
        if (anon_exclusive) SetPageAnonExclusive(k.folios, page);  // folio_add_anon_rmap_ptes(RMAP_EXCLUSIVE)
        pte_t pte = mk_pte(page, pte_write(old)) | (old & (_PAGE_DIRTY | _PAGE_ACCESSED));
        if (!accessible) pte = pte_mkprotnone(pte);
        k.tables[pt].entries[i] = pte;
    }
    folio_add_rmap_ptes(k, head, nr, *vma->vm_mm);
    folio_remove_rmap_pmd(k, head, *vma->vm_mm);
    e = mk_table_entry(pt);  // pmd_populate
    // pmdp_invalidate: no CPU keeps using the huge translation.
    flush_tlb_mm_range(k, *vma->vm_mm, haddr, haddr + hpage_pmd_size(k));
    k.counters.inc(Counter::thp_split_pmd);
}

// unmap_folio with TTU_SPLIT_HUGE_PMD: every huge PMD mapping the large folio at head
// is split, through the VMAs its rmap lock (held by the caller) keeps stable.
void unmap_folio_pmds(Kernel& k, Pfn head, const std::vector<vm_area_struct*>& rmap_vmas) {
    uint64_t size = hpage_pmd_size(k);
    std::vector<vm_area_struct*> vmas = rmap_vmas;
    for (vm_area_struct* vma : vmas) {
        uint64_t addr = vma_address(vma, k.folios[head].index);
        if (addr != UINT64_MAX && addr % size == 0 && addr + size <= vma->vm_end)
            split_huge_pmd(k, vma, addr, head);
    }
}

// The PTE locks lock_folio_pte_tables took, released (remove_migration_ptes' end).
void unlock_pte_tables(Kernel& k, std::vector<TableId>& held) {
    for (TableId t : held) k.tables[t].ptl.spin_unlock(MMR_SITE("remove_migration_ptes"));
    held.clear();
}

// try_to_migrate_one's PTE locks: every PTE table mapping a page of the folio at head
// (found through its rmap, locked by the caller), trylocked and held until the
// split is done.  Upstream each mapping becomes a migration entry under its lock, so
// that no one who took a PTE lock before sees the split half done, nor anyone after
// sees the folio at all; holding the locks across the conversion gives both.  A
// trylock, not a lock: a holder may wait for this folio's lock.  false (all released)
// if one was busy.
bool lock_folio_pte_tables(Kernel& k, Pfn head, const std::vector<vm_area_struct*>& vmas,
                           std::vector<TableId>& held) {
    uint64_t nr = folio_nr_pages(k.folios, head);
    for (vm_area_struct* vma : vmas) {
        for (uint64_t i = 0; i < nr; ++i) {
            uint64_t addr = vma_address(vma, k.folios[head].index + i);
            if (addr == UINT64_MAX) continue;
            TableId t = pte_table_lookup(k, *vma->vm_mm, addr);
            if (t == kNoTable || std::find(held.begin(), held.end(), t) != held.end()) continue;
            pte_t pte = k.tables[t].entries[k.geo.index(addr, PTE_LEVEL)];
            if (!pte_present(pte) || pte_special(pte) || pte_pfn(pte) != head + i) continue;
            if (!k.tables[t].ptl.spin_trylock(MMR_SITE("try_to_migrate_one"))) {
                unlock_pte_tables(k, held);
                return false;
            }
            held.push_back(t);
        }
    }
    return true;
}

// __split_folio_to_order0 and what __folio_split does after it: each page's
// references are its mappings and its page-cache slot's, plus the caller's on the
// head; the tails join `list` (isolated) or the LRU.
void __split_folio_to_order0(Kernel& k, Pfn head, std::vector<Pfn>* list) {
    uint64_t nr = folio_nr_pages(k.folios, head);
    bool isolated = k.folios[head].isolated;
    int64_t cache = k.folios[head].mapping >= 0 ? 1 : 0;
    k.folios.split_to_order0(head);
    for (uint64_t i = 0; i < nr; ++i) {
        Pfn p = head + static_cast<Pfn>(i);
        Folio& page = k.folios[p];
        // Each mapping's reference, the page cache's, and the caller's on the head.  A
        // tail gets one of the split's own, dropped below (free_folio_and_swap_cache),
        // so an unmapped anonymous one is freed; on the caller's list it keeps one
        // more, its isolation's.
        page.refcount = page.mapcount + cache + 1;
        if (i == 0) continue;
        if (list && isolated) {  // lru_add_split_folio
            page.isolated = true;
            ++page.refcount;
            list->push_back(p);
        } else {
            folio_add_lru(k, p);
        }
        k.folios.put(p);
    }
}


// The part of __folio_split under the rmap lock: unmap_folio's PMD splits, then under
// every PTE lock mapping it, can_split_folio + folio_ref_freeze: the mappings, the
// page cache's references and the caller's only.  Upstream the mappings are migration
// entries by now.  0 or -EAGAIN.
int split_folio_locked(Kernel& k, Pfn head, const std::vector<vm_area_struct*>& vmas, std::vector<Pfn>* list) {
    Folio& f = k.folios[head];
    unmap_folio_pmds(k, head, vmas);
    int64_t cache = f.mapping >= 0 ? static_cast<int64_t>(folio_nr_pages(k.folios, head)) : 0;
    int ret = -ops::EAGAIN_;
    std::vector<TableId> held;
    if (lock_folio_pte_tables(k, head, vmas, held)) {
        if (!f.entire_mapcount && f.refcount == f.mapcount + cache + 1 && !(f.flags & PG_swapcache)) {
            __split_folio_to_order0(k, head, list);
            k.counters.inc(Counter::thp_split_page);
            ret = 0;
        }
        unlock_pte_tables(k, held);
    }
    return ret;
}

}  // namespace

int split_folio(Kernel& k, Pfn head, std::vector<Pfn>* list) {
    Folio& f = k.folios[head];
    if (!folio_test_large(k.folios, head) || f.tail) throw ModelError("split_folio: not the head of a large folio");
    if (!f.locked || f.lock_owner != k.rt.self()) throw ModelError("split_folio: folio not locked");
    if (!(f.flags & PG_anon)) {
        // A page-cache THP: truncated meanwhile (no mapping) is -EBUSY; the rmap
        // lock is i_mmap_rwsem, for read (__folio_split: i_mmap_lock_read).
        if (f.mapping < 0) return -ops::EBUSY_;
        address_space& as = *k.files[f.mapping];
        as.i_mmap_rwsem.down_read(MMR_SITE("__folio_split"));
        int ret = split_folio_locked(k, head, as.i_mmap, list);
        as.i_mmap_rwsem.up_read(MMR_SITE("__folio_split"));
        return ret;
    }
    // folio_get_anon_vma: an unmapped folio's anon_vma may be gone already.
    if (!f.mapcount || !f.anon_vma) return -ops::EBUSY_;
    anon_vma* av = anon_vma_of(k, f.anon_vma);
    get_anon_vma(av);
    anon_vma_lock_write(av);
    int ret = split_folio_locked(k, head, av->rb_root, list);
    anon_vma_unlock_write(av);
    put_anon_vma(k, av);
    return ret;
}

vm_fault_t do_set_pmd(Kernel& k, vm_area_struct* vma, uint64_t vm_flags, uint64_t address, bool write,
                      Pfn head) {
    uint64_t nr = hpage_pmd_nr(k);
    uint64_t haddr = address & ~(hpage_pmd_size(k) - 1);
    const Folio& f = k.folios[head];
    if (!thp_vma_suitable_order(k, vma, haddr) || f.order != hpage_pmd_order(k) || (vm_flags & VM_NOHUGEPAGE))
        return fault::VM_FAULT_FALLBACK;
    // A THP that a failed truncate split left across i_size is not mapped past it.
    if (f.mapping < 0 || f.index + nr > k.files[f.mapping]->size_pages()) return fault::VM_FAULT_FALLBACK;
    mm_struct& mm = *vma->vm_mm;
    PmdRef pmd = pmd_alloc(k, mm, haddr);
    if (!pmd) return fault::VM_FAULT_OOM;
    pmd_lock(mm, MMR_SITE("do_set_pmd"));
    uint64_t& e = pmd_entry(k, pmd);
    if (e) {  // a PTE table (or another fault's PMD) got there first
        pmd_unlock(mm, MMR_SITE("do_set_pmd"));
        return fault::VM_FAULT_FALLBACK;
    }
    pmd_t entry = folio_mk_pmd(head, vm_flags & VM_ACCESS_FLAGS) | _PAGE_ACCESSED;
    if (write) entry |= _PAGE_DIRTY;
    if (write && (vm_flags & VM_WRITE)) entry |= _PAGE_RW;  // maybe_pmd_mkwrite
    folio_add_rmap_pmd(k, head, mm);  // folio_add_file_rmap_pmd
    e = entry;                        // set_pmd_at
    pmd_unlock(mm, MMR_SITE("do_set_pmd"));
    return 0;
}

std::optional<vm_fault_t> handle_huge_pmd_fault(Kernel& k, vm_fault& vmf) {
    vm_area_struct* vma = vmf.vma;
    mm_struct& mm = *vma->vm_mm;
    bool allow = thp_vma_allowable(k, vma, vmf.address, true);
    PmdRef pmd = allow ? pmd_alloc(k, mm, vmf.address) : pmd_lookup(k, mm, vmf.address);
    if (!pmd) return allow ? std::optional<vm_fault_t>(fault::VM_FAULT_OOM) : std::nullopt;
    // Outside THP VMAs only a huge PMD matters; the check is not a scheduling point, so
    // that faults elsewhere interleave exactly as they did before THP was modelled.
    if (!allow && !pmd_trans_huge(pmd_entry(k, pmd))) return std::nullopt;
    pmd_t orig = pmdp_get_lockless(k, pmd, MMR_SITE("__handle_mm_fault"));
    vm_fault_t ret = fault::VM_FAULT_FALLBACK;
    if (!orig && allow) {
        ret = do_huge_pmd_anonymous_page(k, vmf, pmd);  // create_huge_pmd
    } else if (pmd_trans_huge(orig)) {
        // A PROT_NONE huge PMD is faulted on only by a FOLL_FORCE GUP, in a VMA without
        // access.  The model makes no NUMA hinting PMDs, so one in an accessible VMA breaks
        // check_huge_pmd's rule (PROT_NONE exactly when the VMA is): a broken state, such as
        // a collapse through a VMA that changed under it, seen here before the next
        // quiescent check would see it.
        if (pmd_protnone(orig) && (vmf.vma_flags & VM_ACCESS_FLAGS))
            check::violation(Check::invariant, "huge PMD at " + ops::hex(vmf.address & ~(hpage_pmd_size(k) - 1)) +
                                                   " is PROT_NONE in an accessible VMA (a fault found it)");
        bool wp = (vmf.flags & (fault::FAULT_FLAG_WRITE | fault::FAULT_FLAG_UNSHARE)) && !pte_write(orig);
        if (wp && !vma->vma_is_anonymous())
            split_huge_pmd(k, vma, vmf.address);  // wp_huge_pmd: no ->huge_fault for shmem
        else if (wp)
            ret = do_huge_pmd_wp_page(k, vmf, pmd, orig);  // wp_huge_pmd
        else
            ret = huge_pmd_set_accessed(k, vmf, pmd, orig);
    }
    if (ret & fault::VM_FAULT_FALLBACK) return std::nullopt;
    return ret;
}

void split_huge_pmd(Kernel& k, vm_area_struct* vma, uint64_t addr, Pfn folio) {
    mm_struct& mm = *vma->vm_mm;
    PmdRef pmd = pmd_lookup(k, mm, addr);
    // split_huge_pmd: only a huge PMD is worth the lock (re-checked under it).
    if (!pmd || !pmd_trans_huge(pmd_entry(k, pmd))) return;
    pmd_lock(mm, MMR_SITE("__split_huge_pmd"));
    uint64_t e = pmd_entry(k, pmd);
    if (pmd_trans_huge(e) && (folio == FolioPool::kNoPfn || pmd_pfn(e) == folio))
        split_huge_pmd_locked(k, vma, pmd, addr & ~(hpage_pmd_size(k) - 1));
    pmd_unlock(mm, MMR_SITE("__split_huge_pmd"));
}

void vma_adjust_trans_huge(Kernel& k, vm_area_struct* vma, uint64_t addr) {
    uint64_t size = hpage_pmd_size(k);
    if (addr % size == 0) return;
    uint64_t haddr = addr & ~(size - 1);
    if (haddr >= vma->vm_start && haddr + size <= vma->vm_end) split_huge_pmd(k, vma, haddr);
}

bool zap_huge_pmd(mmu_gather& tlb, vm_area_struct* vma, PmdRef pmd, uint64_t haddr) {
    Kernel& k = *tlb.k;
    mm_struct& mm = *vma->vm_mm;
    pmd_lock(mm, MMR_SITE("zap_huge_pmd"));
    uint64_t& e = pmd_entry(k, pmd);
    if (!pmd_trans_huge(e)) {
        pmd_unlock(mm, MMR_SITE("zap_huge_pmd"));
        return false;
    }
    Pfn head = pmd_pfn(e);
    pmd_t old = e;
    e = 0;  // pmdp_huge_get_and_clear_full
    tlb.start = std::min(tlb.start, haddr);  // tlb_remove_pmd_tlb_entry
    tlb.end = std::max(tlb.end, haddr + hpage_pmd_size(k));
    if (k.folios[head].flags & PG_anon)
        k.tables.free(pgtable_trans_huge_withdraw(k, pmd));  // zap_deposited_table: pte_free
    else if (pte_dirty(old))  // a file PMD has no deposited table on x86
        k.folios[head].flags |= PG_dirty;
    folio_remove_rmap_pmd(k, head, mm);
    tlb_remove_folio(tlb, head);
    pmd_unlock(mm, MMR_SITE("zap_huge_pmd"));
    return true;
}

bool change_huge_pmd(mmu_gather& tlb, vm_area_struct* vma, PmdRef pmd, uint64_t haddr) {
    Kernel& k = *tlb.k;
    mm_struct& mm = *vma->vm_mm;
    pmd_lock(mm, MMR_SITE("change_huge_pmd"));
    uint64_t& e = pmd_entry(k, pmd);
    if (!pmd_trans_huge(e)) {
        pmd_unlock(mm, MMR_SITE("change_huge_pmd"));
        return false;
    }
    // pmd_modify with the new vm_page_prot, then MM_CP_TRY_CHANGE_WRITABLE:
    // can_change_pmd_writable allows the write bit on an exclusive anonymous folio of a
    // VMA with VM_WRITE (never on a PROT_NONE PMD, which a writable VMA does not have).
    bool accessible = vma->vm_flags & VM_ACCESS_FLAGS;
    const Folio& f = k.folios[pmd_pfn(e)];
    pmd_t n = pmd_modify(e, accessible);
    if (accessible && (vma->vm_flags & VM_WRITE) && (f.flags & PG_anon_exclusive)) n |= _PAGE_RW;
    if (n != e) {
        e = n;  // pmdp_invalidate_ad + set_pmd_at
        tlb.start = std::min(tlb.start, haddr);  // tlb_flush_pmd_range
        tlb.end = std::max(tlb.end, haddr + hpage_pmd_size(k));
    }
    pmd_unlock(mm, MMR_SITE("change_huge_pmd"));
    return true;
}

bool move_huge_pmd(Kernel& k, vm_area_struct* vma, PmdRef old_pmd, PmdRef new_pmd, uint64_t old_addr) {
    mm_struct& mm = *vma->vm_mm;
    mmap_assert_write_locked(mm);
    // The destination should be empty; a PTE table a racing file collapse left there
    // (or one the model kept) makes the caller fall back.
    if (pmd_entry(k, new_pmd)) return false;
    pmd_lock(mm, MMR_SITE("move_huge_pmd"));  // one PMD lock per mm: old and new alike
    pmd_t& src = pmd_entry(k, old_pmd);
    if (!pmd_trans_huge(src)) {  // __pmd_trans_huge_lock failed: split meanwhile
        pmd_unlock(mm, MMR_SITE("move_huge_pmd"));
        return false;
    }
    pmd_t pmd = src;
    src = 0;  // pmdp_huge_get_and_clear
    if (k.tables[old_pmd.table].deposited[old_pmd.index] != kNoTable)
        pgtable_trans_huge_deposit(k, new_pmd, pgtable_trans_huge_withdraw(k, old_pmd));
    pmd_entry(k, new_pmd) = pmd;  // set_pmd_at
    // flush_pmd_tlb_range: present and PROT_NONE PMDs alike (x86 pmd_present).
    flush_tlb_mm_range(k, mm, old_addr, old_addr + hpage_pmd_size(k));
    pmd_unlock(mm, MMR_SITE("move_huge_pmd"));
    k.counters.inc(Counter::thp_move_pmd);
    return true;
}

int copy_huge_pmd(Kernel& k, vm_area_struct* dst_vma, vm_area_struct* src_vma, uint64_t addr) {
    mm_struct& src_mm = *src_vma->vm_mm;
    mm_struct& dst_mm = *dst_vma->vm_mm;
    PmdRef src_pmd = pmd_lookup(k, src_mm, addr);
    if (!src_pmd || !pmd_trans_huge(pmd_entry(k, src_pmd))) return -ops::EAGAIN_;
    if (!dst_vma->vma_is_anonymous()) return 0;  // refilled on fault
    PmdRef dst_pmd = pmd_alloc(k, dst_mm, addr);
    if (!dst_pmd) return -ops::ENOMEM_;
    TableId pgtable = k.tables.alloc(PTE_LEVEL);  // pte_alloc_one
    if (pgtable == kNoTable) return -ops::ENOMEM_;
    pmd_lock(dst_mm, MMR_SITE("copy_huge_pmd"));
    src_mm.page_table_lock.spin_lock_nested(1, MMR_SITE("copy_huge_pmd"));  // SINGLE_DEPTH_NESTING
    auto unlock = [&] {
        src_mm.page_table_lock.spin_unlock(MMR_SITE("copy_huge_pmd"));
        pmd_unlock(dst_mm, MMR_SITE("copy_huge_pmd"));
    };
    uint64_t& src = pmd_entry(k, src_pmd);
    if (!pmd_trans_huge(src)) {  // a reclaimer's split_folio got there first
        k.tables.free(pgtable);
        unlock();
        return -ops::EAGAIN_;
    }
    Pfn head = pmd_pfn(src);
    // folio_try_dup_anon_rmap_pmd: an exclusive folio that may be pinned is not
    // shared: split, and let the PTE copy give the child its own pages.
    if (PageAnonExclusive(k.folios, head) && src_vma->is_cow_mapping() && src_mm.has_pinned &&
        gup::folio_maybe_dma_pinned(k, head) && !k.mutant(MutantId::fork_shares_pinned_page)) {
        k.tables.free(pgtable);
        unlock();
        split_huge_pmd(k, src_vma, addr);
        return -ops::EAGAIN_;
    }
    k.folios.get(head);
    ClearPageAnonExclusive(k.folios, head);
    folio_add_rmap_pmd(k, head, dst_mm);
    pgtable_trans_huge_deposit(k, dst_pmd, pgtable);
    src &= ~_PAGE_RW;  // pmdp_set_wrprotect; fork flushes the parent's TLB at its end
    pmd_entry(k, dst_pmd) = src & ~_PAGE_ACCESSED;  // pmd_mkold(pmd_wrprotect(pmd))
    unlock();
    return 0;
}

}  // namespace mmrace::mm
