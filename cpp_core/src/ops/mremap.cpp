// mremap(2) for anonymous memory, following mm/mremap.c as of 6.17/6.18
// (do_mremap, check_mremap_params, check_prep_vma, mremap_at, mremap_to, remap_move):
// shrink, grow in place, move (maymove), move to a fixed address, and same-size fixed
// moves across several VMAs.  Page tables move with move_ptes, which
// flushes the old range's TLB entries before it drops the old PTE lock
// (CVE-2018-18281).
#include "mm/huge_memory.hpp"
#include "mm/anon_vma.hpp"
#include "mm/filemap.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/pgalloc.hpp"
#include "mm/spf_vma.hpp"
#include "mm/userfaultfd.hpp"
#include "mm/vma_lock.hpp"
#include "mm/vma_merge.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

constexpr int SINGLE_DEPTH_NESTING = 1;

// take_rmap_locks: an rmap walk must not look at the new place before the entries got
// there and at the old one after they left (upstream only when need_rmap_locks; the
// model always takes them).
void take_rmap_locks(Kernel& k, vm_area_struct* vma) {
    i_mmap_lock_write(k, vma->vm_file);
    if (vma->anon_vma) anon_vma_lock_write(anon_vma_of(k, vma->anon_vma));
}

void drop_rmap_locks(Kernel& k, vm_area_struct* vma) {
    if (vma->anon_vma) anon_vma_unlock_write(anon_vma_of(k, vma->anon_vma));
    i_mmap_unlock_write(k, vma->vm_file);
}

// move_ptes for the part of [old, old + len) that one old PTE table covers; the new
// range gets the same PTEs.  Both PTE locks are held across the move and the flush.
// A huge PMD there is split first (only a whole one moves as it is: move_huge_pmd).
// false if the new PTE table cannot be allocated (move_page_tables stops there).
bool move_ptes(Kernel& k, vm_area_struct* vma, uint64_t old_addr, uint64_t len,
               uint64_t new_addr) {
    mm_struct& mm = *vma->vm_mm;
    split_huge_pmd(k, vma, old_addr);
    TableId ot = pte_table_lookup(k, mm, old_addr);
    if (ot == kNoTable) return true;
    PteRef dst = pte_alloc(k, mm, new_addr);
    if (!dst) return false;
    // Swap PTEs move as they are: the slot's count stays.
    take_rmap_locks(k, vma);
    PteRef old_lock{ot, 0};
    pte_lock(k, old_lock, MMR_SITE("move_ptes"));
    bool nested = dst.table != ot;
    if (nested) k.tables[dst.table].ptl.spin_lock_nested(SINGLE_DEPTH_NESTING, MMR_SITE("move_ptes"));
    bool force_flush = false;
    for (uint64_t off = 0; off < len; off += PAGE_SIZE) {
        pte_t& src = k.tables[ot].entries[k.geo.index(old_addr + off, PTE_LEVEL)];
        if (pte_none(src)) continue;
        pte_t pte = src;
        src = 0;  // ptep_get_and_clear
        force_flush |= pte_present(pte);
        k.tables[dst.table].entries[k.geo.index(new_addr + off, PTE_LEVEL)] = pte;  // set_pte_at
    }
    if (force_flush) flush_tlb_mm_range(k, mm, old_addr, old_addr + len);
    if (nested) k.tables[dst.table].ptl.spin_unlock(MMR_SITE("move_ptes"));
    pte_unlock(k, old_lock, MMR_SITE("move_ptes"));
    drop_rmap_locks(k, vma);
    return true;
}

