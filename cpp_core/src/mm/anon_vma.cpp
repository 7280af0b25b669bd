#include "mm/anon_vma.hpp"

namespace mmrace::mm {

namespace {

// anon_vma_compatible(a, b): b directly follows a and differs at most in protection.
bool anon_vma_compatible(const vm_area_struct* a, const vm_area_struct* b) {
    return a->vm_end == b->vm_start && a->vm_file == b->vm_file &&
           !((a->vm_flags ^ b->vm_flags) & ~VM_ACCESS_FLAGS) &&
           b->vm_pgoff == a->pgoff_at(b->vm_start);
}

// reusable_anon_vma: old's anon_vma, if a/b are compatible and old never forked.
uint64_t reusable_anon_vma(const vm_area_struct* old, const vm_area_struct* a,
                           const vm_area_struct* b) {
    if (anon_vma_compatible(a, b) && old->anon_vma && old->anon_vma_chain == 1)
        return old->anon_vma;
    return 0;
}

uint64_t find_mergeable_anon_vma(const mm_struct& mm, const vm_area_struct* vma) {
    if (const vm_area_struct* next = mm.find_vma(vma->vm_end))
        if (uint64_t a = reusable_anon_vma(next, vma, next)) return a;
    if (const vm_area_struct* prev = mm.find_vma_prev(vma->vm_start))
        return reusable_anon_vma(prev, prev, vma);
    return 0;
}

}  // namespace

void anon_vma_prepare(Kernel& k, vm_area_struct* vma) {
    if (vma->anon_vma) return;
    mm_struct& mm = *vma->vm_mm;
    uint64_t reuse = find_mergeable_anon_vma(mm, vma);
    uint64_t fresh = reuse ? reuse : ++k.anon_vma_serial;  // anon_vma_alloc
    mm.page_table_lock.spin_lock(MMR_SITE("__anon_vma_prepare"));
    if (!vma->anon_vma) {
        vma->anon_vma = fresh;
        vma->anon_vma_chain = 1;
    }
    mm.page_table_lock.spin_unlock(MMR_SITE("__anon_vma_prepare"));
}

void anon_vma_fork(Kernel& k, vm_area_struct* child, const vm_area_struct* parent) {
    child->anon_vma = 0;
    child->anon_vma_chain = 0;
    if (!parent->anon_vma) return;
    child->anon_vma = ++k.anon_vma_serial;
    child->anon_vma_chain = parent->anon_vma_chain + 1;
}

bool is_mergeable_anon_vma(const vm_area_struct* src, uint64_t src_anon,
                           const vm_area_struct* tgt) {
    if (!tgt->anon_vma && src_anon) return !(src && src->had_uncowed_parents());
    if (tgt->anon_vma && !src_anon) return !tgt->had_uncowed_parents();
    return src_anon == tgt->anon_vma;
}

}  // namespace mmrace::mm
