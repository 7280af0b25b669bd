// Transparent huge pages (issue 5 item 4): THP faults, huge PMDs under the MMU and
// every page-table walker, splitting, and khugepaged / MADV_COLLAPSE.
#include <gtest/gtest.h>

#include <string>

#include "mm/huge_memory.hpp"
#include "program/generate/workload.hpp"
#include "test_util.hpp"

using namespace mmrace;
using namespace mmrace::testing;

namespace {

struct Sweep {
    int bad = 0;
    RunResult first;
    uint64_t collapsed = 0;  // thp_collapse_ok over all runs
};
// `runs` random, as many PCT schedules, and as many replay schedules that run thread 0
// alone for a while and then choose at random (so that a kthread's work lands in the
// middle of the threads' instead of before it); how many ended other than ok.
Sweep sweep(const std::string& text, int runs) {
    Sweep s;
    Program p = parse_mmr(text);
    for (int i = 0; i < 3 * runs; ++i) {
        RunOptions o;
        if (i < runs) {
            o.schedule = random_schedule(i);
        } else if (i < 2 * runs) {
            o.schedule = pct_schedule(i);
        } else {
            Schedule rs;
            rs.kind = Schedule::Kind::replay;
            rs.replay.assign(static_cast<size_t>(i - 2 * runs) * 5, 0);
            uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1);
            for (int j = 0; j < 600; ++j) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                rs.replay.push_back(x % 7);
            }
            o.schedule = rs;
        }
        o.trace = false;
        o.check_quiescent = true;
        RunResult r = run_program(p, o);
        s.collapsed += counter(r, "thp_collapse_ok");
        if (r.verdict != Verdict::ok && s.bad++ == 0) s.first = r;
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
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
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
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
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
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
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
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
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
        ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
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

namespace {

// Pages 0, 1, 3 and 9 written with PTEs, then the VMA is marked VM_HUGEPAGE.
const char* kPtesThenHugepage = R"(process P0
thread P0.T0
  mmap 0x200000 pages=16 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x201008 2
  write 0x203ff8 3
  write 0x209000 9
  madvise 0x200000 pages=16 advice=hugepage
)";

}  // namespace

TEST(Thp, MadviseCollapseIsContentTransparent) {
    std::string text = prog("strategy=classic", std::string(kPtesThenHugepage) + R"(  madvise 0x200000 pages=16 advice=collapse
  read 0x200000
  read 0x201008
  read 0x203ff8
  read 0x202000
  read 0x209000
  write 0x207000 7
  read 0x207000
)");
    bool huge0 = false, huge1 = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 6) huge0 = huge_at(k, 0x200000), huge1 = huge_at(k, 0x208000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_TRUE(huge0);
    EXPECT_TRUE(huge1);
    auto v = results(r);
    EXPECT_EQ(std::vector<std::string>(v.begin() + 6, v.end()),
              (std::vector<std::string>{"0", "1", "2", "3", "0", "9", "ok", "7"}));
    EXPECT_EQ(counter(r, "thp_collapse_ok"), 2u);
}

TEST(Thp, MadviseCollapseErrors) {
    // No VM_HUGEPAGE needed, but VM_NOHUGEPAGE refuses; a never-faulted VMA has no
    // anon_vma (EINVAL), nor does one only read (the zero page needs no anon_vma).
    std::string text = prog("strategy=classic", R"(process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  madvise 0x200000 pages=8 advice=collapse
  read 0x200000
  madvise 0x200000 pages=8 advice=collapse
  write 0x200000 5
  madvise 0x200000 pages=8 advice=nohugepage
  madvise 0x200000 pages=8 advice=collapse
  madvise 0x200000 pages=8 advice=hugepage
  madvise 0x200000 pages=8 advice=collapse
  read 0x200000
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "EINVAL", "0", "EINVAL", "ok", "0",
                                                    "EINVAL", "0", "0", "5"}));
}

// A replay schedule that runs thread 0 for `n` decisions, then thread `then` (an index
// into the runnable list) as long as it can run.
Schedule first_then(size_t n, uint64_t then) {
    Schedule s;
    s.kind = Schedule::Kind::replay;
    s.replay.assign(n, 0);
    s.replay.resize(n + 4000, then);
    return s;
}

