// The context side of userfaultfd (fs/userfaultfd.c): contexts, handle_userfault and
// its wake-ups, the non-cooperative fork and mremap events, and userfaultfd_release.
// The model's semantics are described in mm/userfaultfd.hpp.
#include "mm/userfaultfd.hpp"

#include <algorithm>

#include "check/report.hpp"
#include "fault/fault.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/pgalloc.hpp"
#include "mm/vma_lock.hpp"
#include "mm/vma_merge.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"

namespace mmrace::mm {

namespace {

int current_process(Kernel& k) { return k.thread_process.at(k.rt.self()); }

void wake_all(Kernel& k, std::vector<rt::Tid>& q) {
    std::vector<rt::Tid> woken;
    woken.swap(q);
    for (rt::Tid t : woken) k.rt.wake(t);
}

// Only a uffd_serve of the program ends the waits below; a deadlock that ends at one is
// the program's own (rt::Waitable::user_wait), so the waiter must hold no lock that the
// kernel drops before it sleeps there: handle_userfault sleeps after release_fault_lock
// and the fork and mremap events are waited for with no lock (seed 001).  Under
// mmap_lock or a VMA lock, one unserved userfault would stall the whole mm.
void assert_no_fault_lock_held(const rt::Site* site) {
    sync::lockdep_assert_class_not_held("&mm->mmap_lock", site);
    sync::lockdep_assert_class_not_held("&vma->vm_lock->lock", site);
}

class UserfaultWait final : public rt::Waitable {
public:
    UserfaultWait(const userfaultfd_wait_queue& uwq, int process) : uwq_(uwq), process_(process) {}
    bool user_wait() const override { return true; }
    std::string describe() const override {
        return std::string(uwq_.reason == VM_UFFD_WP ? "a WP" : "a MISSING") +
               " userfault at " + ops::hex(uwq_.address) + " waiting for a uffd_serve of process " +
               std::to_string(process_);
    }

private:
    const userfaultfd_wait_queue& uwq_;
    int process_;
};

// userfaultfd_must_wait: with the fault's lock held, is the fault still unresolved?
// A lockless look at the PTE: none for MISSING, not writable for WP.
bool userfaultfd_must_wait(Kernel& k, fault::vm_fault& vmf, uint64_t reason) {
    TableId t = pte_table_lookup(k, *vmf.vma->vm_mm, vmf.address);
    if (t == kNoTable) return true;
    pte_t pte = ptep_get_lockless(k, PteRef{t, k.geo.index(vmf.address, PTE_LEVEL)},
                                  MMR_SITE("userfaultfd_must_wait"));
    if (pte_none(pte)) return true;
    return !pte_write(pte) && (reason & VM_UFFD_WP);
}

void remove_waiter(userfaultfd_ctx* ctx, userfaultfd_wait_queue* uwq) {
    auto& p = ctx->fault_pending_wqh;
    p.erase(std::remove(p.begin(), p.end(), uwq), p.end());
    auto& r = ctx->fault_wqh;
    r.erase(std::remove(r.begin(), r.end(), uwq), r.end());
}

// userfaultfd_reset_ctx / the unregistration of userfaultfd_release_all: VM_UFFD_*
// off every VMA of mm, merging where the flags now allow.  mmap_lock held for write.
void userfaultfd_release_all(mm_struct& mm) {
    for (vm_area_struct* vma = mm.find_vma(0); vma; vma = mm.find_vma(vma->vm_end))
        if (vma->vm_flags & __VM_UFFD_FLAGS)
            vma = vma_modify_flags(mm, vma, vma->vm_start, vma->vm_end,
                                   vma->vm_flags & ~__VM_UFFD_FLAGS);
}

userfaultfd_ctx* new_ctx(Kernel& k, const mm_struct& mm, int process) {
    auto ctx = std::make_unique<userfaultfd_ctx>();
    ctx->mm_id = mm.id;
    ctx->process = process;
    k.uffd->ctxs.push_back(std::move(ctx));
    return k.uffd->ctxs.back().get();
}

// The pending event of the calling thread, removed from the list.
bool take_event(Kernel& k, userfaultfd_event* out) {
    auto& ev = k.uffd->events;
    for (auto it = ev.begin(); it != ev.end(); ++it)
        if (it->tid == k.rt.self()) {
            *out = *it;
            ev.erase(it);
            return true;
        }
    return false;
}

class EventWait final : public rt::Waitable {
public:
    explicit EventWait(int process) : process_(process) {}
    bool user_wait() const override { return true; }
    std::string describe() const override {
        return "a fork or mremap waiting for a uffd_serve of process " + std::to_string(process_) +
               " to read its userfaultfd event";
    }

private:
    int process_;
};

// userfaultfd_event_wait_completion: queue the event, wake the handlers, sleep until
// one reads it or the uffd is closed; then mmap_changing drops.  No locks held.
void userfaultfd_event_wait_completion(Kernel& k, userfaultfd_ctx* ctx) {
    userfaultfd_event_wait ewq{k.rt.self()};
    ctx->event_wqh.push_back(&ewq);
    wake_all(k, ctx->fd_wqh);  // wake_up_poll(&ctx->fd_wqh, EPOLLIN)
    wake_all(k, ctx->changing_wqh);
    EventWait w(ctx->process);
    assert_no_fault_lock_held(MMR_SITE("userfaultfd_event_wait_completion"));
    while (!ewq.read && !ctx->released) k.rt.wait(MMR_SITE("userfaultfd_event_wait_completion"), &w);
    auto& q = ctx->event_wqh;
    q.erase(std::remove(q.begin(), q.end(), &ewq), q.end());
    if (--ctx->mmap_changing < 0) throw ModelError("userfaultfd: mmap_changing underflow");
    if (!ctx->mmap_changing) wake_all(k, ctx->changing_wqh);
}

}  // namespace

void userfaultfd_setup(Kernel& k, const Program& p) {
    userfaultfd_state& s = *k.uffd;
    size_t n = p.processes.size();
    s.done.assign(n, 0);
    s.serving.assign(n, 0);
    s.has_server.assign(n, false);
    s.closed.assign(n, false);
    for (size_t i = 0; i < n; ++i)
        for (const auto& t : p.processes[i].threads)
            for (const auto& op : t.ops)
                if (op.kind == OpKind::uffd_serve) s.has_server[i] = true;
}

void userfaultfd_thread_done(Kernel& k) {
    int p = current_process(k);
    if (p < 0) return;
    ++k.uffd->done.at(p);
    for (auto& ctx : k.uffd->ctxs)
        if (ctx->process == p && !ctx->released) wake_all(k, ctx->fd_wqh);
}

userfaultfd_ctx* userfaultfd_ctx_of(Kernel& k, const mm_struct& mm) {
    for (auto& ctx : k.uffd->ctxs)
        if (ctx->mm_id == mm.id && !ctx->released) return ctx.get();
    return nullptr;
}

userfaultfd_ctx* userfaultfd_ctx_open(Kernel& k) {
    mm_struct& mm = k.current_mm();
    if (k.uffd->closed.at(current_process(k))) return nullptr;
    if (userfaultfd_ctx* ctx = userfaultfd_ctx_of(k, mm)) return ctx;
    return new_ctx(k, mm, current_process(k));
}

bool userfaultfd_read_events(Kernel& k, userfaultfd_ctx* ctx) {
    bool any = !ctx->event_wqh.empty();
    while (!ctx->event_wqh.empty()) {
        userfaultfd_event_wait* ewq = ctx->event_wqh.front();
        ctx->event_wqh.pop_front();
        ewq->read = true;  // userfaultfd_event_complete
        k.rt.wake(ewq->tid);
    }
    return any;
}

void wake_userfault(Kernel& k, userfaultfd_ctx* ctx, uint64_t start, uint64_t len) {
    auto wake = [&](auto& q) {
        for (auto it = q.begin(); it != q.end();) {
            userfaultfd_wait_queue* uwq = *it;
            if (uwq->address >= start && uwq->address - start < len) {
                uwq->waken = true;  // userfaultfd_wake_function: list_del_init, wake
                k.rt.wake(uwq->tid);
                it = q.erase(it);
            } else {
                ++it;
            }
        }
    };
    wake(ctx->fault_pending_wqh);
    wake(ctx->fault_wqh);
}

uint32_t handle_userfault(Kernel& k, fault::vm_fault& vmf, uint64_t reason) {
    using namespace fault;
    mm_struct& mm = *vmf.vma->vm_mm;
    if (vmf.flags & FAULT_FLAG_VMA_LOCK) vma_assert_locked(vmf.vma);  // assert_fault_locked
    else mmap_assert_locked(mm);
    userfaultfd_ctx* ctx = userfaultfd_ctx_of(k, mm);
    // A registered VMA always has its context (userfaultfd_release clears the flags
    // under mmap_write_lock before the context goes).
    if (!ctx) throw ModelError("handle_userfault: a registered VMA without a userfaultfd context");
    // The first fault must be able to drop the lock (seed 001); a retry may too.
    if (!(vmf.flags & FAULT_FLAG_ALLOW_RETRY)) {
        k.counters.inc(Counter::uffd_fault_sigbus);
        return VM_FAULT_SIGBUS;
    }
    if (vmf.flags & FAULT_FLAG_RETRY_NOWAIT) return VM_FAULT_RETRY;
    k.counters.inc(Counter::uffd_fault);
    userfaultfd_wait_queue uwq{k.rt.self(), vmf.address, reason};
    ctx->fault_pending_wqh.push_back(&uwq);  // now visible to read(2)
    bool must_wait = userfaultfd_must_wait(k, vmf, reason);
    release_fault_lock(k, vmf);
    if (must_wait && !ctx->released) {
        wake_all(k, ctx->fd_wqh);  // wake_up_poll(&ctx->fd_wqh, EPOLLIN)
        UserfaultWait w(uwq, ctx->process);
        assert_no_fault_lock_held(MMR_SITE("handle_userfault"));
        while (!uwq.waken) k.rt.wait(MMR_SITE("handle_userfault"), &w);
    }
    remove_waiter(ctx, &uwq);
    return VM_FAULT_RETRY;
}

void userfaultfd_release(Kernel& k, userfaultfd_ctx* ctx) {
    if (ctx->process >= 0) k.uffd->closed.at(ctx->process) = true;  // close(2): the fd is gone
    mm_struct* mm = nullptr;
    for (const process& pr : k.processes)
        if (pr.mm && pr.mm->id == ctx->mm_id) mm = pr.mm;
    if (mm) {
        mmap_write_lock(*mm, MMR_SITE("userfaultfd_release"));
        userfaultfd_release_all(*mm);
        // Kernel order sets released first; here it is set under mmap_write_lock once
        // no VMA is registered, so no fault can see a released context and loop on
        // VM_FAULT_NOPAGE (both orders let no new userfault wait).
        ctx->released = true;
        mmap_write_unlock(*mm, MMR_SITE("userfaultfd_release"));
    }
    ctx->released = true;
    wake_userfault(k, ctx, 0, UINT64_MAX);  // range.len == 0: wake all
    for (userfaultfd_event_wait* ewq : ctx->event_wqh) k.rt.wake(ewq->tid);
    wake_all(k, ctx->fd_wqh);
    wake_all(k, ctx->changing_wqh);
}

void dup_userfaultfd(Kernel& k, vm_area_struct* child_vma, const vm_area_struct* parent_vma) {
    if (!(child_vma->vm_flags & __VM_UFFD_FLAGS)) return;
    userfaultfd_ctx* octx = userfaultfd_ctx_of(k, *parent_vma->vm_mm);
    if (!octx) throw ModelError("dup_userfaultfd: a registered VMA without a userfaultfd context");
    // UFFD_FEATURE_EVENT_FORK: the child's VMAs keep their registration, in a context
    // of the child's own, one per parent context (the fctx list).
    for (const auto& e : k.uffd->events)
        if (e.tid == k.rt.self() && e.ctx == octx) return;
    userfaultfd_ctx* nctx = new_ctx(k, *child_vma->vm_mm, -1);
    ++octx->mmap_changing;
    k.uffd->events.push_back(userfaultfd_event{k.rt.self(), octx, nctx});
}

void dup_userfaultfd_complete(Kernel& k, mm_struct& child_mm, int child_process) {
    userfaultfd_event e;
    while (take_event(k, &e)) {
        e.new_ctx->process = child_process;
        userfaultfd_event_wait_completion(k, e.ctx);
        // The monitor got the child's uffd with the event.  If the child process has no
        // handler, the monitor closes it: the child runs unregistered.
        if (!k.uffd->has_server.at(child_process)) {
            mmap_write_lock(child_mm, MMR_SITE("userfaultfd_release"));
            userfaultfd_release_all(child_mm);
            mmap_write_unlock(child_mm, MMR_SITE("userfaultfd_release"));
            e.new_ctx->released = true;
            k.uffd->closed.at(child_process) = true;
        }
    }
}

void dup_userfaultfd_fail(Kernel& k) {
    userfaultfd_event e;
    while (take_event(k, &e)) {
        e.new_ctx->released = true;  // the child's mm goes with exit_mmap
        if (!--e.ctx->mmap_changing) wake_all(k, e.ctx->changing_wqh);
    }
}

void mremap_userfaultfd_prep(Kernel& k, vm_area_struct* new_vma) {
    mmap_assert_write_locked(*new_vma->vm_mm);
    if (!(new_vma->vm_flags & __VM_UFFD_FLAGS)) return;
    userfaultfd_ctx* ctx = userfaultfd_ctx_of(k, *new_vma->vm_mm);
    if (!ctx) throw ModelError("mremap_userfaultfd_prep: a registered VMA without a context");
    // UFFD_FEATURE_EVENT_REMAP: the moved range stays registered; UFFDIO_COPY must not
    // run until the monitor knows the new addresses.
    ++ctx->mmap_changing;
    k.uffd->events.push_back(userfaultfd_event{k.rt.self(), ctx, nullptr});
}

void mremap_userfaultfd_complete(Kernel& k) {
    userfaultfd_event e;
    while (take_event(k, &e)) userfaultfd_event_wait_completion(k, e.ctx);
}

}  // namespace mmrace::mm
