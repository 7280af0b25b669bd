#include "mm/vma_lock.hpp"

#include <string>

#include "check/report.hpp"
#include "mm/kernel.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/spf_vma.hpp"
#include "mmrace/program.hpp"
#include "sync/lockdep.hpp"

namespace mmrace::mm {

namespace {
bool pervma(const Kernel& k) { return k.config.strategy == Strategy::pervma; }

// READ_ONCE(vma->vm_lock_seq): a scheduling point before the load.
int64_t read_vm_lock_seq(const vm_area_struct* vma) {
    Kernel::current().rt.yield(MMR_SITE("vma_start_read"), rt::Ev::access,
                               static_cast<uint64_t>(vma->vm_lock_seq));
    return vma->vm_lock_seq;
}
}  // namespace

bool vma_start_read(vm_area_struct* vma) {
    const mm_struct& mm = *vma->vm_mm;
    // A race may make this early check fail spuriously; that only sends the fault to
    // mmap_lock.  It may not make it pass wrongly: the re-check under vm_lock decides.
    if (read_vm_lock_seq(vma) == mm.mm_lock_seq) return false;
    if (!vma->vm_lock.down_read_trylock(MMR_SITE("vma_start_read"))) return false;
    if (vma->vm_lock_seq == mm.mm_lock_seq) {  // write-locked while we took vm_lock
        vma->vm_lock.up_read(MMR_SITE("vma_start_read"));
        return false;
    }
    return true;
}

void vma_end_read(vm_area_struct* vma) { vma->vm_lock.up_read(MMR_SITE("vma_end_read")); }

void vma_assert_locked(const vm_area_struct* vma) {
    sync::lockdep_assert_held(vma->vm_lock, sync::LockMode::any);
}

void vma_assert_write_locked(const vm_area_struct* vma) {
    if (vma->vm_lock_seq != vma->vm_mm->mm_lock_seq)
        check::violation(Check::lockdep_assert_held,
                         "vma_assert_write_locked: VMA [" + std::to_string(vma->vm_start) + ", " +
                             std::to_string(vma->vm_end) + ") is changed without vma_start_write");
}

void vma_start_write(vm_area_struct* vma) {
    if (!pervma(Kernel::current())) return;
    mmap_assert_write_locked(*vma->vm_mm);
    if (vma->vm_lock_seq == vma->vm_mm->mm_lock_seq) return;  // __is_vma_write_locked
    vma->vm_lock.down_write(MMR_SITE("vma_start_write"));
    vma->vm_lock_seq = vma->vm_mm->mm_lock_seq;
    vma->vm_lock.up_write(MMR_SITE("vma_start_write"));
}

void vma_end_write_all(mm_struct& mm) {
    mmap_assert_write_locked(mm);
    ++mm.mm_lock_seq;
}

void vma_write_begin(vm_area_struct* vma) {
    vma_start_write(vma);
    vm_write_begin(vma);
}

void vma_write_end_spf(vm_area_struct* vma) { vm_write_end(vma); }

void vma_mark_detached(vm_area_struct* vma) {
    if (pervma(Kernel::current())) vma_assert_write_locked(vma);
    vma->detached = true;
}

}  // namespace mmrace::mm
