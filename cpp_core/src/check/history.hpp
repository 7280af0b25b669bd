// The op history of a run, as the semantic oracle sees it (DESIGN §7, check 4).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mmrace/program.hpp"
#include "mmrace/run.hpp"

namespace mmrace::check {

// One op that returned.  Invocation and response are points of one global order: a
// run is one OS thread, so the order in which fibers reach them is real time.
struct HistOp {
    const Op* op = nullptr;
    int thread = 0;    // thread id, in program order
    int process = -1;  // the thread's process, -1 for a kernel thread
    size_t index = 0;  // position in its thread
    uint64_t inv = 0;
    uint64_t resp = 0;
    std::string result;
};

struct History {
    const Program* program = nullptr;
    std::vector<std::string> thread_names;
    std::vector<HistOp> ops;  // in invocation order
};

// What the check did, for benchmarks and tests.
struct LinStats {
    size_t groups = 0;     // groups of related pages searched
    size_t subops = 0;     // ops projected onto them (a windowed op counts twice)
    size_t nodes = 0;      // search nodes visited
    size_t gave_up = 0;    // groups whose search hit the node budget (not checked)
    bool skipped = false;  // the program uses an op the reference model lacks
    bool interrupted = false;
};

// Checks that the history is linearizable against the sequential reference model
// (check/refmodel.hpp), one group of related pages at a time.  Returns "" or a
// report that names the pages and lists the ops of the failing group.
// `interrupted` is polled now and then; when it says true the check stops early with
// stats->interrupted set.  On a failure, `failing` (if given) gets the failing group's
// history for traces; asking for it changes neither the verdict nor the stats.
std::string check_linearizable(const History& h, LinStats* stats = nullptr,
                               const std::function<bool()>& interrupted = {},
                               LinHistory* failing = nullptr);

}  // namespace mmrace::check
