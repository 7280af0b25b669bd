#include "sync/domain.hpp"

#include <atomic>
#include <stdexcept>

namespace mmrace::sync {

namespace {

thread_local SyncDomain* tl_domain = nullptr;

// Epochs are unique across every domain of the process, so a lock object that is used
// by several runtimes in turn (a test fixture) still notices each new run.
std::atomic<uint64_t> g_epoch{0};

}  // namespace

// ---------------------------------------------------------------------------------
// Set-up and binding

SyncDomain::SyncDomain(rt::Runtime& rt, SyncConfig cfg)
    : rt_(rt), cfg_(cfg), lockdep_(*this), rcu_(*this) {
    rt_.set_thread_exit_hook([this](rt::Tid t) { on_thread_exit(t); });
    reset();
}

SyncDomain::~SyncDomain() { rt_.set_thread_exit_hook({}); }

void SyncDomain::reset() {
    epoch_ = ++g_epoch;
    ctx_.assign(rt_.thread_count(), ThreadCtx{});
    lockdep_.reset(rt_.thread_count(), epoch_);
    rcu_.reset();
    in_event_ = false;
}

rt::RunOutcome SyncDomain::run(rt::Policy& policy) {
    reset();
    Scope bind(*this);
    return rt_.run(policy);
}

SyncDomain::Scope::Scope(SyncDomain& d) : prev_(tl_domain) { tl_domain = &d; }
SyncDomain::Scope::~Scope() { tl_domain = prev_; }

SyncDomain& SyncDomain::current() {
    if (!tl_domain) throw std::logic_error("mmrace: no SyncDomain bound (SyncDomain::Scope)");
    return *tl_domain;
}

SyncDomain* SyncDomain::current_or_null() { return tl_domain; }

rt::Tid SyncDomain::self() const {
    if (in_event_)
        throw std::logic_error("mmrace: sync primitive used from event context (an RCU "
                               "callback or IPI handler must not lock, block or yield)");
    if (rt::current_runtime() != &rt_ || !rt_.running() || rt_.self() == rt::kNoThread)
        throw std::logic_error("mmrace: sync primitive used outside a simulated thread");
    rt::Tid t = rt_.self();
    if (t >= ctx_.size())
        throw std::logic_error("mmrace: SyncDomain::reset() not called after add_thread");
    return t;
}

// rt.fail also works from the host fiber (an event fired at the start of a run or after
// a thread finished): the runtime catches its unwind there too.
void SyncDomain::fail(Check check, const std::string& message) {
    if (rt::current_runtime() == &rt_ && rt_.running()) rt_.fail(check, message);
    throw std::logic_error(std::string(check_name(check)) + ": " + message);
}

// ---------------------------------------------------------------------------------
// Context tracking

void SyncDomain::preempt_disable(rt::Tid t) {
    ++ctx_[t].preempt_depth;
    rcu_.refresh_reader(t);
}

void SyncDomain::preempt_enable(rt::Tid t) {
    if (ctx_[t].preempt_depth) --ctx_[t].preempt_depth;
    rcu_.refresh_reader(t);
}

void SyncDomain::irq_disable(rt::Tid t, const rt::Site* site) {
    if (ctx_[t].irq_depth++ == 0) ctx_[t].irq_site = site;
    rcu_.refresh_reader(t);
}

void SyncDomain::irq_enable(rt::Tid t) {
    if (ctx_[t].irq_depth && --ctx_[t].irq_depth == 0) ctx_[t].irq_site = nullptr;
    rcu_.refresh_reader(t);
}

void SyncDomain::run_in_event(const std::function<void()>& fn) {
    // Restores the flag even when fn ends the run (rt.fail unwinds through here).
    struct Guard {
        bool& flag;
        bool saved;
        ~Guard() { flag = saved; }
    } guard{in_event_, in_event_};
    in_event_ = true;
    fn();  // a model error escaping fn ends the run as an error (Runtime::fire)
}

// ---------------------------------------------------------------------------------
// Thread exit: lockdep_sys_exit() ("lock held when returning to user space!") and the
// syscall-exit check that IRQs are back on.

void SyncDomain::on_thread_exit(rt::Tid t) {
    if (t >= ctx_.size()) return;  // reset() not called: nothing of ours to check
    ThreadCtx& c = ctx_[t];
    c.exited = true;
    if (!lockdep_.held(t).empty())
        violation(Check::lock_held_at_exit,
                  "lock held when returning to user space: " + name(t) + " exited holding " +
                      lockdep_.describe_held(t));
    if (c.rcu_depth)
        violation(Check::lock_held_at_exit, "lock held when returning to user space: " + name(t) +
                                           " exited inside rcu_read_lock() (taken at " +
                                           c.rcu_site->name + ")");
    if (c.irq_depth)
        violation(Check::irqs_disabled_at_exit,
                  name(t) + " exited with IRQs disabled (since " + c.irq_site->name + ")");
    for (auto& hook : exit_hooks_) hook(t);
}

bool lock_waited() {
    SyncDomain& d = SyncDomain::current();
    return d.ctx(d.self()).lock_waited;
}

}  // namespace mmrace::sync
