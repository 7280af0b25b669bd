// The ioctls' side of userfaultfd in mm/userfaultfd.c: mfill_atomic for UFFDIO_COPY and
// mwriteprotect_range for UFFDIO_WRITEPROTECT (with uffd_wp_range and the uffd-wp part
// of change_protection, mm/mprotect.c).
#include "check/report.hpp"
#include "mm/anon_vma.hpp"
#include "mm/huge_memory.hpp"
#include "mm/lru.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/mmu_gather.hpp"
#include "mm/pgalloc.hpp"
#include "mm/rmap.hpp"
#include "mm/userfaultfd.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"

namespace mmrace::mm {

namespace {

mm_struct* mm_of(Kernel& k, const userfaultfd_ctx* ctx) {
    for (const process& pr : k.processes)
        if (pr.mm && pr.mm->id == ctx->mm_id) return pr.mm;
    return nullptr;
}

// find_dst_vma: the VMA holding [dst, dst + len), registered with a uffd, or null.
vm_area_struct* find_dst_vma(mm_struct& mm, uint64_t dst, uint64_t len) {
    vm_area_struct* vma = mm.find_vma(dst);
    if (!vma || dst < vma->vm_start || dst + len > vma->vm_end) return nullptr;
    if (!(vma->vm_flags & __VM_UFFD_FLAGS)) return nullptr;  // !vm_userfaultfd_ctx.ctx
    return vma;
}

// mfill_atomic_install_pte for a new anonymous folio: map it unless the PTE is no longer
// none.  The folio reference becomes the mapping's.  mmap_lock held for read.
int mfill_atomic_install_pte(Kernel& k, userfaultfd_ctx* ctx, vm_area_struct* vma, PteRef pte,
                             uint64_t dst, Pfn p) {
    // mk_pte(page, dst_vma->vm_page_prot): a PROT_NONE VMA gets a PROT_NONE PTE.
    pte_t entry = pte_mkdirty(mk_pte(p, false));
    if (!(vma->vm_flags & VM_ACCESS_FLAGS)) entry = pte_mkprotnone(entry);
    if (vma->vm_flags & VM_WRITE) entry = pte_mkwrite(entry);
    pte_lock(k, pte, MMR_SITE("mfill_atomic_install_pte"));
    if (!pte_none(ptep_get(k, pte))) {
        pte_unlock(k, pte, MMR_SITE("mfill_atomic_install_pte"));
        return -ops::EEXIST_;
    }
    // df2cc96e7701: a copy may never land while fork or mremap is between its
    // mmap_changing bump and the monitor reading the event.  A fork has already copied
    // the page tables (it holds mmap_lock for write while it does), so the child lacks
    // a page the monitor will believe it has; a remap moved the range under addresses
    // the monitor does not know yet.
    if (ctx->mmap_changing)
        check::violation(Check::uffd_event_order,
                         "UFFDIO_COPY installed a page at " + ops::hex(dst) +
                             " while a fork or mremap of the process was under way "
                             "(mmap_changing): the monitor's view of the child or of the "
                             "moved range is wrong");
    folio_add_new_anon_rmap(k, p, vma, dst, true);
    folio_add_lru(k, p);  // a newly allocated folio
    set_pte_at(k, pte, entry);
    pte_unlock(k, pte, MMR_SITE("mfill_atomic_install_pte"));
    return 0;
}

// mfill_atomic_pte_copy: a new folio filled from the handler's buffer, then installed.
int mfill_atomic_pte_copy(Kernel& k, userfaultfd_ctx* ctx, vm_area_struct* vma, PteRef pte,
                          uint64_t dst, uint64_t value) {
    k.rt.yield(MMR_SITE("mfill_atomic_pte_copy"), rt::Ev::yield);  // vma_alloc_folio may sleep
    Pfn p = k.folios.alloc();
    if (p == FolioPool::kNoPfn) return -ops::ENOMEM_;
    k.counters.inc(Counter::pgalloc_anon);
    Folio& f = k.folios[p];
    for (uint32_t w = 0; w < PAGE_SIZE / 8; ++w) f.write_word(w, value);  // copy_from_user
    int ret = mfill_atomic_install_pte(k, ctx, vma, pte, dst, p);
    if (ret) k.folios.put(p);
    return ret;
}

// change_pte_range with MM_CP_UFFD_WP / MM_CP_UFFD_WP_RESOLVE over one PTE table's part
// of [addr, end).  Present PTEs get the bit (and lose write) or lose it, and with
// MM_CP_TRY_CHANGE_WRITABLE an exclusive anonymous page becomes writable again; swap
// PTEs keep it in their own bit.  None PTEs stay none (no PTE markers).
void uffd_change_pte_range(mmu_gather& tlb, vm_area_struct* vma, uint64_t addr, uint64_t end,
                           bool wp, bool try_writable) {
    Kernel& k = *tlb.k;
    TableId t = pte_table_lookup(k, *vma->vm_mm, addr);
    if (t == kNoTable) return;
    PteRef lock_ref{t, 0};
    pte_lock(k, lock_ref, MMR_SITE("change_pte_range"));
    for (; addr < end; addr += PAGE_SIZE) {
        pte_t& e = k.tables[t].entries[k.geo.index(addr, PTE_LEVEL)];
        if (pte_none(e)) continue;
        if (is_swap_pte(e)) {
            e = wp ? pte_swp_mkuffd_wp(e) : pte_swp_clear_uffd_wp(e);
            continue;
        }
        pte_t n = wp ? pte_mkuffd_wp(e) : pte_clear_uffd_wp(e);
        // can_change_pte_writable for a private mapping: an exclusive anonymous page.
        if (try_writable && !pte_write(n) && !pte_protnone(n) && !pte_special(n)) {
            const Folio& f = k.folios[page_folio(k.folios, pte_pfn(n))];
            if ((f.flags & PG_anon) && PageAnonExclusive(k.folios, pte_pfn(n))) n = pte_mkwrite(n);
        }
        if (n == e) continue;
        e = n;
        tlb_remove_tlb_entry(tlb, addr);  // tlb_flush_pte_range
    }
    pte_unlock(k, lock_ref, MMR_SITE("change_pte_range"));
}

// uffd_wp_range: change_protection of [start, end) in vma, flushed before returning.
void uffd_wp_range(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end, bool enable_wp) {
    // vma_wants_manual_pte_write_upgrade: a private VMA that may be written.
    bool try_writable = !enable_wp && (vma->vm_flags & VM_WRITE);
    mmu_gather tlb;
    tlb_gather_mmu(tlb, k, *vma->vm_mm);
    uint64_t span = k.geo.span(PTE_LEVEL);
    for (uint64_t a = start; a < end;) {
        uint64_t next = std::min((a / span + 1) * span, end);
        split_huge_pmd(k, vma, a);  // change_huge_pmd with the uffd-wp bit is not modelled
        uffd_change_pte_range(tlb, vma, a, next, enable_wp, try_writable);
        a = next;
    }
    tlb_finish_mmu(tlb);
}

}  // namespace

int mfill_atomic_copy(Kernel& k, userfaultfd_ctx* ctx, uint64_t dst, uint64_t value) {
    mm_struct* mm = mm_of(k, ctx);
    if (!mm) return -ops::ENOENT_;
    mmap_read_lock(*mm, MMR_SITE("mfill_atomic"));
    int err = 0;
    vm_area_struct* vma = nullptr;
    // "If memory mappings are changing because of non-cooperative operation (e.g.
    // mremap) running in parallel, bail out and request the user to retry later".
    if (ctx->mmap_changing && !k.mutant(MutantId::uffd_copy_ignores_mmap_changing))
        err = -ops::EAGAIN_;
    else if (!(vma = find_dst_vma(*mm, dst, PAGE_SIZE)))
        err = -ops::ENOENT_;
    else if (!vma->vma_is_anonymous() || (vma->vm_flags & VM_SHARED))
        err = -ops::EINVAL_;  // shmem and files are not modelled (refused at register)
    if (!err) {
        anon_vma_prepare(k, vma);
        PteRef pte = pte_alloc(k, *mm, dst);
        // A huge PMD there: the range is populated (mfill_atomic's pmd_trans_huge: -EEXIST).
        err = pte ? mfill_atomic_pte_copy(k, ctx, vma, pte, dst, value)
                  : pte.pmd_huge ? -ops::EEXIST_ : -ops::ENOMEM_;
    }
    mmap_read_unlock(*mm, MMR_SITE("mfill_atomic"));
    if (!err) k.counters.inc(Counter::uffd_copy);
    return err;
}

int mwriteprotect_range(Kernel& k, userfaultfd_ctx* ctx, uint64_t start, uint64_t len,
                        bool enable_wp) {
    mm_struct* mm = mm_of(k, ctx);
    if (!mm) return -ops::ENOENT_;
    uint64_t end = start + len;
    mmap_read_lock(*mm, MMR_SITE("mwriteprotect_range"));
    int err = -ops::ENOENT_;
    if (ctx->mmap_changing) {
        err = -ops::EAGAIN_;
    } else {
        for (vm_area_struct* vma = mm->find_vma(start); vma && vma->vm_start < end;
             vma = mm->find_vma(vma->vm_end)) {
            if (!(vma->vm_flags & VM_UFFD_WP)) {
                err = -ops::ENOENT_;
                break;
            }
            uffd_wp_range(k, vma, std::max(start, vma->vm_start), std::min(end, vma->vm_end),
                          enable_wp);
            err = 0;
        }
    }
    mmap_read_unlock(*mm, MMR_SITE("mwriteprotect_range"));
    return err;
}

}  // namespace mmrace::mm
