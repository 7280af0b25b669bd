// The userfaultfd ops (DESIGN §9): UFFDIO_REGISTER, UFFDIO_WRITEPROTECT and the handler
// thread of `uffd_serve` (read(2) on the uffd, then UFFDIO_COPY / UFFDIO_WRITEPROTECT /
// UFFDIO_WAKE), over mm/userfaultfd.hpp.
#include "mm/mmap_lock.hpp"
#include "mm/userfaultfd.hpp"
#include "mm/vma_merge.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

// validate_range (fs/userfaultfd.c): 0 or EINVAL.
int validate_range(uint64_t start, uint64_t pages) {
    uint64_t len = pages * PAGE_SIZE;
    if (start & (PAGE_SIZE - 1) || !pages || pages > TASK_SIZE / PAGE_SIZE) return EINVAL_;
    if (start < kMmapMinAddr || start >= TASK_SIZE || len > TASK_SIZE - start) return EINVAL_;
    return 0;
}

// vma_can_userfault: anonymous private memory only in the model (the kernel also takes
// shmem and hugetlb, and for WP with PTE markers more).
bool vma_can_userfault(const vm_area_struct* vma) {
    return vma->vma_is_anonymous() && !(vma->vm_flags & VM_SHARED);
}

// userfaultfd_register's checks of every VMA in [start, end): 0, EINVAL or EPERM.
int userfaultfd_register_check(mm_struct& mm, uint64_t start, uint64_t end) {
    vm_area_struct* vma = mm.find_vma(start);
    if (!vma || vma->vm_start >= end) return EINVAL_;  // no VMA in the range at all
    for (; vma && vma->vm_start < end; vma = mm.find_vma(vma->vm_end)) {
        if (!vma_can_userfault(vma)) return EINVAL_;
        // UFFDIO_COPY fills holes even without PROT_WRITE: the mapping must allow writes.
        if (!(vma->vm_flags & VM_MAYWRITE)) return EPERM_;
    }
    return 0;
}

// The userfault the handler read (its uffd_msg).
struct uffd_msg {
    uint64_t address;
    uint64_t reason;
};

// The handler waits in read(2) (poll) until a userfault is pending, or returns false
// when it should stop: no thread that may fault is left in its process.
bool userfaultfd_ctx_read(Kernel& k, userfaultfd_ctx* ctx, uffd_msg* msg) {
    struct ReadWait final : rt::Waitable {
        std::string describe() const override { return "uffd_serve waiting for a userfault"; }
    } w;
    for (;;) {
        if (!ctx->fault_pending_wqh.empty()) {
            userfaultfd_wait_queue* uwq = ctx->fault_pending_wqh.front();  // the oldest
            ctx->fault_pending_wqh.pop_front();
            ctx->fault_wqh.push_back(uwq);  // refile: read, not yet woken
            *msg = uffd_msg{uwq->address, uwq->reason};
            return true;
        }
        // Then events: fork and remap wait for the monitor to know of them.
        if (userfaultfd_read_events(k, ctx)) continue;
        // Threads that could still fault in the process's memory: not finished and not
        // handlers themselves.
        int p = ctx->process;
        int may_fault = k.processes.at(p).nr_threads - k.uffd->done.at(p) - k.uffd->serving.at(p);
        if (may_fault <= 0) return false;
        ctx->fd_wqh.push_back(k.rt.self());
        k.rt.wait(MMR_SITE("userfaultfd_ctx_read"), &w);
    }
}

// What a handler does on EAGAIN: try again once the non-cooperative event is over.
void wait_mmap_changing(Kernel& k, userfaultfd_ctx* ctx) {
    struct ChangingWait final : rt::Waitable {
        std::string describe() const override { return "uffd_serve waiting to retry EAGAIN"; }
    } w;
    k.counters.inc(Counter::uffd_eagain);
    // Back to the poll loop: the event that raised mmap_changing may be the one to read.
    for (;;) {
        userfaultfd_read_events(k, ctx);
        if (!ctx->mmap_changing || ctx->released) return;
        ctx->changing_wqh.push_back(k.rt.self());
        k.rt.wait(MMR_SITE("uffd_serve_eagain"), &w);
    }
}

