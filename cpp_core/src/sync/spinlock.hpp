// spinlock_t and rwlock_t for the sim backend: the split PTE lock, the PMD lock,
// page_table_lock, and (for the speculative fault path) the mm_rb rwlock.
//
// A contended lock makes the thread wait (not runnable).  In the kernel it spins on its
// CPU; blocking is the deterministic equivalent (the same set of interleavings, without
// burning steps) and, unlike sleeping, it is allowed with IRQs off or under another
// spinlock.  Holding or spinning on one disables preemption: might_sleep() complains, and
// with SyncConfig::rcu_waits_for_atomic the region holds off RCU grace periods.
// Waiters are served FIFO (qspinlock's MCS queue, qrwlock's wait_lock queue).
#pragma once

#include <string>
#include <vector>

#include "runtime/runtime.hpp"
#include "sync/lockdep.hpp"
#include "sync/waitqueue.hpp"

namespace mmrace::sync {

class SpinLock : public rt::Waitable, public LockdepMap {
public:
    // `name` is the lockdep class, e.g. "ptlock" or "&mm->page_table_lock".
    explicit SpinLock(std::string name = "spinlock");

    // spin_lock(): scheduling point, then preempt off and take the lock (waiting FIFO).
    void spin_lock(const rt::Site* site = nullptr);
    // spin_lock_nested(): the same with a lockdep subclass (move_ptes' second PTL).
    void spin_lock_nested(unsigned subclass, const rt::Site* site = nullptr);
    // spin_trylock(): true if taken.
    bool spin_trylock(const rt::Site* site = nullptr);
    // spin_unlock(): release (violation bad_unlock_balance unless the caller holds it),
    // hand over to the first waiter, preempt on, then a scheduling point.
    void spin_unlock(const rt::Site* site = nullptr);
    // spin_lock_irq() / spin_unlock_irq(): with local_irq_disable / local_irq_enable.
    void spin_lock_irq(const rt::Site* site = nullptr);
    void spin_unlock_irq(const rt::Site* site = nullptr);
    // spin_lock_irqsave() / spin_unlock_irqrestore().
    unsigned long spin_lock_irqsave(const rt::Site* site = nullptr);
    void spin_unlock_irqrestore(unsigned long flags, const rt::Site* site = nullptr);

    // Queries (no scheduling point).
    bool spin_is_locked() const;
    bool spin_is_contended() const;
    rt::Tid owner() const;

    std::string describe() const override { return lock_name(); }
    void holders(std::vector<rt::Tid>& out) const override;

private:
    enum class Irq { keep, disable, save };
    SyncDomain& begin(rt::Tid& me);
    unsigned long lock_common(const rt::Site* site, unsigned subclass, Irq irq);
    void unlock_common(const rt::Site* site, Irq irq, unsigned long flags);

    rt::Tid owner_ = rt::kNoThread;
    WaitQueue queue_;
};

// rwlock_t.  Readers share, writers exclude, waiters are served FIFO.  Two flavours:
//   recursive_readers = true (default): the classic rwlock_t, and qrwlock readers in
//     interrupt context: a reader waits only while a writer HOLDS the lock, so
//     read_lock nests freely; lockdep sees recursive reads (read=2), as
//     rwlock_acquire_read did before read_lock_is_recursive().
//   recursive_readers = false: x86 qrwlock in process context: a reader also queues
//     behind a waiting writer, so a nested read_lock can deadlock; lockdep sees
//     non-recursive reads (read=1).
class RwLock : public rt::Waitable, public LockdepMap {
public:
    explicit RwLock(std::string name = "rwlock", bool recursive_readers = true);

    // read_lock(): scheduling point, preempt off, then shared (waits per the flavour).
    void read_lock(const rt::Site* site = nullptr);
    // read_trylock(): true if taken without waiting.
    bool read_trylock(const rt::Site* site = nullptr);
    // read_unlock(): violation bad_unlock_balance unless the caller reads; the last
    // reader out hands the lock to the queue head.  Then a scheduling point.
    void read_unlock(const rt::Site* site = nullptr);
    // write_lock(): scheduling point, preempt off, then exclusive (FIFO behind waiters).
    void write_lock(const rt::Site* site = nullptr);
    // write_trylock(): true if the lock was free.
    bool write_trylock(const rt::Site* site = nullptr);
    // write_unlock(): violation bad_unlock_balance unless the caller writes.
    void write_unlock(const rt::Site* site = nullptr);

    // Queries (no scheduling point).
    bool is_locked() const;
    bool is_write_locked() const;
    rt::Tid writer() const;
    size_t readers() const;
    bool recursive_readers() const { return recursive_; }

    std::string describe() const override { return lock_name(); }
    void holders(std::vector<rt::Tid>& out) const override;

private:
    SyncDomain& begin(rt::Tid& me);
    bool reader_may_enter() const;
    void hand_over(SyncDomain& d);
    void grant(SyncDomain& d, size_t i);
    Acquire read_mode() const { return recursive_ ? Acquire::shared_recursive : Acquire::shared; }

    bool recursive_;
    rt::Tid writer_ = rt::kNoThread;
    std::vector<rt::Tid> readers_;
    WaitQueue queue_;
};

// Kernel-style spellings.
inline void spin_lock(SpinLock& l, const rt::Site* site = nullptr) { l.spin_lock(site); }
inline void spin_lock_nested(SpinLock& l, unsigned sub, const rt::Site* site = nullptr) {
    l.spin_lock_nested(sub, site);
}
inline bool spin_trylock(SpinLock& l, const rt::Site* site = nullptr) { return l.spin_trylock(site); }
inline void spin_unlock(SpinLock& l, const rt::Site* site = nullptr) { l.spin_unlock(site); }
inline void spin_lock_irq(SpinLock& l, const rt::Site* site = nullptr) { l.spin_lock_irq(site); }
inline void spin_unlock_irq(SpinLock& l, const rt::Site* site = nullptr) { l.spin_unlock_irq(site); }
inline bool spin_is_locked(const SpinLock& l) { return l.spin_is_locked(); }
inline void read_lock(RwLock& l, const rt::Site* site = nullptr) { l.read_lock(site); }
inline bool read_trylock(RwLock& l, const rt::Site* site = nullptr) { return l.read_trylock(site); }
inline void read_unlock(RwLock& l, const rt::Site* site = nullptr) { l.read_unlock(site); }
inline void write_lock(RwLock& l, const rt::Site* site = nullptr) { l.write_lock(site); }
inline bool write_trylock(RwLock& l, const rt::Site* site = nullptr) { return l.write_trylock(site); }
inline void write_unlock(RwLock& l, const rt::Site* site = nullptr) { l.write_unlock(site); }

}  // namespace mmrace::sync