TEST(Thp, KhugepagedCollapseResults) {
    // T0 sets the range up; then khugepaged (third runnable thread) collapses.
    std::string text = prog("strategy=classic", std::string(kPtesThenHugepage) + R"(  read 0x200000
  read 0x201008
  read 0x203ff8
  read 0x209000
thread P0.T1
  read 0x202000
kthread khugepaged
  collapse P0 0x200000
  collapse P0 0x208000
  collapse P0 0x200000
  collapse P0 0x300000
)");
    bool found = false;
    for (size_t n = 0; n < 400 && !found; n += 2) {
        RunResult r = run_text(text, first_then(n, 2));
        ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
        auto v = results(r);
        if (v[11] != "0") continue;
        found = true;
        // One written page in 0x208000 (7 none <= max_ptes_none 7): collapsed too; the
        // first range again is mapped by a huge PMD; nothing is mapped at 0x300000.
        EXPECT_EQ(std::vector<std::string>(v.begin() + 11, v.end()),
                  (std::vector<std::string>{"0", "0", "SCAN_PMD_MAPPED", "SCAN_VMA_NULL"}));
        EXPECT_EQ(std::vector<std::string>(v.begin() + 6, v.begin() + 10),
                  (std::vector<std::string>{"1", "2", "3", "9"}));
        EXPECT_EQ(counter(r, "thp_collapse_ok"), 2u);
    }
    EXPECT_TRUE(found);
}

// Collapse racing faults, munmap, mprotect, fork and MADV_DONTNEED, under every strategy
// and many schedules: every check passes and the oracle accepts every run.
TEST(Thp, CollapseRacesUnderEveryStrategy) {
    const char* body = R"(process P0
thread P0.T0
  mmap 0x200000 pages=16 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x201000 2
  write 0x202000 3
  madvise 0x200000 pages=16 advice=hugepage
  write 0x203000 4
  read 0x201000
  %OP%
  read 0x202000
  write 0x200000 5
thread P0.T1
  write 0x204000 6
  read 0x200000
  write 0x201000 7
  read 0x203000
kthread khugepaged
  collapse P0 0x200000
  collapse P0 0x208000
  collapse P0 0x200000
)";
    const char* ops[] = {"munmap 0x204000 pages=2", "munmap 0x208000 pages=8",
                         "mprotect 0x200000 pages=8 prot=r", "mprotect 0x208000 pages=8 prot=r",
                         "madvise 0x200000 pages=4 advice=dontneed", "fork P1",
                         "madvise 0x200000 pages=8 advice=collapse",
                         "mremap 0x200000 pages=8 new_pages=8 flags=maymove,fixed to=0x400000",
                         "mremap 0x208000 pages=8 new_pages=8 flags=maymove,fixed to=0x400000"};
    for (const char* strat : {"classic", "spf", "pervma"}) {
        uint64_t collapsed = 0;
        for (const char* op : ops) {
            std::string b = body;
            b.replace(b.find("%OP%"), 4, op);
            if (std::string(op).rfind("fork", 0) == 0) b += "process P1 forked\nthread P1.T0\n  read 0x201000\n  write 0x202000 8\n";
            Sweep s = sweep(prog(std::string("strategy=") + strat, b), 40);
            EXPECT_EQ(s.bad, 0) << strat << " / " << op << ": " << s.first.check << ": " << s.first.message;
            collapsed += s.collapsed;
        }
        EXPECT_GT(collapsed, 20u) << strat;
    }
}

