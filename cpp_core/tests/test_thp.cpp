// Transparent huge pages (issue 5 item 4): THP faults, huge PMDs under the MMU and
// every page-table walker, splitting, and khugepaged / MADV_COLLAPSE.
#include <gtest/gtest.h>

#include <string>

#include "mm/huge_memory.hpp"
#include "test_util.hpp"

using namespace mmrace;
using namespace mmrace::testing;

namespace {

struct Sweep {
    int bad = 0;
    RunResult first;
};
// `runs` random and as many PCT schedules; how many ended other than ok.
Sweep sweep(const std::string& text, int runs) {
    Sweep s;
    Program p = parse_mmr(text);
    for (int i = 0; i < 2 * runs; ++i) {
        RunOptions o;
        o.schedule = i < runs ? random_schedule(i) : pct_schedule(i);
        o.trace = false;
        o.check_quiescent = true;
        RunResult r = run_program(p, o);
        if (r.verdict != "ok" && s.bad++ == 0) s.first = r;
    }
    return s;
}

std::string prog(const std::string& config, const std::string& body) {
    return "mmrace 1\nconfig " + config + "\n" + body;
}

// Whether addr is mapped by a huge PMD in the current mm (on the simulated thread).
bool huge_at(mm::Kernel& k, uint64_t addr) {
    mm::PmdRef pmd = mm::pmd_lookup(k, k.current_mm(), addr);
    return pmd && mm::pmd_trans_huge(mm::pmd_entry(k, pmd));
}

// A 16-page VMA at a PMD boundary (small geometry: a PMD maps 8 pages, 0x8000 bytes).
const char* kThpVma = R"(process P0
thread P0.T0
  mmap 0x200000 pages=16 prot=rw flags=private,anon,fixed
  madvise 0x200000 pages=16 advice=hugepage
)";

}  // namespace

TEST(Thp, FaultInHugepageVmaMapsHugePmd) {
    std::string text = prog("strategy=classic", std::string(kThpVma) + R"(  write 0x200008 7
  read 0x207ff8
  read 0x200008
  write 0x208000 9
  read 0x208000
)");
    bool huge = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 2) huge = huge_at(k, 0x200000);
    });
    ASSERT_EQ(r.verdict, "ok") << r.message;
    EXPECT_TRUE(huge);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "0", "7", "ok", "9"}));
    EXPECT_EQ(counter(r, "thp_fault_alloc"), 2u);
    EXPECT_EQ(counter(r, "pgalloc_anon"), 0u);
}

TEST(Thp, NoHugePmdWithoutMadviseOrWhenUnaligned) {
    // enabled=madvise: no VM_HUGEPAGE, no THP; and a VMA that does not cover a whole
    // aligned PMD range falls back to PTEs.
    std::string text = prog("strategy=classic", R"(process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  write 0x200000 1
  mmap 0x301000 pages=8 prot=rw flags=private,anon,fixed
  madvise 0x301000 pages=8 advice=hugepage
  write 0x301000 2
  read 0x301000
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, "ok") << r.message;
    EXPECT_EQ(counter(r, "thp_fault_alloc"), 0u);
    EXPECT_EQ(results(r).back(), "2");
}

TEST(Thp, PartialMunmapAndMprotectSplit) {
    std::string text = prog("strategy=classic", std::string(kThpVma) + R"(  write 0x200000 1
  write 0x203000 3
  write 0x207000 7
  munmap 0x203000 pages=1
  read 0x200000
  read 0x203000
  read 0x207000
  mprotect 0x205000 pages=1 prot=r
  write 0x205000 5
  read 0x207000
  write 0x206000 6
  read 0x206000
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, "ok") << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "ok", "0", "1",
                                                    "SIGSEGV", "7", "0", "SIGSEGV", "7", "ok", "6"}));
    EXPECT_EQ(counter(r, "thp_fault_alloc"), 1u);
    EXPECT_GE(counter(r, "thp_split_pmd"), 1u);
}

TEST(Thp, DontneedWholeAndPartial) {
    std::string text = prog("strategy=classic", std::string(kThpVma) + R"(  write 0x200000 1
  write 0x208000 2
  write 0x20f000 3
  madvise 0x200000 pages=8 advice=dontneed
  madvise 0x20f000 pages=1 advice=dontneed
  read 0x200000
  read 0x208000
  read 0x20f000
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, "ok") << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "ok", "0", "0", "0",
                                                    "2", "0"}));
}

TEST(Thp, CowAfterForkKeepsBothSides) {
    std::string text = prog("strategy=classic", std::string(kThpVma) + R"(  write 0x200000 1
  write 0x201000 2
  fork P1
  write 0x200000 10
  read 0x201000
  read 0x200000
process P1 forked
thread P1.T0
  read 0x200000
  write 0x201000 20
  read 0x201000
  read 0x200000
)");
    for (int i = 0; i < 40; ++i) {
        RunOptions o;
        o.schedule = random_schedule(i);
        o.check_quiescent = true;
        RunResult r = run_program(parse_mmr(text), o);
        ASSERT_EQ(r.verdict, "ok") << r.message;
        auto v = results(r);
        EXPECT_EQ(std::vector<std::string>(v.begin() + 4, v.end()),
                  (std::vector<std::string>{"P1", "ok", "2", "10", "1", "ok", "20", "1"}));
    }
}

// Faults of two threads racing on one PMD range, under every strategy: one THP fault
// wins, the other retries through the huge PMD.
TEST(Thp, RacingThpFaultsUnderEveryStrategy) {
    for (const char* strat : {"classic", "spf", "pervma"}) {
        std::string text = prog(std::string("strategy=") + strat, R"(process P0
thread P0.T0
  mmap 0x200000 pages=16 prot=rw flags=private,anon,fixed
  madvise 0x200000 pages=16 advice=hugepage
  write 0x200000 1
  write 0x209000 2
  munmap 0x20a000 pages=2
  read 0x201000
thread P0.T1
  write 0x201000 3
  read 0x200000
  write 0x20b000 4
  read 0x209000
)");
        Sweep s = sweep(text, 60);
        EXPECT_EQ(s.bad, 0) << strat << ": " << s.first.check << ": " << s.first.message;
    }
}
