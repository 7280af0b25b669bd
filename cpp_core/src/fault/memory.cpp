// The generic fault handler of mm/memory.c: handle_mm_fault down to the PTE.
// Built: anonymous memory (do_anonymous_page with the zero page for reads), file and
// shmem pages (do_read_fault, do_cow_fault, do_shared_fault through filemap_fault), and
// write-protect faults (do_wp_page: reuse, shared reuse, or copy), and swap PTEs
// (do_swap_page, through the swap cache).  The PMD level (THP) is in mm/huge_memory.cpp.
#include "check/report.hpp"
#include "mmrace/run.hpp"
#include "fault/fault.hpp"
#include "mm/anon_vma.hpp"
#include "mm/filemap.hpp"
#include "mm/huge_memory.hpp"
#include "mm/lru.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/rmap.hpp"
#include "mm/swap.hpp"
#include "mm/userfaultfd.hpp"
#include "mm/vma_lock.hpp"

namespace mmrace::fault {

using namespace mm;

namespace {

// alloc_anon_folio / folio_prealloc: a zeroed order-0 folio; may sleep.
Pfn alloc_anon_folio(Kernel& k) {
    k.rt.yield(MMR_SITE("alloc_anon_folio"), rt::Ev::yield);
    Pfn p = k.folios.alloc();
    if (p != FolioPool::kNoPfn) k.counters.inc(Counter::pgalloc_anon);
    return p;
}

// pte_offset_map_lock, or for a speculative fault pte_map_lock: false if the fault
// must abort (it then holds no PTE lock).
bool pte_map_lock(Kernel& k, vm_fault& vmf, const rt::Site* site) {
    if (vmf.flags & FAULT_FLAG_SPECULATIVE) return spf_pte_map_lock(k, vmf);
    pte_lock(k, vmf.pte, site);
    return true;
}

// vmf_anon_prepare: give the VMA an anon_vma.  A speculative fault may not (it needs
// mmap_lock): nonzero means abort.  The fault began with one, so only a concurrent
// unmap can have taken it (free_pgtables), and pte_map_lock would fail anyway.
// Under the VMA lock (6.7) it may not either: the VMA lock is dropped and nonzero
// means VM_FAULT_RETRY, which then runs under mmap_lock.  Only a file VMA's COW can
// get here so: lock_vma_under_rcu makes sure an anonymous VMA has one.
int vmf_anon_prepare(Kernel& k, vm_fault& vmf) {
    if (vmf.flags & FAULT_FLAG_SPECULATIVE) {
        if (vmf.anon_vma && vmf.vma->anon_vma) return 0;
        k.counters.inc(Counter::spf_vma_noanon);
        return 1;
    }
    if ((vmf.flags & FAULT_FLAG_VMA_LOCK) && !vmf.vma->anon_vma) {
        vma_end_read(vmf.vma);
        return 1;
    }
    anon_vma_prepare(k, vmf.vma);
    vmf.anon_vma = vmf.vma->anon_vma;
    return 0;
}

// vma->vm_page_prot for a new PTE: in a PROT_NONE VMA (reached only by a FOLL_FORCE
// GUP) the page is mapped PAGE_NONE, present to the kernel but not to the MMU.
pte_t vm_page_prot(const vm_fault& vmf, pte_t entry) {
    if (vmf.vma_flags & VM_ACCESS_FLAGS) return entry;
    return pte_mkprotnone(entry & ~_PAGE_RW);
}

// vmf_pte_changed: under the PTE lock, has the PTE moved on since orig_pte was read?
bool vmf_pte_changed(Kernel& k, const vm_fault& vmf) {
    return ptep_get(k, vmf.pte) != vmf.orig_pte;
}

// do_anonymous_page: a missing PTE in an anonymous VMA.  mmap_lock held for read.
vm_fault_t do_anonymous_page(Kernel& k, vm_fault& vmf) {
    vm_area_struct* vma = vmf.vma;
    if (vmf.vma_flags & VM_SHARED) return VM_FAULT_SIGBUS;
    if (!vmf.pte) vmf.pte = pte_alloc(k, *vma->vm_mm, vmf.address);
    if (!vmf.pte) return vmf.pte.pmd_huge ? vm_fault_t{0} : vm_fault_t{VM_FAULT_OOM};  // a THP fault won the slot
    if (!(vmf.flags & FAULT_FLAG_WRITE)) {
        // Use the zero page for reads.
        pte_t entry = pte_mkspecial(mk_pte(kZeroPfn, false));
        if (!pte_map_lock(k, vmf, MMR_SITE("do_anonymous_page"))) return VM_FAULT_RETRY;
        // Deliver the page fault to userland, checked inside the PTE lock.
        if (!vmf_pte_changed(k, vmf) && (vmf.vma_flags & VM_UFFD_MISSING)) {
            pte_unlock(k, vmf.pte, MMR_SITE("do_anonymous_page"));
            return handle_userfault(k, vmf, VM_UFFD_MISSING);
        }
        if (!vmf_pte_changed(k, vmf)) {
            set_pte_at(k, vmf.pte, vm_page_prot(vmf, entry));
            k.counters.inc(Counter::zero_page_map);
        }
        pte_unlock(k, vmf.pte, MMR_SITE("do_anonymous_page"));
        return 0;
    }
    if (vmf_anon_prepare(k, vmf)) return VM_FAULT_RETRY;
    Pfn p = alloc_anon_folio(k);
    if (p == FolioPool::kNoPfn) return VM_FAULT_OOM;
    pte_t entry = pte_mkyoung(mk_pte(p, false));
    if (vmf.vma_flags & VM_WRITE) entry = pte_mkdirty(pte_mkwrite(entry));
    if (!pte_map_lock(k, vmf, MMR_SITE("do_anonymous_page"))) {
        k.folios.put(p);
        return VM_FAULT_RETRY;
    }
    if (vmf_pte_changed(k, vmf)) {
        pte_unlock(k, vmf.pte, MMR_SITE("do_anonymous_page"));
        k.folios.put(p);  // release: someone else populated it
        return 0;
    }
    if (vmf.vma_flags & VM_UFFD_MISSING) {  // userfaultfd_missing
        pte_unlock(k, vmf.pte, MMR_SITE("do_anonymous_page"));
        k.folios.put(p);
        return handle_userfault(k, vmf, VM_UFFD_MISSING);
    }
    __folio_add_new_anon_rmap(k, p, vmf.anon_vma, vmf.pgoff, true);
    folio_add_lru(k, p);  // folio_add_lru_vma
    set_pte_at(k, vmf.pte, vm_page_prot(vmf, entry));
    pte_unlock(k, vmf.pte, MMR_SITE("do_anonymous_page"));
    return 0;
}

// wp_page_reuse: make the PTE writable in place.  PTE lock held; released here.
vm_fault_t wp_page_reuse(Kernel& k, vm_fault& vmf) {
    pte_t entry = pte_mkdirty(pte_mkyoung(vmf.orig_pte));
    if (vmf.vma_flags & VM_WRITE) entry = pte_mkwrite(entry);
    set_pte_at(k, vmf.pte, vm_page_prot(vmf, entry));
    pte_unlock(k, vmf.pte, MMR_SITE("wp_page_reuse"));
    k.counters.inc(Counter::cow_reuse);
    return 0;
}

// wp_page_copy: break COW by copying the page `old` into a new exclusive folio.
// Entered without the PTE lock, holding a reference on old's folio (none for the zero
// page), which no split can take apart meanwhile (it needs that reference gone).
vm_fault_t wp_page_copy(Kernel& k, vm_fault& vmf, Pfn old_page) {
    const Pfn old = page_folio(k.folios, old_page);
    if (vmf_anon_prepare(k, vmf)) {
        k.folios.put(old);
        return VM_FAULT_RETRY;
    }
    Pfn fresh = alloc_anon_folio(k);
    if (fresh == FolioPool::kNoPfn) {
        k.folios.put(old);
        return VM_FAULT_OOM;
    }
    if (old != kZeroPfn) {
        k.folios[fresh].words = k.folios[old_page].words;  // __wp_page_copy_user
        // The copy of a whole page takes time: other CPUs run (and may store through
        // stale TLB entries into the old page) before the PTE lock is taken again.
        k.rt.yield(MMR_SITE("__wp_page_copy_user"), rt::Ev::yield, old);
    }
    if (!pte_map_lock(k, vmf, MMR_SITE("wp_page_copy"))) {
        k.folios.put(fresh);
        k.folios.put(old);
        return VM_FAULT_RETRY;
    }
    Pfn to_put = fresh;  // if the PTE changed under us, the new folio is dropped
    if (!vmf_pte_changed(k, vmf)) {
        pte_t entry = pte_mkyoung(mk_pte(fresh, false));
        // FAULT_FLAG_UNSHARE (a R/O pin) maps the exclusive copy read-only and clean.
        if (!(vmf.flags & FAULT_FLAG_UNSHARE)) entry = pte_mkdirty(entry);
        if ((vmf.vma_flags & VM_WRITE) && !(vmf.flags & FAULT_FLAG_UNSHARE)) entry = pte_mkwrite(entry);
        set_pte_at(k, vmf.pte, 0);  // ptep_clear_flush: no CPU may keep the old page
        flush_tlb_page(k, *vmf.vma->vm_mm, vmf.address);
        __folio_add_new_anon_rmap(k, fresh, vmf.anon_vma, vmf.pgoff, true);
        folio_add_lru(k, fresh);  // folio_add_lru_vma
        set_pte_at(k, vmf.pte, vm_page_prot(vmf, entry));
        folio_remove_rmap_pte(k, old_page, *vmf.vma->vm_mm);
        to_put = old;  // drop the old mapping's reference
        k.counters.inc(Counter::cow_copy);
    }
    pte_unlock(k, vmf.pte, MMR_SITE("wp_page_copy"));
    k.folios.put(to_put);
    k.folios.put(old);  // the reference do_wp_page took
    return 0;
}

// __wp_can_reuse_large_anon_folio: a PTE-mapped large folio is reused when this mm
// holds every mapping (no second mm in its mm id slots) and the mappings every
// reference.  Without the folio lock: a reference from swap-out or migration would
// show in the count.  Its anon_vma stays as it is.
bool wp_can_reuse_large_anon_folio(Kernel& k, Pfn folio) {
    const Folio& f = k.folios[folio];
    if (folio_maybe_mapped_shared(k.folios, folio)) return false;
    return f.mapcount == f.refcount;
}

// wp_can_reuse_anon_folio: no other reference can see the folio.  A swap-cache folio
// whose slot no swap PTE holds any more leaves the swap cache first, under its lock
// (trylock: the PTE lock is held).  A reused folio moves to vma's own anon_vma.
bool wp_can_reuse_anon_folio(Kernel& k, Pfn p, uint64_t anon_vma) {
    if (folio_test_large(k.folios, p)) return wp_can_reuse_large_anon_folio(k, p);
    Folio& f = k.folios[p];
    // CVE-2020-29374: before 09854ba94c6a ("mm: do_wp_page() simplification") do_wp_page
    // asked reuse_swap_page, which counted mappings and swap references, not page
    // references: a page the child's read-only GUP still holds, once the child unmapped
    // it, was the parent's to write in place.
    if (k.mutant(MutantId::cow_reuse_after_ro_gup) && f.mapcount == 1 &&
        !(f.flags & PG_swapcache) && folio_trylock(k, p)) {
        folio_move_anon_rmap(k, p, anon_vma);
        folio_unlock(k, p);
        return true;
    }
    if (f.refcount > 1 + ((f.flags & PG_swapcache) ? 1 : 0)) return false;
    if (!folio_trylock(k, p)) return false;
    if (f.flags & PG_swapcache) folio_free_swap(k, p);
    if (f.refcount != 1) {
        folio_unlock(k, p);
        return false;
    }
    folio_move_anon_rmap(k, p, anon_vma);
    folio_unlock(k, p);
    return true;
}

// do_wp_page: a write to a present, write-protected PTE, or FAULT_FLAG_UNSHARE (a R/O
// FOLL_PIN of a page that may be shared: make it exclusive, keep it read-only).  PTE
// lock held on entry.
vm_fault_t do_wp_page(Kernel& k, vm_fault& vmf) {
    // userfaultfd_pte_wp: a real write to a uffd-wp PTE of a WP-registered VMA goes to
    // the handler first.
    if ((vmf.flags & FAULT_FLAG_WRITE) && (vmf.vma_flags & VM_UFFD_WP) &&
        pte_uffd_wp(ptep_get(k, vmf.pte))) {
        pte_unlock(k, vmf.pte, MMR_SITE("do_wp_page"));
        return handle_userfault(k, vmf, VM_UFFD_WP);
    }
    Pfn page = pte_pfn(vmf.orig_pte);
    Pfn folio = page_folio(k.folios, page);
    bool normal = !pte_special(vmf.orig_pte);  // vm_normal_page
    if (vmf.vma_flags & (VM_SHARED | VM_MAYSHARE)) {
        k.folios[folio].flags |= PG_dirty;  // wp_page_shared: reuse, dirty
        return wp_page_reuse(k, vmf);
    }
    if (normal) {
        if ((k.folios[folio].flags & PG_anon) &&
            (PageAnonExclusive(k.folios, page) || wp_can_reuse_anon_folio(k, folio, vmf.anon_vma))) {
            SetPageAnonExclusive(k.folios, page);
            if (vmf.flags & FAULT_FLAG_UNSHARE) {  // exclusive now: nothing to unshare
                pte_unlock(k, vmf.pte, MMR_SITE("do_wp_page"));
                return 0;
            }
            return wp_page_reuse(k, vmf);
        }
        k.folios.get(folio);
    }
    pte_unlock(k, vmf.pte, MMR_SITE("do_wp_page"));
    return wp_page_copy(k, vmf, normal ? page : kZeroPfn);
}

// __read_swap_cache_async: the swap cache's folio for entry, or a new one added to the
// swap cache (SWAP_HAS_CACHE set) and under read I/O, with a reference either way.
// kNoPfn if no swap PTE holds the slot any more (swapcache_prepare's -ENOENT: the PTE
// that led here is gone) or no memory.  *allocated tells which.
Pfn read_swap_cache_async(Kernel& k, swp_entry_t entry, bool* allocated) {
    *allocated = false;
    for (;;) {
        Pfn p = swap_cache_get_folio(k, entry);
        if (p != FolioPool::kNoPfn) return p;
        const swap_slot& s = k.swap.slot(entry);
        if (!s.in_use || !s.count) return FolioPool::kNoPfn;  // swap_entry_swapped
        Pfn fresh = alloc_anon_folio(k);  // may sleep: look again afterwards
        if (fresh == FolioPool::kNoPfn) return fresh;
        if (k.swap.swap_cache.count(entry.val) || !s.in_use || !s.count) {
            k.folios.put(fresh);  // raced with another swap-in, or the entry went
            continue;
        }
        // swapcache_prepare + add_to_swap_cache, then swap_read_folio.
        Folio& f = k.folios[fresh];
        f.flags = 0;  // not uptodate until the read completes
        f.locked = true;
        f.lock_owner = rt::kNoThread;
        k.swap.slot(entry).has_cache = true;
        k.folios.get(fresh);  // the swap cache's reference
        f.flags |= PG_swapcache;
        f.swap = entry.val;
        k.swap.swap_cache[entry.val] = fresh;
        folio_add_lru(k, fresh);
        swap_read_folio(k, fresh, entry);
        *allocated = true;
        return fresh;
    }
}

// folio_lock_or_retry: lock the folio, or, on a first attempt that may retry, drop
// mmap_lock, wait for the folio to be unlocked (the read I/O) and return VM_FAULT_RETRY.
vm_fault_t folio_lock_or_retry(Kernel& k, Pfn p, vm_fault& vmf) {
    if (folio_trylock(k, p)) return 0;
    if ((vmf.flags & FAULT_FLAG_ALLOW_RETRY) && !(vmf.flags & FAULT_FLAG_TRIED)) {
        if (vmf.flags & FAULT_FLAG_RETRY_NOWAIT) return VM_FAULT_RETRY;
        release_fault_lock(k, vmf);
        folio_lock(k, p);  // folio_wait_locked
        folio_unlock(k, p);
        return VM_FAULT_RETRY;
    }
    folio_lock(k, p);
    return 0;
}

// should_try_to_free_swap: a folio about to be mapped may leave the swap cache when swap
// is full, or when a write fault would otherwise see the swap cache's reference and copy.
bool should_try_to_free_swap(Kernel& k, Pfn p, vm_area_struct* vma, uint32_t flags) {
    const Folio& f = k.folios[p];
    if (!(f.flags & PG_swapcache)) return false;
    if (vm_swap_full(k) || (vma->vm_flags & VM_LOCKED)) return true;
    return (flags & FAULT_FLAG_WRITE) && f.refcount == 2;
}

// do_swap_page: a fault on a swap PTE.  mmap_lock held for read; released with
// VM_FAULT_RETRY.  Finds the folio in the swap cache or reads it from the slot (a major
// fault), locks it (maybe dropping mmap_lock to wait for the read), re-checks the PTE
// under its lock and maps the folio, writable and exclusive when the swap PTE says no
// one else can have it (or no one else holds a reference); a write that finds it shared
// goes on to do_wp_page.
vm_fault_t do_swap_page(Kernel& k, vm_fault& vmf) {
    vm_area_struct* vma = vmf.vma;
    // Swap-in under the VMA lock came in 6.6 ("mm: handle swap page faults under
    // per-VMA lock", config vma_lock=swapin); before it the fault retries under
    // mmap_lock.  With it, waiting for the read drops the VMA lock (folio_lock_or_retry).
    if ((vmf.flags & FAULT_FLAG_VMA_LOCK) && !k.config.vma_lock_swapin) {
        release_fault_lock(k, vmf);
        return VM_FAULT_RETRY;
    }
    swp_entry_t entry = pte_to_swp_entry(vmf.orig_pte);
    if (!k.swap.valid(entry))
        check::violation(Check::use_after_free, "swap PTE at " + std::to_string(vmf.address) +
                                               " names no swap slot");
    vm_fault_t ret = 0;
    Pfn p = swap_cache_get_folio(k, entry);
    if (p == FolioPool::kNoPfn) {
        bool allocated = false;
        p = read_swap_cache_async(k, entry, &allocated);  // swapin_readahead
        if (p == FolioPool::kNoPfn) {
            // Back out if somebody else faulted in (or zapped) this PTE meanwhile.
            pte_lock(k, vmf.pte, MMR_SITE("do_swap_page"));
            if (ptep_get(k, vmf.pte) == vmf.orig_pte) ret = VM_FAULT_OOM;
            pte_unlock(k, vmf.pte, MMR_SITE("do_swap_page"));
            return ret;
        }
        if (allocated) {  // had to read the page from swap: a major fault
            ret = VM_FAULT_MAJOR;
            k.counters.inc(Counter::pgmajfault);
        }
    }
    ret |= folio_lock_or_retry(k, p, vmf);
    if (ret & VM_FAULT_RETRY) {
        k.folios.put(p);
        return ret;
    }
    Folio& f = k.folios[p];
    // folio_free_swap may have taken it out of the swap cache meanwhile.
    if (!(f.flags & PG_swapcache) || f.swap != entry.val) {
        folio_unlock(k, p);
        k.folios.put(p);
        return ret;
    }
    pte_lock(k, vmf.pte, MMR_SITE("do_swap_page"));
    if (ptep_get(k, vmf.pte) != vmf.orig_pte || !(f.flags & PG_uptodate)) {  // out_nomap
        if (ptep_get(k, vmf.pte) == vmf.orig_pte) ret = VM_FAULT_SIGBUS;
        pte_unlock(k, vmf.pte, MMR_SITE("do_swap_page"));
        folio_unlock(k, p);
        k.folios.put(p);
        return ret;
    }
    // Under the PTE lock, so that a concurrent fork cannot share the entry meanwhile.
    bool exclusive = pte_swp_exclusive(vmf.orig_pte);
    swap_free(k, entry);
    if (should_try_to_free_swap(k, p, vma, vmf.flags)) folio_free_swap(k, p);
    pte_t pte = pte_mkyoung(mk_pte(p, false));
    bool uffd_wp = pte_swp_uffd_wp(vmf.orig_pte);
    if (uffd_wp) pte = pte_mkuffd_wp(pte);  // the uffd-wp bit survives swap-in
    // The same logic as do_wp_page's reuse, for a folio certainly not shared.  Never
    // writable while userfaultfd_pte_wp: the write must reach the handler.
    if (exclusive || f.refcount == 1) {
        if ((vmf.vma_flags & VM_WRITE) && !(uffd_wp && (vmf.vma_flags & VM_UFFD_WP))) {
            pte = pte_mkwrite(pte);
            if (vmf.flags & FAULT_FLAG_WRITE) {
                pte = pte_mkdirty(pte);
                vmf.flags &= ~FAULT_FLAG_WRITE;
            }
        }
        exclusive = true;  // RMAP_EXCLUSIVE
    }
    // The fault's reference becomes the mapping's.
    if (!(f.flags & PG_anon)) folio_add_new_anon_rmap(k, p, vma, vmf.address, exclusive);
    else folio_add_anon_rmap_pte(k, p, vma, vmf.address, exclusive);
    set_pte_at(k, vmf.pte, vm_page_prot(vmf, pte));
    vmf.orig_pte = pte;
    folio_unlock(k, p);
    if (vmf.flags & FAULT_FLAG_WRITE) {  // a shared folio mapped read-only: break COW now
        ret |= do_wp_page(k, vmf);       // releases the PTE lock
        return ret & VM_FAULT_ERROR ? ret & VM_FAULT_ERROR : ret;
    }
    pte_unlock(k, vmf.pte, MMR_SITE("do_swap_page"));
    return ret;
}

// The PTE set_pte_range makes for `page` at a fault: young, dirty and writable (if the
// VMA may write: maybe_mkwrite) for a write, with the VMA's protection.
pte_t mk_fault_pte(const vm_fault& vmf, Pfn page) {
    bool write = vmf.flags & FAULT_FLAG_WRITE;
    pte_t entry = pte_mkyoung(mk_pte(page, false));
    if (write) entry = pte_mkdirty(entry);
    if (write && (vmf.vma_flags & VM_WRITE)) entry = pte_mkwrite(entry);  // maybe_mkwrite
    return vm_page_prot(vmf, entry);
}

// pte_range_none: the nr PTEs of table t from addr are all none.  PTE lock held.
bool pte_range_none(Kernel& k, TableId t, uint64_t addr, uint64_t nr) {
    for (uint64_t i = 0; i < nr; ++i)
        if (!pte_none(k.tables[t].entries[k.geo.index(addr + i * PAGE_SIZE, PTE_LEVEL)])) return false;
    return true;
}

// finish_fault's PTE path for `page` of a large page-cache folio (6.11+): anonymous
// shmem maps the whole folio when it lies inside the VMA and the PTE table and within
// i_size, else only the page (userfaultfd is refused on shmem here); set_pte_range
// with folio_add_file_rmap_ptes, a reference per PTE (folio_ref_add(nr - 1): the
// fault's becomes the first).  If one of the folio's PTEs is already set, only the
// page is mapped (the fix of the endless refault, "mm: fix finish_fault() handling for
// large folios", 6.14); VM_FAULT_NOPAGE if its own PTE is set.  Folio locked, the PTE
// table allocated (vmf.pte); takes the PTE lock.
vm_fault_t finish_fault_large(Kernel& k, vm_fault& vmf, Pfn page) {
    vm_area_struct* vma = vmf.vma;
    Pfn head = page_folio(k.folios, page);
    const Folio& f = k.folios[head];
    uint64_t nr = folio_nr_pages(k.folios, head), idx = page - head;
    uint64_t vma_off = vmf.pgoff - vma->vm_pgoff, pte_off = k.geo.index(vmf.address, PTE_LEVEL);
    const address_space& file = *k.files[vma->vm_file];
    bool whole = file.shmem && f.index + nr <= file.size_pages() && vma_off >= idx &&
                 vma_off + (nr - idx) <= vma->pages() && pte_off >= idx && pte_off + (nr - idx) <= k.geo.entries();
    uint64_t addr = vmf.address;
    if (whole) {
        addr -= idx * PAGE_SIZE;
        page = head;
    } else {
        nr = 1;
    }
    TableId t = vmf.pte.table;
    pte_lock(k, vmf.pte, MMR_SITE("finish_fault"));
    if (nr > 1 && !pte_range_none(k, t, addr, nr)) {  // needs_fallback: the page alone
        page += static_cast<Pfn>((vmf.address - addr) >> PAGE_SHIFT);
        addr = vmf.address;
        nr = 1;
    }
    if (!pte_range_none(k, t, addr, nr)) {
        pte_unlock(k, vmf.pte, MMR_SITE("finish_fault"));
        return VM_FAULT_NOPAGE;
    }
    k.folios[head].refcount += static_cast<int64_t>(nr) - 1;  // folio_ref_add
    for (uint64_t i = 0; i < nr; ++i)  // set_pte_range
        k.tables[t].entries[k.geo.index(addr + i * PAGE_SIZE, PTE_LEVEL)] = mk_fault_pte(vmf, page + static_cast<Pfn>(i));
    folio_add_rmap_ptes(k, page, nr, *vma->vm_mm);  // folio_add_file_rmap_ptes
    pte_unlock(k, vmf.pte, MMR_SITE("finish_fault"));
    return 0;
}

// finish_fault: map `page` (of a page-cache folio, or a fresh anonymous COW copy) at
// the faulting address unless another fault got there first.  A page-cache THP goes
// to do_set_pmd while the PMD is empty, else to the PTE path for large folios.  The
// caller's folio reference becomes the mapping's.  Returns 0 or VM_FAULT_NOPAGE
// (raced).
vm_fault_t finish_fault(Kernel& k, vm_fault& vmf, Pfn p, bool anon_copy) {
    vm_area_struct* vma = vmf.vma;
    bool large = !anon_copy && folio_test_large(k.folios, p);
    if (large && !vmf.pte) {  // pmd_none when the fault looked
        vm_fault_t ret = do_set_pmd(k, vma, vmf.vma_flags, vmf.address, vmf.flags & FAULT_FLAG_WRITE,
                                    page_folio(k.folios, p));
        if (ret != VM_FAULT_FALLBACK) return ret;
    }
    if (!vmf.pte) vmf.pte = pte_alloc(k, *vma->vm_mm, vmf.address);
    if (!vmf.pte) return vmf.pte.pmd_huge ? VM_FAULT_NOPAGE : VM_FAULT_OOM;
    if (large) return finish_fault_large(k, vmf, p);
    pte_lock(k, vmf.pte, MMR_SITE("finish_fault"));
    if (!pte_none(ptep_get(k, vmf.pte))) {
        pte_unlock(k, vmf.pte, MMR_SITE("finish_fault"));
        return VM_FAULT_NOPAGE;
    }
    if (anon_copy) {
        folio_add_new_anon_rmap(k, p, vma, vmf.address, true);
        folio_add_lru(k, p);  // folio_add_lru_vma
    } else {
        folio_add_rmap_pte(k, p, *vma->vm_mm);  // folio_add_file_rmap_pte
    }
    set_pte_at(k, vmf.pte, mk_fault_pte(vmf, p));
    pte_unlock(k, vmf.pte, MMR_SITE("finish_fault"));
    return 0;
}

// __do_fault: the file's fault handler (filemap_fault).  On success *page is the
// page at the faulting offset, its folio locked and referenced.
vm_fault_t do_file_fault(Kernel& k, vm_fault& vmf, Pfn* page) {
    return filemap_fault(k, vmf.vma, vmf.vma->pgoff_at(vmf.address), vmf.flags, page);
}

constexpr vm_fault_t kFaultStop = VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY;

// do_read_fault: map the page-cache page read-only.
vm_fault_t do_read_fault(Kernel& k, vm_fault& vmf) {
    Pfn page = 0;
    vm_fault_t ret = do_file_fault(k, vmf, &page);
    if (ret & kFaultStop) return ret;
    Pfn folio = page_folio(k.folios, page);
    ret |= finish_fault(k, vmf, page, false);
    folio_unlock(k, folio);
    if (ret & kFaultStop) k.folios.put(folio);
    return ret;
}

// do_cow_fault: a write fault in a private file mapping maps a private copy.
vm_fault_t do_cow_fault(Kernel& k, vm_fault& vmf) {
    if (vmf_anon_prepare(k, vmf)) return VM_FAULT_RETRY;
    Pfn cow = alloc_anon_folio(k);
    if (cow == FolioPool::kNoPfn) return VM_FAULT_OOM;
    Pfn page = 0;
    vm_fault_t ret = do_file_fault(k, vmf, &page);
    if (ret & kFaultStop) {
        k.folios.put(cow);
        return ret;
    }
    Pfn folio = page_folio(k.folios, page);
    k.folios[cow].words = k.folios[page].words;  // copy_mc_user_highpage
    ret |= finish_fault(k, vmf, cow, true);
    folio_unlock(k, folio);
    k.folios.put(folio);
    if (ret & kFaultStop) k.folios.put(cow);
    return ret;
}

// do_shared_fault: a write fault in a shared mapping writes the page-cache page.
vm_fault_t do_shared_fault(Kernel& k, vm_fault& vmf) {
    Pfn page = 0;
    vm_fault_t ret = do_file_fault(k, vmf, &page);
    if (ret & kFaultStop) return ret;
    Pfn folio = page_folio(k.folios, page);
    ret |= finish_fault(k, vmf, page, false);
    if (!(ret & kFaultStop)) k.folios[folio].flags |= PG_dirty;  // fault_dirty_shared_page
    folio_unlock(k, folio);
    if (ret & kFaultStop) k.folios.put(folio);
    return ret;
}

// do_fault
vm_fault_t do_fault(Kernel& k, vm_fault& vmf) {
    if (!(vmf.flags & FAULT_FLAG_WRITE)) return do_read_fault(k, vmf);
    if (!(vmf.vma_flags & VM_SHARED)) return do_cow_fault(k, vmf);
    return do_shared_fault(k, vmf);
}

// handle_pte_fault.  mmap_lock held for read, or the VMA lock, or (speculative) none,
// in which case the walk already read vmf.pte and orig_pte and only anonymous faults
// on present or none PTEs arrive.
vm_fault_t handle_pte_fault(Kernel& k, vm_fault& vmf) {
    if (!(vmf.flags & FAULT_FLAG_SPECULATIVE)) {
        TableId t = pte_table_lookup(k, *vmf.vma->vm_mm, vmf.address);
        if (t != kNoTable) {
            vmf.pte = PteRef{t, k.geo.index(vmf.address, PTE_LEVEL)};
            vmf.orig_pte = ptep_get_lockless(k, vmf.pte, MMR_SITE("handle_pte_fault"));
            vmf.flags |= FAULT_FLAG_ORIG_PTE_VALID;
        }
    }
    if (!vmf.pte || pte_none(vmf.orig_pte)) {  // do_pte_missing
        vmf.orig_pte = 0;
        return vmf.vma->vma_is_anonymous() ? do_anonymous_page(k, vmf) : do_fault(k, vmf);
    }
    if (!pte_present(vmf.orig_pte)) return do_swap_page(k, vmf);
    if (pte_protnone(vmf.orig_pte) && (vmf.flags & FAULT_FLAG_SPECULATIVE)) {
        // The flags it checked are stale: an mprotect(PROT_NONE) ran since.
        k.counters.inc(Counter::spf_vma_changed);
        return VM_FAULT_RETRY;
    }
    // A PROT_NONE PTE of an inaccessible VMA is only faulted by a FOLL_FORCE GUP; in an
    // accessible one it would be a NUMA hinting fault.
    if (pte_protnone(vmf.orig_pte) && (vmf.vma_flags & VM_ACCESS_FLAGS))
        throw ModelError("PROT_NONE PTE in an accessible VMA (NUMA hinting is not modelled)");
    if (!pte_map_lock(k, vmf, MMR_SITE("handle_pte_fault"))) return VM_FAULT_RETRY;  // pte_spinlock
    pte_t entry = vmf.orig_pte;
    if (ptep_get(k, vmf.pte) != entry) {
        pte_unlock(k, vmf.pte, MMR_SITE("handle_pte_fault"));
        return 0;  // raced: the access will retry
    }
    if (vmf.flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) {
        if (!pte_write(entry)) return do_wp_page(k, vmf);
        if (vmf.flags & FAULT_FLAG_WRITE) entry = pte_mkdirty(entry);
    }
    set_pte_at(k, vmf.pte, pte_mkyoung(entry));
    pte_unlock(k, vmf.pte, MMR_SITE("handle_pte_fault"));
    return 0;
}

}  // namespace

void release_fault_lock(Kernel& k, vm_fault& vmf) {
    if (vmf.flags & FAULT_FLAG_VMA_LOCK) vma_end_read(vmf.vma);
    else mmap_read_unlock(*vmf.vma->vm_mm, MMR_SITE("release_fault_lock"));
}

vm_fault_t handle_mm_fault(Kernel& k, vm_area_struct* vma, uint64_t address, uint32_t flags) {
    if (flags & FAULT_FLAG_VMA_LOCK) vma_assert_locked(vma);
    else mmap_assert_locked(*vma->vm_mm);
    k.counters.inc(Counter::pgfault);
    vm_fault vmf{vma, flags, address & ~(PAGE_SIZE - 1), address, {}, 0};
    vmf.vma_flags = vma->vm_flags;
    vmf.pgoff = linear_page_index(vma, vmf.address);
    vmf.anon_vma = vma->anon_vma;
    // __handle_mm_fault's PMD level: a THP fault, or a fault on a huge PMD.
    if (auto huge = handle_huge_pmd_fault(k, vmf)) return *huge;
    // PGMAJFAULT is counted where the fault waits for I/O (filemap_fault), as upstream.
    return handle_pte_fault(k, vmf);
}

vm_fault_t do_swap_page_for_khugepaged(Kernel& k, vm_fault& vmf) { return do_swap_page(k, vmf); }

vm_fault_t handle_pte_fault_speculative(Kernel& k, vm_fault& vmf) {
    return handle_pte_fault(k, vmf);
}

}  // namespace mmrace::fault
