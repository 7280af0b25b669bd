#include "mm/mm_struct.hpp"

#include "check/report.hpp"
#include "mm/mmap_lock.hpp"

namespace mmrace::mm {

vm_area_struct* mm_struct::find_vma(uint64_t addr) const {
    auto it = mm_mt.upper_bound(addr);
    return it == mm_mt.end() ? nullptr : it->second;
}

vm_area_struct* mm_struct::vma_lookup(uint64_t addr) const {
    vm_area_struct* v = find_vma(addr);
    return v && v->vm_start <= addr ? v : nullptr;
}

vm_area_struct* mm_struct::find_vma_prev(uint64_t addr) const {
    auto it = mm_mt.upper_bound(addr);
    if (it == mm_mt.begin()) return nullptr;
    return std::prev(it)->second;
}

vm_area_struct* mm_struct::vm_area_alloc() {
    vm_area_struct* v;
    if (!free_vmas_.empty()) {
        v = free_vmas_.back();
        free_vmas_.pop_back();
    } else {
        vmas_.push_back(std::make_unique<vm_area_struct>());
        v = vmas_.back().get();
    }
    *v = vm_area_struct{};
    v->vm_mm = this;
    return v;
}

void mm_struct::vm_area_free(vm_area_struct* vma) {
    // rmap must not reach a freed VMA: unlink_anon_vmas comes first.
    if (!vma->anon_vma_chain.empty())
        check::violation("use_after_free", "a VMA is freed while still on an anon_vma tree");
    vma->detached = true;
    free_vmas_.push_back(vma);
}

void mm_struct::vma_link(vm_area_struct* vma) {
    mmap_assert_write_locked(*this);
    mm_mt.emplace(vma->vm_end, vma);
}

void mm_struct::vma_unlink(vm_area_struct* vma) {
    mmap_assert_write_locked(*this);
    mm_mt.erase(vma->vm_end);
}

}  // namespace mmrace::mm
