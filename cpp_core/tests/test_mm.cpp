// The address-space model as far as issue 2 builds it: anonymous mmap, the classic
// fault, COW across fork, run through the executor exactly as the bindings do.
#include <gtest/gtest.h>

#include <set>

#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "runtime/policy.hpp"

using namespace mmrace;

namespace {

std::vector<std::string> results(const RunResult& r) {
    std::vector<std::string> v;
    for (const auto& o : r.ops) v.push_back(o.result.value_or("-"));
    return v;
}

uint64_t counter(const RunResult& r, const std::string& name) {
    for (const auto& [k, v] : r.counters)
        if (k == name) return v;
    ADD_FAILURE() << "no counter " << name;
    return 0;
}

RunResult run_text(const std::string& text, std::optional<Schedule> s = std::nullopt) {
    RunOptions o;
    o.schedule = s;
    return run_program(parse_mmr(text), o);
}

Schedule random_schedule(uint64_t seed) {
    Schedule s;
    s.kind = Schedule::Kind::random;
    s.seed = seed;
    return s;
}

}  // namespace

TEST(Mm, AnonymousFaultsZeroPageAndCow) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  read 0x100000
  write 0x100000 5
  read 0x100000
  read 0x101ff8
)");
    ASSERT_EQ(r.verdict, "ok") << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "0", "ok", "5", "0"}));
    // Read: zero page.  Write: COW from the zero page (copy).  Second page: zero page.
    EXPECT_EQ(counter(r, "zero_page_map"), 2u);
    EXPECT_EQ(counter(r, "cow_copy"), 1u);
    EXPECT_EQ(counter(r, "pgfault"), 3u);
}

TEST(Mm, ForkSharesThenCopiesOnWrite) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  fork P1
  write 0x100000 2
  read 0x100000
process P1 forked
thread P1.T0
  read 0x100000
  write 0x100000 3
  read 0x100000
)");
    ASSERT_EQ(r.verdict, "ok") << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "P1", "ok", "2", "1", "ok", "3"}));
    // One side copies, the other then reuses the page it holds alone.
    EXPECT_EQ(counter(r, "cow_copy") + counter(r, "cow_reuse"), 2u);
}

TEST(Mm, ConcurrentFaultsOnOnePageAgreeUnderEverySchedule) {
    const std::string text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed,populate
  write 0x100000 1
  read 0x100008
thread P0.T1
  write 0x100008 2
  read 0x100000
thread P0.T2
  read 0x100000
  read 0x100008
)";
    std::set<uint64_t> hashes;
    for (uint64_t seed = 0; seed < 300; ++seed) {
        auto r = run_text(text, random_schedule(seed));
        ASSERT_EQ(r.verdict, "ok") << "seed " << seed << ": " << r.message;
        auto v = results(r);
        // T1's write may come before the mmap (SIGSEGV) or after it (ok).
        EXPECT_TRUE(v[3] == "ok" || v[3] == "SIGSEGV") << v[3];
        for (size_t i : {2u, 4u, 5u, 6u})
            EXPECT_TRUE(v[i] == "0" || v[i] == "1" || v[i] == "2" || v[i] == "SIGSEGV") << v[i];
        hashes.insert(r.trace_hash);
    }
    EXPECT_GT(hashes.size(), 50u);
}

TEST(Mm, ReplayOfRecordedDecisionsIsExact) {
    const std::string text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  fork P1
thread P0.T1
  write 0x101000 2
process P1 forked
thread P1.T0
  read 0x100000
  write 0x100000 3
)";
    for (uint64_t seed = 0; seed < 50; ++seed) {
        auto a = run_text(text, random_schedule(seed));
        auto prog = parse_mmr(text + a.schedule + "\n");
        auto b = run_program(prog);
        EXPECT_EQ(a.trace_hash, b.trace_hash);
        EXPECT_EQ(results(a), results(b));
    }
}

TEST(Mm, NotBuiltIsAnErrorNotAResult) {
    EXPECT_THROW(run_text("mmrace 1\nprocess P0\nthread P0.T0\n  munmap 0x100000 pages=1\n"),
                 NotBuilt);
    EXPECT_THROW(run_text("mmrace 1\nconfig strategy=spf\nprocess P0\nthread P0.T0\n  read 0x1000\n"),
                 NotBuilt);
    try {
        run_text("mmrace 1\nprocess P0\nthread P0.T0\n  read 0x1000\n  exit\n");
        FAIL();
    } catch (const NotBuilt& e) {
        EXPECT_NE(std::string(e.what()).find("line 5: op 'exit'"), std::string::npos) << e.what();
    }
}
