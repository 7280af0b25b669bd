// get_user_pages (mm/gup.c): the slow path under mmap_lock (follow_page_mask, then
// faultin_page and retry), its lock-dropping variants, and the lockless gup_fast.
#include "gup/gup.hpp"

#include <algorithm>

#include "check/report.hpp"
#include "fault/fault.hpp"
#include "mm/huge_memory.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/pgalloc.hpp"
#include "mm/stack.hpp"
#include "ops/ops.hpp"
#include "sync/irq.hpp"
#include "sync/lockdep.hpp"

namespace mmrace::gup {

using namespace mm;
using fault::vm_fault_t;

// --- pin accounting (include/linux/mm.h, mm/gup.c) ---

bool folio_maybe_dma_pinned(const Kernel& k, Pfn p) {
    if (p == kZeroPfn) return false;
    const Folio& f = k.folios[page_folio(k.folios, p)];
    // A large folio has _pincount: exact, and folio-wide (any pinned page pins it all).
    if (f.order) return f.pincount > 0;
    return f.refcount >= GUP_PIN_COUNTING_BIAS;
}

bool try_grab_folio(Kernel& k, Pfn p, uint32_t flags) {
    if (p == kZeroPfn) return true;  // neither referenced nor pinned (c8070b787519)
    Folio& f = k.folios[page_folio(k.folios, p)];
    if (!f.in_use || f.refcount <= 0) return false;
    if ((flags & FOLL_PIN) && f.order) {
        // A large folio: one reference and one _pincount per pin (refs = 1 per page).
        ++f.refcount;
        ++f.pincount;
    } else if (flags & FOLL_PIN) {
        f.refcount += GUP_PIN_COUNTING_BIAS;  // order 0: the pin lives in the refcount
        ++f.pincount;
    } else if (flags & FOLL_GET) {
        ++f.refcount;
    }  // neither: populate_vma_page_range's GUP, which keeps no page
    return true;
}

void sanity_check_pinned_page(const Kernel& k, Pfn p) {
    if (p == kZeroPfn) return;
    Pfn head = page_folio(k.folios, p);
    if (!(k.folios[head].flags & PG_anon)) return;
    // The kernel of CVE-2020-29374 (5.7) had no PageAnonExclusive to assert on: a
    // read-only pin of a page shared after fork was legal there.
    if (k.mutant(MutantId::cow_reuse_after_ro_gup)) return;
    // Anonymous pages are pinned only while exclusive, and stay so until freed.  A
    // PMD-mapped THP says so on its head page, a PTE-mapped one on each page.
    if (!PageAnonExclusive(k.folios, head) && !PageAnonExclusive(k.folios, p))
        check::violation(Check::invariant, "VM_BUG_ON_PAGE: pinned anonymous pfn " + std::to_string(p) +
                                          " is not PageAnonExclusive");
}

void gup_put_folio(Kernel& k, Pfn p, uint32_t flags) {
    if (p == kZeroPfn) return;
    Pfn head = page_folio(k.folios, p);
    Folio& f = k.folios[head];
    auto not_pinned = [&] {
        check::violation(Check::refcount, "unpin of pfn " + std::to_string(p) + ", which is not pinned");
    };
    if ((flags & FOLL_PIN) && f.order) {  // atomic_sub(refs, &folio->_pincount)
        if (!f.in_use || f.pincount <= 0) not_pinned();
        --f.pincount;
    } else if (flags & FOLL_PIN) {  // refs *= GUP_PIN_COUNTING_BIAS
        if (!f.in_use || f.pincount <= 0 || f.refcount < GUP_PIN_COUNTING_BIAS) not_pinned();
        --f.pincount;
        f.refcount -= GUP_PIN_COUNTING_BIAS - 1;
    }
    k.folios.put(head);  // folio_put_refs: the last reference frees it
}

void unpin_user_pages(Kernel& k, const std::vector<Pfn>& pages) {
    for (Pfn p : pages) {
        sanity_check_pinned_page(k, p);
        gup_put_folio(k, p, FOLL_PIN);
    }
}

bool gup_must_unshare(const Kernel& k, const vm_area_struct* vma, uint32_t flags, Pfn p) {
    // A FOLL_WRITE pin needs a writable PTE, which maps an exclusive page anyway.
    if ((flags & (FOLL_WRITE | FOLL_PIN)) != FOLL_PIN) return false;
    if (k.mutant(MutantId::gup_pin_no_early_cow)) return false;  // seed 004: no early COW
    const Folio& f = k.folios[page_folio(k.folios, p)];
    if (p == kZeroPfn || !(f.flags & PG_anon)) {
        // Only R/O long-term pins must observe later changes through the page tables,
        // and only a COW mapping can change the page under them.
        if (!(flags & FOLL_LONGTERM)) return false;
        if (!vma) return true;
        return vma->is_cow_mapping();
    }
    // CVE-2020-29374: before 17839856fd58 a read-only GUP took the anonymous page the PTE
    // mapped, even one shared with the parent after fork ("COW can break either way").
    // (The zero page and file pages keep today's rule: not this CVE's race.)
    if (k.mutant(MutantId::cow_reuse_after_ro_gup)) return false;
    return !PageAnonExclusive(k.folios, p);
}

namespace {

// A VMA this GUP call found: the kernel's pointer, with the allocation it was (a use of
// it after the lock was dropped may reach a freed or reused VMA: KASAN's report).
struct VmaRef {
    vm_area_struct* vma = nullptr;
    uint64_t serial = 0;
};

void check_vma_live(const VmaRef& r, uint64_t addr) {
    if (r.vma->freed || r.vma->serial != r.serial)
        check::violation(Check::use_after_free, "GUP at " + ops::hex(addr) +
                                               " uses a VMA that was freed after mmap_lock was dropped");
}

// check_vma_flags: may this GUP touch vma at all?  0 or -EFAULT.
long check_vma_flags(Kernel& k, const vm_area_struct* vma, uint32_t flags) {
    uint64_t vm_flags = vma->vm_flags;
    bool write = flags & FOLL_WRITE;
    if (write) {
        // writable_file_mapping_allowed: no long-term write pin of a file that needs
        // dirty tracking (a shared mapping of a regular file; shmem is fine).
        if (!vma->vma_is_anonymous() && (flags & FOLL_LONGTERM) && (vm_flags & VM_SHARED) &&
            (vm_flags & VM_WRITE) && !k.files[vma->vm_file]->shmem)
            return -EFAULT_;
        if (!(vm_flags & VM_WRITE)) {
            if (!(flags & FOLL_FORCE)) return -EFAULT_;
            // FOLL_FORCE writes only COW: never into a shared mapping.
            if (!vma->is_cow_mapping()) return -EFAULT_;
        }
    } else if (!(vm_flags & VM_READ)) {
        if (!(flags & FOLL_FORCE)) return -EFAULT_;
        if (!(vm_flags & VM_MAYREAD)) return -EFAULT_;
    }
    return 0;
}

// can_follow_write_pte / can_follow_write_pmd (the same rule for a PTE or a huge PMD
// entry, after the Dirty COW fix and PageAnonExclusive): FOLL_FORCE may write through a
// read-only entry of a private mapping only to an exclusive anonymous page, i.e. one
// whose COW was already broken.
bool can_follow_write(Kernel& k, uint64_t entry, Pfn p, const vm_area_struct* vma, uint32_t flags) {
    if (pte_write(entry)) return true;
    if (!(flags & FOLL_FORCE)) return false;
    if (vma->vm_flags & (VM_MAYSHARE | VM_SHARED)) return false;
    if (!(vma->vm_flags & VM_MAYWRITE)) return false;
    if (vma->vm_flags & VM_WRITE) return false;  // just take a write fault
    const Folio& f = k.folios[page_folio(k.folios, p)];
    return p != kZeroPfn && (f.flags & PG_anon) && PageAnonExclusive(k.folios, p);
}

// What follow_page_mask found: a grabbed page, no page (fault it in), or an error
// (-EMLINK: unshare first, -EFAULT).  page_mask is follow_page_context's: HPAGE_PMD_NR - 1
// for a page of a huge PMD, whose following pages __get_user_pages grabs at once.
struct Follow {
    Pfn page = FolioPool::kNoPfn;
    long err = 0;
    uint64_t page_mask = 0;
};

// follow_page_pte: under the PTE lock, the page mapped at addr if the PTE allows the
// access, grabbed with flags.  mmap_lock held for read.
Follow follow_page_pte(Kernel& k, vm_area_struct* vma, TableId t, uint64_t addr, uint32_t flags) {
    PteRef ref{t, k.geo.index(addr, PTE_LEVEL)};
    pte_lock(k, ref, MMR_SITE("follow_page_pte"));
    pte_t pte = ptep_get(k, ref);
    Follow r;
    auto out = [&] {
        pte_unlock(k, ref, MMR_SITE("follow_page_pte"));
        return r;
    };
    // No FOLL_HONOR_NUMA_FAULT: a PROT_NONE PTE is followed (gup_can_follow_protnone).
    if (!pte_present(pte)) return out();  // none or swap: fault it in
    Pfn p = pte_pfn(pte);  // vm_normal_page; the only special PTE is the zero page
    if ((flags & FOLL_WRITE) && !can_follow_write(k, pte, p, vma, flags)) return out();
    if (!pte_write(pte) && gup_must_unshare(k, vma, flags, p)) {
        r.err = -EMLINK_;
        return out();
    }
    if (flags & FOLL_PIN) sanity_check_pinned_page(k, p);  // VM_BUG_ON_PAGE before the grab
    if (!try_grab_folio(k, p, flags)) {
        r.err = -ENOMEM_;
        return out();
    }
    // FOLL_TOUCH: the page is about to be written behind the PTE's back.
    if ((flags & FOLL_TOUCH) && (flags & FOLL_WRITE) && !pte_dirty(pte) && p != kZeroPfn)
        k.folios[page_folio(k.folios, p)].flags |= PG_dirty;
    r.page = p;
    return out();
}

// follow_huge_pmd (mm/gup.c): the page at addr of the THP a huge PMD maps, grabbed
// with flags on the large folio (try_grab_folio: a pin is a reference and a _pincount),
// without splitting it.  A write needs a writable PMD (or FOLL_FORCE on an exclusive
// page); a R/O pin of a page that is not exclusive must unshare first (-EMLINK: the
// fault goes to do_huge_pmd_wp_page with FAULT_FLAG_UNSHARE).  PMD lock held.
Follow follow_huge_pmd(Kernel& k, vm_area_struct* vma, uint64_t addr, PmdRef pmd, uint32_t flags) {
    sync::lockdep_assert_held(vma->vm_mm->page_table_lock, sync::LockMode::any);
    uint64_t& e = pmd_entry(k, pmd);
    pmd_t pmdval = e;
    // The head page speaks for a PMD-mapped THP (can_follow_write_pmd, gup_must_unshare).
    Pfn head = pmd_pfn(pmdval);
    Pfn page = head + static_cast<Pfn>((addr >> PAGE_SHIFT) & (hpage_pmd_nr(k) - 1));
    Follow r;
    if ((flags & FOLL_WRITE) && !can_follow_write(k, pmdval, head, vma, flags)) return r;
    // No huge zero page (use_zero_page = 0).  A PROT_NONE huge PMD is followed: no
    // FOLL_HONOR_NUMA_FAULT, so gup_can_follow_protnone allows it, and only FOLL_FORCE
    // got past check_vma_flags into a PROT_NONE VMA.
    if (!pte_write(pmdval) && gup_must_unshare(k, vma, flags, head)) {
        r.err = -EMLINK_;
        return r;
    }
    if (flags & FOLL_PIN) sanity_check_pinned_page(k, page);  // VM_BUG_ON_PAGE
    if (!try_grab_folio(k, page, flags)) {
        r.err = -ENOMEM_;
        return r;
    }
    if (flags & FOLL_TOUCH) {  // touch_pmd: young, and dirty for a write
        e |= _PAGE_ACCESSED;
        if (flags & FOLL_WRITE) e |= _PAGE_DIRTY;
    }
    r.page = page;
    r.page_mask = hpage_pmd_nr(k) - 1;
    return r;
}

// follow_page_mask: the one walk from the PGD down.  An empty PMD means no page: fault
// it in.  A huge PMD is followed whole under the PMD lock (follow_pmd_mask ->
// follow_huge_pmd), re-checked there: a PMD split meanwhile is followed at PTE level.
// The lock is taken only for a huge PMD, as upstream, which reads the PMD locklessly.
Follow follow_page_mask(Kernel& k, vm_area_struct* vma, uint64_t addr, uint32_t flags) {
    mm_struct& mm = *vma->vm_mm;
    if (PmdRef pmd = pmd_lookup(k, mm, addr); pmd && pmd_trans_huge(pmd_entry(k, pmd))) {
        pmd_lock(mm, MMR_SITE("follow_pmd_mask"));
        if (pmd_trans_huge(pmd_entry(k, pmd))) {
            Follow r = follow_huge_pmd(k, vma, addr, pmd, flags);
            pmd_unlock(mm, MMR_SITE("follow_pmd_mask"));
            return r;
        }
        pmd_unlock(mm, MMR_SITE("follow_pmd_mask"));
    }
    TableId t = pte_table_lookup(k, mm, addr);
    if (t == kNoTable) return Follow{};
    return follow_page_pte(k, vma, t, addr, flags);
}

// faultin_page: handle_mm_fault for what follow_page_mask could not give.  0 to retry
// the follow, -EBUSY when mmap_lock was dropped (VM_FAULT_RETRY: *locked = false), or
// -EFAULT / -ENOMEM.
long faultin_page(Kernel& k, vm_area_struct* vma, uint64_t addr, uint32_t flags, bool unshare,
                  bool* locked) {
    uint32_t fault_flags = 0;
    if (flags & FOLL_WRITE) fault_flags |= fault::FAULT_FLAG_WRITE;
    if (flags & FOLL_REMOTE) fault_flags |= fault::FAULT_FLAG_REMOTE;
    if (flags & FOLL_UNLOCKABLE) fault_flags |= fault::FAULT_FLAG_ALLOW_RETRY | fault::FAULT_FLAG_KILLABLE;
    if (flags & FOLL_TRIED) fault_flags |= fault::FAULT_FLAG_TRIED;
    if (unshare) fault_flags |= fault::FAULT_FLAG_UNSHARE;
    vm_fault_t ret = fault::handle_mm_fault(k, vma, addr, fault_flags);
    if (ret & fault::VM_FAULT_ERROR) {  // vm_fault_to_errno
        if (ret & fault::VM_FAULT_OOM) return -ENOMEM_;
        return -EFAULT_;
    }
    if (ret & fault::VM_FAULT_RETRY) {
        *locked = false;
        return -EBUSY_;
    }
    return 0;
}

// gup_vma_lookup: since 6.5 GUP no longer expands stacks.
vm_area_struct* gup_vma_lookup(mm_struct& mm, uint64_t addr) { return mm.vma_lookup(addr); }

// __get_user_pages with the VMA the last call used: the gup_vmas_after_retry mutant
// starts from it (the old `vmas` array) instead of looking it up again.
long get_user_pages_vma(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages, uint32_t flags,
                        std::vector<Pfn>& pages, bool* locked, VmaRef* last) {
    mmap_assert_locked(mm);
    long i = 0, ret = 0;
    VmaRef vr = k.mutant(MutantId::gup_vmas_after_retry) ? *last : VmaRef{};
    while (nr_pages) {
        if (vr.vma) check_vma_live(vr, start);
        if (!vr.vma || start >= vr.vma->vm_end || start < vr.vma->vm_start) {
            vm_area_struct* v = gup_vma_lookup(mm, start);
            if (!v) {
                ret = -EFAULT_;
                break;
            }
            vr = VmaRef{v, v->serial};
            *last = vr;
            if ((ret = check_vma_flags(k, v, flags))) break;
        }
        k.rt.yield(MMR_SITE("__get_user_pages"), rt::Ev::yield, start);  // cond_resched
        Follow f = follow_page_mask(k, vr.vma, start, flags);
        if (f.page == FolioPool::kNoPfn && (f.err == 0 || f.err == -EMLINK_)) {
            ret = faultin_page(k, vr.vma, start, flags, f.err == -EMLINK_, locked);
            if (ret == 0) {
                // Dirty COW (CVE-2016-5195): the old code retried the lookup without
                // FOLL_WRITE once the fault had COWed, so a page zapped meanwhile was
                // looked up again read-only, and the page cache page came back.
                if (k.mutant(MutantId::dirty_cow) && (flags & FOLL_WRITE) &&
                    !(vr.vma->vm_flags & VM_WRITE))
                    flags &= ~FOLL_WRITE;
                continue;  // retry the follow
            }
            if (ret == -EBUSY_) ret = 0;
            break;
        }
        if (f.page == FolioPool::kNoPfn) {
            ret = f.err;
            break;
        }
        // The rest of a THP's pages in this range come at once, with refs taken on the
        // folio already held (page_increm; try_grab_folio cannot fail now: the held
        // reference keeps the folio whole even if its PMD was split meanwhile).
        long page_increm = 1 + static_cast<long>(~(start >> PAGE_SHIFT) & f.page_mask);
        if (page_increm > nr_pages) page_increm = nr_pages;
        pages.push_back(f.page);
        for (long j = 1; j < page_increm; ++j) {
            try_grab_folio(k, f.page + static_cast<Pfn>(j), flags);
            pages.push_back(f.page + static_cast<Pfn>(j));
        }
        i += page_increm;
        start += static_cast<uint64_t>(page_increm) << PAGE_SHIFT;
        nr_pages -= page_increm;
    }
    return i ? i : ret;
}

long get_user_pages_locked_vma(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages,
                               std::vector<Pfn>& pages, bool* locked, uint32_t flags) {
    bool must_unlock = false;
    if (!*locked) {
        mmap_read_lock(mm, MMR_SITE("__get_user_pages_locked"));
        must_unlock = true;
        *locked = true;
    } else {
        mmap_assert_locked(mm);
    }
    if (flags & FOLL_PIN) mm.has_pinned = true;  // mm_set_has_pinned_flag
    if (!(flags & FOLL_PIN)) flags |= FOLL_GET;
    VmaRef last;
    long done = 0;
    for (;;) {
        long ret = get_user_pages_vma(k, mm, start, nr_pages, flags, pages, locked, &last);
        if (!(flags & FOLL_UNLOCKABLE)) {  // VM_FAULT_RETRY could not happen
            done = ret;
            break;
        }
        if (ret > 0) {
            nr_pages -= ret;
            done += ret;
            if (!nr_pages) break;
        }
        if (*locked) {  // no VM_FAULT_RETRY: an error, or done
            if (!done) done = ret;
            break;
        }
        // VM_FAULT_RETRY dropped mmap_lock: retake it and retry the faulting page
        // with FOLL_TRIED, looking its VMA up again (seed 001).
        start += static_cast<uint64_t>(ret) << PAGE_SHIFT;
        must_unlock = true;
        for (;;) {
            k.counters.inc(Counter::fault_retry);
            mmap_read_lock(mm, MMR_SITE("__get_user_pages_locked"));
            *locked = true;
            ret = get_user_pages_vma(k, mm, start, 1, flags | FOLL_TRIED, pages, locked, &last);
            if (*locked) break;
        }
        if (ret != 1) {
            if (!done) done = ret;
            break;
        }
        --nr_pages;
        ++done;
        if (!nr_pages) break;
        start += PAGE_SIZE;
    }
    if (must_unlock && *locked) {
        mmap_read_unlock(mm, MMR_SITE("__get_user_pages_locked"));
        *locked = false;
    }
    return done;
}

}  // namespace

long __get_user_pages(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages, uint32_t flags,
                      std::vector<Pfn>& pages, bool* locked) {
    VmaRef last;
    return get_user_pages_vma(k, mm, start, nr_pages, flags, pages, locked, &last);
}

long __get_user_pages_locked(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages,
                             std::vector<Pfn>& pages, bool* locked, uint32_t flags) {
    return get_user_pages_locked_vma(k, mm, start, nr_pages, pages, locked, flags);
}

long get_user_pages_unlocked(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages,
                             std::vector<Pfn>& pages, uint32_t flags) {
    bool locked = false;  // taken by __get_user_pages_locked, may be dropped and retaken
    long ret = __get_user_pages_locked(k, mm, start, nr_pages, pages, &locked,
                                       flags | FOLL_TOUCH | FOLL_UNLOCKABLE);
    if (locked) mmap_read_unlock(mm, MMR_SITE("get_user_pages_unlocked"));
    return ret;
}

long get_user_pages(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages, uint32_t flags,
                    std::vector<Pfn>& pages) {
    bool locked = true;  // the caller's mmap_lock, never dropped (no FOLL_UNLOCKABLE)
    return __get_user_pages_locked(k, mm, start, nr_pages, pages, &locked,
                                   flags | FOLL_TOUCH);
}

long pin_user_pages(Kernel& k, uint64_t start, long nr_pages, uint32_t flags,
                    std::vector<Pfn>& pages) {
    mm_struct& mm = k.current_mm();
    mmap_read_lock(mm, MMR_SITE("pin_user_pages"));
    bool locked = true;
    long ret = __get_user_pages_locked(k, mm, start, nr_pages, pages, &locked,
                                       flags | FOLL_PIN | FOLL_TOUCH);
    mmap_read_unlock(mm, MMR_SITE("pin_user_pages"));
    return ret;
}

namespace {

// gup_fast_pmd_leaf (mm/gup.c): a huge PMD read locklessly maps [addr, end) of a THP.
// Grab its pages on the large folio (try_grab_folio_fast), then re-read the PMD: if it
// changed (a split, zap or fork's write-protect), put them back.  A R/O pin of a page
// that is not exclusive needs unsharing: leave it to the slow path.  IRQs off, as for
// the PTEs.  Pages got (0: the slow path takes over here); -1 if the PMD is no leaf
// any more (the caller walks its PTEs).
long gup_fast_pmd_leaf(Kernel& k, PmdRef pmd, uint64_t addr, uint64_t end, uint32_t flags,
                       std::vector<Pfn>& pages) {
    pmd_t orig = pmdp_get_lockless(k, pmd, MMR_SITE("gup_fast_pmd_range"));
    if (!pmd_trans_huge(orig)) return orig ? -1 : 0;
    // gup_fast_pmd_range: a PROT_NONE (or NUMA hinting) huge PMD is the slow path's.
    if (pmd_protnone(orig)) return 0;
    // pmd_access_permitted:
    if ((flags & FOLL_WRITE) && !pte_write(orig)) return 0;
    long refs = static_cast<long>((end - addr) >> PAGE_SHIFT);
    Pfn page = pmd_pfn(orig) + static_cast<Pfn>((addr >> PAGE_SHIFT) & (hpage_pmd_nr(k) - 1));
    Folio& f = k.folios[pmd_pfn(orig)];
    if (!f.in_use || f.refcount <= 0) return 0;  // folio_try_get failed: being freed
    // gup_fast_folio_allowed: a THP is anonymous or shmem here, always allowed.
    for (long j = 0; j < refs; ++j) try_grab_folio(k, page + static_cast<Pfn>(j), flags);
    auto put_back = [&] {
        for (long j = 0; j < refs; ++j) gup_put_folio(k, page + static_cast<Pfn>(j), flags);
        return 0;
    };
    if (pmdp_get_lockless(k, pmd, MMR_SITE("gup_fast_pmd_leaf")) != orig) return put_back();
    // A PMD-mapped THP's exclusivity is its head page's.
    if (!pte_write(orig) && gup_must_unshare(k, nullptr, flags, pmd_pfn(orig))) return put_back();
    for (long j = 0; j < refs; ++j) pages.push_back(page + static_cast<Pfn>(j));
    f.flags |= PG_referenced;  // folio_set_referenced
    return refs;
}

// gup_fast_pte_range for the PTEs from start: grab each page whose PTE permits the
// access, re-checking the PTE after the grab.  IRQs off: a page table cannot be freed
// (its freeing waits for the TLB-flush IPI) and a page mapped when read cannot be freed
// before the flush either.  Stops at the first PTE that is not simple.
long gup_fast_pte_range(Kernel& k, mm_struct& mm, uint64_t start, long nr_pages, uint32_t flags,
                        std::vector<Pfn>& pages) {
    long nr = 0;
    for (uint64_t addr = start; nr < nr_pages; addr += PAGE_SIZE) {
        // gup_fast_pmd_range: a huge PMD is a leaf (gup_fast_pmd_leaf) up to its end.
        // Looking is no scheduling point: walks of PTE tables interleave as before.
        if (PmdRef pmd = pmd_lookup(k, mm, addr); pmd && pmd_trans_huge(pmd_entry(k, pmd))) {
            uint64_t span = hpage_pmd_size(k);
            uint64_t end = std::min((addr & ~(span - 1)) + span,
                                    start + (static_cast<uint64_t>(nr_pages) << PAGE_SHIFT));
            long got = gup_fast_pmd_leaf(k, pmd, addr, end, flags, pages);
            if (got == 0) break;
            if (got > 0) {
                nr += got;
                addr += static_cast<uint64_t>(got - 1) << PAGE_SHIFT;
                continue;
            }
        }
        // gup_fast_pgd_range .. gup_fast_pmd_range: a PMD that is no table falls back.
        TableId t = pte_table_lookup(k, mm, addr);
        if (t == kNoTable) break;
        if (!k.tables[t].in_use)
            check::violation(Check::use_after_free, "gup_fast walks freed page table " + std::to_string(t) +
                                                   " at " + ops::hex(addr));
        PteRef ref{t, k.geo.index(addr, PTE_LEVEL)};
        pte_t pte = ptep_get_lockless(k, ref, MMR_SITE("gup_fast_pte_range"));
        if (!k.tables[t].in_use)
            check::violation(Check::use_after_free, "gup_fast reads freed page table " + std::to_string(t) +
                                                   " at " + ops::hex(addr));
        if (!pte_hw_present(pte) || pte_special(pte)) break;  // protnone, swap, none, zero page
        if ((flags & FOLL_WRITE) && !pte_write(pte)) break;  // pte_access_permitted
        Pfn p = pte_pfn(pte);
        const Folio& f = k.folios[page_folio(k.folios, p)];
        if (!f.in_use || f.refcount <= 0) break;  // folio_try_get failed: being freed
        // gup_fast_folio_allowed: no long-term write pin of a file needing dirty tracking.
        if ((flags & (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)) == (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE) &&
            !(f.flags & PG_anon) && !(f.mapping >= 0 && k.files[f.mapping]->shmem))
            break;
        try_grab_folio(k, p, flags);
        if (ptep_get_lockless(k, ref, MMR_SITE("gup_fast_pte_range")) != pte) {
            gup_put_folio(k, p, flags);
            break;
        }
        if (!pte_write(pte) && gup_must_unshare(k, nullptr, flags, p)) {
            gup_put_folio(k, p, flags);
            break;
        }
        pages.push_back(p);
        ++nr;
    }
    return nr;
}

}  // namespace

long gup_fast_fallback(Kernel& k, uint64_t start, long nr_pages, uint32_t flags,
                       std::vector<Pfn>& pages) {
    mm_struct& mm = k.current_mm();
    if (flags & FOLL_PIN) mm.has_pinned = true;
    if (!(flags & FOLL_PIN)) flags |= FOLL_GET;
    // gup_fast: a FOLL_PIN walk must not race fork's write-protection of COW pages
    // (57efa1fe5957): back off if mm->write_protect_seq moves.
    long nr = 0;
    unsigned seq = 0;
    bool fast = true;
    if (flags & FOLL_PIN) {
        seq = mm.write_protect_seq.raw_read_seqcount(MMR_SITE("gup_fast"));
        fast = !(seq & 1);
    }
    if (fast) {
        unsigned long irq = sync::local_irq_save(MMR_SITE("gup_fast"));
        nr = gup_fast_pte_range(k, mm, start, nr_pages, flags, pages);
        sync::local_irq_restore(irq, MMR_SITE("gup_fast"));
        if ((flags & FOLL_PIN) && mm.write_protect_seq.read_seqcount_retry(seq, MMR_SITE("gup_fast"))) {
            for (long i = 0; i < nr; ++i) gup_put_folio(k, pages[pages.size() - 1 - i], flags);
            pages.resize(pages.size() - nr);
            nr = 0;
        }
    }
    if (nr == nr_pages || (flags & FOLL_FAST_ONLY)) return nr;
    long ret = get_user_pages_unlocked(k, mm, start + (static_cast<uint64_t>(nr) << PAGE_SHIFT),
                                       nr_pages - nr, pages, flags);
    if (ret < 0) return nr ? nr : ret;
    return nr + ret;
}

bool access_remote_vm(Kernel& k, mm_struct& mm, uint64_t addr, uint64_t* value, bool write) {
    uint32_t flags = FOLL_FORCE | FOLL_REMOTE;
    if (write) flags |= FOLL_WRITE;
    mmap_read_lock(mm, MMR_SITE("__access_remote_vm"));
    if (!mm.vma_lookup(addr)) {
        // expand_stack: drops mmap_lock, grows a VM_GROWSDOWN VMA under the write lock.
        mmap_read_unlock(mm, MMR_SITE("__access_remote_vm"));
        mmap_write_lock(mm, MMR_SITE("expand_stack"));
        vm_area_struct* vma = mm.find_vma(addr);
        bool ok = vma && (vma->vm_start <= addr ||
                          ((vma->vm_flags & VM_GROWSDOWN) && !expand_downwards(mm, vma, addr)));
        if (!ok) {
            mmap_write_unlock(mm, MMR_SITE("expand_stack"));
            return false;
        }
        mmap_write_downgrade(mm, MMR_SITE("expand_stack"));
    }
    std::vector<Pfn> pages;
    long got = get_user_pages(k, mm, addr & ~(PAGE_SIZE - 1), 1, flags, pages);  // get_user_page_vma_remote
    if (got == 1) {
        Pfn p = pages[0];
        Folio& f = k.folios[p];
        auto word = static_cast<uint32_t>((addr & (PAGE_SIZE - 1)) / 8);
        if (write) {
            f.write_word(word, *value);  // copy_to_user_page through the kernel mapping
            k.folios[page_folio(k.folios, p)].flags |= PG_dirty;  // set_page_dirty_lock
        } else {
            *value = f.read_word(word);
        }
        gup_put_folio(k, p, FOLL_GET);
    }
    mmap_read_unlock(mm, MMR_SITE("__access_remote_vm"));
    return got == 1;
}

}  // namespace mmrace::gup
