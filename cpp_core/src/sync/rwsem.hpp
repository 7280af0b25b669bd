// struct rw_semaphore for the sim backend (kernel/locking/rwsem.c): mmap_lock, the
// per-VMA lock, anon_vma->rwsem, i_mmap_rwsem.
//
// Semantics kept from the kernel:
//   - a FIFO wait queue; a new reader queues when a writer holds the lock OR any waiter
//     is queued (RWSEM_READ_FAILED_MASK includes RWSEM_FLAG_WAITERS), so a waiting
//     writer is not starved by a stream of readers;
//   - on release (rwsem_mark_wake): a writer at the head of the queue is woken only
//     when the lock is free; a reader at the head wakes every queued reader, skipping
//     queued writers, up to MAX_READERS_WAKEUP (phase-fair reader wakeup);
//   - downgrade_write wakes the queued readers (RWSEM_WAKE_READ_OWNED) but never a
//     writer at the head.
// Deterministic simplification: ownership is handed over at wake time (as the kernel
// does for readers, and for a writer once the handoff bit is set), so a woken thread
// owns the lock without re-checking, and the lock is never free while waiters queue:
// reader lock stealing and writer optimistic spinning, which only reorder who wins a
// free lock, do not arise.
//
// Every operation is a scheduling point (Ev::lock_acquire before an acquisition takes
// effect, Ev::lock_release after a release); blocking is rt.wait.  Blocking variants call
// might_sleep() first, as the kernel's do.
#pragma once

#include <string>
#include <vector>

#include "runtime/runtime.hpp"
#include "sync/lockdep.hpp"
#include "sync/waitqueue.hpp"

namespace mmrace::sync {

class RwSem : public rt::Waitable, public LockdepMap {
public:
    // `name` is the lockdep class, e.g. "&mm->mmap_lock".
    explicit RwSem(std::string name = "rw_semaphore");

    // down_read(): shared; sleeps while a writer holds the lock or anyone is queued.
    void down_read(const rt::Site* site = nullptr);
    // down_read_nested(): the same with a lockdep subclass.
    void down_read_nested(unsigned subclass, const rt::Site* site = nullptr);
    // down_read_killable(): no signals in the model, so down_read() returning 0.
    int down_read_killable(const rt::Site* site = nullptr);
    // down_read_trylock(): true if taken; fails if a writer holds it or anyone is queued.
    bool down_read_trylock(const rt::Site* site = nullptr);
    // down_write(): exclusive; sleeps until the lock is handed over.
    void down_write(const rt::Site* site = nullptr);
    // down_write_nested(): the same with a lockdep subclass (SINGLE_DEPTH_NESTING).
    void down_write_nested(unsigned subclass, const rt::Site* site = nullptr);
    // down_write_killable(): no signals in the model, so down_write() returning 0.
    int down_write_killable(const rt::Site* site = nullptr);
    // down_write_trylock(): true if taken; needs the lock free (and so no waiters).
    bool down_write_trylock(const rt::Site* site = nullptr);
    // up_read(): violation bad_unlock_balance unless the caller holds it for read.
    void up_read(const rt::Site* site = nullptr);
    // up_write(): violation bad_unlock_balance unless the caller holds it for write.
    void up_write(const rt::Site* site = nullptr);
    // downgrade_write(): the caller's write hold becomes a read hold; wakes queued readers.
    void downgrade_write(const rt::Site* site = nullptr);

    // Queries (no scheduling point): rwsem_is_locked(), rwsem_is_contended() ...
    bool is_locked() const;
    bool is_write_locked() const;
    bool is_contended() const;
    rt::Tid owner() const;                 // the writer, or kNoThread
    size_t readers() const;                // read holds (a thread may hold twice)
    std::vector<rt::Tid> reader_threads() const;
    size_t waiters() const;

    std::string describe() const override { return lock_name(); }
    void holders(std::vector<rt::Tid>& out) const override;

private:
    enum class WakeType { any, read_owned };  // RWSEM_WAKE_ANY, RWSEM_WAKE_READ_OWNED
    SyncDomain& begin(rt::Tid& me);
    void read_common(const rt::Site* site, unsigned subclass);
    void write_common(const rt::Site* site, unsigned subclass);
    void mark_wake(SyncDomain& d, WakeType type);
    void grant(SyncDomain& d, size_t i);
    [[noreturn]] void bad_unlock(SyncDomain& d, rt::Tid me, const char* op, const rt::Site* site);

    rt::Tid owner_ = rt::kNoThread;
    std::vector<rt::Tid> readers_;
    WaitQueue queue_;
};

// Kernel-style spellings: down_read(sem) ...
inline void down_read(RwSem& s, const rt::Site* site = nullptr) { s.down_read(site); }
inline void down_read_nested(RwSem& s, unsigned sub, const rt::Site* site = nullptr) {
    s.down_read_nested(sub, site);
}
inline int down_read_killable(RwSem& s, const rt::Site* site = nullptr) { return s.down_read_killable(site); }
inline bool down_read_trylock(RwSem& s, const rt::Site* site = nullptr) { return s.down_read_trylock(site); }
inline void down_write(RwSem& s, const rt::Site* site = nullptr) { s.down_write(site); }
inline void down_write_nested(RwSem& s, unsigned sub, const rt::Site* site = nullptr) {
    s.down_write_nested(sub, site);
}
inline int down_write_killable(RwSem& s, const rt::Site* site = nullptr) { return s.down_write_killable(site); }
inline bool down_write_trylock(RwSem& s, const rt::Site* site = nullptr) { return s.down_write_trylock(site); }
inline void up_read(RwSem& s, const rt::Site* site = nullptr) { s.up_read(site); }
inline void up_write(RwSem& s, const rt::Site* site = nullptr) { s.up_write(site); }
inline void downgrade_write(RwSem& s, const rt::Site* site = nullptr) { s.downgrade_write(site); }
inline bool rwsem_is_locked(const RwSem& s) { return s.is_locked(); }
inline bool rwsem_is_contended(const RwSem& s) { return s.is_contended(); }

}  // namespace mmrace::sync
