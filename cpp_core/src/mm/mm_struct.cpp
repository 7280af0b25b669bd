#include "mm/mm_struct.hpp"

#include "check/report.hpp"
#include "mm/kernel.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/spf_vma.hpp"
#include "mmrace/program.hpp"
#include "sync/rcu.hpp"

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
    static_cast<vm_area_fields&>(*v) = vm_area_fields{};
    v->vm_mm = this;
    v->serial = ++vma_serial_;
    v->freed = false;
    v->vm_ref_count = 1;  // the tree's (spf: put by remove_vma)
    v->vm_lock_seq = -1;
    v->vm_write_depth = 0;
    return v;
}

vm_area_struct* mm_struct::vm_area_dup(const vm_area_struct& orig) {
    vm_area_struct* v = vm_area_alloc();
    static_cast<vm_area_fields&>(*v) = orig;
    v->vm_mm = this;
    v->anon_vma_chain.clear();
    v->detached = false;
    return v;
}

void mm_struct::vm_area_free(vm_area_struct* vma) {
    // rmap must not reach a freed VMA: unlink_anon_vmas comes first.
    if (!vma->anon_vma_chain.empty())
        check::violation(Check::use_after_free, "a VMA is freed while still on an anon_vma tree");
    vma->detached = true;
    switch (Kernel::current().config.strategy) {
        case Strategy::classic:
            free_vma_now(vma);
            return;
        case Strategy::spf:
            put_vma(vma);  // remove_vma
            return;
        case Strategy::pervma:
            sync::call_rcu(MMR_SITE("vm_area_free_rcu_cb"), [this, vma] { free_vma_now(vma); });
            return;
    }
}

void mm_struct::free_vma_now(vm_area_struct* vma) {
    vma->freed = true;
    free_vmas_.push_back(vma);
}

void mm_struct::vma_link(vm_area_struct* vma) {
    mmap_assert_write_locked(*this);
    mm_rb_write_lock(*this);
    mm_mt.store(vma);
    mm_rb_write_unlock(*this);
}

void mm_struct::vma_unlink(vm_area_struct* vma) {
    mmap_assert_write_locked(*this);
    mm_rb_write_lock(*this);
    mm_mt.erase(vma);
    mm_rb_write_unlock(*this);
}

}  // namespace mmrace::mm
