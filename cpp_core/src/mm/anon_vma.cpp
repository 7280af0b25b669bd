#include "mm/anon_vma.hpp"

#include <algorithm>

#include "check/report.hpp"
#include "mm/kernel.hpp"
#include "mm/spf_vma.hpp"
#include "mmrace/run.hpp"

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
    if (anon_vma_compatible(a, b) && old->anon_vma && old->anon_vma_chain.size() == 1)
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

// anon_vma_alloc: a new root anon_vma with refcount 1.
anon_vma* anon_vma_alloc(Kernel& k) { return k.anon_vmas.alloc(); }

// anon_vma_chain_link: vma joins av's tree; the chain lists the newest first.
void anon_vma_chain_link(vm_area_struct* vma, anon_vma* av) {
    vma->anon_vma_chain.insert(vma->anon_vma_chain.begin(), av->id);
    av->rb_root.push_back(vma);
}

// lock_anon_vma_root: switch to av's root lock if it is not the one held.
anon_vma* lock_anon_vma_root(anon_vma* root, anon_vma* av) {
    if (av->root != root) {
        if (root) root->rwsem.up_write(MMR_SITE("lock_anon_vma_root"));
        root = av->root;
        root->rwsem.down_write(MMR_SITE("lock_anon_vma_root"));
    }
    return root;
}

void unlock_anon_vma_root(anon_vma* root) {
    if (root) root->rwsem.up_write(MMR_SITE("unlock_anon_vma_root"));
}

void anon_vma_free(Kernel& k, anon_vma* av) {
    if (!av->in_use) check::violation(Check::double_free, "anon_vma " + std::to_string(av->id) + " freed twice");
    av->in_use = false;
}

}  // namespace

anon_vma* AnonVmaPool::alloc() {
    if (nr_ == slab_.size()) slab_.emplace_back();
    anon_vma* av = &slab_[nr_++];
    av->id = nr_;
    av->root = av;
    av->parent = av;
    av->refcount = 1;
    av->num_children = 0;
    av->num_active_vmas = 0;
    av->in_use = true;
    av->rb_root.clear();
    return av;
}

anon_vma* AnonVmaPool::at(uint64_t id) {
    if (id == 0 || id > nr_)
        throw ModelError("anon_vma id " + std::to_string(id) + " was never allocated in this run");
    return &slab_[id - 1];
}

size_t AnonVmaPool::live() const {
    size_t n = 0;
    for (size_t i = 0; i < nr_; ++i) n += slab_[i].in_use;
    return n;
}

anon_vma* anon_vma_of(Kernel& k, uint64_t id) { return k.anon_vmas.at(id); }

void anon_vma_lock_write(anon_vma* av) { av->root->rwsem.down_write(MMR_SITE("anon_vma_lock_write")); }
void anon_vma_unlock_write(anon_vma* av) { av->root->rwsem.up_write(MMR_SITE("anon_vma_unlock_write")); }
void anon_vma_lock_read(anon_vma* av) { av->root->rwsem.down_read(MMR_SITE("anon_vma_lock_read")); }
void anon_vma_unlock_read(anon_vma* av) { av->root->rwsem.up_read(MMR_SITE("anon_vma_unlock_read")); }
bool anon_vma_trylock_read(anon_vma* av) {
    return av->root->rwsem.down_read_trylock(MMR_SITE("anon_vma_trylock_read"));
}

void get_anon_vma(anon_vma* av) {
    if (!av->in_use || av->refcount <= 0)
        check::violation(Check::use_after_free, "get_anon_vma on freed anon_vma " + std::to_string(av->id));
    ++av->refcount;
}

void put_anon_vma(Kernel& k, anon_vma* av) {
    if (!av->in_use || av->refcount <= 0)
        check::violation(Check::refcount, "put_anon_vma on freed anon_vma " + std::to_string(av->id));
    if (--av->refcount) return;
    // __put_anon_vma: a child anon_vma holds a reference on its root.
    anon_vma* root = av->root;
    anon_vma_free(k, av);
    if (root != av) put_anon_vma(k, root);
}

