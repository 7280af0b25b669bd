#include "sync/rcu.hpp"

#include <string>

#include "sync/domain.hpp"

namespace mmrace::sync {

// ---------------------------------------------------------------------------------
// Reader tracking: rcu_note_context_switch / the quiescent states of kernel/rcu/tree.c,
// reduced to "when did this thread's current reader section begin".

void RcuState::refresh_reader(rt::Tid t) {
    ThreadCtx& c = d_.ctx(t);
    bool atomic = d_.config().rcu_waits_for_atomic && (c.irq_depth || c.preempt_depth);
    bool reader = c.rcu_depth || atomic;
    if (reader && !c.reader_since)
        c.reader_since = next_stamp();
    else if (!reader)
        c.reader_since = 0;
}

bool RcuState::gp_done(uint64_t stamp) const {
    for (rt::Tid t = 0; t < d_.thread_count(); ++t) {
        uint64_t since = d_.ctx(t).reader_since;
        if (since && since < stamp) return false;
    }
    return true;
}

void RcuState::blocking_readers(uint64_t stamp, std::vector<rt::Tid>& out) const {
    for (rt::Tid t = 0; t < d_.thread_count(); ++t) {
        uint64_t since = d_.ctx(t).reader_since;
        if (since && since < stamp) out.push_back(t);
    }
}

// ---------------------------------------------------------------------------------
// Read side (include/linux/rcupdate.h)

void rcu_read_lock(const rt::Site* site) {
    site = site ? site : MMR_SITE("rcu_read_lock");
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    d.rt().yield(site, rt::Ev::rcu_read_lock);
    ThreadCtx& c = d.ctx(me);
    if (c.rcu_depth++ == 0) c.rcu_site = site;
    d.rcu().refresh_reader(me);
}

void rcu_read_unlock(const rt::Site* site) {
    site = site ? site : MMR_SITE("rcu_read_unlock");
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    ThreadCtx& c = d.ctx(me);
    if (!c.rcu_depth)
        d.violation(Check::bad_unlock_balance, "WARNING: bad unlock balance detected! " + d.name(me) +
                                              " calls rcu_read_unlock() at " + site->name +
                                              " outside rcu_read_lock()");
    if (--c.rcu_depth == 0) c.rcu_site = nullptr;
    d.rcu().refresh_reader(me);
    d.rt().yield(site, rt::Ev::rcu_read_unlock);
}

bool rcu_read_lock_held() {
    SyncDomain& d = SyncDomain::current();
    return d.ctx(d.self()).rcu_depth != 0;
}

bool rcu_read_lock_any_held() {
    SyncDomain& d = SyncDomain::current();
    const ThreadCtx& c = d.ctx(d.self());
    return c.rcu_depth || c.irq_depth || c.preempt_depth;
}

// ---------------------------------------------------------------------------------
// Update side (kernel/rcu/tree.c call_rcu, synchronize_rcu)

void call_rcu(const rt::Site* site, std::function<void()> cb) {
    site = site ? site : MMR_SITE("call_rcu");
    SyncDomain& d = SyncDomain::current();
    d.self();
    uint64_t stamp = d.rcu().next_stamp();
    SyncDomain* dp = &d;
    d.rt().post_event(
        site, [dp, stamp] { return dp->rcu().gp_done(stamp); },
        [dp, stamp, site, cb = std::move(cb)] {
            dp->rt().note(site, rt::Ev::rcu_gp_end, stamp);
            if (cb) dp->run_in_event(cb);
        });
    d.rt().yield(site, rt::Ev::yield, stamp);
}

namespace {

// What synchronize_rcu() sleeps on: the readers older than its grace period.
struct GpWait final : rt::Waitable {
    SyncDomain* d = nullptr;
    uint64_t stamp = 0;
    bool done = false;
    std::string describe() const override { return "RCU grace period"; }
    void holders(std::vector<rt::Tid>& out) const override {
        d->rcu().blocking_readers(stamp, out);
    }
};

}  // namespace

void synchronize_rcu(const rt::Site* site) {
    site = site ? site : MMR_SITE("synchronize_rcu");
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    might_sleep(site);
    d.rt().yield(site, rt::Ev::yield);
    GpWait w;
    w.d = &d;
    w.stamp = d.rcu().next_stamp();
    SyncDomain* dp = &d;
    d.rt().post_event(
        site, [dp, stamp = w.stamp] { return dp->rcu().gp_done(stamp); },
        [dp, me, site, &w] {
            dp->rt().note(site, rt::Ev::rcu_gp_end, w.stamp);
            w.done = true;
            dp->rt().wake(me);
        });
    while (!w.done) d.rt().wait(site, &w);
}

}  // namespace mmrace::sync