// move_pgt_entry(HPAGE_PMD): the extent covers a whole PMD on both sides; a huge PMD
// there moves as it is.  False to move PTEs instead (no huge PMD, or the new PMD is
// taken or cannot be allocated: move_ptes then splits, or fails to allocate).
bool move_huge_pmd_extent(Kernel& k, vm_area_struct* vma, uint64_t old_addr, uint64_t new_addr) {
    mm_struct& mm = *vma->vm_mm;
    PmdRef old_pmd = pmd_lookup(k, mm, old_addr);
    if (!old_pmd || !pmd_trans_huge(pmd_entry(k, old_pmd))) return false;
    PmdRef new_pmd = pmd_alloc(k, mm, new_addr);
    if (!new_pmd) return false;
    take_rmap_locks(k, vma);
    bool moved = move_huge_pmd(k, vma, old_pmd, new_pmd, old_addr);
    drop_rmap_locks(k, vma);
    return moved;
}

// move_page_tables, one extent at a time: no extent crosses a PTE table on either side.
// Returns how many bytes were done (pmc_progress): less than len when a page table at
// the new place could not be allocated.
uint64_t move_page_tables(Kernel& k, vm_area_struct* vma, uint64_t old_addr, uint64_t new_addr,
                          uint64_t len) {
    uint64_t span = k.geo.span(PTE_LEVEL);
    uint64_t done = 0;
    while (done < len) {
        uint64_t o = old_addr + done, n = new_addr + done;
        uint64_t extent = std::min({len - done, span - o % span, span - n % span});
        bool moved = extent == span && move_huge_pmd_extent(k, vma, o, n);
        if (!moved && !move_ptes(k, vma, o, extent, n)) break;
        done += extent;
    }
    return done;
}

// copy_vma: the VMA at the new place, merged into a neighbour there if upstream would.
// An anonymous VMA that never faulted gets the pgoff of its new address, so that it
// can merge there.  Returns it inside a write section (vma_write_begin), which the
// caller ends once the PTEs have moved: a fault must not fill the new range first, or
// move_ptes overwrites its PTE ("mm: protect mremap() against SPF hanlder": copy_vma
// returns the VMA still marked, for vm_raw_write_end after move_page_tables).
vm_area_struct* copy_vma(Kernel& k, mm_struct& mm, const vm_area_struct* vma, uint64_t new_addr,
                         uint64_t new_len, uint64_t new_pgoff) {
    if (vma->vma_is_anonymous() && !vma->anon_vma) new_pgoff = new_addr >> PAGE_SHIFT;
    // keep_locked: the merged VMA's section must not end inside the merge, whose
    // free_removed may sleep on an anon_vma lock while a fault fills the new range
    // (soak spf pct seed 65579).
    if (vm_area_struct* merged = vma_merge_new_range(mm, new_addr, new_addr + new_len,
                                                     vma->vm_flags, vma->vm_file, new_pgoff, vma,
                                                     /*keep_locked=*/true))
        return merged;
    vm_area_struct* n = mm.vm_area_dup(*vma);  // sharing the anon_vma
    anon_vma_clone(k, n, vma);
    n->vm_start = new_addr;
    n->vm_end = new_addr + new_len;
    n->vm_pgoff = new_pgoff;
    vma_write_begin(n);  // before a fault can find it in the tree
    mm.vma_link(n);
    vma_link_file(k, n);
    return n;
}

// move_vma (copy_vma_and_data): a new VMA, the page tables moved into it, the old
// range unmapped.  If the page tables cannot all move (out of page-table pages), the
// PTEs moved so far go back, the new range is unmapped instead, and it is -ENOMEM.
int64_t move_vma(Kernel& k, mm_struct& mm, vm_area_struct* vma, uint64_t old_addr,
                 uint64_t old_len, uint64_t new_len, uint64_t new_addr) {
    // Faults in either range must wait or fall back while page tables move: the new
    // one would fill PTEs that move_ptes overwrites, the old one PTEs (the zero page
    // where content just left) until the unmap below is done with it ("mm: protect
    // mremap() against SPF handler", and v6's "fix race window when moving VMA in
    // move_vma()"; vma_start_write in move_vma upstream).  do_munmap's splits leave
    // vma itself as the unmapped part, so its section covers the old range; the
    // reference keeps it until the section ends.
    vma_write_begin(vma);
    hold_vma(vma);
    vm_area_struct* new_vma = copy_vma(k, mm, vma, new_addr, new_len, vma->pgoff_at(old_addr));
    uint64_t moved = move_page_tables(k, vma, old_addr, new_addr, old_len);
    if (moved < old_len) {
        // "Move entries back from new area to old, which will succeed since page tables
        // still there": the result is not checked upstream either.  Then the roles swap:
        // the new range is unmapped, under new_vma's section.
        move_page_tables(k, new_vma, new_addr, old_addr, moved);
        vma_write_end_spf(vma);
        release_vma(vma);
        hold_vma(new_vma);
        do_munmap(k, mm, new_addr, new_addr + new_len, /*downgrade=*/false);
        vma_write_end_spf(new_vma);
        release_vma(new_vma);
        return -ENOMEM_;
    }
    vma_write_end_spf(new_vma);
    mremap_userfaultfd_prep(k, new_vma);
    do_munmap(k, mm, old_addr, old_addr + old_len, /*downgrade=*/false);
    vma_write_end_spf(vma);
    release_vma(vma);
    return static_cast<int64_t>(new_addr);
}

