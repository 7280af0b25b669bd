#include "mm/spf_vma.hpp"

#include <string>

#include "check/report.hpp"
#include "mm/kernel.hpp"
#include "mmrace/program.hpp"

namespace mmrace::mm {

namespace {
bool spf(const Kernel& k) { return k.config.strategy == Strategy::spf; }
}  // namespace

void mm_rb_write_lock(mm_struct& mm) {
    if (spf(Kernel::current())) mm.mm_rb_lock.write_lock(MMR_SITE("mm_rb_write_lock"));
}

void mm_rb_write_unlock(mm_struct& mm) {
    if (spf(Kernel::current())) mm.mm_rb_lock.write_unlock(MMR_SITE("mm_rb_write_unlock"));
}

void vm_write_begin(vm_area_struct* vma) {
    if (spf(Kernel::current()) && vma->vm_write_depth++ == 0)
        vma->vm_sequence.raw_write_seqcount_begin(MMR_SITE("vm_write_begin"));
}

void vm_write_end(vm_area_struct* vma) {
    if (spf(Kernel::current()) && --vma->vm_write_depth == 0)
        vma->vm_sequence.raw_write_seqcount_end(MMR_SITE("vm_write_end"));
}

vm_area_struct* get_vma(mm_struct& mm, uint64_t addr) {
    mm.mm_rb_lock.read_lock(MMR_SITE("get_vma"));
    vm_area_struct* vma = mm.find_vma(addr);  // __find_vma
    if (vma) ++vma->vm_ref_count;             // atomic_inc
    mm.mm_rb_lock.read_unlock(MMR_SITE("get_vma"));
    return vma;
}

void put_vma(vm_area_struct* vma) {
    Kernel& k = Kernel::current();
    k.rt.yield(MMR_SITE("put_vma"), rt::Ev::access, vma->serial);
    if (vma->freed || vma->vm_ref_count <= 0)
        check::violation(Check::use_after_free, "put_vma on a VMA whose references are all gone");
    if (--vma->vm_ref_count == 0) vma->vm_mm->free_vma_now(vma);  // __free_vma
}

void hold_vma(vm_area_struct* vma) {
    if (spf(Kernel::current())) ++vma->vm_ref_count;
}

void release_vma(vm_area_struct* vma) {
    if (spf(Kernel::current())) put_vma(vma);
}

bool vma_has_changed(vm_area_struct* vma, unsigned sequence) {
    bool dead = vma->detached;  // RB_EMPTY_NODE(&vma->vm_rb)
    unsigned seq = vma->vm_sequence.raw_read_seqcount(MMR_SITE("vma_has_changed"));
    return dead || seq != sequence;
}

}  // namespace mmrace::mm