void anon_vma_prepare(Kernel& k, vm_area_struct* vma) {
    if (vma->anon_vma) return;
    mm_struct& mm = *vma->vm_mm;
    uint64_t reuse = find_mergeable_anon_vma(mm, vma);
    anon_vma* av = reuse ? anon_vma_of(k, reuse) : anon_vma_alloc(k);
    anon_vma* allocated = nullptr;
    if (!reuse) {
        av->num_children++;  // self-parent link for a new root
        allocated = av;
    }
    anon_vma_lock_write(av);
    mm.page_table_lock.spin_lock(MMR_SITE("__anon_vma_prepare"));
    if (!vma->anon_vma) {
        vma->anon_vma = av->id;
        anon_vma_chain_link(vma, av);
        av->num_active_vmas++;
        allocated = nullptr;
    }
    mm.page_table_lock.spin_unlock(MMR_SITE("__anon_vma_prepare"));
    anon_vma_unlock_write(av);
    if (allocated) put_anon_vma(k, allocated);  // another fault set one up meanwhile
}

void anon_vma_clone(Kernel& k, vm_area_struct* dst, const vm_area_struct* src) {
    if (!dst->anon_vma_chain.empty())
        throw ModelError("anon_vma_clone: the destination VMA is already on anon_vma trees");
    anon_vma* root = nullptr;
    // Oldest first, so that dst's chain ends up in src's order (newest first).
    std::vector<uint64_t> chain = src->anon_vma_chain;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        anon_vma* av = anon_vma_of(k, *it);
        root = lock_anon_vma_root(root, av);
        anon_vma_chain_link(dst, av);
    }
    if (dst->anon_vma) anon_vma_of(k, dst->anon_vma)->num_active_vmas++;
    unlock_anon_vma_root(root);
}

void anon_vma_fork(Kernel& k, vm_area_struct* child, const vm_area_struct* parent) {
    child->anon_vma = 0;
    vma_clear_anon_chain(child);
    if (!parent->anon_vma) return;
    anon_vma_clone(k, child, parent);
    anon_vma* pav = anon_vma_of(k, parent->anon_vma);
    anon_vma* av = anon_vma_alloc(k);
    av->num_active_vmas++;
    av->root = pav->root;
    av->parent = pav;
    get_anon_vma(av->root);
    child->anon_vma = av->id;
    anon_vma_lock_write(av);
    anon_vma_chain_link(child, av);
    av->parent->num_children++;
    anon_vma_unlock_write(av);
}

void unlink_anon_vmas(Kernel& k, vm_area_struct* vma) {
    anon_vma* root = nullptr;
    std::vector<anon_vma*> empty;  // freed outside the lock, as upstream
    // free_pgtables in the spf series: a speculative fault that checked anon_vma
    // before this must see the sequence move.
    vm_write_begin(vma);
    for (uint64_t id : vma->anon_vma_chain) {  // newest first: the root goes last
        anon_vma* av = anon_vma_of(k, id);
        root = lock_anon_vma_root(root, av);
        auto& t = av->rb_root;
        t.erase(std::remove(t.begin(), t.end(), vma), t.end());
        if (t.empty()) {
            av->parent->num_children--;
            empty.push_back(av);
        }
    }
    if (vma->anon_vma) {
        anon_vma_of(k, vma->anon_vma)->num_active_vmas--;
        vma->anon_vma = 0;
    }
    vma->anon_vma_chain.clear();
    vm_write_end(vma);
    unlock_anon_vma_root(root);
    for (anon_vma* av : empty) put_anon_vma(k, av);
}

bool is_mergeable_anon_vma(const vm_area_struct* src, uint64_t src_anon,
                           const vm_area_struct* tgt) {
    if (!tgt->anon_vma && src_anon) return !(src && src->had_uncowed_parents());
    if (tgt->anon_vma && !src_anon) return !tgt->had_uncowed_parents();
    return src_anon == tgt->anon_vma;
}

}  // namespace mmrace::mm
