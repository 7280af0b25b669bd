// userfaultfd (fs/userfaultfd.c, mm/userfaultfd.c; DESIGN §6): the context, the
// registration of ranges, the blocking of userfaults and their resolution by a handler
// thread (UFFDIO_COPY, UFFDIO_WRITEPROTECT, UFFDIO_WAKE), and the non-cooperative
// events of fork and mremap that make UFFDIO_COPY return EAGAIN (mmap_changing).
//
// The model's semantics (documented in docs and DESIGN §6):
//  - One context per process (the uffd its `uffd_register` or `uffd_serve` opens first),
//    opened with UFFD_FEATURE_EVENT_FORK and UFFD_FEATURE_EVENT_REMAP, as a
//    non-cooperative monitor (CRIU) opens it.  So fork and mremap bump mmap_changing,
//    the child of a fork inherits registrations in a context of its own, and a moved
//    range stays registered.  EVENT_REMOVE/EVENT_UNMAP, WP_UNPOPULATED (PTE markers),
//    UFFD_FEATURE_SIGBUS and hugetlb/shmem/file registrations are not modelled: shmem
//    and file VMAs are refused with EINVAL (the kernel accepts shmem).
//  - fork and mremap wait (userfaultfd_event_wait_completion) until a handler of the
//    process reads their event, or the uffd is closed; mmap_changing drops after.  A
//    handler reads events after pending userfaults, also while it waits to retry an
//    EAGAIN, as a real monitor's poll loop does.
//  - Each process has one uffd.  Its first uffd_register or uffd_serve opens it (a
//    forked child's is the one its fork event brought to the monitor).  Once closed it
//    stays closed, as a closed fd does: a later uffd_register or uffd_wp is EBADF and a
//    later uffd_serve returns at once.
//  - `uffd_serve COUNT value=V` is the monitor of its process's context: it reads up to
//    COUNT userfaults, resolving each (MISSING: UFFDIO_COPY of a page whose words are V;
//    WP: UFFDIO_WRITEPROTECT off that page), retrying EAGAIN once mmap_changing drops
//    and waking the faulting thread with UFFDIO_WAKE when the ioctl failed (EEXIST,
//    ENOENT, ENOMEM).  It returns early when no userfault is pending and every other
//    thread of its process has finished or is itself serving (no thread that could
//    still fault is left).  When the last serving op of a process returns, the uffd is
//    closed (userfaultfd_release): registrations end, blocked faults retry as ordinary
//    faults, and a fork or mremap waiting for its event goes on.
//  - A forked process with no `uffd_serve` op in the program gets its inherited context
//    closed at once (the monitor closes the new uffd the fork event brought).
//  - A registration is made under mmap_write_lock with the context checked open there:
//    userfaultfd_release marks the context released under the same lock once it has
//    cleared every registration, so no VMA is ever registered with a closed context
//    (in Linux the ioctl's file reference keeps release from running meanwhile).
//  - A fault in a registered range whose process never serves waits forever: that is
//    the program's deadlock, as on a real kernel.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "mm/kernel.hpp"
#include "mmrace/program.hpp"

namespace mmrace::fault {
struct vm_fault;
}

