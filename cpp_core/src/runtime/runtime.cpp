#include "runtime/runtime.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace mmrace::rt {

namespace {

thread_local Runtime* tl_runtime = nullptr;

inline uint64_t fmix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

constexpr uint64_t kHashSeed = 0x6d6d726163650001ull;  // "mmrace" v1

}  // namespace

Runtime* current_runtime() { return tl_runtime; }

const char* ev_name(Ev e) {
    static const char* const names[] = {
        "thread_start", "thread_exit", "yield",
        "lock_acquire", "lock_acquired", "lock_contended", "lock_release", "trylock_fail",
        "wake", "event_post", "event_fire",
        "io_submit", "io_complete",
        "rcu_read_lock", "rcu_read_unlock", "rcu_gp_end",
        "irq_disable", "irq_enable", "ipi_send", "ipi_ack",
        "access", "op_begin", "op_end", "fail",
    };
    auto i = static_cast<size_t>(e);
    return i < std::size(names) ? names[i] : "?";
}

struct Runtime::Thread {
    Runtime* rt;
    Tid id;
    std::string name;
    std::function<void()> body;
    bool start_at_begin;
    State state = State::not_started;
    const Waitable* waiting_on = nullptr;
    std::unique_ptr<Fiber> fiber;
};

struct Runtime::PendingEvent {
    uint64_t serial;
    const Site* site;
    std::function<bool()> ready;
    std::function<void()> fire;
};

Runtime::Runtime(RuntimeConfig cfg)
    : cfg_(std::move(cfg)), host_(std::make_unique<Fiber>(cfg_.fiber)) {}

Runtime::~Runtime() = default;

void Runtime::reset(RuntimeConfig cfg) {
    if (in_run_) throw std::logic_error("mmrace: Runtime::reset during a run");
    bool same_fiber = cfg.fiber == cfg_.fiber;
    cfg_ = std::move(cfg);
    if (!same_fiber) host_ = std::make_unique<Fiber>(cfg_.fiber);
    threads_.clear();
    events_.clear();
    trace_.clear();
}

Tid Runtime::add_thread(std::string name, std::function<void()> body, bool started) {
    if (threads_.size() >= kMaxThreads)
        throw std::length_error("mmrace: at most 64 simulated threads");
    auto t = std::make_unique<Thread>();
    t->rt = this;
    t->id = static_cast<Tid>(threads_.size());
    t->name = std::move(name);
    t->body = std::move(body);
    t->start_at_begin = started;
    t->fiber = std::make_unique<Fiber>(cfg_.fiber, cfg_.stack_bytes);
    threads_.push_back(std::move(t));
    return threads_.back()->id;
}

const std::string& Runtime::thread_name(Tid t) const { return threads_.at(t)->name; }

std::string Runtime::entity_name(Entity e) const {
    if (!is_event(e)) return thread_name(e);
    return "event#" + std::to_string(e - kEventBase);
}

bool Runtime::started(Tid t) const { return threads_.at(t)->state != State::not_started; }

// ---------------------------------------------------------------------------------
// The run

RunOutcome Runtime::run(Policy& policy) {
    policy_ = &policy;
    policy.begin_run();
    step_ = 0;
    hash_ = kHashSeed;
    event_serial_ = 0;
    events_.clear();
    trace_.clear();
    out_ = RunOutcome{};
    over_ = killing_ = false;
    runnable_mask_ = 0;
    next_interrupt_check_ = cfg_.interrupt_every;
    for (auto& t : threads_) {
        t->state = t->start_at_begin ? State::runnable : State::not_started;
        t->waiting_on = nullptr;
        if (t->start_at_begin) runnable_mask_ |= 1ull << t->id;
        t->fiber->prepare(&Runtime::thread_main, t.get());
    }
    Runtime* saved = tl_runtime;
    tl_runtime = this;
    in_run_ = true;
    cur_ = kNoThread;
    try {
        Entity first = choose();
        if (first != kNoThread) switch_from(kNoThread, first, false);
    } catch (Unwind&) {
        // An event fired from the host failed the run; nothing to unwind here.
    }
    end_run_on_host();
    in_run_ = false;
    tl_runtime = saved;
    if (!over_) out_.step = step_;
    out_.trace_hash = hash_;
    return out_;
}

void Runtime::thread_main(void* arg) {
    Fiber::on_entry();
    auto* t = static_cast<Thread*>(arg);
    Runtime& rt = *t->rt;
    if (!rt.killing_) {
        try {
            rt.record(t->id, MMR_SITE("thread"), Ev::thread_start, 0);
            t->body();
            if (rt.exit_hook_) rt.exit_hook_(t->id);
        } catch (Unwind&) {
        } catch (std::exception& e) {
            // A model error (an op whose model is not built, an internal assertion):
            // not a verdict about the program, so it ends the run as an error.
            if (!rt.over_) {
                rt.over_ = true;
                rt.out_.error = e.what();
                rt.out_.step = rt.step_;
            }
        }
    }
    rt.finish_current();
}

