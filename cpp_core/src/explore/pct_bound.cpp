// Learning PCT's step bound from the runs (see pct_bound.hpp).
#include "explore/pct_bound.hpp"

#include <algorithm>

namespace mmrace::explore_detail {

uint64_t decisions(const RunResult& r) {
    // "schedule replay d0 d1 ...": one number per decision after the two words.
    uint64_t words = 0;
    bool in_word = false;
    for (char c : r.schedule) {
        bool space = c == ' ';
        if (!space && !in_word) ++words;
        in_word = !space;
    }
    return words > 2 ? words - 2 : 0;
}

uint64_t PctBound::get(const Program& program, const RunOptions& base) {
    if (value_ == 0 && !fixed_) {
        RunOptions o = base;
        o.schedule = Schedule{};  // replay, empty list: each thread runs on until it waits
        o.trace = false;
        o.check_quiescent = false;
        o.check_semantics = false;
        o.lin_stats = nullptr;
        value_ = std::max<uint64_t>(1, decisions(run_program(program, o)));
    }
    return value_;
}

void PctBound::saw(const RunResult& r) {
    if (!fixed_) value_ = std::max(value_, decisions(r));
}

}  // namespace mmrace::explore_detail
