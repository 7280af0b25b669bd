// mmap(2) for anonymous private memory: vm_mmap_pgoff, do_mmap, get_unmapped_area
// (arch_get_unmapped_area_topdown) and mmap_region (mm/mmap.c, mm/util.c).
#include "fault/fault.hpp"
#include "gup/gup.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/stack.hpp"
#include "mm/vma_lock.hpp"
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

// unmapped_area_topdown: the highest gap below mmap_base that fits len, each VMA
// taken to start at vm_start_gap (a stack keeps its guard gap).  0 if none.
uint64_t unmapped_area_topdown(const mm_struct& mm, uint64_t len) {
    uint64_t high = mm.mmap_base;
    for (auto it = mm.mm_mt.rbegin(); it != mm.mm_mt.rend(); ++it) {
        const vm_area_struct* v = it->second;
        uint64_t start = vm_start_gap(v);
        if (start >= high) continue;
        if (v->vm_end <= high && high - v->vm_end >= len) return high - len;
        high = std::min(high, start);
    }
    return high >= len && high - len >= kMmapMinAddr ? high - len : 0;
}

// The hint check of arch_get_unmapped_area_topdown: free, and clear of the guard gap of
// a stack above it.
bool hint_fits(const mm_struct& mm, uint64_t addr, uint64_t len) {
    const vm_area_struct* next = mm.find_vma(addr);
    return !next || addr + len <= vm_start_gap(next);
}

uint64_t calc_vm_flags(const Op& op) {
    uint64_t f = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
    if (op.prot & PROT_READ_) f |= VM_READ;
    if (op.prot & PROT_WRITE_) f |= VM_WRITE;
    if (op.prot & PROT_EXEC_) f |= VM_EXEC;
    if (op.flags & MAPF_SHARED) f |= VM_SHARED | VM_MAYSHARE;
    if (op.flags & MAPF_GROWSDOWN) f |= VM_GROWSDOWN;
    // mmap_region: accountable_mapping, a private writable mapping (no MAP_NORESERVE).
    if ((f & (VM_SHARED | VM_WRITE)) == VM_WRITE) f |= VM_ACCOUNT;
    return f;
}

