// Helpers the C++ test files share: run a .mmr text, read its results and counters.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mm/huge_memory.hpp"
#include "mm/kernel.hpp"
#include "mm/pgalloc.hpp"
#include "mmrace/explore.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/test_hooks.hpp"

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
                          AfterOp after_op = {}) {
    TestRunOptions o;
    o.schedule = s;
    o.after_op = std::move(after_op);
    return run_program(parse_mmr(text), o);
}

// The PTE of addr in the current mm, for a test that breaks a state by hand (its PTE
// table must exist).  Called on the simulated thread, e.g. from TestRunOptions::after_op.
inline mm::pte_t& pte_of(mm::Kernel& k, uint64_t addr) {
    mm::TableId t = mm::pte_table_lookup(k, k.current_mm(), addr);
    EXPECT_NE(t, mm::kNoTable);
    return k.tables[t].entries[k.geo.index(addr, mm::PTE_LEVEL)];
}

// The THP tests' prologue: a 16-page VMA at a PMD boundary (small geometry: a PMD
// maps 8 pages, 0x8000 bytes) whose first write faults a THP at 0x200000; page 0 gets
// 1, page 1 gets 2 (ops 0-3 of P0.T0).
inline constexpr const char* kThpProgram = R"(process P0
thread P0.T0
  mmap 0x200000 pages=16 prot=rw flags=private,anon,fixed
  madvise 0x200000 pages=16 advice=hugepage
  write 0x200000 1
  write 0x201000 2
)";

// The head pfn of the THP a huge PMD maps at addr in the current mm, or kNoPfn.
// Called on the simulated thread.
inline mm::Pfn huge_pmd_head(mm::Kernel& k, uint64_t addr) {
    mm::PmdRef pmd = mm::pmd_lookup(k, k.current_mm(), addr);
    if (!pmd || !mm::pmd_trans_huge(mm::pmd_entry(k, pmd))) return mm::FolioPool::kNoPfn;
    return mm::pmd_pfn(mm::pmd_entry(k, pmd));
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

// `text` under `runs` random and as many PCT schedules (seeds 0..runs-1 and
// runs..2*runs-1; PCT's step bound learned): how many runs ended other than ok, and
// the first of them.
struct RaceSweep {
    int bad = 0;
    RunResult first;
};
inline RaceSweep race_sweep(const std::string& text, int runs) {
    RaceSweep s;
    Program p = parse_mmr(text);
    for (Schedule::Kind kind : {Schedule::Kind::random, Schedule::Kind::pct}) {
        ExploreOptions o;
        o.policies = {kind};
        o.first_seed = kind == Schedule::Kind::pct ? static_cast<uint64_t>(runs) : 0;
        o.max_runs = static_cast<uint64_t>(runs);
        ExploreResult r = explore(p, o);
        if (s.bad == 0 && !r.failures.empty()) s.first = r.failures.front().result;
        s.bad += static_cast<int>(r.not_ok());
    }
    return s;
}

}  // namespace mmrace::testing
