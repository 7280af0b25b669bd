// The anonymous reverse map (mm/rmap.c): anon_vma objects and the anon_vma_chain links
// between them and VMAs, as rmap walks them to find every PTE that may map an anonymous
// folio, and the bookkeeping that decides anon_vma reuse and VMA merging (mm/vma.c).
//
// An anon_vma's tree (rb_root, an interval tree upstream, a list here) holds every VMA
// linked to it by an anon_vma_chain; a VMA's anon_vma_chain lists every anon_vma it is
// on.  A fork child's VMA is on its own new anon_vma and on all of its parent's, so a
// folio whose anon_vma is the parent's reaches the child's mappings too.  All anon_vmas
// of one fork family share a root, and the root's rwsem locks all of them
// (anon_vma_lock_write / anon_vma_lock_read).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "mm/vma.hpp"
#include "sync/rwsem.hpp"

namespace mmrace::mm {

class Kernel;

struct anon_vma {
    uint64_t id = 0;                  // Kernel::anon_vmas[id - 1]; never reused in a run
    anon_vma* root = nullptr;         // the root of its fork family
    anon_vma* parent = nullptr;       // the anon_vma it was forked from (itself for a root)
    // refcount: 1 while it lives (put when its tree empties), one per child anon_vma for a
    // root (get_anon_vma(root) in anon_vma_fork), and one per rmap walker holding it.
    int refcount = 1;
    int num_children = 0;             // anon_vmas whose parent it is (a root counts itself)
    int num_active_vmas = 0;          // VMAs whose vma->anon_vma it is
    bool in_use = true;               // false once freed (anon_vma_free)
    sync::RwSem rwsem{"&anon_vma->rwsem"};  // only the root's is used
    std::vector<vm_area_struct*> rb_root;   // the VMAs chained to it, in link order
};

// Every anon_vma of a run (the anon_vma_cachep slab), by id - 1.  An id is never reused
// within a run, so a freed anon_vma stays here (in_use false) and a use after free is
// seen; reset() rewinds to none without freeing anything, and alloc() reinitialises
// the entries of earlier runs in place (their rwsems forget their old run by epoch).
class AnonVmaPool {
public:
    void reset() { nr_ = 0; }
    // anon_vma_alloc's storage: the next id, refcount 1, its own root and parent.
    anon_vma* alloc();
    // The anon_vma with this id, live or freed; a ModelError for an id never handed out.
    anon_vma* at(uint64_t id);
    size_t size() const { return nr_; }  // ids 1..size() were handed out since reset()
    size_t live() const;                 // how many of them are not freed

private:
    std::deque<anon_vma> slab_;  // a deque: entries never move
    size_t nr_ = 0;
};

// anon_vma_lock_write / anon_vma_unlock_write / anon_vma_lock_read / anon_vma_unlock_read:
// the root's rwsem.
void anon_vma_lock_write(anon_vma* av);
void anon_vma_unlock_write(anon_vma* av);
void anon_vma_lock_read(anon_vma* av);
void anon_vma_unlock_read(anon_vma* av);
// anon_vma_trylock_read: the rmap walk of folio_referenced (rwc->try_lock).
bool anon_vma_trylock_read(anon_vma* av);

// get_anon_vma / put_anon_vma: the last put frees it (and drops its root reference).
// put_anon_vma takes no lock here: nothing can reach an anon_vma whose tree is empty
// and whose walkers are gone.
void get_anon_vma(anon_vma* av);
void put_anon_vma(Kernel& k, anon_vma* av);

// anon_vma_prepare (via vmf_anon_prepare): give vma an anon_vma before its first
// anonymous page, reusing a compatible neighbour's (find_mergeable_anon_vma).  mmap_lock
// held for read; the anon_vma's lock, then page_table_lock, as __anon_vma_prepare.
void anon_vma_prepare(Kernel& k, vm_area_struct* vma);

// anon_vma_clone: dst (a copy of src: split_vma, copy_vma, a merge adopting src's
// anon_vma) joins every anon_vma src is on.  mmap_lock held for write; takes the
// anon_vma lock.  dst's chain must be empty (vm_area_dup clears it).
void anon_vma_clone(Kernel& k, vm_area_struct* dst, const vm_area_struct* src);

// anon_vma_fork: the child's VMA joins every anon_vma of the parent's (anon_vma_clone)
// and gets a new anon_vma of its own under the same root.  Both mmap_locks held for
// write.  The reuse of a parent anon_vma with no VMAs left is not modelled: every fork
// allocates one, as the merge and reuse decisions of the model have always assumed.
void anon_vma_fork(Kernel& k, vm_area_struct* child, const vm_area_struct* parent);

// unlink_anon_vmas: vma leaves every anon_vma tree; anon_vmas left with no VMA are put
// (freed unless an rmap walker holds them).  Called before the VMA is freed (it must not
// be reachable by rmap then) and, for a VMA that stays, never.  mmap_lock held.
void unlink_anon_vmas(Kernel& k, vm_area_struct* vma);

// vm_area_dup's part for the chain: a copied VMA starts on no anon_vma tree.
inline void vma_clear_anon_chain(vm_area_struct* vma) { vma->anon_vma_chain.clear(); }

// is_mergeable_anon_vma (mm/vma.c, 6.12+): can src's anon_vma (src_anon; src may be
// null for a new range) and tgt's be one after a merge?
bool is_mergeable_anon_vma(const vm_area_struct* src, uint64_t src_anon,
                           const vm_area_struct* tgt);

}  // namespace mmrace::mm

namespace mmrace::mm {
// The anon_vma with this id (non-zero), live or freed.
anon_vma* anon_vma_of(Kernel& k, uint64_t id);
}  // namespace mmrace::mm
