// RCU for the sim backend (DESIGN §3): read-side sections, call_rcu / kfree_rcu and
// synchronize_rcu, with the grace period's end chosen by the policy like any event.
//
// Model: a per-run clock stamps every start of a reader section (the outermost
// rcu_read_lock, or, with SyncConfig::rcu_waits_for_atomic, the start of an IRQ-off or
// spinlock region) and every call_rcu/synchronize_rcu.  The grace period of a call
// stamped s ends once no thread is still in a reader section that began before s: a
// reader that was already inside keeps the object alive, one that began later does not
// delay it (it cannot have seen the unpublished object).  The callback is a runtime
// event that becomes ready at that point and fires whenever the policy picks it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/runtime.hpp"

namespace mmrace::sync {

class SyncDomain;

// The domain's RCU state (what kernel/rcu/tree.c tracks per CPU for one run).
class RcuState {
public:
    explicit RcuState(SyncDomain& d) : d_(d) {}
    void reset() { clock_ = 0; }
    // A fresh stamp (strictly increasing within a run).
    uint64_t next_stamp() { return ++clock_; }
    // Recomputes whether t is in a reader section after its rcu/irq/preempt depth
    // changed, stamping the start of a new section.
    void refresh_reader(rt::Tid t);
    // Whether the grace period of a call stamped `stamp` is over.
    bool gp_done(uint64_t stamp) const;
    // The threads still in a reader section older than `stamp` (what a grace period
    // waits for: the holders in a deadlock report).
    void blocking_readers(uint64_t stamp, std::vector<rt::Tid>& out) const;

private:
    SyncDomain& d_;
    uint64_t clock_ = 0;
};

// rcu_read_lock(): enters (or nests) a read-side critical section.  Scheduling point.
void rcu_read_lock(const rt::Site* site = nullptr);
// rcu_read_unlock(): leaves one level; violation bad_unlock_balance if not inside one.
void rcu_read_unlock(const rt::Site* site = nullptr);
// rcu_read_lock_held(): the current thread is inside rcu_read_lock().
bool rcu_read_lock_held();
// rcu_read_lock_any_held(): ... or in any region that holds off a grace period.
bool rcu_read_lock_any_held();

// call_rcu(): runs `cb` as an event after a grace period (kernel/rcu/tree.c).  `cb` runs
// in event context, like an RCU callback in softirq: it must not block, yield or use
// sync primitives; it typically poisons/frees the object.  Scheduling point.
void call_rcu(const rt::Site* site, std::function<void()> cb);
// kfree_rcu(): the same, named for the common use (cb frees the object).
inline void kfree_rcu(const rt::Site* site, std::function<void()> free_fn) {
    call_rcu(site, std::move(free_fn));
}
// synchronize_rcu(): may sleep; blocks until a grace period that began now has ended.
void synchronize_rcu(const rt::Site* site = nullptr);

}  // namespace mmrace::sync
