// Runs a Program on a fresh simulated kernel: one simulated thread per program thread,
// each executing its ops in order, under the schedule's policy.
#include <sstream>

#include "mm/kernel.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"

namespace mmrace {

namespace {

constexpr std::string_view kNotBuiltPrefix = "not built yet: ";

[[noreturn]] void not_built(const std::string& what, SrcLoc loc = {}) {
    std::string where = loc.line ? "line " + std::to_string(loc.line) + ": " : "";
    throw NotBuilt(std::string(kNotBuiltPrefix) + where + what);
}

void check_op_built(const Op& op) {
    switch (op.kind) {
        case OpKind::read:
        case OpKind::write:
        case OpKind::fork:
            return;
        case OpKind::mmap:
            if (!(op.flags & MAPF_ANON)) not_built("mmap of a file (page cache model)", op.loc);
            if (op.flags & MAPF_SHARED) not_built("mmap MAP_SHARED|MAP_ANONYMOUS (shmem)", op.loc);
            if (op.flags & MAPF_GROWSDOWN) not_built("mmap MAP_GROWSDOWN (expand_stack)", op.loc);
            return;
        default:
            not_built(std::string("op '") + op_name(op.kind) + "'", op.loc);
    }
}

std::unique_ptr<rt::Policy> make_policy(const Schedule& s) {
    switch (s.kind) {
        case Schedule::Kind::replay: return rt::make_replay_policy(s.replay);
        case Schedule::Kind::random: return rt::make_random_policy(s.seed);
        case Schedule::Kind::pct: return rt::make_pct_policy(s.seed, s.depth, s.steps);
    }
    return rt::make_replay_policy({});
}

std::string exec_op(mm::Kernel& k, const Program& p, const Op& op) {
    switch (op.kind) {
        case OpKind::mmap: return ops::sys_mmap(k, op);
        case OpKind::read: return ops::user_read(k, op.addr);
        case OpKind::write: return ops::user_write(k, op.addr, op.value);
        case OpKind::fork:
            return ops::sys_fork(k, op.process, p.processes.at(op.process).name);
        default: not_built(std::string("op '") + op_name(op.kind) + "'", op.loc);
    }
}

struct Slot {
    const Thread* thread;
    size_t index;
    std::optional<std::string> result;
};

// Adds one simulated thread that runs `t`'s ops, writing results into slots[base...].
void add_thread(mm::Kernel& k, const Program& p, const Thread& t, int process, bool started,
                std::vector<Slot>& slots, size_t base) {
    k.rt.add_thread(
        t.name,
        [&k, &p, &t, &slots, base] {
            for (size_t i = 0; i < t.ops.size(); ++i) {
                k.rt.note(MMR_SITE("op"), rt::Ev::op_begin, i);
                slots[base + i].result = exec_op(k, p, t.ops[i]);
                k.rt.note(MMR_SITE("op"), rt::Ev::op_end, i);
            }
        },
        started);
    k.thread_process.push_back(process);
}

void fill_result(const mm::Kernel& k, const Program& p, const rt::RunOutcome& out,
                 std::vector<Slot>& slots, RunResult& r) {
    r.verdict = rt::verdict_name(out.verdict);
    r.check = out.check;
    r.message = out.message;
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
    std::ostringstream sched;
    sched << "schedule replay";
    for (uint64_t d : out.decisions) sched << ' ' << d;
    r.schedule = sched.str();
}

}  // namespace

void check_built(const Program& p) {
    if (p.config.strategy != Strategy::classic)
        not_built(std::string("strategy '") + strategy_name(p.config.strategy) + "'");
    for (const auto& m : p.config.mutants) not_built("mutant '" + m + "'");
    for (const auto& proc : p.processes)
        for (const auto& t : proc.threads)
            for (const auto& op : t.ops) check_op_built(op);
    for (const auto& t : p.kthreads)
        for (const auto& op : t.ops) check_op_built(op);
}

RunResult run_program(const Program& p, const RunOptions& opt) {
    check_built(p);
    rt::RuntimeConfig rc;
    rc.budget = opt.budget;
    rc.record_trace = opt.trace;
    rc.trace_limit = opt.trace_limit;
    rc.interrupted = opt.interrupted;
    mm::Kernel k(p.config, rc);

    std::vector<Slot> slots;
    for (const auto& proc : p.processes)
        for (const auto& t : proc.threads)
            for (size_t i = 0; i < t.ops.size(); ++i) slots.push_back(Slot{&t, i, std::nullopt});
    for (const auto& t : p.kthreads)
        for (size_t i = 0; i < t.ops.size(); ++i) slots.push_back(Slot{&t, i, std::nullopt});

    size_t base = 0;
    for (size_t pi = 0; pi < p.processes.size(); ++pi)
        for (const auto& t : p.processes[pi].threads) {
            add_thread(k, p, t, static_cast<int>(pi), !p.processes[pi].forked, slots, base);
            base += t.ops.size();
        }
    for (const auto& t : p.kthreads) {
        add_thread(k, p, t, -1, true, slots, base);
        base += t.ops.size();
    }

    k.reset(p.processes.size());
    for (size_t pi = 0; pi < p.processes.size(); ++pi)
        if (!p.processes[pi].forked) k.process_mm[pi] = k.mm_alloc();

    auto policy = make_policy(opt.schedule.value_or(p.schedule.value_or(Schedule{})));
    rt::RunOutcome out;
    {
        mm::Kernel::Scope scope(k);
        out = k.rt.run(*policy);
    }
    if (!out.error.empty()) {
        if (out.error.rfind(kNotBuiltPrefix, 0) == 0) throw NotBuilt(out.error);
        throw ModelError(out.error);
    }
    RunResult r;
    fill_result(k, p, out, slots, r);
    return r;
}

}  // namespace mmrace
