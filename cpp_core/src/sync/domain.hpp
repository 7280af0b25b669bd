// SyncDomain: the synchronisation state of one Runtime (DESIGN §3).
//
// A Runtime plus its SyncDomain is the "kernel" of one run: the runtime schedules the
// simulated threads (each one is also its own CPU), the domain holds what the kernel
// keeps per task and per CPU for locking: lockdep's held-lock stacks and dependency
// graph, RCU reader state and grace-period stamps, the IRQ-off and preempt-off depth.
// Lock objects keep their own state (owner, wait queue) and find the domain through
// SyncDomain::current(), which a SyncDomain::Scope binds for the OS thread.
//
// Usage:
//     rt::Runtime rt;  sync::SyncDomain dom(rt);
//     rt.add_thread(...);                 // threads use sync primitives freely
//     auto out = dom.run(*policy);        // = reset(); Scope s(dom); rt.run(*policy)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"
#include "sync/lockdep.hpp"
#include "sync/rcu.hpp"

namespace mmrace::sync {

// What the kernel keeps in preempt_count, the IRQ flag and rcu_read_lock_nesting, for
// one simulated thread (= one CPU).
struct ThreadCtx {
    uint32_t irq_depth = 0;               // local_irq_disable/save nesting
    const rt::Site* irq_site = nullptr;   // where the outermost IRQ-off section began
    uint32_t preempt_depth = 0;           // spinlocks held or being spun on
    uint32_t rcu_depth = 0;               // rcu_read_lock nesting
    const rt::Site* rcu_site = nullptr;   // where the outermost rcu_read_lock was
    uint64_t reader_since = 0;            // RCU stamp when the current reader section began; 0: none
    bool exited = false;                  // the body returned (set by the exit hook)
    bool lock_waited = false;             // the last blocking lock acquisition had to wait
};

struct SyncConfig {
    // Since v4.20 (RCU flavour consolidation) a grace period also waits for code running
    // with IRQs or preemption disabled (here: IRQs off, or a spinlock held or spun on);
    // gup_fast's IRQ-off walk relies on it against RCU-freed page tables.  false: only
    // explicit rcu_read_lock() sections delay a grace period.
    bool rcu_waits_for_atomic = true;
};

class SyncDomain {
public:
    // Installs rt's thread-exit hook (see add_exit_hook to chain more).
    explicit SyncDomain(rt::Runtime& rt, SyncConfig cfg = {});
    ~SyncDomain();
    SyncDomain(const SyncDomain&) = delete;
    SyncDomain& operator=(const SyncDomain&) = delete;

    // Per-run state back to empty, sized for rt.thread_count() threads; every lock object
    // forgets its state lazily (a new epoch).  Call before each rt.run(), after adding
    // the threads.
    void reset();
    // reset(), bind this domain for the OS thread, run rt with `policy`.
    rt::RunOutcome run(rt::Policy& policy);

    // Binds a domain to the calling OS thread for the Scope's lifetime (nests).
    class Scope {
    public:
        explicit Scope(SyncDomain& d);
        ~Scope();
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        SyncDomain* prev_;
    };
    // The domain bound by the innermost live Scope; throws std::logic_error if none.
    static SyncDomain& current();
    // The same, or null.
    static SyncDomain* current_or_null();

    rt::Runtime& rt() { return rt_; }
    const SyncConfig& config() const { return cfg_; }
    Lockdep& lockdep() { return lockdep_; }
    RcuState& rcu() { return rcu_; }
    uint64_t epoch() const { return epoch_; }

    // The calling simulated thread; throws std::logic_error outside one (set-up code, an
    // event callback, another runtime's run, reset() not called after add_thread).
    rt::Tid self() const;
    ThreadCtx& ctx(rt::Tid t) { return ctx_[t]; }
    const ThreadCtx& ctx(rt::Tid t) const { return ctx_[t]; }
    size_t thread_count() const { return ctx_.size(); }
    const std::string& name(rt::Tid t) const { return rt_.thread_name(t); }

    // Ends the run (rt.fail) while rt is running, from a thread or an event; otherwise
    // (set-up code, a test poking a lock) throws std::logic_error.
    [[noreturn]] void fail(Check check, const std::string& message);
    [[noreturn]] void violation(Check check, const std::string& message) { fail(check, message); }

    // Context changes made by the primitives.  Each keeps the thread's RCU reader state
    // up to date; none is a scheduling point.
    void preempt_disable(rt::Tid t);
    void preempt_enable(rt::Tid t);
    void irq_disable(rt::Tid t, const rt::Site* site);
    void irq_enable(rt::Tid t);
    // in_atomic() || irqs_disabled(): sleeping is not allowed.
    bool atomic_context(rt::Tid t) const { return ctx_[t].irq_depth || ctx_[t].preempt_depth; }

    // Runs fn as event context (an RCU callback, an IPI handler): a sync primitive used
    // from it throws instead of acting for whichever thread happened to yield.  An
    // exception escaping fn ends the run as a model error (RunOutcome::error).
    void run_in_event(const std::function<void()>& fn);
    bool in_event() const { return in_event_; }

    // Additional thread-exit hooks, run after the domain's own checks; kept across
    // reset().  (The runtime has one exit hook and the domain owns it.)
    void add_exit_hook(std::function<void(rt::Tid)> hook) { exit_hooks_.push_back(std::move(hook)); }

private:
    void on_thread_exit(rt::Tid t);

    rt::Runtime& rt_;
    SyncConfig cfg_;
    Lockdep lockdep_;
    RcuState rcu_;
    std::vector<ThreadCtx> ctx_;
    std::vector<std::function<void(rt::Tid)>> exit_hooks_;
    uint64_t epoch_ = 0;
    bool in_event_ = false;
};

// Whether the current thread's last blocking lock acquisition (down_*, spin_lock,
// read/write_lock) had to wait: e.g. the mmap_lock_wait counter.
bool lock_waited();

}  // namespace mmrace::sync
