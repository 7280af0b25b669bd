#include "sync/rwsem.hpp"

#include <algorithm>

#include "sync/domain.hpp"

namespace mmrace::sync {

namespace {
constexpr size_t MAX_READERS_WAKEUP = 0x100;  // kernel/locking/rwsem.c
}

RwSem::RwSem(std::string name) : LockdepMap(std::move(name)) {}

// The domain and calling thread of an operation; clears state left by an earlier run.
SyncDomain& RwSem::begin(rt::Tid& me) {
    SyncDomain& d = SyncDomain::current();
    me = d.self();
    if (new_run(d.epoch())) {
        owner_ = rt::kNoThread;
        readers_.clear();
        queue_.clear();
    }
    return d;
}

// ---------------------------------------------------------------------------------
// Acquire

// down_read() / __down_read(): the fast path needs no writer and no waiter; otherwise
// rwsem_down_read_slowpath() queues, and rwsem_mark_wake() grants.
void RwSem::read_common(const rt::Site* site, unsigned subclass) {
    rt::Tid me;
    SyncDomain& d = begin(me);
    might_sleep(site);
    d.ctx(me).lock_waited = false;
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    if (owner_ == rt::kNoThread && queue_.empty())
        readers_.push_back(me);
    else
        queue_.wait(d, me, false, site, this);
    d.lockdep().acquire(me, *this, subclass, Acquire::shared, false, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
}

// down_write() / __down_write(): the fast path needs the count at zero; otherwise
// rwsem_down_write_slowpath() queues until the lock is handed over.
void RwSem::write_common(const rt::Site* site, unsigned subclass) {
    rt::Tid me;
    SyncDomain& d = begin(me);
    might_sleep(site);
    d.ctx(me).lock_waited = false;
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    if (owner_ == rt::kNoThread && readers_.empty() && queue_.empty())
        owner_ = me;
    else
        queue_.wait(d, me, true, site, this);
    d.lockdep().acquire(me, *this, subclass, Acquire::exclusive, false, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
}

void RwSem::down_read(const rt::Site* site) { read_common(site ? site : MMR_SITE("down_read"), 0); }

void RwSem::down_read_nested(unsigned subclass, const rt::Site* site) {
    read_common(site ? site : MMR_SITE("down_read_nested"), subclass);
}

int RwSem::down_read_killable(const rt::Site* site) {
    read_common(site ? site : MMR_SITE("down_read_killable"), 0);
    return 0;
}

void RwSem::down_write(const rt::Site* site) { write_common(site ? site : MMR_SITE("down_write"), 0); }

void RwSem::down_write_nested(unsigned subclass, const rt::Site* site) {
    write_common(site ? site : MMR_SITE("down_write_nested"), subclass);
}

int RwSem::down_write_killable(const rt::Site* site) {
    write_common(site ? site : MMR_SITE("down_write_killable"), 0);
    return 0;
}

// __down_read_trylock(): fails on RWSEM_READ_FAILED_MASK (writer or waiters).
bool RwSem::down_read_trylock(const rt::Site* site) {
    site = site ? site : MMR_SITE("down_read_trylock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    if (owner_ != rt::kNoThread || !queue_.empty()) {
        d.rt().note(site, rt::Ev::trylock_fail, name_hash());
        return false;
    }
    readers_.push_back(me);
    d.lockdep().acquire(me, *this, 0, Acquire::shared, true, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
    return true;
}

// __down_write_trylock(): cmpxchg from RWSEM_UNLOCKED_VALUE.
bool RwSem::down_write_trylock(const rt::Site* site) {
    site = site ? site : MMR_SITE("down_write_trylock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    if (owner_ != rt::kNoThread || !readers_.empty() || !queue_.empty()) {
        d.rt().note(site, rt::Ev::trylock_fail, name_hash());
        return false;
    }
    owner_ = me;
    d.lockdep().acquire(me, *this, 0, Acquire::exclusive, true, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
    return true;
}

// ---------------------------------------------------------------------------------
// Release

void RwSem::bad_unlock(SyncDomain& d, rt::Tid me, const char* op, const rt::Site* site) {
    std::string state = owner_ != rt::kNoThread ? "write-held by " + d.name(owner_)
                        : readers_.empty()      ? "not locked"
                                                : "read-held by others";
    d.violation(Check::bad_unlock_balance, "WARNING: bad unlock balance detected! " + d.name(me) +
                                          " calls " + op + "() on " + lock_name() + " at " +
                                          site->name + ", which is " + state);
}

// __up_read(): the last reader out wakes the queue (rwsem_wake).
void RwSem::up_read(const rt::Site* site) {
    site = site ? site : MMR_SITE("up_read");
    rt::Tid me;
    SyncDomain& d = begin(me);
    auto it = std::find(readers_.begin(), readers_.end(), me);
    if (it == readers_.end()) bad_unlock(d, me, "up_read", site);
    d.lockdep().release(me, *this, site);
    readers_.erase(it);
    if (readers_.empty()) mark_wake(d, WakeType::any);
    d.rt().yield(site, rt::Ev::lock_release, name_hash());
}

// __up_write(): DEBUG_RWSEMS_WARN_ON(owner != current), then rwsem_wake.
void RwSem::up_write(const rt::Site* site) {
    site = site ? site : MMR_SITE("up_write");
    rt::Tid me;
    SyncDomain& d = begin(me);
    if (owner_ != me) bad_unlock(d, me, "up_write", site);
    d.lockdep().release(me, *this, site);
    owner_ = rt::kNoThread;
    mark_wake(d, WakeType::any);
    d.rt().yield(site, rt::Ev::lock_release, name_hash());
}

// __downgrade_write() + rwsem_downgrade_wake().
void RwSem::downgrade_write(const rt::Site* site) {
    site = site ? site : MMR_SITE("downgrade_write");
    rt::Tid me;
    SyncDomain& d = begin(me);
    if (owner_ != me) bad_unlock(d, me, "downgrade_write", site);
    d.lockdep().downgrade(me, *this, site);
    owner_ = rt::kNoThread;
    readers_.push_back(me);
    mark_wake(d, WakeType::read_owned);
    d.rt().yield(site, rt::Ev::lock_release, name_hash());
}

// rwsem_mark_wake(): a writer at the head gets the lock only on RWSEM_WAKE_ANY with the
// lock free; a reader at the head takes every queued reader with it, writers skipped.
void RwSem::mark_wake(SyncDomain& d, WakeType type) {
    if (queue_.empty()) return;
    if (queue_[0].writer) {
        if (type == WakeType::any && owner_ == rt::kNoThread && readers_.empty()) grant(d, 0);
        return;
    }
    if (owner_ != rt::kNoThread) return;
    size_t woken = 0;
    for (size_t i = 0; i < queue_.size() && woken < MAX_READERS_WAKEUP;) {
        if (queue_[i].writer) {
            ++i;
            continue;
        }
        grant(d, i);
        ++woken;
    }
}

void RwSem::grant(SyncDomain& d, size_t i) {
    if (queue_[i].writer)
        owner_ = queue_[i].tid;
    else
        readers_.push_back(queue_[i].tid);
    queue_.grant(d, i);
}

// ---------------------------------------------------------------------------------
// Queries

bool RwSem::is_locked() const { return live() && (owner_ != rt::kNoThread || !readers_.empty()); }
bool RwSem::is_write_locked() const { return live() && owner_ != rt::kNoThread; }
bool RwSem::is_contended() const { return live() && !queue_.empty(); }
rt::Tid RwSem::owner() const { return live() ? owner_ : rt::kNoThread; }
size_t RwSem::readers() const { return live() ? readers_.size() : 0; }
size_t RwSem::waiters() const { return live() ? queue_.size() : 0; }

std::vector<rt::Tid> RwSem::reader_threads() const {
    std::vector<rt::Tid> out;
    if (!live()) return out;
    for (rt::Tid t : readers_)
        if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    return out;
}

// The owners, each once: the threads a waiter waits for.
void RwSem::holders(std::vector<rt::Tid>& out) const {
    if (owner_ != rt::kNoThread) out.push_back(owner_);
    for (rt::Tid t : readers_)
        if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
}

}  // namespace mmrace::sync