namespace {

// A mutant's program run with and without the mutant over the same schedules: how
// many runs failed (and with which check) each way.
struct MutantSweep {
    int caught = 0, other = 0, clean_bad = 0;
    std::string other_msg, clean_msg;
};
MutantSweep mutant_sweep(const std::string& with, const std::string& without,
                         Check check, int runs) {
    MutantSweep m;
    Program p = parse_mmr(with), q = parse_mmr(without);
    for (int i = 0; i < runs; ++i) {
        RunOptions o;
        // Random and PCT schedules, and replays that run thread 0 alone for a while and
        // then choose at random (the races need the setup done first).
        if (i % 4 == 0) {
            o.schedule = random_schedule(i);
        } else if (i % 4 == 1) {
            o.schedule = pct_schedule(i);
        } else if (i % 4 == 3) {
            // Thread 0 for n decisions, the last runnable thread (a kthread) for m, then
            // thread 0 again.
            Schedule rs;
            rs.kind = Schedule::Kind::replay;
            size_t n = static_cast<size_t>(i / 4) % 60, m = static_cast<size_t>(i / 4) / 60 % 40;
            rs.replay.assign(n, 0);
            rs.replay.resize(n + m, 2);
            rs.replay.resize(n + m + 400, 0);
            o.schedule = rs;
        } else {
            Schedule rs;
            rs.kind = Schedule::Kind::replay;
            uint64_t x = 88172645463325252ull + static_cast<uint64_t>(i);
            for (int j = 0; j < 400; ++j) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                rs.replay.push_back(j < (i / 4) % 200 ? 0 : x % 5);
            }
            o.schedule = rs;
        }
        o.trace = false;
        RunResult r = run_program(p, o);
        if (r.verdict == Verdict::violation && r.check == check) ++m.caught;
        else if (r.verdict != Verdict::ok && m.other++ == 0) m.other_msg = std::string(check_name(r.check)) + ": " + r.message;
        RunResult c = run_program(q, o);
        if (c.verdict != Verdict::ok && m.clean_bad++ == 0) m.clean_msg = std::string(check_name(c.check)) + ": " + c.message;
    }
    return m;
}

// Seed 002: khugepaged drops mmap_lock to allocate; a munmap frees the VMA (and the
// page tables) meanwhile.
const char* kNoRevalidate = R"(process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x201000 2
  madvise 0x200000 pages=8 advice=hugepage
  munmap 0x200000 pages=8
  read 0x200000
thread P0.T1
  read 0x300000
kthread khugepaged
  collapse P0 0x200000
)";

// Seed 000: T1's speculative fault walks to the PTE table, MADV_COLLAPSE retracts it
// under a huge PMD, and the fault installs its page there anyway.
const char* kNoPmdRecheck = R"(process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x201000 2
  madvise 0x200000 pages=8 advice=collapse
  madvise 0x200000 pages=8 advice=dontneed
thread P0.T1
  write 0x205000 5
  read 0x205000
)";

}  // namespace

TEST(ThpMutants, KhugepagedNoRevalidateIsAUseAfterFree) {
    MutantSweep m = mutant_sweep(prog("strategy=classic mutants=khugepaged_no_revalidate", kNoRevalidate),
                                 prog("strategy=classic", kNoRevalidate), Check::use_after_free, 2400);
    EXPECT_GT(m.caught, 0);
    EXPECT_EQ(m.other, 0) << m.other_msg;
    EXPECT_EQ(m.clean_bad, 0) << m.clean_msg;
    // The reproducer's schedule: with the fresh lookup the collapse sees the VMA gone.
    std::string sched = "schedule replay 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 0 0 0 1 0 1 0 1 1 1 1 1 1 1 1 0\n";
    RunResult bad = run_text(prog("strategy=classic mutants=khugepaged_no_revalidate", kNoRevalidate) + sched);
    EXPECT_EQ(bad.check, Check::use_after_free);
    RunResult good = run_text(prog("strategy=classic", kNoRevalidate) + sched);
    ASSERT_EQ(good.verdict, Verdict::ok) << good.message;
    EXPECT_EQ(results(good).back(), "SCAN_VMA_NULL");
}

TEST(ThpMutants, SpfNoPmdRecheckInstallsIntoARetractedTable) {
    MutantSweep m = mutant_sweep(prog("strategy=spf mutants=spf_no_pmd_recheck", kNoPmdRecheck),
                                 prog("strategy=spf", kNoPmdRecheck), Check::pgtable, 2400);
    EXPECT_GT(m.caught, 0);
    EXPECT_EQ(m.clean_bad, 0) << m.clean_msg;
    std::string sched = "schedule replay 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 1 1 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0 1 1 0 0 0 1 0 0 0 0 0 1\n";
    RunResult bad = run_text(prog("strategy=spf mutants=spf_no_pmd_recheck", kNoPmdRecheck) + sched);
    EXPECT_EQ(bad.check, Check::pgtable) << bad.message;
    RunResult good = run_text(prog("strategy=spf", kNoPmdRecheck) + sched);
    ASSERT_EQ(good.verdict, Verdict::ok) << good.message;
    EXPECT_GT(counter(good, "spf_pmd_changed"), 0u);
    EXPECT_EQ(counter(good, "thp_collapse_ok"), 1u);
}