// Resolves one userfault: UFFDIO_COPY for MISSING, UFFDIO_WRITEPROTECT off for WP, and
// UFFDIO_WAKE when the ioctl did not wake (it failed: EEXIST means another copy or a
// fault resolved the page; ENOENT that the range went; ENOMEM is given up on).
void resolve_userfault(Kernel& k, userfaultfd_ctx* ctx, const uffd_msg& msg, uint64_t value) {
    int ret;
    for (;;) {
        ret = msg.reason == VM_UFFD_MISSING ? mfill_atomic_copy(k, ctx, msg.address, value)
                                            : mwriteprotect_range(k, ctx, msg.address, PAGE_SIZE, false);
        if (ret != -EAGAIN_ || ctx->released) break;
        wait_mmap_changing(k, ctx);
    }
    // A successful ioctl wakes the range itself (no MODE_DONTWAKE); UFFDIO_WAKE
    // otherwise.  Either way the same wake_userfault.
    wake_userfault(k, ctx, msg.address, PAGE_SIZE);
}

}  // namespace

std::string sys_uffd_register(Kernel& k, uint64_t start, uint64_t pages, UffdMode mode) {
    if (int e = validate_range(start, pages)) return errno_name(e);
    uint64_t end = start + pages * PAGE_SIZE;
    uint64_t vm_flags = mode == UffdMode::missing ? VM_UFFD_MISSING : VM_UFFD_WP;
    mm_struct& mm = k.current_mm();
    mmap_write_lock(mm, MMR_SITE("userfaultfd_register"));
    // Open (or find) the uffd under the lock that userfaultfd_release clears
    // registrations under: the context stays open until this registration is done.
    int error = userfaultfd_ctx_open(k) ? userfaultfd_register_check(mm, start, end) : EBADF_;
    for (vm_area_struct* vma = error ? nullptr : mm.find_vma(start); vma && vma->vm_start < end;
         vma = mm.find_vma(vma->vm_end)) {
        if ((vma->vm_flags & vm_flags) == vm_flags) continue;  // already registered so
        uint64_t newflags = (vma->vm_flags & ~__VM_UFFD_FLAGS) | vm_flags;
        // vma_modify_flags_uffd: split or merge as mprotect does, under the VMA writer
        // rules of the strategy (vma_start_write, vm_write_begin).
        vma = vma_modify_flags(mm, vma, std::max(start, vma->vm_start),
                               std::min(end, vma->vm_end), newflags);
    }
    mmap_write_unlock(mm, MMR_SITE("userfaultfd_register"));
    return error ? errno_name(error) : "0";
}

std::string sys_uffd_wp(Kernel& k, uint64_t start, uint64_t pages, bool on) {
    if (int e = validate_range(start, pages)) return errno_name(e);
    // A closed uffd: EBADF.  None opened yet: the model answers EINVAL.
    userfaultfd_ctx* ctx = userfaultfd_ctx_of(k, k.current_mm());
    if (!ctx) return errno_name(k.uffd->closed.at(k.thread_process.at(k.rt.self())) ? EBADF_ : EINVAL_);
    uint64_t len = pages * PAGE_SIZE;
    int ret = mwriteprotect_range(k, ctx, start, len, on);
    if (ret == -EAGAIN_) k.counters.inc(Counter::uffd_eagain);
    if (ret) return errno_name(-ret);
    if (!on) wake_userfault(k, ctx, start, len);  // unless MODE_DONTWAKE
    return "0";
}

std::string uffd_serve(Kernel& k, uint64_t count, uint64_t value) {
    userfaultfd_ctx* ctx = userfaultfd_ctx_open(k);
    if (!ctx) return "0";  // the process's uffd was closed: nothing to read
    int p = ctx->process;
    ++k.uffd->serving.at(p);
    ++ctx->readers;
    uffd_msg msg;
    for (uint64_t served = 0; served < count && userfaultfd_ctx_read(k, ctx, &msg); ++served)
        resolve_userfault(k, ctx, msg, value);
    --k.uffd->serving.at(p);
    // The last handler closes the uffd.
    if (!--ctx->readers && !ctx->released) userfaultfd_release(k, ctx);
    return "0";
}

}  // namespace mmrace::ops