namespace mmrace::mm {

constexpr uint64_t __VM_UFFD_FLAGS = VM_UFFD_MISSING | VM_UFFD_WP;

// struct userfaultfd_wait_queue: one blocked userfault.  Lives on the faulting
// thread's stack; the handler copies what it needs (the uffd_msg) when it reads it.
struct userfaultfd_wait_queue {
    rt::Tid tid;
    uint64_t address;  // page aligned
    uint64_t reason;   // VM_UFFD_MISSING or VM_UFFD_WP
    bool waken = false;
};

// A non-cooperative event (UFFD_EVENT_FORK, UFFD_EVENT_REMAP) waiting for the monitor
// to read it, on the stack of the thread that raised it.
struct userfaultfd_event_wait {
    rt::Tid tid;
    bool read = false;
};

// struct userfaultfd_ctx
struct userfaultfd_ctx {
    int mm_id;          // ctx->mm (by id: an mm is never reused within a run)
    int process;        // whose threads serve it
    bool released = false;
    int mmap_changing = 0;
    std::deque<userfaultfd_wait_queue*> fault_pending_wqh;  // not read yet
    std::vector<userfaultfd_wait_queue*> fault_wqh;         // read, not yet woken
    std::deque<userfaultfd_event_wait*> event_wqh;          // events not read yet
    std::vector<rt::Tid> fd_wqh;        // handlers waiting in read(2)
    std::vector<rt::Tid> changing_wqh;  // handlers waiting to retry an EAGAIN
    int readers = 0;                    // uffd_serve ops under way
};

// A non-cooperative event whose completion (dup_userfaultfd_complete,
// mremap_userfaultfd_complete) is pending on the thread that began it.
struct userfaultfd_event {
    rt::Tid tid;
    userfaultfd_ctx* ctx;      // whose mmap_changing it raised
    userfaultfd_ctx* new_ctx;  // fork: the child's context
};

struct userfaultfd_state {
    std::vector<std::unique_ptr<userfaultfd_ctx>> ctxs;  // every context of the run
    std::vector<userfaultfd_event> events;
    std::vector<int> done;        // per process: threads that finished
    std::vector<int> serving;     // per process: threads inside uffd_serve
    std::vector<bool> has_server; // per process: the program has a uffd_serve op
    std::vector<bool> closed;     // per process: its uffd was closed (for good)
};

// Run set-up: which processes have a handler.  After Kernel::reset.
void userfaultfd_setup(Kernel& k, const Program& p);
// The calling thread has finished its ops: a handler waiting for its process's last
// faulting thread may return.
void userfaultfd_thread_done(Kernel& k);

// The open context of mm, or null (vma->vm_userfaultfd_ctx.ctx for every registered
// VMA of mm).
userfaultfd_ctx* userfaultfd_ctx_of(Kernel& k, const mm_struct& mm);

// The context of the calling thread's process, opened (userfaultfd(2) + UFFDIO_API
// with EVENT_FORK | EVENT_REMAP) if it has none; null once the process's uffd was
// closed.  A caller that registers holds mmap_write_lock, so that the context stays
// open until it drops it.
userfaultfd_ctx* userfaultfd_ctx_open(Kernel& k);
// userfaultfd_release: the uffd is closed.  Every registration of ctx->mm ends
// (under mmap_write_lock, with the strategies' VMA writer rules) and every blocked
// userfault is woken to retry.  No locks held on entry.
void userfaultfd_release(Kernel& k, userfaultfd_ctx* ctx);
// The handler's read of pending events: each is marked read and its thread woken.
// True if there was one.
bool userfaultfd_read_events(Kernel& k, userfaultfd_ctx* ctx);
// wake_userfault: wakes the userfaults of ctx in [start, start + len), read or not.
void wake_userfault(Kernel& k, userfaultfd_ctx* ctx, uint64_t start, uint64_t len);

// mfill_atomic for UFFDIO_COPY of one page whose words all read `value`
// (mm/userfaultfd.c): takes mmap_read_lock.  0 or a negative errno: EAGAIN while a
// non-cooperative event is under way, ENOENT without a registered VMA there, EEXIST
// if the PTE is not none, ENOMEM.  Does not wake.
int mfill_atomic_copy(Kernel& k, userfaultfd_ctx* ctx, uint64_t dst, uint64_t value);
// mwriteprotect_range (mm/userfaultfd.c): uffd-wp on or off for [start, start + len)
// through change_protection, under mmap_read_lock.  0, -EAGAIN or -ENOENT (a VMA in
// the range is not registered for WP, or none is there).
int mwriteprotect_range(Kernel& k, userfaultfd_ctx* ctx, uint64_t start, uint64_t len,
                        bool enable_wp);

// handle_userfault (fs/userfaultfd.c): the fault holds mmap_lock for read or (config
// vma_lock=uffd) the VMA lock, and no PTE lock.  Without FAULT_FLAG_ALLOW_RETRY it is
// VM_FAULT_SIGBUS.  Otherwise it queues the userfault, drops the fault's lock
// (release_fault_lock), sleeps until a handler wakes the address (unless
// userfaultfd_must_wait finds it resolved already) and returns VM_FAULT_RETRY.
uint32_t handle_userfault(Kernel& k, fault::vm_fault& vmf, uint64_t reason);

// fork: dup_userfaultfd for the child's copy of a VMA, under both mmap_locks (write);
// dup_userfaultfd_complete after they are dropped, before the child runs (child_mm
// becomes the process child_process); dup_userfaultfd_fail if the fork failed.
void dup_userfaultfd(Kernel& k, vm_area_struct* child_vma, const vm_area_struct* parent_vma);
void dup_userfaultfd_complete(Kernel& k, mm_struct& child_mm, int child_process);
void dup_userfaultfd_fail(Kernel& k);
// mremap: mremap_userfaultfd_prep for the new VMA of a successful move (mmap_lock held
// for write); mremap_userfaultfd_complete once mmap_lock is dropped.
void mremap_userfaultfd_prep(Kernel& k, vm_area_struct* new_vma);
void mremap_userfaultfd_complete(Kernel& k);

}  // namespace mmrace::mm

namespace mmrace::ops {
using mm::Kernel;
// UFFDIO_REGISTER (userfaultfd_register): "0" or an errno.
std::string sys_uffd_register(Kernel& k, uint64_t start, uint64_t pages, UffdMode mode);
// UFFDIO_WRITEPROTECT (userfaultfd_writeprotect): "0" or an errno.
std::string sys_uffd_wp(Kernel& k, uint64_t start, uint64_t pages, bool on);
// The handler thread of `uffd_serve COUNT value=V`.  "0".
std::string uffd_serve(Kernel& k, uint64_t count, uint64_t value);
}  // namespace mmrace::ops