TEST(Thp, CollapseSwapsPagesIn) {
    // Pages 2 and 5 are swapped out; MADV_COLLAPSE (no max_ptes_swap) swaps them in
    // under mmap_lock read and collapses with their content.
    std::string text = prog("strategy=classic", R"(process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x201000 2
  write 0x202000 3
  write 0x203000 4
  write 0x205000 6
  madvise 0x202000 pages=1 advice=pageout
  madvise 0x205000 pages=1 advice=pageout
  madvise 0x200000 pages=8 advice=collapse
  madvise 0x200000 pages=8 advice=collapse
  madvise 0x200000 pages=8 advice=collapse
  read 0x202000
  read 0x205000
  read 0x201000
)");
    bool huge = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 10) huge = huge_at(k, 0x200000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_TRUE(huge);
    auto v = results(r);
    // Each swap-in that must wait for the read drops mmap_lock (VM_FAULT_RETRY): that
    // attempt fails with SCAN_PAGE_LOCK (EAGAIN), the read goes on, and a later attempt
    // finds the page in the swap cache.
    EXPECT_EQ(std::vector<std::string>(v.begin() + 6, v.end()),
              (std::vector<std::string>{"0", "0", "EAGAIN", "EAGAIN", "0", "3", "6", "2"}));
    EXPECT_EQ(counter(r, "pswpout"), 2u);
    EXPECT_EQ(counter(r, "thp_collapse_ok"), 1u);
}

TEST(Thp, CollapseWithSwapInRacingEveryStrategy) {
    for (const char* strat : {"classic", "spf", "pervma"}) {
        std::string text = prog(std::string("strategy=") + strat, R"(process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x201000 2
  write 0x202000 3
  write 0x203000 4
  write 0x204000 5
  madvise 0x200000 pages=8 advice=hugepage
  madvise 0x202000 pages=1 advice=pageout
  read 0x202000
  write 0x203000 7
  madvise 0x200000 pages=8 advice=collapse
thread P0.T1
  read 0x202000
  write 0x204000 9
  madvise 0x201000 pages=1 advice=pageout
  read 0x201000
kthread khugepaged
  collapse P0 0x200000
  collapse P0 0x200000
)");
        Sweep s = sweep(text, 60);
        EXPECT_EQ(s.bad, 0) << strat << ": " << s.first.check << ": " << s.first.message;
        EXPECT_GT(s.collapsed, 0u) << strat;
    }
}

TEST(Thp, X86GeometryFaultsA512PageFolio) {
    std::string text = prog("strategy=classic geometry=x86", R"(process P0
thread P0.T0
  mmap 0x40000000 pages=512 prot=rw flags=private,anon,fixed
  madvise 0x40000000 pages=512 advice=hugepage
  write 0x40000000 1
  write 0x401ff000 2
  munmap 0x40100000 pages=1
  read 0x401ff000
  read 0x40100000
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x40000000", "0", "ok", "ok", "0", "2", "SIGSEGV"}));
    EXPECT_EQ(counter(r, "thp_fault_alloc"), 1u);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 1u);
}

// The soak's random workloads (THP faults, MADV_COLLAPSE, a khugepaged kthread) with
// every invariant checked at every quiescent point.
TEST(Thp, RandomWorkloadsPassQuiescentChecks) {
    uint64_t collapsed = 0, faulted = 0;
    for (const char* strat : {"classic", "spf", "pervma"}) {
        WorkloadShape shape;
        shape.strategy = strat;
        for (uint64_t seed = 0; seed < 60; ++seed) {
            RunOptions o;
            o.schedule = seed % 2 ? random_schedule(seed) : pct_schedule(seed);
            o.trace = false;
            o.check_quiescent = true;
            RunResult r = run_program(parse_mmr(random_workload(seed, shape)), o);
            ASSERT_EQ(r.verdict, Verdict::ok) << strat << " seed " << seed << ": " << r.check << ": " << r.message;
            collapsed += counter(r, "thp_collapse_ok");
            faulted += counter(r, "thp_fault_alloc");
        }
    }
    EXPECT_GT(collapsed, 0u);
    EXPECT_GT(faulted, 0u);
}

