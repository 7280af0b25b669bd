// Thread and process exit: do_exit -> exit_mm -> mmput -> exit_mmap (kernel/exit.c,
// kernel/fork.c, mm/mmap.c).  The last thread of a process to exit tears the address
// space down.
#include "mm/anon_vma.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/unmap.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

// exit_mmap: zap under the read lock, then free page tables and VMAs under the write
// lock.  Nobody else uses mm any more.
void exit_mmap(Kernel& k, mm_struct& mm) {
    mmu_gather tlb;
    mmap_read_lock(mm, MMR_SITE("exit_mmap"));
    tlb_gather_mmu(tlb, k, mm, /*fullmm=*/true);
    for (auto& [end, v] : mm.mm_mt) unmap_single_vma(tlb, v, v->vm_start, v->vm_end);
    mmap_read_unlock(mm, MMR_SITE("exit_mmap"));
    mmap_write_lock(mm, MMR_SITE("exit_mmap"));
    for (auto& [end, v] : mm.mm_mt) {  // free_pgtables: rmap first
        unlink_anon_vmas(k, v);
        unlink_file_vma(k, v);
    }
    free_pgtables(tlb, 0, TASK_SIZE, 0, TASK_SIZE);
    tlb_finish_mmu(tlb);
    while (!mm.mm_mt.empty()) {
        vm_area_struct* v = mm.mm_mt.begin()->second;
        mm.vma_unlink(v);
        mm.vm_area_free(v);  // remove_vma
    }
    mmap_write_unlock(mm, MMR_SITE("exit_mmap"));
}

void do_exit(Kernel& k) {
    int p = k.thread_process.at(k.rt.self());
    if (p < 0 || !k.processes[p].mm) return;
    mm_struct& mm = *k.processes[p].mm;
    k.tlbs[k.rt.self()].flush_all();  // this CPU leaves the mm
    if (--mm.mm_users == 0) exit_mmap(k, mm);  // mmput
}

}  // namespace mmrace::ops
