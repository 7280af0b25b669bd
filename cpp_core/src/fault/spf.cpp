// The speculative page fault (DESIGN §5 `spf`, seed 000: Laurent Dufour's v7 series on
// 4.15, after Peter Zijlstra's).  No mmap_lock: the VMA is found under the mm_rb rwlock
// and kept alive by a reference, its sequence count is read at the start, the page
// table walk runs with IRQs off (so no page table it reads can be freed), and every PTE
// lock is taken by pte_map_lock, which re-checks the VMA and the PMD.  Any failed check
// aborts with VM_FAULT_RETRY and the classic fault runs.
#include "fault/fault.hpp"
#include "check/report.hpp"
#include "mm/rmap.hpp"
#include "mm/spf_vma.hpp"
#include "sync/irq.hpp"

namespace mmrace::fault {

using mm::Counter;

namespace {

// vma_has_changed, with the seed-000 mutant that forgets the sequence count.
bool spf_vma_has_changed(Kernel& k, const vm_fault& vmf) {
    if (k.mutant(MutantId::spf_no_seqcount_check)) return vmf.vma->detached;
    return mm::vma_has_changed(vmf.vma, vmf.sequence);
}

// READ_ONCE(*vmf->pmd).  The PMD table may only be read while it is live: a freed one
// here means a page table went away under the fault.
uint64_t read_pmd(Kernel& k, const vm_fault& vmf, const rt::Site* site) {
    k.rt.yield(site, rt::Ev::access, vmf.pmd_index);
    const mm::PageTable& t = k.tables[vmf.pmd_table];
    if (!t.in_use)
        check::violation(Check::use_after_free, "a speculative fault reads a PMD in a freed page table");
    return t.entries[vmf.pmd_index];
}

// The walk of handle_speculative_fault with IRQs off: fills vmf.pmd_*, orig_pmd, pte
// and orig_pte.  False (spf_vma_notsup) where the series gives up: an upper level or
// the PMD is empty (allocating page tables here could leak them past free_pgtables),
// or the PTE is a swap entry.
bool spf_walk(Kernel& k, mm::mm_struct& mm, vm_fault& vmf) {
    sync::local_irq_disable(MMR_SITE("handle_speculative_fault"));
    bool ok = false;
    auto pgd = mm.pgd.find(k.geo.index(vmf.address, mm::PGD_LEVEL));
    if (pgd != mm.pgd.end()) {
        uint64_t pud = k.tables[pgd->second].entries[k.geo.index(vmf.address, mm::PUD_LEVEL)];
        if (pud) {
            vmf.pmd_table = mm::entry_table(pud);
            vmf.pmd_index = k.geo.index(vmf.address, mm::PMD_LEVEL);
            vmf.orig_pmd = read_pmd(k, vmf, MMR_SITE("handle_speculative_fault"));
            // No THP (seed 000): a huge PMD is not a table to walk into.
            if (vmf.orig_pmd && !mm::pmd_trans_huge(vmf.orig_pmd)) {
                vmf.pte = mm::PteRef{mm::entry_table(vmf.orig_pmd),
                                     k.geo.index(vmf.address, mm::PTE_LEVEL)};
                vmf.orig_pte = mm::ptep_get_lockless(k, vmf.pte, MMR_SITE("handle_speculative_fault"));
                ok = !mm::is_swap_pte(vmf.orig_pte);
            }
        }
    }
    sync::local_irq_enable(MMR_SITE("handle_speculative_fault"));
    return ok;
}

// The checks on the VMA before the walk.  0 to go on, else the counter of the abort;
// *ret becomes VM_FAULT_SIGSEGV when the VMA forbids the access.
Counter spf_check_vma(vm_fault& vmf, uint32_t error_code, vm_fault_t* ret) {
    vm_area_struct* vma = vmf.vma;
    if (vmf.sequence & 1) return Counter::spf_vma_changed;
    // vma->vm_ops: a file's ->fault may do anything with the VMA.
    if (!vma->vma_is_anonymous()) return Counter::spf_vma_notsup;
    // __anon_vma_prepare needs mmap_lock (vm_next and vm_prev must be stable).
    vmf.anon_vma = vma->anon_vma;
    if (!vmf.anon_vma) return Counter::spf_vma_noanon;
    vmf.vma_flags = vma->vm_flags;  // READ_ONCE
    vmf.pgoff = mm::linear_page_index(vma, vmf.address);
    // Not the userland fault handler, and not a stack (traced as unsupported rather
    // than as changed).
    // Nor a THP VMA (seed 000: "Support for THP is not done").
    if (vmf.vma_flags & (mm::VM_UFFD_MISSING | mm::VM_UFFD_WP | mm::VM_GROWSDOWN | mm::VM_HUGEPAGE))
        return Counter::spf_vma_notsup;
    if (vmf.address < vma->vm_start || vma->vm_end <= vmf.address) return Counter::spf_vma_changed;
    if (access_error(error_code, *vma)) {
        *ret = VM_FAULT_SIGSEGV;
        return Counter::spf_vma_access;
    }
    return Counter::count_;
}

// handle_speculative_fault (mm/memory.c in the series).  No locks on entry or return.
// VM_FAULT_RETRY sends the fault to the classic path; then *out is the VMA with its
// reference when the abort came after the walk (the classic path may reuse it).
vm_fault_t handle_speculative_fault(Kernel& k, mm::mm_struct& mm, uint64_t address,
                                    uint32_t flags, uint32_t error_code, vm_area_struct** out) {
    // No dropping a lock to retry: there is none to drop.
    flags &= ~(FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE);
    flags |= FAULT_FLAG_SPECULATIVE;
    vm_area_struct* vma = mm::get_vma(mm, address);
    if (!vma) return VM_FAULT_RETRY;
    vm_fault vmf{vma, flags, address & ~(mm::PAGE_SIZE - 1), address, {}, 0};
    vmf.sequence = vma->vm_sequence.raw_read_seqcount(MMR_SITE("handle_speculative_fault"));
    vm_fault_t ret = VM_FAULT_RETRY;
    Counter abort = spf_check_vma(vmf, error_code, &ret);
    if (abort == Counter::count_ && !spf_walk(k, mm, vmf)) abort = Counter::spf_vma_notsup;
    // Re-validate after reading the bounds, or they could be a torn view.
    if (abort == Counter::count_ &&
        vma->vm_sequence.read_seqcount_retry(vmf.sequence, MMR_SITE("handle_speculative_fault")))
        abort = Counter::spf_vma_changed;
    if (abort != Counter::count_) {
        k.counters.inc(abort);
        mm::put_vma(vma);  // out_put
        return ret;
    }
    ret = handle_pte_fault_speculative(k, vmf);
    if (ret == VM_FAULT_RETRY) {
        *out = vma;  // "mm: Speculative page fault handler return VMA"
        return ret;
    }
    k.counters.inc(Counter::pgfault);
    mm::put_vma(vma);
    return ret;
}

}  // namespace

bool spf_pte_map_lock(Kernel& k, vm_fault& vmf) {
    // The first check guarantees the page tables are still valid, IRQs off keeps them
    // (freeing one waits for this CPU's IPI acknowledgment), and the check under the
    // lock makes sure they still are; a zap after that blocks on the PTE lock.
    sync::local_irq_disable(MMR_SITE("pte_map_lock"));
    Counter abort = Counter::count_;
    if (spf_vma_has_changed(k, vmf)) abort = Counter::spf_vma_changed;
    // A PMD that changed means a collapse (or a page-table free) went on meanwhile.
    else if (!k.mutant(MutantId::spf_no_pmd_recheck) &&
             read_pmd(k, vmf, MMR_SITE("pte_map_lock")) != vmf.orig_pmd)
        abort = Counter::spf_pmd_changed;
    // trylock: the holder may be waiting for this CPU (IRQs off) to take a TLB IPI.
    else if (!mm::pte_trylock(k, vmf.pte, MMR_SITE("pte_map_lock")))
        abort = Counter::spf_ptl_busy;
    else if (spf_vma_has_changed(k, vmf)) {
        mm::pte_unlock(k, vmf.pte, MMR_SITE("pte_map_lock"));
        abort = Counter::spf_vma_changed;
    }
    sync::local_irq_enable(MMR_SITE("pte_map_lock"));
    if (abort == Counter::count_) return true;
    k.counters.inc(abort);
    return false;
}

std::optional<UserFault> spf_fault(Kernel& k, uint64_t address, uint32_t error_code,
                                   uint32_t flags, vm_area_struct** vma) {
    mm::mm_struct& mm = k.current_mm();
    // Not for a single-threaded process: nothing would contend for mmap_lock.
    if (!(error_code & X86_PF_USER) || mm.mm_users <= 1) return std::nullopt;
    vm_fault_t fault = handle_speculative_fault(k, mm, address, flags, error_code, vma);
    if (fault == VM_FAULT_RETRY) return std::nullopt;
    k.counters.inc(Counter::spf);  // perf_sw_event(PERF_COUNT_SW_SPF)
    return mm_fault_result(k, fault);
}

}  // namespace mmrace::fault
