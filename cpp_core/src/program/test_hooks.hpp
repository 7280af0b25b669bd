// Test-only hooks into a run, for C++ tests that break the state by hand and see a
// check catch it.  Not in include/mmrace/: no front end is handed an mm::Kernel&.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "mmrace/program.hpp"
#include "mmrace/run.hpp"

namespace mmrace {

namespace mm {
class Kernel;
}

// Called on the simulated thread after each op (its thread's name and index), before
// the quiescent checks.
using AfterOp = std::function<void(mm::Kernel&, const std::string& thread, size_t index)>;

struct TestRunOptions : RunOptions {
    AfterOp after_op;
};

// run_program, with the hooks of `options` called during the run.
RunResult run_program(const Program& program, const TestRunOptions& options);

}  // namespace mmrace