TEST(Thp, MprotectOfAWholeHugePmdChangesItInPlace) {
    std::string text = prog("strategy=classic", std::string(kThpVma) + R"(  write 0x200000 1
  mprotect 0x200000 pages=8 prot=r
  write 0x200000 2
  read 0x200000
  mprotect 0x200000 pages=8 prot=rw
  write 0x201000 3
  mprotect 0x200000 pages=8 prot=none
  read 0x200000
  mprotect 0x200000 pages=8 prot=rw
  read 0x201000
)");
    bool huge_ro = false, huge_rw = false, huge_none = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 4) huge_ro = huge_at(k, 0x200000);
        if (i == 7) huge_rw = huge_at(k, 0x200000);
        if (i == 8) huge_none = huge_at(k, 0x200000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_TRUE(huge_ro);
    EXPECT_TRUE(huge_rw);
    EXPECT_TRUE(huge_none);  // PROT_NONE too (change_huge_pmd, x86 keeps _PAGE_PSE)
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "0", "SIGSEGV", "1", "0",
                                                    "ok", "0", "SIGSEGV", "0", "3"}));
    EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
}

// mremap moves a huge PMD whose whole range goes to a PMD-aligned place as it is
// (move_huge_pmd), deposit and all: no split, the data and the rmap follow (pageout
// through rmap finds it at the new address), and the old range is empty.  Racing
// readers, writers and a pageout see the data whole under every strategy.
TEST(Thp, MremapMovesAWholeHugePmd) {
    std::string text = prog("strategy=classic", std::string(kThpVma) + R"(  write 0x200008 1
  write 0x207000 2
  mremap 0x200000 pages=8 new_pages=8 flags=maymove,fixed to=0x400000
  read 0x400008
  write 0x407008 3
  madvise 0x400000 pages=8 advice=pageout
  read 0x407000
  read 0x407008
)");
    bool moved = false, old_empty = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i != 4) return;
        moved = huge_at(k, 0x400000);
        mm::PmdRef old = mm::pmd_lookup(k, k.current_mm(), 0x200000);
        old_empty = !old || !mm::pmd_entry(k, old);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_TRUE(moved);
    EXPECT_TRUE(old_empty);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "0x400000", "1", "ok",
                                                    "0", "2", "3"}));
    EXPECT_EQ(counter(r, "thp_move_pmd"), 1u);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 1u);  // only the pageout's (a dirty THP: split_folio)
    for (const char* strat : {"classic", "spf", "pervma"}) {
        std::string race = prog(std::string("strategy=") + strat, std::string(kThpVma) + R"(  write 0x200008 1
  mremap 0x200000 pages=8 new_pages=8 flags=maymove,fixed to=0x400000
  read 0x400008
thread P0.T1
  read 0x200008
  write 0x400010 2
  read 0x400008
  madvise 0x400000 pages=8 advice=pageout
  read 0x400010
)");
        Sweep s = sweep(race, 100);
        EXPECT_EQ(s.bad, 0) << strat << ": " << s.first.check << ": " << s.first.message;
    }
}

TEST(Thp, ReplayingARunGivesTheSameTrace) {
    std::string text = prog("strategy=pervma", std::string(kPtesThenHugepage) + R"(  write 0x202000 4
  munmap 0x208000 pages=8
thread P0.T1
  write 0x204000 5
  madvise 0x200000 pages=8 advice=collapse
  read 0x202000
kthread khugepaged
  collapse P0 0x200000
  collapse P0 0x208000
)");
    for (uint64_t seed = 0; seed < 30; ++seed) {
        RunResult a = run_text(text, random_schedule(seed));
        ASSERT_EQ(a.verdict, Verdict::ok) << a.message;
        RunResult b = run_program(parse_mmr(text + a.schedule + "\n"));
        EXPECT_EQ(a.trace_hash, b.trace_hash);
        EXPECT_EQ(results(a), results(b));
    }
}

TEST(Thp, SmapsCountsAHugePmd) {
    std::string text = prog("strategy=classic", std::string(kThpVma) + R"(  write 0x200000 1
  read 0x200000
  read 0x200000
kthread K
  smaps P0
)");
    bool found = false;
    for (size_t n = 0; n < 200 && !found; ++n) {
        RunResult r = run_text(text, first_then(n, 1));
        ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
        if (results(r).back() == "vmas=1 rss=8 anon=8 swap=0") found = true;
    }
    EXPECT_TRUE(found);
}

