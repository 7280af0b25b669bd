// PCT's step bound k: the number of scheduling decisions a run makes.  PCT draws its
// priority change points among the first k decisions, so a k far above the real length
// puts most of them past the end of the run, and a run with fewer preemptions than
// asked.  As in Shuttle's PCT scheduler, the bound is learned: a first run that lets
// each thread run on (replay with an empty list) measures it, and every PCT run that
// turns out longer raises it.  Generated workloads draw a new program per seed, and
// each is measured on its own (forget()): the longest program seen so far would put
// the change points of every shorter one past its end, and make seed s's schedule
// depend on the seeds run before it.
#pragma once

#include <cstdint>

#include "mmrace/program.hpp"
#include "mmrace/run.hpp"

namespace mmrace::explore_detail {

class PctBound {
public:
    // A bound given by the user (not 0) is fixed; 0 means learn it.
    explicit PctBound(uint64_t given) : value_(given), fixed_(given != 0) {}

    // The bound for a PCT run of `program`; the first call with nothing given measures
    // `program` once under `base` (checks off).  At least 1.
    uint64_t get(const Program& program, const RunOptions& base);
    // A PCT run ended: raise the bound to its length if it was longer.
    void saw(const RunResult& r);
    // The next program is another one: a learned bound is measured on it afresh.
    void forget() {
        if (!fixed_) value_ = 0;
    }
    uint64_t value() const { return value_; }

private:
    uint64_t value_;
    bool fixed_;
};

// How many decisions a run made: the length of its `schedule replay ...` line.
uint64_t decisions(const RunResult& r);

}  // namespace mmrace::explore_detail