void Runtime::finish_current() {
    Thread& t = *threads_[cur_];
    t.state = State::finished;
    runnable_mask_ &= ~(1ull << t.id);
    Entity next = kNoThread;
    if (!over_ && !killing_) {
        record(t.id, MMR_SITE("thread"), Ev::thread_exit, 0);
        try {
            next = choose();
            if (next == kNoThread) {
                for (auto& o : threads_)
                    if (o->state == State::blocked) {
                        deadlock();
                    }
            }
        } catch (Unwind&) {
            next = kNoThread;
        }
    }
    switch_from(t.id, next, true);
}

void Runtime::end_run_on_host() {
    // Unwind every thread that is still inside its body so that its stack objects are
    // destroyed; a thread that never ran sees killing_ and skips its body.
    killing_ = true;
    for (auto& t : threads_) {
        if (t->state == State::runnable || t->state == State::blocked)
            switch_from(kNoThread, t->id, false);
    }
    killing_ = false;
    cur_ = kNoThread;
}

void Runtime::switch_from(Tid from, Entity to, bool final) {
    Fiber& src = from == kNoThread ? *host_ : *threads_[from]->fiber;
    Fiber& dst = to == kNoThread ? *host_ : *threads_[to]->fiber;
    cur_ = to == kNoThread ? kNoThread : static_cast<Tid>(to);
    if (final) Fiber::switch_final(src, dst);
    Fiber::switch_to(src, dst);
    cur_ = from;
    if (killing_ && from != kNoThread) throw Unwind{};
}

// Builds the option list (runnable threads by id, then ready events by serial) and
// asks the policy.  Chosen events fire here and the choice is made again.
Entity Runtime::choose() {
    for (;;) {
        options_.clear();
        for (uint64_t m = runnable_mask_; m; m &= m - 1)
            options_.push_back(static_cast<Entity>(std::countr_zero(m)));
        size_t threads = options_.size();
        for (auto& e : events_)
            if (!e.ready || e.ready()) options_.push_back(kEventBase + static_cast<Entity>(e.serial));
        if (options_.empty()) return kNoThread;
        size_t idx = 0;
        if (options_.size() > 1) {
            int current = -1;
            if (cur_ != kNoThread && (runnable_mask_ >> cur_ & 1))
                current = static_cast<int>(std::find(options_.begin(), options_.end(), cur_) -
                                           options_.begin());
            Decision d{options_.data(), options_.size(), current, step_, out_.decisions.size(), threads};
            idx = std::min(policy_->pick(d), options_.size() - 1);
            out_.decisions.push_back(idx);
        }
        Entity e = options_[idx];
        if (!is_event(e)) return e;
        auto it = std::find_if(events_.begin(), events_.end(),
                               [&](const PendingEvent& p) { return kEventBase + p.serial == e; });
        PendingEvent ev = std::move(*it);
        events_.erase(it);
        ++step_;
        record(e, ev.site, Ev::event_fire, ev.serial);
        fire(ev);
    }
}

// Runs an event's callback on whatever stack chose it.  A model error escaping it ends
// the run as an error, as in a thread body, instead of unwinding a foreign stack.
void Runtime::fire(PendingEvent& ev) {
    try {
        ev.fire();
    } catch (Unwind&) {
        throw;
    } catch (std::exception& e) {
        if (!over_) {
            over_ = true;
            out_.error = e.what();
            out_.step = step_;
        }
        throw Unwind{};
    }
}

// ---------------------------------------------------------------------------------
// Called from simulated threads

void Runtime::yield(const Site* site, Ev ev, uint64_t arg) {
    ++step_;
    record(cur_, site, ev, arg);
    if (step_ > cfg_.budget)
        fail(Check::budget,
             "step budget of " + std::to_string(cfg_.budget) + " exceeded (possible livelock)");
    if (step_ >= next_interrupt_check_) check_interrupt();
    if (runnable_mask_ == (1ull << cur_) && events_.empty()) return;
    Entity next = choose();
    if (next != cur_) switch_from(cur_, next, false);
}

void Runtime::wait(const Site* site, const Waitable* w) {
    Thread& t = *threads_[cur_];
    t.state = State::blocked;
    t.waiting_on = w;
    runnable_mask_ &= ~(1ull << t.id);
    ++step_;
    record(cur_, site, Ev::lock_contended, 0);
    Entity next = choose();
    if (next == kNoThread) deadlock();
    if (next != cur_) switch_from(cur_, next, false);
}

void Runtime::wake(Tid id) {
    Thread& t = *threads_.at(id);
    if (t.state != State::blocked) return;
    t.state = State::runnable;
    t.waiting_on = nullptr;
    runnable_mask_ |= 1ull << id;
    note(MMR_SITE("wake"), Ev::wake, id);
}

