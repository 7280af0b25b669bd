// /proc/PID/smaps (fs/proc/task_mmu.c): the monitoring reader of seed 003.  It holds
// mmap_lock for read across a walk of every VMA's page tables, which is what makes it
// a priority-inversion hazard: a writer queued behind it blocks every later fault.
#include <algorithm>

#include "mm/huge_memory.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/pgalloc.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

// struct mem_size_stats, in pages.
struct mem_size_stats {
    uint64_t vmas = 0;
    uint64_t resident = 0;  // Rss
    uint64_t anonymous = 0;
    uint64_t swap = 0;
};

// smaps_pte_entry for one PTE: a normal page counts as resident (and anonymous if it
// is), a swap PTE as swap; the zero page has no struct page (vm_normal_page) and
// counts as nothing, as upstream.  PTE lock held.
void smaps_pte_entry(Kernel& k, pte_t pte, mem_size_stats& mss) {
    if (is_swap_pte(pte)) {
        ++mss.swap;
        return;
    }
    if (!pte_present(pte) || pte_special(pte)) return;
    ++mss.resident;
    if (k.folios[page_folio(k.folios, pte_pfn(pte))].flags & PG_anon) ++mss.anonymous;
}

// smaps_pte_range over [addr, end) inside one PTE table: pte_offset_map_lock, every
// entry, unlock.  mmap_lock held for read (the table cannot be freed under it).
void smaps_pte_range(Kernel& k, mm_struct& mm, uint64_t addr, uint64_t end, mem_size_stats& mss) {
    TableId t = pte_table_lookup(k, mm, addr);
    if (t == kNoTable) return;
    PteRef lock_ref{t, 0};
    pte_lock(k, lock_ref, MMR_SITE("smaps_pte_range"));
    for (; addr < end; addr += PAGE_SIZE)
        smaps_pte_entry(k, ptep_get(k, PteRef{t, k.geo.index(addr, PTE_LEVEL)}), mss);
    pte_unlock(k, lock_ref, MMR_SITE("smaps_pte_range"));
}

// smap_gather_stats: walk_page_vma over the VMA, one PTE table at a time.  mmap_lock
// held for read.
void smap_gather_stats(Kernel& k, vm_area_struct* vma, mem_size_stats& mss) {
    mmap_assert_locked(*vma->vm_mm);
    ++mss.vmas;
    uint64_t span = k.geo.span(PTE_LEVEL);
    for (uint64_t a = vma->vm_start; a < vma->vm_end;) {
        uint64_t next = std::min((a / span + 1) * span, vma->vm_end);
        // smaps_pmd_entry: a huge PMD (checked again under its lock) is all resident,
        // anonymous memory if its folio is (a shmem THP is not).
        PmdRef pmd = pmd_lookup(k, *vma->vm_mm, a);
        if (pmd && pmd_trans_huge(pmd_entry(k, pmd))) {
            pmd_lock(*vma->vm_mm, MMR_SITE("smaps_pmd_entry"));
            bool huge = pmd_trans_huge(pmd_entry(k, pmd));
            if (huge) {
                mss.resident += (next - a) / PAGE_SIZE;
                if (k.folios[pmd_pfn(pmd_entry(k, pmd))].flags & PG_anon) mss.anonymous += (next - a) / PAGE_SIZE;
            }
            pmd_unlock(*vma->vm_mm, MMR_SITE("smaps_pmd_entry"));
            if (huge) {
                a = next;
                continue;
            }
        }
        smaps_pte_range(k, *vma->vm_mm, a, next, mss);
        a = next;
    }
}

}  // namespace

std::string proc_smaps(Kernel& k, int process) {
    mm_struct* mm = process >= 0 && static_cast<size_t>(process) < k.processes.size()
                        ? k.processes[process].mm
                        : nullptr;
    // proc_mem_open / m_start: mmget_not_zero.  Not forked yet, or every thread has
    // exited (its mm torn down): nothing to read.
    if (!mm || mm->mm_users == 0) return "ESRCH";
    ++mm->mm_users;
    mmap_read_lock(*mm, MMR_SITE("m_start"));
    uint64_t taken = k.rt.step();
    mem_size_stats mss;
    // The VMA iterator finds each next VMA by address, as vma_next() does.
    for (vm_area_struct* vma = mm->find_vma(0); vma; vma = mm->find_vma(vma->vm_end))
        smap_gather_stats(k, vma, mss);
    k.counters.inc(Counter::smaps);
    k.counters.inc(Counter::smaps_lock_hold_steps, k.rt.step() - taken);
    // While smaps holds it for read, only a writer queues first (readers queue behind a
    // queued writer): a non-empty queue means a writer waited on this walk.
    k.counters.inc(Counter::smaps_lock_waiters, mm->mmap_lock.waiters());
    if (mm->mmap_lock.is_contended()) k.counters.inc(Counter::smaps_lock_contended);
    mmap_read_unlock(*mm, MMR_SITE("m_stop"));
    // mmput: the last user tears the address space down, even from here.
    if (--mm->mm_users == 0) exit_mmap(k, *mm);
    return "vmas=" + std::to_string(mss.vmas) + " rss=" + std::to_string(mss.resident) +
           " anon=" + std::to_string(mss.anonymous) + " swap=" + std::to_string(mss.swap);
}

}  // namespace mmrace::ops
