// Helpers the C++ test files share: run a .mmr text, read its results and counters.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mm/kernel.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"

namespace mmrace::testing {

// Every op's result in program order, "-" for an op that never ran.
inline std::vector<std::string> results(const RunResult& r) {
    std::vector<std::string> v;
    for (const auto& o : r.ops) v.push_back(o.result.value_or("-"));
    return v;
}

// A counter of the run (a test failure if it does not exist).
inline uint64_t counter(const RunResult& r, const std::string& name) {
    for (const auto& [k, v] : r.counters)
        if (k == name) return v;
    ADD_FAILURE() << "no counter " << name;
    return 0;
}

inline RunResult run_text(const std::string& text, std::optional<Schedule> s = std::nullopt,
                          std::function<void(mm::Kernel&, const std::string&, size_t)> after_op = {}) {
    RunOptions o;
    o.schedule = s;
    o.after_op = std::move(after_op);
    return run_program(parse_mmr(text), o);
}

inline Schedule random_schedule(uint64_t seed) {
    Schedule s;
    s.kind = Schedule::Kind::random;
    s.seed = seed;
    return s;
}

inline Schedule pct_schedule(uint64_t seed, uint32_t depth = 3) {
    Schedule s;
    s.kind = Schedule::Kind::pct;
    s.seed = seed;
    s.depth = depth;
    return s;
}

}  // namespace mmrace::testing
