// The FIFO of threads blocked on one lock (the rwsem wait_list, the qspinlock MCS queue,
// the qrwlock wait_lock queue).  Entries live on the waiters' stacks, like struct
// rwsem_waiter.  A waker grants the lock to an entry (sets the lock state for it) and
// wakes its thread, so a woken thread owns the lock and need not re-check.
#pragma once

#include <cstddef>
#include <vector>

#include "runtime/runtime.hpp"
#include "sync/domain.hpp"

namespace mmrace::sync {

struct LockWaiter {
    rt::Tid tid;
    bool writer;
    bool granted = false;
};

class WaitQueue {
public:
    bool empty() const { return q_.empty(); }
    size_t size() const { return q_.size(); }
    const LockWaiter& operator[](size_t i) const { return *q_[i]; }
    bool has_writer() const {
        for (const LockWaiter* w : q_)
            if (w->writer) return true;
        return false;
    }
    // Forgets every entry without touching it: the waiters of an earlier run are gone.
    void clear() { q_.clear(); }

    // Queues the calling thread `me` and blocks it on `lock` until a waker grants it.
    // Records that the acquisition had to wait (lock_waited()).
    void wait(SyncDomain& d, rt::Tid me, bool writer, const rt::Site* site,
              const rt::Waitable* lock) {
        LockWaiter w{me, writer};
        q_.push_back(&w);
        d.ctx(me).lock_waited = true;
        while (!w.granted) d.rt().wait(site, lock);
    }

    // Dequeues entry i, marks it granted and wakes its thread; returns the thread.
    // The caller has already made the thread an owner of the lock.
    rt::Tid grant(SyncDomain& d, size_t i) {
        LockWaiter* w = q_[i];
        q_.erase(q_.begin() + static_cast<std::ptrdiff_t>(i));
        w->granted = true;
        d.rt().wake(w->tid);
        return w->tid;
    }

private:
    std::vector<LockWaiter*> q_;
};

}  // namespace mmrace::sync
