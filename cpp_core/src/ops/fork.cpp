// fork(2): dup_mmap (kernel/fork.c) and copy_page_range (mm/memory.c).
#include "check/report.hpp"
#include "gup/gup.hpp"
#include "mm/rmap.hpp"
#include "mm/anon_vma.hpp"
#include "mm/huge_memory.hpp"
#include "mm/lru.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/pgalloc.hpp"
#include "mm/swap.hpp"
#include "mm/userfaultfd.hpp"
#include "mm/vma_lock.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

constexpr int SINGLE_DEPTH_NESTING = 1;

// page_needs_cow_for_dma: an exclusive anonymous page of a COW mapping that may be
// DMA-pinned must not be shared with the child (70e806e4e645).
bool page_needs_cow_for_dma(Kernel& k, vm_area_struct* src_vma, Pfn p) {
    if (!src_vma->is_cow_mapping() || !src_vma->vm_mm->has_pinned) return false;
    return gup::folio_maybe_dma_pinned(k, p);
}

// copy_present_page: the child gets its own copy of a maybe-pinned page, writable if
// its VMA is; the parent keeps the page, its PTE untouched.  Both PTE locks held, so
// the folio comes without sleeping (the kernel preallocates it outside the locks and
// retries).  false (-ENOMEM) when there is none.
bool copy_present_page(Kernel& k, vm_area_struct* dst_vma, PteRef dst, uint64_t addr, Pfn p,
                       pte_t src_pte) {
    Pfn fresh = k.folios.alloc();
    if (fresh == FolioPool::kNoPfn) return false;
    k.counters.inc(Counter::pgalloc_anon);
    k.folios[fresh].words = k.folios[p].words;  // copy_user_highpage
    folio_add_new_anon_rmap(k, fresh, dst_vma, addr, true);
    folio_add_lru(k, fresh);  // folio_add_lru_vma
    pte_t pte = pte_mkdirty(mk_pte(fresh, false));
    if (dst_vma->vm_flags & VM_WRITE) pte = pte_mkwrite(pte);  // maybe_mkwrite
    if (!(dst_vma->vm_flags & VM_ACCESS_FLAGS))                 // PAGE_NONE
        pte = pte_mkprotnone(pte);
    // Uffd-wp needs to be delivered to the child's PTE as well (userfaultfd_pte_wp).
    if ((dst_vma->vm_flags & VM_UFFD_WP) && pte_uffd_wp(src_pte)) pte = pte_mkuffd_wp(pte);
    set_pte_at(k, dst, pte);
    return true;
}

// copy_present_pte: share the folio with the child; a COW mapping is write-protected
// in both.  Both PTE locks held.  false (-ENOMEM) if a pinned page could not be copied.
bool copy_present_pte(Kernel& k, vm_area_struct* dst_vma, vm_area_struct* src_vma, PteRef src,
                      PteRef dst, uint64_t addr) {
    pte_t pte = ptep_get(k, src);
    if (!pte_special(pte)) {  // vm_normal_page
        Pfn page = pte_pfn(pte);
        Pfn folio = page_folio(k.folios, page);
        bool anon = k.folios[folio].flags & PG_anon;
        // folio_try_dup_anon_rmap_pte fails (-EBUSY) for an exclusive page of a folio
        // that may be pinned (any page of a large folio pins it all).
        if (anon && PageAnonExclusive(k.folios, page) && !k.mutant(MutantId::fork_shares_pinned_page) &&
            page_needs_cow_for_dma(k, src_vma, folio))
            return copy_present_page(k, dst_vma, dst, addr, page, pte);
        k.folios.get(folio);
        folio_add_rmap_pte(k, page, *dst_vma->vm_mm);  // folio_try_dup_anon_rmap_pte / folio_dup_file_rmap_pte
        if (anon) ClearPageAnonExclusive(k.folios, page);  // the page is now shared
    }
    if (src_vma->is_cow_mapping() && pte_write(pte)) {
        set_pte_at(k, src, pte_wrprotect(pte));  // ptep_set_wrprotect
        pte = pte_wrprotect(pte);
    }
    pte &= ~_PAGE_ACCESSED;  // pte_mkold
    // The child keeps uffd-wp only where its VMA stays WP-registered (dup_userfaultfd).
    if (!(dst_vma->vm_flags & VM_UFFD_WP)) pte = pte_clear_uffd_wp(pte);
    set_pte_at(k, dst, pte);
    return true;
}

// copy_nonpresent_pte for a swap PTE: the child's PTE holds the slot too
// (swap_duplicate), and neither may think the page exclusive any more.  Both PTE locks
// held.
void copy_nonpresent_pte(Kernel& k, vm_area_struct* dst_vma, PteRef src, PteRef dst) {
    pte_t pte = ptep_get(k, src);
    swp_entry_t entry = pte_to_swp_entry(pte);
    if (!swap_duplicate(k, entry))
        check::violation(Check::use_after_free, "fork copies a swap PTE to free slot " +
                                               std::to_string(entry.val));
    if (pte_swp_exclusive(pte)) {
        pte = pte_swp_clear_exclusive(pte);
        set_pte_at(k, src, pte);
    }
    if (!(dst_vma->vm_flags & VM_UFFD_WP)) pte = pte_swp_clear_uffd_wp(pte);
    set_pte_at(k, dst, pte);
}

