#include "sync/spinlock.hpp"

#include <algorithm>

#include "sync/domain.hpp"
#include "sync/irq.hpp"

namespace mmrace::sync {

namespace {

[[noreturn]] void bad_unlock(SyncDomain& d, rt::Tid me, const std::string& lock, const char* op,
                             const rt::Site* site, const std::string& state) {
    d.violation(Check::bad_unlock_balance, "WARNING: bad unlock balance detected! " + d.name(me) +
                                          " calls " + op + "() on " + lock + " at " + site->name +
                                          ", which is " + state);
}

}  // namespace

// =================================================================================
// SpinLock (kernel/locking/spinlock.c __raw_spin_lock and friends)

SpinLock::SpinLock(std::string name) : LockdepMap(std::move(name)) {}

SyncDomain& SpinLock::begin(rt::Tid& me) {
    SyncDomain& d = SyncDomain::current();
    me = d.self();
    if (new_run(d.epoch())) {
        owner_ = rt::kNoThread;
        queue_.clear();
    }
    return d;
}

// __raw_spin_lock{,_irq,_irqsave}(): IRQs off (if asked), preempt_disable(), then
// spin_acquire + LOCK_CONTENDED.  Returns the saved IRQ flags for Irq::save.
unsigned long SpinLock::lock_common(const rt::Site* site, unsigned subclass, Irq irq) {
    rt::Tid me;
    SyncDomain& d = begin(me);
    d.ctx(me).lock_waited = false;
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    unsigned long flags = d.ctx(me).irq_depth ? 1 : 0;
    if (irq != Irq::keep) d.irq_disable(me, site);
    d.preempt_disable(me);
    if (owner_ == rt::kNoThread)
        owner_ = me;
    else
        queue_.wait(d, me, true, site, this);
    d.lockdep().acquire(me, *this, subclass, Acquire::exclusive, false, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
    return flags;
}

// __raw_spin_unlock{,_irq,_irqrestore}(): release, hand over, preempt on, IRQs back.
void SpinLock::unlock_common(const rt::Site* site, Irq irq, unsigned long flags) {
    rt::Tid me;
    SyncDomain& d = begin(me);
    if (owner_ != me)
        bad_unlock(d, me, lock_name(), "spin_unlock", site,
                   owner_ == rt::kNoThread ? "not locked" : "held by " + d.name(owner_));
    d.lockdep().release(me, *this, site);
    owner_ = rt::kNoThread;
    if (!queue_.empty()) {
        owner_ = queue_[0].tid;
        queue_.grant(d, 0);
    }
    d.preempt_enable(me);
    if (irq == Irq::disable) detail::irq_enable_unnested(d, me, site);
    if (irq == Irq::save) detail::irq_restore(d, me, flags, site);
    d.rt().yield(site, rt::Ev::lock_release, name_hash());
}

void SpinLock::spin_lock(const rt::Site* site) {
    lock_common(site ? site : MMR_SITE("spin_lock"), 0, Irq::keep);
}

void SpinLock::spin_lock_nested(unsigned subclass, const rt::Site* site) {
    lock_common(site ? site : MMR_SITE("spin_lock_nested"), subclass, Irq::keep);
}

void SpinLock::spin_lock_irq(const rt::Site* site) {
    lock_common(site ? site : MMR_SITE("spin_lock_irq"), 0, Irq::disable);
}

unsigned long SpinLock::spin_lock_irqsave(const rt::Site* site) {
    return lock_common(site ? site : MMR_SITE("spin_lock_irqsave"), 0, Irq::save);
}

void SpinLock::spin_unlock(const rt::Site* site) {
    unlock_common(site ? site : MMR_SITE("spin_unlock"), Irq::keep, 0);
}

void SpinLock::spin_unlock_irq(const rt::Site* site) {
    unlock_common(site ? site : MMR_SITE("spin_unlock_irq"), Irq::disable, 0);
}

void SpinLock::spin_unlock_irqrestore(unsigned long flags, const rt::Site* site) {
    unlock_common(site ? site : MMR_SITE("spin_unlock_irqrestore"), Irq::save, flags);
}

// __raw_spin_trylock(): preempt_disable(), and back on if the lock was taken.
bool SpinLock::spin_trylock(const rt::Site* site) {
    site = site ? site : MMR_SITE("spin_trylock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    if (owner_ != rt::kNoThread) {
        d.rt().note(site, rt::Ev::trylock_fail, name_hash());
        return false;
    }
    owner_ = me;
    d.preempt_disable(me);
    d.lockdep().acquire(me, *this, 0, Acquire::exclusive, true, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
    return true;
}

bool SpinLock::spin_is_locked() const { return live() && owner_ != rt::kNoThread; }
bool SpinLock::spin_is_contended() const { return live() && !queue_.empty(); }
rt::Tid SpinLock::owner() const { return live() ? owner_ : rt::kNoThread; }

void SpinLock::holders(std::vector<rt::Tid>& out) const {
    if (owner_ != rt::kNoThread) out.push_back(owner_);
}

// =================================================================================
// RwLock (kernel/locking/qrwlock.c queued_read_lock_slowpath / queued_write_lock_slowpath)

RwLock::RwLock(std::string name, bool recursive_readers)
    : LockdepMap(std::move(name)), recursive_(recursive_readers) {}

SyncDomain& RwLock::begin(rt::Tid& me) {
    SyncDomain& d = SyncDomain::current();
    me = d.self();
    if (new_run(d.epoch())) {
        writer_ = rt::kNoThread;
        readers_.clear();
        queue_.clear();
    }
    return d;
}

// Process-context qrwlock readers queue behind anyone waiting (_QW_WAITING); recursive
// readers only mind a writer that holds the lock (_QW_LOCKED).
bool RwLock::reader_may_enter() const {
    return writer_ == rt::kNoThread && (recursive_ || queue_.empty());
}

void RwLock::read_lock(const rt::Site* site) {
    site = site ? site : MMR_SITE("read_lock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    d.ctx(me).lock_waited = false;
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    d.preempt_disable(me);
    if (reader_may_enter())
        readers_.push_back(me);
    else
        queue_.wait(d, me, false, site, this);
    d.lockdep().acquire(me, *this, 0, read_mode(), false, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
}

bool RwLock::read_trylock(const rt::Site* site) {
    site = site ? site : MMR_SITE("read_trylock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    if (!reader_may_enter()) {
        d.rt().note(site, rt::Ev::trylock_fail, name_hash());
        return false;
    }
    readers_.push_back(me);
    d.preempt_disable(me);
    d.lockdep().acquire(me, *this, 0, read_mode(), true, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
    return true;
}

void RwLock::write_lock(const rt::Site* site) {
    site = site ? site : MMR_SITE("write_lock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    d.ctx(me).lock_waited = false;
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    d.preempt_disable(me);
    if (writer_ == rt::kNoThread && readers_.empty() && queue_.empty())
        writer_ = me;
    else
        queue_.wait(d, me, true, site, this);
    d.lockdep().acquire(me, *this, 0, Acquire::exclusive, false, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
}

bool RwLock::write_trylock(const rt::Site* site) {
    site = site ? site : MMR_SITE("write_trylock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
    if (writer_ != rt::kNoThread || !readers_.empty()) {
        d.rt().note(site, rt::Ev::trylock_fail, name_hash());
        return false;
    }
    writer_ = me;
    d.preempt_disable(me);
    d.lockdep().acquire(me, *this, 0, Acquire::exclusive, true, site);
    d.rt().note(site, rt::Ev::lock_acquired, name_hash());
    return true;
}

void RwLock::read_unlock(const rt::Site* site) {
    site = site ? site : MMR_SITE("read_unlock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    auto it = std::find(readers_.begin(), readers_.end(), me);
    if (it == readers_.end())
        bad_unlock(d, me, lock_name(), "read_unlock", site,
                   writer_ != rt::kNoThread ? "write-held by " + d.name(writer_)
                                            : "not read-held by it");
    d.lockdep().release(me, *this, site);
    readers_.erase(it);
    if (readers_.empty()) hand_over(d);
    d.preempt_enable(me);
    d.rt().yield(site, rt::Ev::lock_release, name_hash());
}

void RwLock::write_unlock(const rt::Site* site) {
    site = site ? site : MMR_SITE("write_unlock");
    rt::Tid me;
    SyncDomain& d = begin(me);
    if (writer_ != me)
        bad_unlock(d, me, lock_name(), "write_unlock", site,
                   writer_ == rt::kNoThread ? "not write-locked" : "held by " + d.name(writer_));
    d.lockdep().release(me, *this, site);
    writer_ = rt::kNoThread;
    hand_over(d);
    d.preempt_enable(me);
    d.rt().yield(site, rt::Ev::lock_release, name_hash());
}

// The queue head decides: a writer gets a free lock; readers at the head get in
// together (queued flavour: the run of readers up to the next writer, as each passes
// wait_lock in turn; recursive flavour: every queued reader, since they only waited for
// the writer that just left).
void RwLock::hand_over(SyncDomain& d) {
    if (queue_.empty()) return;
    if (queue_[0].writer) {
        if (writer_ == rt::kNoThread && readers_.empty()) grant(d, 0);
        return;
    }
    if (writer_ != rt::kNoThread) return;
    for (size_t i = 0; i < queue_.size();) {
        if (!queue_[i].writer)
            grant(d, i);
        else if (recursive_)
            ++i;
        else
            break;
    }
}

void RwLock::grant(SyncDomain& d, size_t i) {
    if (queue_[i].writer)
        writer_ = queue_[i].tid;
    else
        readers_.push_back(queue_[i].tid);
    queue_.grant(d, i);
}

bool RwLock::is_locked() const { return live() && (writer_ != rt::kNoThread || !readers_.empty()); }
bool RwLock::is_write_locked() const { return live() && writer_ != rt::kNoThread; }
rt::Tid RwLock::writer() const { return live() ? writer_ : rt::kNoThread; }
size_t RwLock::readers() const { return live() ? readers_.size() : 0; }

void RwLock::holders(std::vector<rt::Tid>& out) const {
    if (writer_ != rt::kNoThread) out.push_back(writer_);
    for (rt::Tid t : readers_)
        if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
}

}  // namespace mmrace::sync