enum class RemapType { no_resize, shrink, expand };

// One remap request, as struct vma_remap_struct threads it through mm/mremap.c.
struct Remap {
    uint64_t addr, old_len, new_len, new_addr;
    bool fixed, maymove;
    vm_area_struct* vma = nullptr;
    bool mmap_locked = true;
    RemapType type() const {
        return old_len == new_len ? RemapType::no_resize
                                  : old_len > new_len ? RemapType::shrink : RemapType::expand;
    }
};

// check_prep_vma: can vma be resized or moved as asked?  0 or an errno.
int check_prep_vma(const Remap& r) {
    if (!r.vma) return EFAULT_;
    if (r.type() != RemapType::expand && !r.fixed) return 0;
    // A shrink may unmap past the VMA's end; only what stays must lie inside it.
    uint64_t old_len = r.type() == RemapType::shrink ? r.new_len : r.old_len;
    if (old_len > r.vma->vm_end - r.addr) return EFAULT_;  // no remap across a VMA's end
    return 0;
}

// shrink_vma: unmap the tail; with drop_lock munmap downgrades and releases mmap_lock.
int shrink_vma(Kernel& k, mm_struct& mm, Remap& r, bool drop_lock) {
    do_munmap(k, mm, r.addr + r.new_len, r.addr + r.old_len, drop_lock);
    if (drop_lock) {
        r.mmap_locked = false;
        return 0;
    }
    r.vma = mm.vma_lookup(r.addr);
    return r.vma ? 0 : EFAULT_;
}

// mremap_to: move to r.new_addr (MREMAP_FIXED): unmap the destination first.
int64_t mremap_to(Kernel& k, mm_struct& mm, Remap& r) {
    do_munmap(k, mm, r.new_addr, r.new_addr + r.new_len, false);
    r.vma = mm.vma_lookup(r.addr);  // a move inside the same VMA may have split it
    if (!r.vma) return -EFAULT_;
    if (r.type() == RemapType::shrink) {
        if (int e = shrink_vma(k, mm, r, false)) return -e;
        r.old_len = r.new_len;
    }
    return move_vma(k, mm, r.vma, r.addr, r.old_len, r.new_len, r.new_addr);
}

// vma_expandable: nothing lies in the delta bytes after vma.
bool vma_expandable(const mm_struct& mm, const vm_area_struct* vma, uint64_t delta) {
    uint64_t end = vma->vm_end + delta;
    return end > vma->vm_end && end <= TASK_SIZE && range_is_free(mm, vma->vm_end, delta);
}