// copy_pte_range for the part of [addr, end) that one PTE table covers.  false (-ENOMEM) if the child's page table cannot be allocated.
bool copy_pte_range(Kernel& k, vm_area_struct* dst_vma, vm_area_struct* src_vma, uint64_t addr,
                    uint64_t end) {
    TableId st = pte_table_lookup(k, *src_vma->vm_mm, addr);
    if (st == kNoTable) return true;
    PteRef dst_table = pte_alloc(k, *dst_vma->vm_mm, addr);
    if (!dst_table) return false;
    pte_lock(k, dst_table, MMR_SITE("copy_pte_range"));
    k.tables[st].ptl.spin_lock_nested(SINGLE_DEPTH_NESTING, MMR_SITE("copy_pte_range"));
    bool ok = true;
    for (; addr < end && ok; addr += PAGE_SIZE) {
        uint64_t i = k.geo.index(addr, PTE_LEVEL);
        pte_t pte = k.tables[st].entries[i];
        if (pte_none(pte)) continue;
        if (is_swap_pte(pte)) copy_nonpresent_pte(k, dst_vma, PteRef{st, i}, PteRef{dst_table.table, i});
        else ok = copy_present_pte(k, dst_vma, src_vma, PteRef{st, i}, PteRef{dst_table.table, i}, addr);
    }
    k.tables[st].ptl.spin_unlock(MMR_SITE("copy_pte_range"));
    pte_unlock(k, dst_table, MMR_SITE("copy_pte_range"));
    return ok;
}

// vma_needs_copy: page tables are copied where a fault could not fill them again: a
// VMA with private pages (anon_vma), or one whose PTEs carry uffd-wp for the child.  A
// shared file or shmem mapping and a private one only read from the page cache are
// left for the child to refault.  (No VM_PFNMAP/VM_MIXEDMAP VMAs in the model.)
bool vma_needs_copy(const vm_area_struct* dst_vma, const vm_area_struct* src_vma) {
    if (dst_vma->vm_flags & VM_UFFD_WP) return true;  // userfaultfd_wp
    return src_vma->anon_vma != 0;
}

// copy_page_range: both mms' mmap_lock held for write.  false (-ENOMEM) when out of
// page tables; what was copied stays for exit_mmap to tear down.
bool copy_page_range(Kernel& k, vm_area_struct* dst_vma, vm_area_struct* src_vma) {
    mmap_assert_write_locked(*src_vma->vm_mm);
    if (!vma_needs_copy(dst_vma, src_vma)) return true;
    // Write-protecting COW pages races gup_fast pinning them: it checks this seqcount.
    bool cow = src_vma->is_cow_mapping();
    if (cow) src_vma->vm_mm->write_protect_seq.raw_write_seqcount_begin(MMR_SITE("copy_page_range"));
    uint64_t span = k.geo.span(PTE_LEVEL);
    bool ok = true;
    for (uint64_t a = src_vma->vm_start; a < src_vma->vm_end && ok;) {
        uint64_t next = std::min((a / span + 1) * span, src_vma->vm_end);
        // copy_pmd_range: a huge PMD is shared whole; -EAGAIN falls through to the PTEs.
        int err = copy_huge_pmd(k, dst_vma, src_vma, a);
        if (err == -ENOMEM_) ok = false;
        else if (err) ok = copy_pte_range(k, dst_vma, src_vma, a, next);
        a = next;
    }
    if (cow) src_vma->vm_mm->write_protect_seq.raw_write_seqcount_end(MMR_SITE("copy_page_range"));
    return ok;
}

}  // namespace

std::string sys_fork(Kernel& k, int child_process, const std::string& child_name) {
    mm_struct& oldmm = k.current_mm();
    mm_struct* mm = k.mm_alloc();
    mmap_write_lock(oldmm, MMR_SITE("dup_mmap"));
    mmap_write_lock_nested(*mm, SINGLE_DEPTH_NESTING, MMR_SITE("dup_mmap"));
    bool copied = true;
    size_t begun = 0;  // parent VMAs whose write section is open
    for (auto& [end, vma] : oldmm.mm_mt) {
        // fb49c455323f: a per-VMA fault in the parent must not COW a page that
        // copy_page_range write-protects while siblings still write through TLB
        // entries the flush below has yet to remove.  spf keeps the write section open
        // until that flush for the same reason.
        if (!k.mutant(MutantId::pervma_fork_no_vma_write_lock)) vma_write_begin(vma);
        ++begun;
        vm_area_struct* tmp = mm->vm_area_dup(*vma);
        dup_userfaultfd(k, tmp, vma);
        anon_vma_fork(k, tmp, vma);
        mm->vma_link(tmp);
        vma_link_file(k, tmp);  // vma_interval_tree_insert_after
        copied = copy_page_range(k, tmp, vma);
        if (!copied) break;  // goto loop_out: the VMAs not reached are never duplicated
    }
    mmap_write_unlock(*mm, MMR_SITE("dup_mmap"));
    // The parent's writable translations of now write-protected pages must go.
    flush_tlb_mm(k, oldmm);
    if (!k.mutant(MutantId::pervma_fork_no_vma_write_lock))
        for (auto it = oldmm.mm_mt.begin(); begun--; ++it) vma_write_end_spf(it->second);
    mmap_write_unlock(oldmm, MMR_SITE("dup_mmap"));
    if (copied) dup_userfaultfd_complete(k, *mm, child_process);
    else dup_userfaultfd_fail(k);
    if (!copied) {
        // copy_process fails (bad_fork_cleanup_mm): mmput tears down what dup_mmap
        // built, and the child never runs.
        exit_mmap(k, *mm);
        return errno_name(ENOMEM_);
    }
    k.processes.at(child_process).mm = mm;
    mm->mm_users = k.processes.at(child_process).nr_threads;
    for (rt::Tid t = 0; t < k.thread_process.size(); ++t)
        if (k.thread_process[t] == child_process) k.rt.start(t);
    return child_name;
}

}  // namespace mmrace::ops
