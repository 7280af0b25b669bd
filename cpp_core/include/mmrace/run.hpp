// Running a Program: the one entry point the bindings, the CLI, the fuzzers and the
// C++ tests share.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mmrace/program.hpp"
#include "mmrace/verdict.hpp"

namespace mmrace {

namespace check {
struct LinStats;
}
namespace rt {
class RecordSink;
}

// The program asks for something whose model is not built yet (an op, a strategy, a
// mutant).  Raised before the run starts; never turned into a made-up result.
class NotBuilt : public std::logic_error {
public:
    explicit NotBuilt(const std::string& what) : std::logic_error(prefix() + what) {}
    static const char* prefix() { return "not built yet: "; }
};

// An internal error of the model during a run (a bug of mmrace, not a verdict).
class ModelError : public std::runtime_error {
public:
    explicit ModelError(const std::string& what, std::string schedule = {})
        : std::runtime_error(what), schedule_(std::move(schedule)) {}
    // The `schedule replay ...` line that replays the run up to the error; empty when
    // the error was raised outside run_program.
    const std::string& schedule() const { return schedule_; }

private:
    std::string schedule_;
};

struct RunOptions {
    std::optional<Schedule> schedule;  // overrides the program's `schedule` line
    // Steps; overrides the program's budget (config budget=, default kDefaultBudget).
    std::optional<uint64_t> budget;
    bool trace = true;                 // keep trace records (the hash is always computed)
    size_t trace_limit = 1u << 20;
    // Polled now and then during the run; true stops it with verdict `interrupted`.
    std::function<bool()> interrupted;
    // Run the structural and accounting invariants at every quiescent point (no op in
    // flight on any thread), not only at the end.
    bool check_quiescent = true;
    // Check the op history against the sequential reference model (linearizability,
    // DESIGN §7 check 4) after a run that ended ok.
    bool check_semantics = true;
    // Where to put what that check did (benchmarks, tests); may be null.
    check::LinStats* lin_stats = nullptr;
    // Sees every trace record of the run (the fuzzers' interleaving feedback); may be null.
    rt::RecordSink* record_sink = nullptr;
};

struct OpResult {
    std::string thread;
    size_t index = 0;                  // position in its thread
    std::string op;                    // the op's canonical text
    std::optional<std::string> result; // null when the op never ran
};

struct TraceEntry {
    uint64_t step;
    std::string who;
    std::string site;
    std::string event;
    uint64_t arg;
};

// The history of the page group that check linearizability could not order, as
// Porcupine's visualiser shows one: every op of the group as an [invocation, response]
// interval, and how far the search got.  The longest order the search found places
// the `linearized` ops; after it, each `stuck` op could go next by real time, but its
// result disagrees with the reference model in that state.
struct LinOp {
    enum class Mark : uint8_t { linearized, stuck, unreached };
    std::string thread;
    size_t index = 0;             // position in its thread (as OpResult)
    uint64_t inv = 0, resp = 0;   // points of the run's op clock
    Mark mark = Mark::unreached;
};

struct LinHistory {
    std::string pages;     // the group's pages, as the check's message names them
    size_t linearized = 0; // ops the longest order placed
    std::vector<LinOp> ops;  // in invocation order
};

struct RunResult {
    Verdict verdict = Verdict::ok;
    Check check = Check::none;  // none for ok
    std::string message;
    // Verdict deadlock that is the program's own: with no wait-for cycle, every blocked
    // thread waits, itself or through what it waits for, on a userfault no thread serves.
    bool user_wait = false;
    uint64_t step = 0;
    std::vector<OpResult> ops;
    std::vector<std::pair<std::string, uint64_t>> counters;  // in a fixed order
    uint64_t trace_hash = 0;
    std::vector<TraceEntry> trace;
    std::string schedule;  // a `schedule replay ...` line that reproduces this run
    // The same run as a `schedule preempt D:K ...` line: the decisions where it did not
    // let the current thread run on (docs/schedules.md); its entries are its preemptions.
    std::string preempt_schedule;
    uint64_t budget = kDefaultBudget;  // the step budget the run had
    std::shared_ptr<const Program> program;  // the program that ran
    std::optional<LinHistory> lin_history;  // set when check linearizability failed

    bool ok() const { return verdict == Verdict::ok; }
    // The reproducer: the canonical .mmr text of the program with its budget and its
    // schedule line set to `schedule`.  Parsed and run with no options, it gives this
    // run's verdict and trace hash (DESIGN §9).  Every front end prints this for a
    // failure.
    std::string reproducer() const;
};

// Runs the program once.  Throws NotBuilt before running anything the model lacks,
// ModelError for an internal error.
RunResult run_program(const Program& program, const RunOptions& options = {});

// Throws NotBuilt naming the first op/strategy/mutant of `program` that is not built.
void check_built(const Program& program);

// The reproducer of a run: the .mmr text of `program` with its schedule line set to
// `schedule` (a RunResult's or a ModelError's `schedule replay ...`).  Run with the
// same budget, it gives the same verdict and trace hash.  Throws ParseError if
// `schedule` is not a schedule.
std::string replay_mmr(const Program& program, std::string_view schedule);

}  // namespace mmrace
