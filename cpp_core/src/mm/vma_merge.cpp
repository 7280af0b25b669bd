#include "mm/vma_merge.hpp"

#include "mm/anon_vma.hpp"
#include "mm/huge_memory.hpp"
#include "mm/kernel.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/vma_lock.hpp"
#include "mm/vma_split.hpp"
#include "mmrace/run.hpp"

namespace mmrace::mm {

namespace {

// The range being merged: either part of an existing VMA (src) or a new mapping.
struct MergeRange {
    uint64_t start, end, flags;
    int file;
    uint64_t pgoff;  // at start
    const vm_area_struct* src;
    uint64_t src_anon;
};

// is_mergeable_vma + pgoff continuity + anon_vma compatibility with prev
// (can_vma_merge_after) or next (can_vma_merge_before).
bool can_merge(const MergeRange& r, const vm_area_struct* tgt, bool tgt_is_prev) {
    if (!tgt || tgt->vm_flags != r.flags || tgt->vm_file != r.file) return false;
    if (tgt_is_prev ? (tgt->vm_end != r.start || tgt->pgoff_at(r.start) != r.pgoff)
                    : (tgt->vm_start != r.end ||
                       r.pgoff + ((r.end - r.start) >> 12) != tgt->vm_pgoff))
        return false;
    return is_mergeable_anon_vma(r.src, r.src_anon, tgt);
}

// dup_anon_vma: the surviving VMA takes src's anon_vma if it had none, and joins every
// anon_vma src is on (anon_vma_clone), so that rmap still reaches src's folios there.
void adopt_anon_vma(Kernel& k, vm_area_struct* tgt, const MergeRange& r) {
    if (!tgt->anon_vma && r.src_anon) {
        if (!r.src) throw ModelError("a merge adopting an anon_vma without its VMA");
        tgt->anon_vma = r.src_anon;
        anon_vma_clone(k, tgt, r.src);
    }
}

void set_bounds(mm_struct& mm, vm_area_struct* v, uint64_t start, uint64_t end) {
    mm.vma_unlink(v);
    v->vm_pgoff = v->pgoff_at(start);  // start >= vm_start here
    v->vm_start = start;
    v->vm_end = end;
    mm.vma_link(v);
}

// vma_complete for a VMA a merge swallowed: out of the tree and of i_mmap now; off its
// anon_vmas (anon_vma_merge) and freed once the merge is complete (free_removed).
void remove(Kernel& k, mm_struct& mm, vm_area_struct* v, std::vector<vm_area_struct*>& removed) {
    mm.vma_unlink(v);
    vma_mark_detached(v);
    i_mmap_remove(k, v);
    removed.push_back(v);
}

void free_removed(Kernel& k, mm_struct& mm, const std::vector<vm_area_struct*>& removed) {
    for (vm_area_struct* v : removed) {
        unlink_anon_vmas(k, v);
        mm.vm_area_free(v);
    }
}

// Merges r (which, for an existing VMA, is all or an edge of r.src) into prev and/or
// next.  Returns the merged VMA or null; with keep_locked, still in its write section.
vm_area_struct* try_merge(Kernel& k, mm_struct& mm, const MergeRange& r, vm_area_struct* prev,
                          vm_area_struct* next, vm_area_struct* middle,
                          bool keep_locked = false) {
    bool left = can_merge(r, prev, true) && (!middle || middle->vm_start == r.start);
    bool right = can_merge(r, next, false) && (!middle || middle->vm_end == r.end);
    if (left && right && prev->anon_vma && next->anon_vma && prev->anon_vma != next->anon_vma)
        right = false;  // prev and next cannot share one anon_vma
    if (!left && !right) return nullptr;
    vm_area_struct* tgt = left ? prev : next;
    // vma_prepare: every VMA the merge changes or removes is write-locked first.
    std::vector<vm_area_struct*> touched;
    if (left) touched.push_back(prev);
    if (right) touched.push_back(next);
    if (middle) touched.push_back(middle);
    for (vm_area_struct* v : touched) vma_write_begin(v);
    adopt_anon_vma(k, tgt, r);
    if (left && right) adopt_anon_vma(k, prev, MergeRange{0, 0, 0, 0, 0, next, next->anon_vma});
    std::vector<vm_area_struct*> removed;
    // vma_prepare: i_mmap_rwsem, then the anon_vma lock (the merged VMAs share one) so
    // that rmap walkers see every bound before the merge or every bound after it.
    i_mmap_lock_write(k, r.file);
    anon_vma* av = tgt->anon_vma ? anon_vma_of(k, tgt->anon_vma) : nullptr;
    if (av) anon_vma_lock_write(av);
    uint64_t lo = left ? prev->vm_start : r.start;
    uint64_t hi = right ? next->vm_end : r.end;
    if (middle && !(middle->vm_start >= r.start && middle->vm_end <= r.end)) {
        vma_adjust_trans_huge(k, middle, left ? r.end : r.start);  // commit_merge
    }
    if (middle) {
        if (middle->vm_start >= r.start && middle->vm_end <= r.end) remove(k, mm, middle, removed);
        else if (left) set_bounds(mm, middle, r.end, middle->vm_end);
        else set_bounds(mm, middle, middle->vm_start, r.start);
    }
    if (left && right) remove(k, mm, next, removed);
    if (left) {
        mm.vma_unlink(prev);
        prev->vm_end = hi;
        mm.vma_link(prev);
    } else {
        uint64_t pg = r.pgoff;
        mm.vma_unlink(next);
        next->vm_start = lo;
        next->vm_pgoff = pg;
        mm.vma_link(next);
    }
    if (av) anon_vma_unlock_write(av);  // vma_complete
    i_mmap_unlock_write(k, r.file);
    for (vm_area_struct* v : touched)
        if (!keep_locked || v != tgt) vma_write_end_spf(v);
    free_removed(k, mm, removed);
    return tgt;
}

}  // namespace

vm_area_struct* vma_modify_flags(mm_struct& mm, vm_area_struct* vma, uint64_t start,
                                 uint64_t end, uint64_t newflags) {
    mmap_assert_write_locked(mm);
    Kernel& k = Kernel::current();
    MergeRange r{start, end, newflags, vma->vm_file, vma->pgoff_at(start), vma, vma->anon_vma};
    vm_area_struct* prev = mm.find_vma_prev(vma->vm_start);
    vm_area_struct* next = mm.find_vma(vma->vm_end);
    if (vm_area_struct* merged = try_merge(k, mm, r, prev, next, vma)) return merged;
    if (start > vma->vm_start) split_vma(mm, vma, start, /*new_below=*/true);
    if (end < vma->vm_end) split_vma(mm, vma, end, /*new_below=*/false);
    vma_write_begin(vma);  // mprotect_fixup: vma_start_write, vm_write_begin
    vma->vm_flags = newflags;
    vma_write_end_spf(vma);
    return vma;
}

vm_area_struct* vma_merge_new_range(mm_struct& mm, uint64_t start, uint64_t end,
                                    uint64_t flags, int file, uint64_t pgoff,
                                    const vm_area_struct* src, bool keep_locked) {
    mmap_assert_write_locked(mm);
    MergeRange r{start, end, flags, file, pgoff, src, src ? src->anon_vma : 0};
    return try_merge(Kernel::current(), mm, r, mm.find_vma_prev(start), mm.find_vma(end), nullptr, keep_locked);
}

}  // namespace mmrace::mm