// expand_vma: in place if [addr, addr + old_len) reaches the VMA's end and the space
// after it is free (vma_merge_extend, which may also merge the successor), else move.
int64_t expand_vma(Kernel& k, mm_struct& mm, Remap& r) {
    uint64_t delta = r.new_len - r.old_len;
    if (r.vma->vm_end - r.addr == r.old_len && vma_expandable(mm, r.vma, delta)) {
        if (!vma_merge_new_range(mm, r.vma->vm_end, r.vma->vm_end + delta, r.vma->vm_flags,
                                 r.vma->vm_file, r.vma->pgoff_at(r.vma->vm_end), r.vma))
            return -ENOMEM_;
        return static_cast<int64_t>(r.addr);
    }
    if (!r.maymove) return -ENOMEM_;
    uint64_t new_addr = get_unmapped_area(mm, 0, r.new_len);  // vrm_set_new_addr
    if (!new_addr) return -ENOMEM_;
    return move_vma(k, mm, r.vma, r.addr, r.old_len, r.new_len, new_addr);
}

// mremap_at: resize where it is, moving only if it must and may.
int64_t mremap_at(Kernel& k, mm_struct& mm, Remap& r) {
    switch (r.type()) {
        case RemapType::no_resize: return static_cast<int64_t>(r.addr);
        case RemapType::shrink:
            if (int e = shrink_vma(k, mm, r, true)) return -e;
            return static_cast<int64_t>(r.addr);
        case RemapType::expand: return expand_vma(k, mm, r);
    }
    return -EINVAL_;
}

// remap_move (6.17+): a same-size MREMAP_FIXED move may span several VMAs; each moves
// on its own, keeping the gaps between them.  No gap is allowed at the start.
int64_t remap_move(Kernel& k, mm_struct& mm, const Remap& req) {
    uint64_t start = req.addr, end = req.addr + req.old_len, target = req.new_addr, last_end = 0;
    int64_t res = -EFAULT_;
    bool seen = false;
    for (uint64_t cursor = start;;) {
        vm_area_struct* vma = mm.find_vma(cursor);
        if (!vma || vma->vm_start >= end) break;
        if (!seen && start < vma->vm_start) return -EFAULT_;
        uint64_t a = std::max(vma->vm_start, start), len = std::min(end, vma->vm_end) - a;
        uint64_t offset = seen ? vma->vm_start - last_end : 0;
        last_end = vma->vm_end;
        Remap r{a, len, len, target + offset, true, true, vma};
        if (int e = check_prep_vma(r)) return -e;
        int64_t one = mremap_to(k, mm, r);
        if (one < 0) return one;
        if (!seen) res = one;
        seen = true;
        target = static_cast<uint64_t>(one) + len;
        cursor = a + len;
    }
    return res;
}

// check_mremap_params: what can be refused before looking at any VMA.
int check_mremap_params(const Remap& r) {
    if (r.new_len > TASK_SIZE) return EINVAL_;
    if (!r.fixed) return 0;
    if (r.new_addr > TASK_SIZE - r.new_len) return EINVAL_;
    if (!r.maymove) return EINVAL_;
    if (r.addr + r.old_len > r.new_addr && r.new_addr + r.new_len > r.addr) return EINVAL_;  // overlap
    return 0;
}

}  // namespace

std::string sys_mremap(Kernel& k, const Op& op) {
    mm_struct& mm = k.current_mm();
    Remap r{op.addr, op.pages * PAGE_SIZE, op.new_pages * PAGE_SIZE, op.to.value_or(0),
            (op.flags & MREMAPF_FIXED) != 0, (op.flags & MREMAPF_MAYMOVE) != 0};
    if (int e = check_mremap_params(r)) return errno_name(e);
    mmap_write_lock(mm, MMR_SITE("mremap"));
    int64_t ret;
    if (r.fixed && r.old_len == r.new_len) {
        ret = remap_move(k, mm, r);
    } else {
        r.vma = mm.vma_lookup(r.addr);
        int e = check_prep_vma(r);
        ret = e ? -e : r.fixed ? mremap_to(k, mm, r) : mremap_at(k, mm, r);
    }
    if (r.mmap_locked) mmap_write_unlock(mm, MMR_SITE("mremap"));
    mremap_userfaultfd_complete(k);
    return ret < 0 ? errno_name(static_cast<int>(-ret)) : hex(static_cast<uint64_t>(ret));
}

}  // namespace mmrace::ops
