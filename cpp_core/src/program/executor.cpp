// Runs a Program on a fresh simulated kernel: one simulated thread per program thread,
// each executing its ops in order, under the schedule's policy.
#include <algorithm>
#include <array>
#include <memory>
#include <sstream>

#include "check/history.hpp"
#include "check/invariants.hpp"
#include "gup/pin.hpp"
#include "mm/kernel.hpp"
#include "mm/khugepaged.hpp"
#include "mm/kswapd.hpp"
#include "mm/userfaultfd.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "mutants/catalogue.hpp"
#include "ops/ops.hpp"
#include "program/test_hooks.hpp"

namespace mmrace {

namespace {

// The `schedule replay ...` line of a run's decisions.
std::string replay_line(const std::vector<uint64_t>& decisions) {
    std::ostringstream sched;
    sched << "schedule replay";
    for (uint64_t d : decisions) sched << ' ' << d;
    return sched.str();
}

[[noreturn]] void not_built(const std::string& what, SrcLoc loc = {}) {
    std::string where = loc.line ? "line " + std::to_string(loc.line) + ": " : "";
    throw NotBuilt(where + what);
}

// The op's registry row (mmrace/ops.hpp) says whether the model runs it.
void check_op_built(const Op& op) {
    if (static_cast<size_t>(op.kind) >= std::size(kOpSpecs))
        not_built("op kind " + std::to_string(static_cast<int>(op.kind)), op.loc);
    if (!op_spec(op.kind).built) not_built(std::string("op '") + op_name(op.kind) + "'", op.loc);
}

std::unique_ptr<rt::Policy> make_policy(const Schedule& s) {
    switch (s.kind) {
        case Schedule::Kind::replay: return rt::make_replay_policy(s.replay);
        case Schedule::Kind::random: return rt::make_random_policy(s.seed);
        case Schedule::Kind::pct: return rt::make_pct_policy(s.seed, s.depth, s.steps);
        case Schedule::Kind::preempt: {
            std::vector<rt::Preemption> switches;
            for (auto [decision, choice] : s.preempt) switches.push_back({decision, choice});
            return rt::make_preempt_policy(std::move(switches));
        }
    }
    return rt::make_replay_policy({});
}

// What an op's model function gets besides the op: the kernel, the program (for
// names), and for a `pin` op its handle (its index among the pin ops in file order).
struct OpCall {
    mm::Kernel& k;
    const Program& p;
    int pin_handle;
};

// The model of each op (mmrace/ops.hpp's rows), called as exec_NAME(call, op).  The
// thread runs in the op's process (a kthread in none); each returns the op's result
// as the .mmr format writes it.
std::string exec_mmap(OpCall& c, const Op& op) { return ops::sys_mmap(c.k, op); }
std::string exec_munmap(OpCall& c, const Op& op) { return ops::sys_munmap(c.k, op.addr, op.pages); }
std::string exec_mprotect(OpCall& c, const Op& op) {
    return ops::sys_mprotect(c.k, op.addr, op.pages, op.prot);
}
std::string exec_madvise(OpCall& c, const Op& op) {
    return ops::sys_madvise(c.k, op.addr, op.pages, op.advice);
}
std::string exec_mremap(OpCall& c, const Op& op) { return ops::sys_mremap(c.k, op); }
std::string exec_read(OpCall& c, const Op& op) { return ops::user_read(c.k, op.addr); }
std::string exec_write(OpCall& c, const Op& op) { return ops::user_write(c.k, op.addr, op.value); }
std::string exec_peek(OpCall& c, const Op& op) { return gup::sys_peek(c.k, op.addr); }
std::string exec_poke(OpCall& c, const Op& op) { return gup::sys_poke(c.k, op.addr, op.value); }
std::string exec_fork(OpCall& c, const Op& op) {
    return ops::sys_fork(c.k, op.process, c.p.processes.at(op.process).name);
}
std::string exec_exit(OpCall&, const Op&) { return "0"; }  // the thread body stops after it
std::string exec_pin(OpCall& c, const Op& op) { return gup::sys_pin(c.k, op, c.pin_handle); }
std::string exec_gup(OpCall& c, const Op& op) { return gup::sys_gup(c.k, op); }
std::string exec_unpin(OpCall& c, const Op& op) { return gup::sys_unpin(c.k, op.handle); }
std::string exec_dma_read(OpCall& c, const Op& op) { return gup::dma_read(c.k, op.handle, op.offset); }
std::string exec_dma_write(OpCall& c, const Op& op) {
    return gup::dma_write(c.k, op.handle, op.offset, op.value);
}
std::string exec_uffd_register(OpCall& c, const Op& op) {
    return ops::sys_uffd_register(c.k, op.addr, op.pages, op.uffd_mode);
}
std::string exec_uffd_wp(OpCall& c, const Op& op) { return ops::sys_uffd_wp(c.k, op.addr, op.pages, op.on); }
std::string exec_uffd_serve(OpCall& c, const Op& op) { return ops::uffd_serve(c.k, op.count(), op.value); }
std::string exec_file_write(OpCall& c, const Op& op) {
    return mm::file_write(c.k, *c.k.files.at(op.file), op.page_offset(), op.value);
}
std::string exec_truncate(OpCall& c, const Op& op) { return mm::do_truncate(c.k, *c.k.files.at(op.file), op.pages); }
std::string exec_sysfs_write(OpCall& c, const Op& op) { return ops::sysfs_write(c.k, op.addr); }
std::string exec_collapse(OpCall& c, const Op& op) { return mm::khugepaged_collapse(c.k, op.process, op.addr); }
std::string exec_reclaim(OpCall& c, const Op& op) { return mm::kswapd_reclaim(c.k, op.count()); }
std::string exec_smaps(OpCall& c, const Op& op) { return ops::proc_smaps(c.k, op.process); }
std::string exec_cpu_hotplug(OpCall& c, const Op&) { return ops::cpu_hotplug(c.k); }

// The dispatch, derived from the registry: every row has its exec_NAME.
std::string exec_op(mm::Kernel& k, const Program& p, const Op& op, int pin_handle) {
    OpCall c{k, p, pin_handle};
    switch (op.kind) {
#define X(name, ...) \
    case OpKind::name: return exec_##name(c, op);
        MMRACE_OPS(X)
#undef X
    }
    not_built("op kind " + std::to_string(static_cast<int>(op.kind)), op.loc);  // not a row
}

struct Slot {
    const Thread* thread;
    size_t index;
    int tid;      // the simulated thread
    int process;  // -1 for a kernel thread
    std::optional<std::string> result;
    uint64_t inv = 0, resp = 0;  // points in RunState::clock
};

// What every simulated thread shares during one run.
struct RunState {
    mm::Kernel& k;
    const Program& p;
    const RunOptions& opt;
    std::vector<Slot> slots;
    std::vector<int> pin_handles;  // by slot: a pin op's handle, else -1
    int in_flight = 0;  // ops (and exits) under way on any thread
    uint64_t clock = 0;  // orders every op invocation and response of the run
    const AfterOp* after_op = nullptr;  // a test's hook (program/test_hooks.hpp)
};

// A quiescent point: no thread is inside the kernel, so every invariant must hold.
void op_done(RunState& s, const Thread& t, size_t index) {
    --s.in_flight;
    if (s.after_op && *s.after_op) (*s.after_op)(s.k, t.name, index);
    if (s.opt.check_quiescent && s.in_flight == 0) check::check_quiescent(s.k);
}

// Adds one simulated thread that runs `t`'s ops, writing results into slots[base...],
// then exits (do_exit: the last thread of a process tears its mm down).
void add_thread(RunState& s, const Thread& t, int process, bool started, size_t base) {
    s.k.rt.add_thread(
        t.name,
        [&s, &t, base] {
            for (size_t i = 0; i < t.ops.size(); ++i) {
                s.k.rt.note(MMR_SITE("op"), rt::Ev::op_begin, i);
                ++s.in_flight;
                Slot& slot = s.slots[base + i];
                slot.inv = ++s.clock;
                slot.result = exec_op(s.k, s.p, t.ops[i], s.pin_handles[base + i]);
                slot.resp = ++s.clock;
                s.k.rt.note(MMR_SITE("op"), rt::Ev::op_end, i);
                op_done(s, t, i);
                if (t.ops[i].kind == OpKind::exit) break;
            }
            mm::userfaultfd_thread_done(s.k);  // a uffd handler may stop waiting for it
            ++s.in_flight;
            ops::do_exit(s.k);
            gup::exit_pins(s.k);  // the device's file closes after exit_mm
            op_done(s, t, t.ops.size());
        },
        started);
    s.k.thread_process.push_back(process);
}

void fill_result(const mm::Kernel& k, const Program& p, const rt::RunOutcome& out,
                 std::vector<Slot>& slots, RunResult& r) {
    r.verdict = out.verdict;
    r.check = out.check;
    r.message = out.message;
    r.user_wait = out.user_wait;
    r.step = out.step;
    r.trace_hash = out.trace_hash;
    for (auto& s : slots)
        r.ops.push_back(OpResult{s.thread->name, s.index, print_op(p, s.thread->ops[s.index]),
                                 std::move(s.result)});
    for (size_t i = 0; i < k.counters.v.size(); ++i)
        r.counters.emplace_back(mm::counter_names[i], k.counters.v[i]);
    for (const auto& t : k.rt.trace())
        r.trace.push_back(TraceEntry{t.step, t.who == rt::kNoThread ? "-" : k.rt.entity_name(t.who),
                                     t.site->name, rt::ev_name(t.ev), t.arg});
    r.schedule = replay_line(out.decisions);
}

// The `schedule preempt ...` line of the switches a recorder saw.
std::string preempt_line(const std::vector<rt::Preemption>& switches) {
    std::string line = "schedule preempt";
    for (const auto& sw : switches)
        line += " " + std::to_string(sw.decision) + ":" + std::to_string(sw.choice);
    return line;
}

// The history the semantic oracle checks: every op that returned.
check::History history(const Program& p, const std::vector<Slot>& slots) {
    check::History h;
    h.program = &p;
    for (const auto& proc : p.processes)
        for (const auto& t : proc.threads) h.thread_names.push_back(t.name);
    for (const auto& t : p.kthreads) h.thread_names.push_back(t.name);
    for (const auto& s : slots)
        if (s.result)
            h.ops.push_back(check::HistOp{&s.thread->ops[s.index], s.tid, s.process, s.index,
                                          s.inv, s.resp, *s.result});
    std::sort(h.ops.begin(), h.ops.end(), [](const auto& a, const auto& b) { return a.inv < b.inv; });
    return h;
}

// The simulated kernel for a run: one per geometry and OS thread, kept between runs so
// that its pools are reset, not rebuilt.  A nested run (a hook that runs a program)
// gets a kernel of its own.
class KernelLease {
public:
    KernelLease(const Config& cfg, rt::RuntimeConfig rc) {
        Cached& s = cache()[cfg.geometry == Geometry::small ? 0 : 1];
        if (s.busy) {
            own_ = std::make_unique<mm::Kernel>(cfg, std::move(rc));
            k_ = own_.get();
            return;
        }
        if (s.k) s.k->prepare(cfg, std::move(rc));
        else s.k = std::make_unique<mm::Kernel>(cfg, std::move(rc));
        s.busy = true;
        slot_ = &s;
        k_ = s.k.get();
    }
    ~KernelLease() {
        if (slot_) slot_->busy = false;
    }
    KernelLease(const KernelLease&) = delete;
    KernelLease& operator=(const KernelLease&) = delete;
    mm::Kernel& get() { return *k_; }

private:
    struct Cached {
        std::unique_ptr<mm::Kernel> k;
        bool busy = false;
    };
    static std::array<Cached, 2>& cache() {
        thread_local std::array<Cached, 2> c;
        return c;
    }
    Cached* slot_ = nullptr;
    std::unique_ptr<mm::Kernel> own_;
    mm::Kernel* k_ = nullptr;
};

}  // namespace

// Whether a catalogue row's strategies ("all" or a comma list) include s.
bool mutant_applies(const MutantInfo& row, Strategy s) {
    std::string_view list = row.strategies, name = strategy_name(s);
    if (list == "all") return true;
    for (size_t at = 0; at <= list.size();) {
        size_t comma = std::min(list.find(',', at), list.size());
        if (list.substr(at, comma - at) == name) return true;
        at = comma + 1;
    }
    return false;
}

void check_built(const Program& p) {
    if ((p.config.vma_lock_swapin || p.config.vma_lock_file || p.config.vma_lock_uffd) &&
        p.config.strategy != Strategy::pervma)
        throw std::invalid_argument(std::string("config vma_lock= is for strategy pervma, not ") +
                                    strategy_name(p.config.strategy));
    for (const auto& m : p.config.mutants) {
        const MutantInfo* row = find_mutant(m);
        if (!row) throw std::invalid_argument("unknown mutant '" + m + "'");
        if (!row->built) not_built("mutant '" + m + "'");
        if (!mutant_applies(*row, p.config.strategy))
            throw std::invalid_argument("mutant '" + m + "' applies to strategy " +
                                        row->strategies + ", not " +
                                        strategy_name(p.config.strategy));
    }
    for (const auto& proc : p.processes)
        for (const auto& t : proc.threads)
            for (const auto& op : t.ops) check_op_built(op);
    for (const auto& t : p.kthreads)
        for (const auto& op : t.ops) check_op_built(op);
}

namespace {
RunResult run_hooked(const Program& p, const RunOptions& opt, const AfterOp& after_op) {
    check_built(p);
    rt::RuntimeConfig rc;
    rc.budget = opt.budget.value_or(p.config.budget);
    rc.record_trace = opt.trace;
    rc.trace_limit = opt.trace_limit;
    rc.interrupted = opt.interrupted;
    rc.sink = opt.record_sink;
    KernelLease lease(p.config, std::move(rc));
    mm::Kernel& k = lease.get();

    RunState s{k, p, opt, {}, {}, 0, 0};
    s.after_op = &after_op;
    int tid = 0;
    for (size_t pi = 0; pi < p.processes.size(); ++pi)
        for (const auto& t : p.processes[pi].threads) {
            for (size_t i = 0; i < t.ops.size(); ++i)
                s.slots.push_back(Slot{&t, i, tid, static_cast<int>(pi), std::nullopt});
            ++tid;
        }
    for (const auto& t : p.kthreads) {
        for (size_t i = 0; i < t.ops.size(); ++i) s.slots.push_back(Slot{&t, i, tid, -1, std::nullopt});
        ++tid;
    }

    int npins = 0;
    for (const Slot& sl : s.slots)
        s.pin_handles.push_back(sl.thread->ops[sl.index].kind == OpKind::pin ? npins++ : -1);

    size_t base = 0;
    for (size_t pi = 0; pi < p.processes.size(); ++pi)
        for (const auto& t : p.processes[pi].threads) {
            add_thread(s, t, static_cast<int>(pi), !p.processes[pi].forked, base);
            base += t.ops.size();
        }
    for (const auto& t : p.kthreads) {
        add_thread(s, t, -1, true, base);
        base += t.ops.size();
    }

    k.reset(p.processes.size());
    k.pins.resize(static_cast<size_t>(npins));
    for (size_t fi = 0; fi < p.files.size(); ++fi) {
        auto f = std::make_unique<mm::address_space>();
        f->id = static_cast<int>(fi);
        f->name = p.files[fi].name;
        f->i_size = p.files[fi].pages * mm::PAGE_SIZE;
        k.files.push_back(std::move(f));
    }
    for (size_t pi = 0; pi < p.processes.size(); ++pi) {
        mm::process& proc = k.processes[pi];
        proc.nr_threads = static_cast<int>(p.processes[pi].threads.size());
        if (p.processes[pi].forked) continue;
        proc.mm = k.mm_alloc();
        proc.mm->mm_users = proc.nr_threads;
    }
    mm::userfaultfd_setup(k, p);

    auto policy = make_policy(opt.schedule.value_or(p.schedule.value_or(Schedule{})));
    rt::PreemptRecorder recorder(*policy);
    rt::RunOutcome out;
    {
        mm::Kernel::Scope scope(k);
        out = k.rt.run(recorder);
    }
    if (!out.error.empty()) {
        std::string_view prefix = NotBuilt::prefix();
        if (out.error.rfind(prefix, 0) == 0) throw NotBuilt(out.error.substr(prefix.size()));
        throw ModelError(out.error, replay_line(out.decisions));
    }
    if (out.verdict == rt::Verdict::ok) {
        // Every process has exited: nothing may be left (DESIGN §7, check 5).
        if (std::string leaks = check::find_leaks(k); !leaks.empty()) {
            out.verdict = rt::Verdict::violation;
            out.check = Check::leak;
            out.message = leaks;
        }
    }
    std::optional<LinHistory> lin_history;
    if (out.verdict == rt::Verdict::ok && opt.check_semantics) {
        check::LinStats local;
        check::LinStats& st = opt.lin_stats ? *opt.lin_stats : local;
        LinHistory failing;
        std::string bad = check::check_linearizable(history(p, s.slots), &st, opt.interrupted, &failing);
        if (st.interrupted) {
            out.verdict = rt::Verdict::interrupted;
            out.check = Check::interrupted;
            out.message = "the run was interrupted while its history was checked";
        } else if (!bad.empty()) {
            out.verdict = rt::Verdict::violation;
            out.check = Check::linearizability;
            out.message = bad;
            lin_history = std::move(failing);
        }
    }
    RunResult r;
    fill_result(k, p, out, s.slots, r);
    r.preempt_schedule = preempt_line(recorder.switches());
    r.budget = opt.budget.value_or(p.config.budget);
    r.program = std::make_shared<const Program>(p);
    r.lin_history = std::move(lin_history);
    return r;
}
}  // namespace

RunResult run_program(const Program& p, const RunOptions& opt) { return run_hooked(p, opt, {}); }

RunResult run_program(const Program& p, const TestRunOptions& opt) { return run_hooked(p, opt, opt.after_op); }

std::string replay_mmr(const Program& program, std::string_view schedule) {
    Program p = program;
    p.schedule = parse_schedule(schedule);
    return print_mmr(p);
}

}  // namespace mmrace