// ---------------------------------------------------------------------------------
// File THP (shmem): collapse_file, retract_page_tables, and the page-cache THP mapped
// whole (mm/file_thp.hpp; more in test_file_thp_map.cpp).

namespace {

// A shared anonymous (shmem) VMA at a PMD boundary, pages 0, 3 and 7 written, page 5
// read: page 1, 2, 4 and 6 are holes in its page cache.
const char* kShmemRange = R"(process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=shared,anon,fixed
  write 0x100000 1
  write 0x103008 3
  write 0x107ff8 7
  read 0x105000
)";

// Whether addr's PTE table exists in the current mm (on the simulated thread).
bool table_at(mm::Kernel& k, uint64_t addr) {
    return mm::pte_table_lookup(k, k.current_mm(), addr) != mm::kNoTable;
}

}  // namespace

TEST(ShmemThp, MadviseCollapseReplacesThePageCacheAndRetractsTheTable) {
    std::string text = prog("strategy=classic", std::string(kShmemRange) + R"(  madvise 0x100000 pages=8 advice=collapse
  fork P1
  read 0x103008
  write 0x106000 6
process P1 forked
thread P1.T0
  read 0x107ff8
  read 0x106000
  madvise 0x100000 pages=8 advice=collapse
)");
    bool table_before = false, table_after = true, huge_after = false, child_huge = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 4) table_before = table_at(k, 0x100000);
        if (t == "P0.T0" && i == 5) table_after = table_at(k, 0x100000);
        if (t == "P0.T0" && i == 5) huge_after = huge_at(k, 0x100000);
        if (t == "P1.T0" && i == 1) child_huge = huge_at(k, 0x100000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_TRUE(table_before);
    EXPECT_FALSE(table_after);  // retract_page_tables
    // collapse_pte_mapped_thp(install_pmd) maps the THP with a huge PMD; fork does not
    // copy it (copy_huge_pmd: a file VMA refaults) and the child's fault maps it whole
    // (do_set_pmd), so its own MADV_COLLAPSE finds it PMD-mapped (SCAN_PMD_MAPPED: 0).
    EXPECT_TRUE(huge_after);
    EXPECT_TRUE(child_huge);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0", "0", "P1", "3",
                                                    "ok", "7", "6", "0"}));
    EXPECT_EQ(counter(r, "thp_collapse_file"), 1u);
    EXPECT_EQ(counter(r, "thp_split_page"), 0u);
}

TEST(ShmemThp, WhatCannotCollapse) {
    // A regular file (it is open for write: no CONFIG_READ_ONLY_THP_FOR_FS collapse),
    // a shmem VMA whose pgoff is not PMD-aligned with its address, a pinned page
    // (SCAN_PAGE_COUNT: EAGAIN), and a range with no page at all (SCAN_TRUNCATED).
    std::string text = prog("strategy=classic", R"(file F0 pages=8
process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=shared,file:F0:0,fixed,populate
  madvise 0x100000 pages=8 advice=collapse
  mmap 0x201000 pages=8 prot=rw flags=shared,anon,fixed,populate
  madvise 0x201000 pages=8 advice=collapse
  mmap 0x300000 pages=8 prot=rw flags=shared,anon,fixed,populate
  pin 0x302000 pages=1
  madvise 0x300000 pages=8 advice=collapse
  unpin H0
  madvise 0x300000 pages=8 advice=collapse
  mmap 0x400000 pages=8 prot=rw flags=shared,anon,fixed
  madvise 0x400000 pages=8 advice=collapse
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "EINVAL", "0x201000", "EINVAL", "0x300000",
                                                    "H0", "EAGAIN", "0", "0", "0x400000", "EINVAL"}));
    EXPECT_EQ(counter(r, "thp_collapse_file"), 1u);
}

TEST(ShmemThp, TheLastUnmapFreesTheWholeThp) {
    // The last munmap of a shmem object truncates its page cache (shmem_evict_inode):
    // the THP goes whole, unsplit.
    std::string text = prog("strategy=classic", std::string(kShmemRange) + R"(  madvise 0x100000 pages=8 advice=collapse
  munmap 0x100000 pages=8
  read 0x100000
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r).back(), "SIGSEGV");
    EXPECT_EQ(counter(r, "thp_collapse_file"), 1u);
    EXPECT_EQ(counter(r, "thp_split_page"), 0u);  // freed whole, never split
}

