// mmap(2) for anonymous private memory: vm_mmap_pgoff, do_mmap, get_unmapped_area
// (arch_get_unmapped_area_topdown) and mmap_region (mm/mmap.c, mm/util.c).
// Merging with neighbours (vma_merge_new_range), MAP_FIXED over existing mappings
// (which needs munmap), file and shmem mappings come with issue 3.
#include "fault/fault.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/vma_merge.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

bool range_is_free(const mm_struct& mm, uint64_t addr, uint64_t len) {
    vm_area_struct* v = mm.find_vma(addr);
    return !v || v->vm_start >= addr + len;
}

namespace {

// unmapped_area_topdown: the highest gap below mmap_base that fits len.  0 if none.
uint64_t unmapped_area_topdown(const mm_struct& mm, uint64_t len) {
    uint64_t high = mm.mmap_base;
    for (auto it = mm.mm_mt.rbegin(); it != mm.mm_mt.rend(); ++it) {
        const vm_area_struct* v = it->second;
        if (v->vm_start >= high) continue;
        if (v->vm_end <= high && high - v->vm_end >= len) return high - len;
        high = std::min(high, v->vm_start);
    }
    return high >= len && high - len >= kMmapMinAddr ? high - len : 0;
}

uint64_t calc_vm_flags(const Op& op) {
    uint64_t f = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
    if (op.prot & PROT_READ_) f |= VM_READ;
    if (op.prot & PROT_WRITE_) f |= VM_WRITE;
    if (op.prot & PROT_EXEC_) f |= VM_EXEC;
    if (op.flags & MAPF_SHARED) f |= VM_SHARED | VM_MAYSHARE;
    if (op.flags & MAPF_GROWSDOWN) f |= VM_GROWSDOWN;
    return f;
}

// populate_vma_page_range via __mm_populate: fault every page in, writing for a
// private writable mapping so that COW is broken now.  mmap_lock held for read.
void populate(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end) {
    bool write = (vma->vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE;
    uint32_t flags = fault::FAULT_FLAG_DEFAULT | (write ? uint32_t{fault::FAULT_FLAG_WRITE} : 0u);
    if (!(vma->vm_flags & VM_ACCESS_FLAGS)) return;  // PROT_NONE: nothing to populate
    for (uint64_t a = start; a < end; a += PAGE_SIZE) fault::handle_mm_fault(k, vma, a, flags);
}

}  // namespace

// arch_get_unmapped_area_topdown: a free hint is honoured, else search top-down.
uint64_t get_unmapped_area(const mm_struct& mm, uint64_t hint, uint64_t len) {
    if (len > TASK_SIZE - kMmapMinAddr) return 0;
    if (hint && hint >= kMmapMinAddr && TASK_SIZE - len >= hint && range_is_free(mm, hint, len))
        return hint;
    return unmapped_area_topdown(mm, len);
}

std::string sys_mmap(Kernel& k, const Op& op) {
    mm_struct& mm = k.current_mm();
    uint64_t len = op.pages * PAGE_SIZE;
    bool fixed = op.flags & (MAPF_FIXED | MAPF_FIXED_NOREPLACE);
    mmap_write_lock(mm, MMR_SITE("vm_mmap_pgoff"));
    uint64_t addr;
    if (fixed) {
        addr = op.addr;
        if (addr + len > TASK_SIZE || addr < kMmapMinAddr) {
            mmap_write_unlock(mm, MMR_SITE("vm_mmap_pgoff"));
            return errno_name(addr < kMmapMinAddr ? EPERM_ : ENOMEM_);
        }
        if (!range_is_free(mm, addr, len)) {
            if (op.flags & MAPF_FIXED_NOREPLACE) {
                mmap_write_unlock(mm, MMR_SITE("vm_mmap_pgoff"));
                return errno_name(EEXIST_);
            }
            // mmap_region: MAP_FIXED replaces whatever was there.
            do_munmap(k, mm, addr, addr + len, /*downgrade=*/false);
        }
    } else {
        addr = get_unmapped_area(mm, op.addr, len);
        if (!addr) {
            mmap_write_unlock(mm, MMR_SITE("vm_mmap_pgoff"));
            return errno_name(ENOMEM_);
        }
    }
    // mmap_region: extend a neighbour if the new range can merge, else a new VMA.
    uint64_t flags = calc_vm_flags(op);
    k.rt.yield(MMR_SITE("mmap_region"), rt::Ev::yield, addr);
    if (!vma_merge_new_range(mm, addr, addr + len, flags, -1, addr >> PAGE_SHIFT)) {
        vm_area_struct* vma = mm.vm_area_alloc();
        vma->vm_start = addr;
        vma->vm_end = addr + len;
        vma->vm_flags = flags;
        vma->vm_pgoff = addr >> PAGE_SHIFT;  // anonymous: set for anon_vma (do_mmap)
        mm.vma_link(vma);
    }
    mmap_write_unlock(mm, MMR_SITE("vm_mmap_pgoff"));
    if (op.flags & MAPF_POPULATE) {
        // __mm_populate runs after the write lock is dropped, under the read lock, and
        // stops where the range is no longer mapped.
        mmap_read_lock(mm, MMR_SITE("__mm_populate"));
        for (uint64_t a = addr; a < addr + len;) {
            vm_area_struct* v = mm.vma_lookup(a);
            if (!v) break;
            uint64_t stop = std::min(v->vm_end, addr + len);
            populate(k, v, a, stop);
            a = stop;
        }
        mmap_read_unlock(mm, MMR_SITE("__mm_populate"));
    }
    return hex(addr);
}

}  // namespace mmrace::ops