// populate_vma_page_range (mm/gup.c): __get_user_pages over [start, end) of vma with no
// pages to fill: FOLL_TOUCH, FOLL_WRITE for a private writable mapping (to break COW
// now), FOLL_FORCE, FOLL_UNLOCKABLE.  Like any GUP it faults until follow_page_mask
// finds what it asked for: a read fault that raced (a GUP's or another thread's) and
// left a read-only PTE is followed by a write fault that COWs it.  Returns the pages
// done, or a negative errno if the first page failed; a fault that waits for I/O drops
// mmap_lock (*locked = false).  mmap_lock held for read on entry.  `tried`: fault the
// first page with FOLL_TRIED (see mm_populate).
int64_t populate_vma_page_range(Kernel& k, vm_area_struct* vma, uint64_t start, uint64_t end,
                                bool* locked, bool tried) {
    if (!(vma->vm_flags & VM_ACCESS_FLAGS)) return -1;  // check_vma_flags: PROT_NONE
    uint32_t flags = gup::FOLL_TOUCH | gup::FOLL_FORCE | gup::FOLL_UNLOCKABLE;
    if ((vma->vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE) flags |= gup::FOLL_WRITE;
    long nr = static_cast<long>((end - start) / PAGE_SIZE);
    std::vector<Pfn> none;  // neither FOLL_GET nor FOLL_PIN: nothing is grabbed
    mm_struct& mm = *vma->vm_mm;
    long first = gup::__get_user_pages(k, mm, start, 1, flags | (tried ? gup::FOLL_TRIED : 0u),
                                       none, locked);
    if (first != 1 || nr == 1 || !*locked) return first;
    long rest = gup::__get_user_pages(k, mm, start + PAGE_SIZE, nr - 1, flags, none, locked);
    return 1 + std::max(rest, 0L);
}

// __mm_populate(start, len, ignore_errors=1): relock and resume after a retry; an
// error skips the rest of that VMA.
//
// Upstream faults a page that retried again without FAULT_FLAG_TRIED for as long as it
// retries: only a fatal signal (the OOM killer's) ends retries that cannot get memory
// (filemap_fault drops mmap_lock, then finds no folio).  The model has no OOM killer,
// so a page that retried twice without being mapped is faulted with FAULT_FLAG_TRIED,
// keeping mmap_lock as __get_user_pages_locked's retry does; it then ends in
// VM_FAULT_OOM, which populate ignores.
void mm_populate(Kernel& k, mm_struct& mm, uint64_t start, uint64_t end) {
    bool locked = false;
    vm_area_struct* vma = nullptr;
    uint64_t retried_at = UINT64_MAX;  // the page the last retry stopped at
    int retries = 0;                   // how many retries in a row stopped there
    for (uint64_t nstart = start; nstart < end;) {
        if (!locked) {
            mmap_read_lock(mm, MMR_SITE("__mm_populate"));
            locked = true;
            vma = mm.find_vma(nstart);
        } else if (nstart >= vma->vm_end) {
            vma = mm.find_vma(vma->vm_end);
        }
        if (!vma || vma->vm_start >= end) break;  // find_vma_intersection
        uint64_t nend = std::min(end, vma->vm_end);
        nstart = std::max(nstart, vma->vm_start);
        int64_t done = populate_vma_page_range(k, vma, nstart, nend, &locked,
                                               nstart == retried_at && retries >= 2);
        if (done < 0) {
            nstart = nend;  // ignore_errors
            continue;
        }
        // Resume at the first page not done: after a retry it faults again with the
        // lock retaken; after an error it fails again and the rest of the VMA is skipped.
        nstart += static_cast<uint64_t>(done) * PAGE_SIZE;
        if (!locked) {
            retries = nstart == retried_at ? retries + 1 : 1;
            retried_at = nstart;
        }
    }
    if (locked) mmap_read_unlock(mm, MMR_SITE("__mm_populate"));
}

// shmem_zero_setup: a new shmem object of len bytes for a shared anonymous mapping.
int shmem_zero_setup(Kernel& k, uint64_t len) {
    auto f = std::make_unique<address_space>();
    f->id = static_cast<int>(k.files.size());
    f->name = "/dev/zero (deleted)";
    f->i_size = len;
    f->shmem = true;
    k.files.push_back(std::move(f));
    return k.files.back()->id;
}

}  // namespace

// arch_get_unmapped_area_topdown: a free hint is honoured, else search top-down.
uint64_t get_unmapped_area(const mm_struct& mm, uint64_t hint, uint64_t len) {
    if (len > TASK_SIZE - kMmapMinAddr) return 0;
    if (hint && hint >= kMmapMinAddr && TASK_SIZE - len >= hint && hint_fits(mm, hint, len))
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
    // Anonymous private memory takes the pgoff of its address (for anon_vma), a file
    // mapping the file offset it asked for.
    int file = op.flags & MAPF_ANON ? -1 : op.file;
    uint64_t pgoff = file < 0 ? addr >> PAGE_SHIFT : op.pgoff;
    if ((op.flags & MAPF_ANON) && (op.flags & MAPF_SHARED)) {
        file = shmem_zero_setup(k, len);  // MAP_SHARED|MAP_ANONYMOUS: pgoff is ignored
        pgoff = 0;
    }
    if (!vma_merge_new_range(mm, addr, addr + len, flags, file, pgoff)) {
        vm_area_struct* vma = mm.vm_area_alloc();
        vma->vm_start = addr;
        vma->vm_end = addr + len;
        vma->vm_flags = flags;
        vma->vm_pgoff = pgoff;
        vma->vm_file = file;
        vma_start_write(vma);  // 33313a747e81: locked before it becomes visible
        mm.vma_link(vma);
        vma_link_file(k, vma);
    }
    mmap_write_unlock(mm, MMR_SITE("vm_mmap_pgoff"));
    // mm_populate runs after the write lock is dropped.
    if (op.flags & MAPF_POPULATE) mm_populate(k, mm, addr, addr + len);
    return hex(addr);
}

}  // namespace mmrace::ops