// Collapse racing faults, gup_fast, fork and munmap in the same shmem range, under every
// strategy: no check fails.
TEST(ShmemThp, CollapseRacesUnderEveryStrategy) {
    for (const char* s : {"strategy=classic", "strategy=spf", "strategy=pervma",
                          "strategy=pervma vma_lock=file"}) {
        std::string text = prog(s, R"(process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=shared,anon,fixed,populate
  madvise 0x100000 pages=8 advice=collapse
  write 0x100000 2
  madvise 0x100000 pages=8 advice=collapse
thread P0.T1
  read 0x104000
  gup 0x104000 pages=2 flags=fast_only
  pin 0x106000 pages=1 flags=fast
  write 0x106000 3
  unpin H0
  fork P1
  read 0x101000
process P1 forked
thread P1.T0
  read 0x106000
  madvise 0x100000 pages=8 advice=collapse
  munmap 0x100000 pages=4
)");
        Sweep sw = sweep(text, 300);
        EXPECT_EQ(sw.bad, 0) << s << ": " << sw.first.check << ": " << sw.first.message << "\n" << sw.first.schedule;
    }
}

namespace {

// 2ba99c5e0881: T0's MADV_COLLAPSE retracts the PTE table while T1's gup_fast walks
// it with IRQs off (get_user_pages_fast_only never blocks, so it keeps walking).
const char* kRetractNoIpi = R"(process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=shared,anon,fixed,populate
  madvise 0x100000 pages=8 advice=collapse
thread P0.T1
)";

std::string retract_no_ipi_body() {
    std::string s = kRetractNoIpi;
    for (int i = 0; i < 40; ++i) s += "  gup 0x104000 pages=1 flags=fast_only\n";
    return s;
}

}  // namespace

TEST(ThpMutants, KhugepagedRetractNoIpiFreesATableUnderGupFast) {
    MutantSweep m = mutant_sweep(prog("strategy=classic mutants=khugepaged_retract_no_ipi", retract_no_ipi_body()),
                                 prog("strategy=classic", retract_no_ipi_body()), Check::use_after_free, 1600);
    EXPECT_GT(m.caught, 0);
    EXPECT_EQ(m.other, 0) << m.other_msg;
    EXPECT_EQ(m.clean_bad, 0) << m.clean_msg;
}

// Issue 14 (soak seed 1005192): mprotect splits a VMA while kswapd splits a THP of it
// through rmap.  __split_vma changes the bounds under the anon_vma lock (vma_prepare);
// without it the reclaimer computed the huge PMD's address with the old bounds and
// split it with the shrunk VMA's protection, leaving PROT_NONE PTEs in an accessible
// VMA (a ModelError at the next fault there).
TEST(ThpReclaim, SplitVmaAndAReclaimersThpSplitSeeTheSameBounds) {
    const char* text = R"(mmrace 1
config strategy=classic geometry=small
file F0 pages=4
file F1 pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=16 prot=rw flags=private,anon,fixed
  madvise 0x100000 pages=16 advice=hugepage
  write 0x106010 1
  read 0x101000
  mprotect 0x100000 pages=8 prot=none
  mmap 0x106000 pages=3 prot=rw flags=shared,file:F1:0,fixed,populate
  read 0x10b008
thread P0.T1
  truncate F0 pages=0
  uffd_wp 0x10b000 pages=1 off
  madvise 0x109000 pages=3 advice=pageout
  write 0x109000 2
  write 0x101010 3
  read 0x10a010
  mprotect 0x10a000 pages=1 prot=rw
  exit
thread P0.T2
  uffd_register 0x105000 pages=1 mode=missing
  uffd_serve 2 value=1646
kthread K0
  smaps P0
  reclaim 14
  reclaim 8
  smaps P0
)";
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r)[12], "0");  // read 0x10a010 in the accessible half: an ordinary fault
    for (const char* strategy : {"strategy=classic", "strategy=pervma"}) {
        std::string t = text;
        t.replace(t.find("strategy=classic"), 16, strategy);
        RaceSweep s = race_sweep(t, 150);
        EXPECT_EQ(s.bad, 0) << strategy << ": " << s.first.message << "\n" << s.first.schedule;
    }
}
