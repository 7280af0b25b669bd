// munmap(2): __vm_munmap -> do_vmi_munmap -> do_vmi_align_munmap (mm/mmap.c, mm/vma.c).
// The VMAs are split at the edges and detached under the write lock; the lock is then
// downgraded and the page tables are zapped and freed under the read lock, as upstream
// does (vms_complete_munmap_vmas).
#include <vector>

#include "mm/anon_vma.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/unmap.hpp"
#include "mm/spf_vma.hpp"
#include "mm/vma_lock.hpp"
#include "mm/vma_split.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

// vms_gather_munmap_vmas: split at start and end, then detach every VMA in the range.
std::vector<vm_area_struct*> detach_range(mm_struct& mm, uint64_t start, uint64_t end) {
    std::vector<vm_area_struct*> gone;
    for (vm_area_struct* v = mm.find_vma(start); v && v->vm_start < end; v = mm.find_vma(start)) {
        if (v->vm_start < start) {
            split_vma(mm, v, start, true);
            continue;
        }
        if (v->vm_end > end) split_vma(mm, v, end, false);
        vma_start_write(v);  // vms_gather_munmap_vmas
        mm.vma_unlink(v);
        vma_mark_detached(v);
        gone.push_back(v);
    }
    return gone;
}

}  // namespace

// unmap_region over detached VMAs: zap, free page tables between the neighbours,
// flush, free.
static void unmap_region(Kernel& k, mm_struct& mm, const std::vector<vm_area_struct*>& vmas,
                  uint64_t floor, uint64_t ceiling) {
    mmu_gather tlb;
    tlb_gather_mmu(tlb, k, mm);
    // The spf series bumps the sequence count where it zaps (unmap_page_range): a
    // speculative fault that found the VMA before it was detached must not install a
    // PTE the zap has passed.  Only munmap's own detached VMAs: MADV_DONTNEED and
    // truncate zap without excluding each other, and a racing fault is harmless there.
    for (vm_area_struct* v : vmas) {
        vm_write_begin(v);
        unmap_single_vma(tlb, v, v->vm_start, v->vm_end);
        vm_write_end(v);
    }
    for (vm_area_struct* v : vmas) {  // free_pgtables: rmap first
        unlink_anon_vmas(k, v);
        unlink_file_vma(k, v);
    }
    free_pgtables(tlb, vmas.front()->vm_start, vmas.back()->vm_end, floor, ceiling);
    tlb_finish_mmu(tlb);
}

// do_vmi_munmap: unmap [start, end).  mmap_lock held for write; with `downgrade` the
// lock is downgraded before the page tables are torn down and released at the end
// (munmap(2)), without it the caller keeps the write lock (mmap over a MAP_FIXED
// range, mremap).
void do_munmap(Kernel& k, mm_struct& mm, uint64_t start, uint64_t end, bool downgrade) {
    mmap_assert_write_locked(mm);
    std::vector<vm_area_struct*> gone = detach_range(mm, start, end);
    if (gone.empty()) {
        if (downgrade) mmap_write_unlock(mm, MMR_SITE("__vm_munmap"));
        return;
    }
    vm_area_struct* prev = mm.find_vma_prev(start);
    vm_area_struct* next = mm.find_vma(end);
    uint64_t floor = prev ? prev->vm_end : 0;
    uint64_t ceiling = next ? next->vm_start : TASK_SIZE;
    if (downgrade) mmap_write_downgrade(mm, MMR_SITE("do_vmi_align_munmap"));
    unmap_region(k, mm, gone, floor, ceiling);
    if (downgrade) mmap_read_unlock(mm, MMR_SITE("__vm_munmap"));
    for (vm_area_struct* v : gone) mm.vm_area_free(v);  // remove_vma
}

std::string sys_munmap(Kernel& k, uint64_t start, uint64_t pages) {
    mm_struct& mm = k.current_mm();
    uint64_t len = pages * PAGE_SIZE;
    if (start > TASK_SIZE || len > TASK_SIZE - start) return errno_name(EINVAL_);
    mmap_write_lock(mm, MMR_SITE("__vm_munmap"));
    do_munmap(k, mm, start, start + len, /*downgrade=*/true);
    return "0";
}

}  // namespace mmrace::ops
