// mremap(2) for anonymous memory (mm/mremap.c as of 6.12): shrink, grow in place,
// move (maymove), move to a fixed address.  Page tables move with move_ptes, which
// flushes the old range's TLB entries before it drops the old PTE lock
// (CVE-2018-18281).
#include "mm/anon_vma.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/pgalloc.hpp"
#include "mm/vma_merge.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

constexpr int SINGLE_DEPTH_NESTING = 1;

// vma_to_resize: the VMA holding [addr, addr + old_len), or an errno.
int vma_to_resize(mm_struct& mm, uint64_t addr, uint64_t old_len, vm_area_struct** out) {
    vm_area_struct* vma = mm.vma_lookup(addr);
    if (!vma || old_len > vma->vm_end - addr) return EFAULT_;  // no remap across VMAs
    *out = vma;
    return 0;
}

// move_ptes for the part of [old, old + len) that one old PTE table covers; the new
// range gets the same PTEs.  Both PTE locks are held across the move and the flush.
void move_ptes(Kernel& k, vm_area_struct* vma, uint64_t old_addr, uint64_t len,
               uint64_t new_addr) {
    mm_struct& mm = *vma->vm_mm;
    TableId ot = pte_table_lookup(k, mm, old_addr);
    if (ot == kNoTable) return;
    PteRef dst = pte_alloc(k, mm, new_addr);
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
}

// move_page_tables, one extent at a time: no extent crosses a PTE table on either side.
void move_page_tables(Kernel& k, vm_area_struct* vma, uint64_t old_addr, uint64_t new_addr,
                      uint64_t len) {
    uint64_t span = k.geo.span(PTE_LEVEL);
    for (uint64_t done = 0; done < len;) {
        uint64_t o = old_addr + done, n = new_addr + done;
        uint64_t extent = std::min({len - done, span - o % span, span - n % span});
        move_ptes(k, vma, o, extent, n);
        done += extent;
    }
}

// copy_vma: the VMA at the new place, merged into a neighbour there if upstream would.
void copy_vma(mm_struct& mm, const vm_area_struct* vma, uint64_t new_addr, uint64_t new_len,
              uint64_t new_pgoff) {
    if (vm_area_struct* merged = vma_merge_new_range(mm, new_addr, new_addr + new_len,
                                                     vma->vm_flags, vma->vm_file, new_pgoff)) {
        if (!merged->anon_vma) {
            merged->anon_vma = vma->anon_vma;
            merged->anon_vma_chain = vma->anon_vma_chain;
        }
        return;
    }
    vm_area_struct* n = mm.vm_area_alloc();
    *n = *vma;  // vm_area_dup, sharing the anon_vma
    n->vm_start = new_addr;
    n->vm_end = new_addr + new_len;
    n->vm_pgoff = new_pgoff;
    mm.vma_link(n);
}

// move_vma: a new VMA, the page tables moved into it, the old range unmapped.
uint64_t move_vma(Kernel& k, mm_struct& mm, vm_area_struct* vma, uint64_t old_addr,
                  uint64_t old_len, uint64_t new_len, uint64_t new_addr) {
    uint64_t new_pgoff = vma->pgoff_at(old_addr);
    copy_vma(mm, vma, new_addr, new_len, new_pgoff);
    move_page_tables(k, vma, old_addr, new_addr, old_len);
    do_munmap(k, mm, old_addr, old_addr + old_len, /*downgrade=*/false);
    return new_addr;
}

// mremap_to: MREMAP_FIXED.
int64_t mremap_to(Kernel& k, mm_struct& mm, uint64_t addr, uint64_t old_len, uint64_t new_addr,
                  uint64_t new_len) {
    if (new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len) return -EINVAL_;
    if (addr + old_len > new_addr && new_addr + new_len > addr) return -EINVAL_;  // overlap
    do_munmap(k, mm, new_addr, new_addr + new_len, false);
    if (old_len > new_len) {
        do_munmap(k, mm, addr + new_len, addr + old_len, false);
        old_len = new_len;
    }
    vm_area_struct* vma = nullptr;
    if (int e = vma_to_resize(mm, addr, old_len, &vma)) return -e;
    return static_cast<int64_t>(move_vma(k, mm, vma, addr, old_len, new_len, new_addr));
}

// vma_expandable: nothing lies in the delta pages after vma.
bool vma_expandable(const mm_struct& mm, const vm_area_struct* vma, uint64_t delta) {
    uint64_t end = vma->vm_end + delta;
    return end > vma->vm_end && end <= TASK_SIZE && range_is_free(mm, vma->vm_end, delta);
}

// The body of the syscall with mmap_lock held for write.  Returns the address or
// -errno.  *unlocked is set when the shrink path already released the lock.
int64_t do_mremap(Kernel& k, mm_struct& mm, const Op& op, bool* unlocked) {
    uint64_t addr = op.addr, old_len = op.pages * PAGE_SIZE, new_len = op.new_pages * PAGE_SIZE;
    if (!mm.vma_lookup(addr)) return -EFAULT_;
    if (op.flags & MREMAPF_FIXED) return mremap_to(k, mm, addr, old_len, *op.to, new_len);
    if (old_len >= new_len) {  // always allow a shrinking remap
        if (old_len > new_len) {
            do_munmap(k, mm, addr + new_len, addr + old_len, /*downgrade=*/true);
            *unlocked = true;
        }
        return static_cast<int64_t>(addr);
    }
    vm_area_struct* vma = nullptr;
    if (int e = vma_to_resize(mm, addr, old_len, &vma)) return -e;
    if (old_len == vma->vm_end - addr && vma_expandable(mm, vma, new_len - old_len)) {
        // vma_merge_extend: grow in place (the VMA may also merge with its successor).
        mm.vma_unlink(vma);
        vma->vm_end += new_len - old_len;
        mm.vma_link(vma);
        return static_cast<int64_t>(addr);
    }
    if (!(op.flags & MREMAPF_MAYMOVE)) return -ENOMEM_;
    uint64_t new_addr = get_unmapped_area(mm, 0, new_len);
    if (!new_addr) return -ENOMEM_;
    return static_cast<int64_t>(move_vma(k, mm, vma, addr, old_len, new_len, new_addr));
}

}  // namespace

std::string sys_mremap(Kernel& k, const Op& op) {
    mm_struct& mm = k.current_mm();
    mmap_write_lock(mm, MMR_SITE("mremap"));
    bool unlocked = false;
    int64_t ret = do_mremap(k, mm, op, &unlocked);
    if (!unlocked) mmap_write_unlock(mm, MMR_SITE("mremap"));
    return ret < 0 ? errno_name(static_cast<int>(-ret)) : hex(static_cast<uint64_t>(ret));
}

}  // namespace mmrace::ops