void Runtime::start(Tid id) {
    Thread& t = *threads_.at(id);
    if (t.state != State::not_started) return;
    t.state = State::runnable;
    runnable_mask_ |= 1ull << id;
}

uint64_t Runtime::post_event(const Site* site, std::function<bool()> ready,
                             std::function<void()> fire) {
    uint64_t serial = event_serial_++;
    if (serial + kEventBase < kEventBase) throw std::overflow_error("event serials");
    events_.push_back(PendingEvent{serial, site, std::move(ready), std::move(fire)});
    note(site, Ev::event_post, serial);
    return serial;
}

void Runtime::note(const Site* site, Ev ev, uint64_t arg) {
    record(cur_ == kNoThread ? kNoThread : cur_, site, ev, arg);
}

void Runtime::fail(Check check, std::string message) {
    if (!over_) {
        Verdict v = check_verdict(check);
        over_ = true;
        out_.verdict = v;
        out_.check = check;
        out_.message = std::move(message);
        out_.step = step_;
        record(cur_, MMR_SITE("fail"), Ev::fail, static_cast<uint64_t>(v));
    }
    throw Unwind{};
}

void Runtime::record(Entity who, const Site* site, Ev ev, uint64_t arg) {
    hash_ = fmix64(hash_ ^ site->hash);
    hash_ = fmix64(hash_ ^ (static_cast<uint64_t>(ev) << 32 | who));
    hash_ = fmix64(hash_ ^ arg);
    if (cfg_.sink) cfg_.sink->on_record(who, site, ev, arg);
    if (cfg_.record_trace && trace_.size() < cfg_.trace_limit)
        trace_.push_back(TraceRecord{step_, who, site, ev, arg});
}

void Runtime::check_interrupt() {
    next_interrupt_check_ = step_ + cfg_.interrupt_every;
    if (cfg_.interrupted && cfg_.interrupted())
        fail(Check::interrupted, "the run was interrupted");
}

// ---------------------------------------------------------------------------------
// Deadlock: no thread can run, no event can fire, and some thread is blocked.

void Runtime::deadlock() {
    std::string why = wait_for_cycle();
    if (why.empty()) {
        why = "no thread can run; blocked: ";
        bool first = true, all_user = true;
        for (auto& th : threads_) {
            if (th->state != State::blocked) continue;
            why += (first ? "" : ", ") + th->name + " on " +
                   (th->waiting_on ? th->waiting_on->describe() : std::string("?"));
            first = false;
            std::vector<Tid> seen;
            all_user = all_user && stuck_on_user_wait(th->id, seen);
        }
        out_.user_wait = all_user;
    }
    fail(Check::deadlock, std::move(why));
}

// The first wait-for cycle, "T0 waits for A held by T1; ...", or "" when there is none.
std::string Runtime::wait_for_cycle() const {
    // Follow waiter -> holder edges from each blocked thread; the first thread seen twice
    // on a path closes the cycle.
    std::vector<Tid> holders;
    for (auto& start : threads_) {
        if (start->state != State::blocked) continue;
        std::vector<Tid> path;
        Tid t = start->id;
        while (t != kNoThread && std::find(path.begin(), path.end(), t) == path.end()) {
            path.push_back(t);
            const Thread& th = *threads_[t];
            Tid next = kNoThread;
            if (th.state == State::blocked && th.waiting_on) {
                holders.clear();
                th.waiting_on->holders(holders);
                for (Tid h : holders)
                    if (threads_[h]->state == State::blocked) {
                        next = h;
                        break;
                    }
            }
            t = next;
        }
        if (t == kNoThread) continue;
        auto first = std::find(path.begin(), path.end(), t);
        std::string s = "wait-for cycle: ";
        for (auto it = first; it != path.end(); ++it) {
            auto nx = std::next(it) == path.end() ? t : *std::next(it);
            s += threads_[*it]->name + " waits for " + threads_[*it]->waiting_on->describe() +
                 " held by " + threads_[nx]->name;
            if (std::next(it) != path.end()) s += "; ";
        }
        return s;
    }
    return {};
}

// Whether blocked thread t waits on a user_wait(), itself or through any blocked holder
// of what it waits for: one such holder keeps t waiting whatever the others do.
bool Runtime::stuck_on_user_wait(Tid t, std::vector<Tid>& seen) const {
    const Thread& th = *threads_[t];
    if (th.state != State::blocked || !th.waiting_on) return false;
    if (th.waiting_on->user_wait()) return true;
    if (std::find(seen.begin(), seen.end(), t) != seen.end()) return false;
    seen.push_back(t);
    std::vector<Tid> holders;
    th.waiting_on->holders(holders);
    for (Tid h : holders)
        if (h != t && stuck_on_user_wait(h, seen)) return true;
    return false;
}

}  // namespace mmrace::rt
