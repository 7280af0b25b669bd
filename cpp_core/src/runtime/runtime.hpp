// The deterministic runtime (DESIGN §2): simulated threads on fibers, one scheduler,
// pluggable policies, events, a step budget, deadlock detection and the trace.
//
// Every synchronisation operation and every annotated access calls yield() (a
// scheduling point) or wait() (the thread blocks).  Nothing else can switch threads,
// and no wall clock, address or global RNG is consulted, so a run is a function of the
// program and the policy's choices.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mmrace/verdict.hpp"
#include "runtime/fiber.hpp"
#include "runtime/policy.hpp"
#include "runtime/record_sink.hpp"
#include "runtime/site.hpp"

namespace mmrace::rt {

using Tid = uint32_t;                     // simulated thread id: declaration order
constexpr Tid kNoThread = UINT32_MAX;
constexpr size_t kMaxThreads = 64;

using mmrace::Verdict;
using mmrace::verdict_name;

// What happened at a trace record.
enum class Ev : uint8_t {
    thread_start, thread_exit, yield,
    lock_acquire, lock_acquired, lock_contended, lock_release, trylock_fail,
    wake, event_post, event_fire,
    io_submit, io_complete,
    rcu_read_lock, rcu_read_unlock, rcu_gp_end,
    irq_disable, irq_enable, ipi_send, ipi_ack,
    access, op_begin, op_end, fail,
};
const char* ev_name(Ev e);

struct TraceRecord {
    uint64_t step;
    Entity who;  // a thread, or the event that fired
    const Site* site;
    Ev ev;
    uint64_t arg;
};

// Something a thread can block on.  holders() names the threads that must act before
// the waiter can go on (a lock's owners); the deadlock report follows those edges.
class Waitable {
public:
    virtual ~Waitable() = default;
    virtual std::string describe() const = 0;
    virtual void holders(std::vector<Tid>& out) const { (void)out; }
    // True for a wait that only the program's own threads can end: a userfault that no
    // thread serves.  Linux hangs there the same way; it is not the kernel's deadlock.
    virtual bool user_wait() const { return false; }
};

struct RuntimeConfig {
    uint64_t budget = 1'000'000;          // steps before verdict `budget`
    bool record_trace = true;
    size_t trace_limit = 1u << 20;        // records kept; the hash covers all of them
    size_t stack_bytes = 256u << 10;
    FiberKind fiber = default_fiber_kind();
    // Polled every `interrupt_every` steps; returning true stops the run (Ctrl-C).
    std::function<bool()> interrupted;
    uint64_t interrupt_every = 1u << 14;
    // Sees every record (the fuzzers' interleaving feedback); null: nothing is called.
    RecordSink* sink = nullptr;
};

struct RunOutcome {
    Verdict verdict = Verdict::ok;
    Check check = Check::none;  // the failed check
    std::string message;
    uint64_t step = 0;     // steps taken (the failing step for a failure)
    uint64_t trace_hash = 0;
    std::vector<uint64_t> decisions;  // chosen indices: `schedule replay` reproduces the run
    std::string error;     // a model error (not a verdict): e.g. an op not built yet
    // Verdict deadlock with no wait-for cycle, where every blocked thread waits on a
    // user_wait() or, through the holders of what it waits for, on a thread that does.
    bool user_wait = false;
};

class Runtime {
public:
    explicit Runtime(RuntimeConfig cfg = {});
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Drops every thread and takes a new configuration, keeping what can be reused
    // (the host fiber; thread stacks go back to the fiber stack cache).  Not during a run.
    void reset(RuntimeConfig cfg);

    // ---- set-up, before run() ----
    // `started` threads are runnable when the run begins; others wait for start().
    Tid add_thread(std::string name, std::function<void()> body, bool started = true);
    size_t thread_count() const { return threads_.size(); }
    const std::string& thread_name(Tid t) const;
    std::string entity_name(Entity e) const;
    // Called on a thread just before it finishes, on its own fiber (lockdep checks that
    // it holds no lock).  May call fail().
    void set_thread_exit_hook(std::function<void(Tid)> hook) { exit_hook_ = std::move(hook); }

    // Runs every thread to completion or to the first verdict.  May be called again
    // after reset-free re-adding of nothing: each run restarts all threads' bodies.
    RunOutcome run(Policy& policy);

    // ---- called from simulated threads ----
    Tid self() const { return cur_; }
    bool running() const { return in_run_; }
    uint64_t step() const { return step_; }

    // A scheduling point: the policy may run another thread before this one goes on.
    void yield(const Site* site, Ev ev, uint64_t arg = 0);
    // Blocks the calling thread on w until some other thread or event calls wake().
    void wait(const Site* site, const Waitable* w);
    void wake(Tid t);
    // Makes a not-yet-started thread runnable (the threads of a forked process).
    void start(Tid t);
    bool started(Tid t) const;
    // Posts an event (an I/O completion, an RCU grace-period end, an IPI delivery).
    // The policy may fire it at any decision at which ready() is true (null = always).
    // fire() runs without a thread context switch and must not block or yield.
    uint64_t post_event(const Site* site, std::function<bool()> ready,
                        std::function<void()> fire);
    // A trace record that is not a scheduling point.
    void note(const Site* site, Ev ev, uint64_t arg = 0);
    // Ends the run: `check` failed, with its verdict (MMRACE_CHECKS).  Unwinds the
    // calling thread.
    [[noreturn]] void fail(Check check, std::string message);

    const std::vector<TraceRecord>& trace() const { return trace_; }

private:
    enum class State : uint8_t { not_started, runnable, blocked, finished };
    struct Thread;
    struct PendingEvent;
    struct Unwind {};

    static void thread_main(void* arg);
    void record(Entity who, const Site* site, Ev ev, uint64_t arg);
    Entity choose();  // fires events until a thread is chosen; kNoThread if none can run
    void fire(PendingEvent& ev);
    void switch_from(Tid from, Entity to, bool final);
    void finish_current();
    void end_run_on_host();
    [[noreturn]] void deadlock();
    std::string wait_for_cycle() const;
    bool stuck_on_user_wait(Tid t, std::vector<Tid>& seen) const;
    void check_interrupt();

    RuntimeConfig cfg_;
    std::vector<std::unique_ptr<Thread>> threads_;
    std::vector<PendingEvent> events_;
    std::unique_ptr<Fiber> host_;
    std::function<void(Tid)> exit_hook_;
    Policy* policy_ = nullptr;
    Tid cur_ = kNoThread;
    uint64_t runnable_mask_ = 0;
    uint64_t step_ = 0;
    uint64_t hash_ = 0;
    uint64_t event_serial_ = 0;
    uint64_t next_interrupt_check_ = 0;
    bool in_run_ = false;
    bool over_ = false;
    bool killing_ = false;
    RunOutcome out_;
    std::vector<TraceRecord> trace_;
    std::vector<Entity> options_;
};

// The runtime whose run is executing on this OS thread (null outside a run).
Runtime* current_runtime();

}  // namespace mmrace::rt
