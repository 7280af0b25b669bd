// Helpers the C++ test files share: run a .mmr text, read its results and counters.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mm/kernel.hpp"
#include "mm/pgalloc.hpp"
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

// The PTE of addr in the current mm, for a test that breaks a state by hand (its PTE
// table must exist).  Called on the simulated thread, e.g. from RunOptions::after_op.
inline mm::pte_t& pte_of(mm::Kernel& k, uint64_t addr) {
    mm::TableId t = mm::pte_table_lookup(k, k.current_mm(), addr);
    EXPECT_NE(t, mm::kNoTable);
    return k.tables[t].entries[k.geo.index(addr, mm::PTE_LEVEL)];
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
