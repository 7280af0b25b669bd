// Exploring the schedules of a program, or of a generator's programs: the one loop the
// soak, the benchmarks, the C++ tests' race sweeps and the Python API share.
//
// Each seed's program runs once under each schedule family of the options, with that
// seed; failures come back with what replays them.  PCT's step bound (its estimate of
// a run's length in decisions) is learned from a first run unless given.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mmrace/program.hpp"
#include "mmrace/run.hpp"

namespace mmrace {

// The program of a seed: a generator (random_workload's adaptor), or one fixed program.
using ProgramSource = std::function<Program(uint64_t seed)>;

struct ExploreResult;

struct ExploreOptions {
    // The schedule families each seed runs under, in this order: {random}, {pct}, or a
    // mix such as {random, pct}.  Kind::replay is no family: replays go in `replays`.
    std::vector<Schedule::Kind> policies{Schedule::Kind::random};
    // Replay lists run first, once each, on the first seed's program (say, the failing
    // schedules of an earlier exploration).
    std::vector<std::vector<uint64_t>> replays;
    uint64_t first_seed = 0;
    uint64_t max_runs = 1000;
    double max_seconds = 0;  // wall-clock limit, checked between runs; 0: none
    uint32_t pct_depth = 3;
    uint64_t pct_steps = 0;  // 0: learned from a first run (explore/pct_bound.hpp)
    bool stop_at_first_failure = false;
    size_t keep_failures = 1;  // how many failures to keep (the first ones)
    // Every run's options: budget, check_quiescent, check_semantics, lin_stats.  Its
    // `schedule` and `interrupted` are explore's own.
    RunOptions run = [] {
        RunOptions o;
        o.trace = false;
        return o;
    }();
    // Polled between runs and during them; true stops the exploration (Ctrl-C).  The
    // run it stops is not counted.
    std::function<bool()> interrupted;
    // Called with the result so far every `progress_seconds`, and once at the end.
    std::function<void(const ExploreResult&)> progress;
    double progress_seconds = 1.0;
    // Called after every run that is counted (sums of counters, of LinStats, ...).
    std::function<void(uint64_t seed, const Program&, const RunResult&)> on_run;
};

// A run that did not end ok.
struct ExploreFailure {
    uint64_t seed = 0;
    Program program;    // the seed's program, with its own schedule line
    Schedule schedule;  // the schedule the run was given (random/pct seed, or replay)
    // verdict, check, message, and `schedule`: the `schedule replay ...` line that
    // replays the run.  For a ModelError: model_error set, message its what().
    RunResult result;
    bool model_error = false;
    // The .mmr text that reproduces the failure (with the same budget).
    std::string reproducer() const;
};

struct ExploreResult {
    enum class Stop { done, time, failure, interrupted };
    uint64_t runs = 0;
    std::map<Verdict, uint64_t> verdicts;  // runs per verdict (a ModelError is none)
    uint64_t model_errors = 0;             // runs that raised ModelError
    std::vector<ExploreFailure> failures;       // the first keep_failures
    double seconds = 0;
    uint64_t pct_steps = 0;  // PCT's step bound at the end (0 if no PCT run)
    Stop stopped = Stop::done;

    uint64_t not_ok() const;  // runs that did not end ok
    double runs_per_second() const { return seconds > 0 ? static_cast<double>(runs) / seconds : 0; }
};

const char* stop_name(ExploreResult::Stop s);  // "done", "time", "failure", "interrupted"

// Runs the programs of seeds first_seed, first_seed + 1, ... under options.policies
// until max_runs, max_seconds, a failure (if asked) or an interrupt.  Throws
// std::invalid_argument for bad options, NotBuilt and ParseError as run_program does;
// a ModelError is a failure.
ExploreResult explore(const ProgramSource& source, const ExploreOptions& options);
ExploreResult explore(const Program& program, const ExploreOptions& options);

}  // namespace mmrace
