// The address-space model as far as issue 2 builds it: anonymous mmap, the classic
// fault, COW across fork, run through the executor exactly as the bindings do.
#include <gtest/gtest.h>

#include "test_util.hpp"

#include <set>
#include <thread>

#include "mm/kernel.hpp"
#include "mm/pgalloc.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/generate/workload.hpp"
#include "runtime/policy.hpp"

using namespace mmrace;

using namespace mmrace::testing;

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
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
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
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "P1", "ok", "2", "1", "ok", "3"}));
    // One side copies, the other then reuses the page it holds alone.
    EXPECT_EQ(counter(r, "cow_copy") + counter(r, "cow_reuse"), 2u);
}

// Fork copies page tables only where a fault could not refill them (vma_needs_copy):
// private pages (an anon_vma), not a shared file, shmem or a private file mapping only
// read so far.  The child sees the same data through its own faults.
TEST(Mm, ForkCopiesOnlyThePageTablesAFaultCannotRefill) {
    uint64_t child_faults = 0;
    auto r = run_text(R"(mmrace 1
file F0 pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  mmap 0x200000 pages=1 prot=rw flags=shared,anon,fixed
  write 0x200000 2
  mmap 0x300000 pages=1 prot=rw flags=shared,file:F0:0,fixed
  write 0x300000 3
  mmap 0x400000 pages=1 prot=r flags=private,file:F0:0,fixed
  read 0x400000
  fork P1
process P1 forked
thread P1.T0
  read 0x100000
  read 0x200000
  read 0x300000
  read 0x400000
)",
                      std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t != "P1.T0") return;
        if (i == 0) {  // the private anonymous page was copied: no fault for it
            child_faults = k.counters.get(mm::Counter::pgfault);
            mm::mm_struct& mm = k.current_mm();
            for (uint64_t a : {0x200000u, 0x300000u, 0x400000u})
                EXPECT_EQ(mm::pte_table_lookup(k, mm, a), mm::kNoTable) << std::hex << a;
        }
        if (i == 3) child_faults = k.counters.get(mm::Counter::pgfault) - child_faults;
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "0x200000", "ok", "0x300000", "ok",
                                                    "0x400000", "3", "P1", "1", "2", "3", "3"}));
    EXPECT_EQ(child_faults, 3u);  // the three refaults
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
        ASSERT_EQ(r.verdict, Verdict::ok) << "seed " << seed << ": " << r.message;
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
    // Every op of DESIGN §9 is built; a mutant not built yet is an error before the run.
    EXPECT_THROW(run_text("mmrace 1\nconfig mutants=stackrot\nprocess P0\nthread P0.T0\n  read 0x1000\n"),
                 NotBuilt);
    // A built mutant of another strategy is a configuration error, not a silent no-op.
    EXPECT_THROW(run_text("mmrace 1\nconfig strategy=classic mutants=spf_no_seqcount_check\n"
                          "process P0\nthread P0.T0\n  read 0x1000\n"),
                 std::invalid_argument);
    try {
        run_text("mmrace 1\nconfig mutants=stackrot\nprocess P0\nthread P0.T0\n  read 0x1000\n");
        FAIL();
    } catch (const NotBuilt& e) {
        EXPECT_NE(std::string(e.what()).find("mutant 'stackrot'"), std::string::npos) << e.what();
    }
}

TEST(Mm, MunmapSplitsAndFreesEverything) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  write 0x103000 4
  munmap 0x101000 pages=2
  read 0x100000
  read 0x101000
  read 0x102000
  read 0x103000
  munmap 0x500000 pages=3
  munmap 0x100000 pages=4
  read 0x103000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "ok", "0", "1",
                                                    "SIGSEGV", "SIGSEGV", "4", "0", "0", "SIGSEGV"}));
}

TEST(Mm, ExitTearsDownEveryProcessWithoutLeaks) {
    // The leak check runs after the last process exits: a clean verdict means every
    // folio, page table and VMA was freed, the COW-shared ones included.
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=16 prot=rw flags=private,anon,fixed,populate
  write 0x108000 5
  fork P1
  write 0x108000 6
  exit
  write 0x108000 7
process P1 forked
thread P1.T0
  read 0x108000
  mmap 0x900000 pages=1 prot=rw flags=private,anon,fixed
  write 0x900000 1
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    EXPECT_EQ(v[4], "0");
    EXPECT_EQ(v[5], "-");  // after exit: never ran
    EXPECT_EQ(v[6], "5");
}

TEST(Mm, RandomSchedulesOfMmapMunmapForkAndAccessesPassEveryCheck) {
    const std::string text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x104000 2
  fork P1
  munmap 0x102000 pages=4
  write 0x100008 3
thread P0.T1
  write 0x103000 4
  read 0x100000
  munmap 0x100000 pages=1
  write 0x107000 5
thread P0.T2
  read 0x104000
  mmap 0x104000 pages=2 prot=rw flags=private,anon,fixed_noreplace
  write 0x105000 6
process P1 forked
thread P1.T0
  read 0x100000
  write 0x104000 7
  read 0x104000
)";
    for (uint64_t seed = 0; seed < 400; ++seed) {
        Schedule s = random_schedule(seed);
        if (seed % 2) {
            s.kind = Schedule::Kind::pct;
            s.depth = 3;
            s.steps = 200;
        }
        auto r = run_text(text, s);
        ASSERT_EQ(r.verdict, Verdict::ok) << "seed " << seed << " " << r.check << ": " << r.message
                                   << "\n" << r.schedule;
        auto v = results(r);
        // The child sees page 0 as written before fork, unless T1 unmapped it first.
        EXPECT_TRUE(v[13] == "1" || v[13] == "SIGSEGV") << v[13];
        // Its own write to 0x104000 is what it reads back, if the page was there.
        if (v[14] == "ok") EXPECT_EQ(v[15], "7");
        else EXPECT_EQ(v[15], "SIGSEGV");
    }
}

TEST(Mm, MprotectSplitsMergesAndKeepsData) {
    size_t vmas_after_split = 0, vmas_after_restore = 0;
    TestRunOptions o;
    o.after_op = [&](mm::Kernel& k, const std::string&, size_t index) {
        if (index == 4) vmas_after_split = k.processes[0].mm->mm_mt.size();
        if (index == 9) vmas_after_restore = k.processes[0].mm->mm_mt.size();
    };
    auto r = run_program(parse_mmr(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x101000 7
  write 0x102000 8
  read 0x103000
  mprotect 0x101000 pages=2 prot=none
  read 0x101000
  write 0x100000 1
  mprotect 0x101000 pages=1 prot=r
  mprotect 0x102000 pages=1 prot=rw
  mprotect 0x101000 pages=1 prot=rw
  read 0x101000
  write 0x102000 9
  read 0x102000
  mprotect 0x100000 pages=8 prot=r
  write 0x100000 2
  read 0x100000
)"), o);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "0", "0", "SIGSEGV", "ok",
                                                    "0", "0", "0", "7", "ok", "9", "ENOMEM",
                                                    "SIGSEGV", "1"}));
    EXPECT_EQ(vmas_after_split, 3u);    // rw | none | rw
    EXPECT_EQ(vmas_after_restore, 1u);  // merged back into one, as upstream does
}

// VM_ACCOUNT: a private writable mapping is charged, and stays charged when made
// read-only once it has an anon_vma, so it does not merge with a never-writable
// neighbour (conform seed 1156: Linux then refuses MADV_COLLAPSE there, for want of an
// anon_vma); a charged VMA that never faulted is uncharged by mprotect and merges.
TEST(Mm, VmAccountKeepsChargedAndUnchargedVmasApart) {
    std::string text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=r flags=private,anon,fixed
  mmap 0x102000 pages=2 prot=rw flags=private,anon,fixed
  write 0x102000 1
  mprotect 0x102000 pages=2 prot=r
  mmap 0x200000 pages=2 prot=r flags=private,anon,fixed
  mmap 0x202000 pages=2 prot=rw flags=private,anon,fixed
  mprotect 0x202000 pages=2 prot=r
  mprotect 0x200000 pages=4 prot=rw
  mprotect 0x200000 pages=4 prot=r
)";
    std::vector<size_t> vmas;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t) {
        vmas.push_back(k.current_mm().live_vmas());
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    // Charged (written) and uncharged stay two VMAs; the unfaulted one merges, and
    // making it writable charges the whole merged VMA at once.
    EXPECT_EQ(vmas, (std::vector<size_t>{1, 2, 2, 2, 3, 4, 3, 3, 3, 0}));  // 0: after exit
}

TEST(Mm, MprotectReadOnlyStopsWritesThroughTheTlb) {
    // T0's write caches a writable translation on its CPU and T1's writes on theirs;
    // mprotect must flush every CPU, so once it returns the word can no longer change.
    const std::string text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  mprotect 0x100000 pages=1 prot=r
thread P0.T1
  write 0x100000 2
  write 0x100000 3
  read 0x100000
)";
    auto word = [](mm::Kernel& k) -> std::optional<uint64_t> {
        mm::TableId t = mm::pte_table_lookup(k, *k.processes[0].mm, 0x100000);
        if (t == mm::kNoTable) return std::nullopt;
        mm::pte_t e = k.tables[t].entries[k.geo.index(0x100000, mm::PTE_LEVEL)];
        if (!mm::pte_present(e)) return std::nullopt;
        return k.folios[mm::pte_pfn(e)].read_word(0);
    };
    for (uint64_t seed = 0; seed < 300; ++seed) {
        std::optional<uint64_t> frozen;
        bool changed = false;
        TestRunOptions o;
        o.schedule = random_schedule(seed);
        o.after_op = [&](mm::Kernel& k, const std::string& thread, size_t index) {
            if (thread == "P0.T0" && index == 2) frozen = word(k);
            else if (frozen && index < 3 && word(k) != frozen) changed = true;  // 3: exit
        };
        auto r = run_program(parse_mmr(text), o);
        ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
        EXPECT_FALSE(changed) << "seed " << seed << ": a write landed after mprotect(PROT_READ)";
    }
}

TEST(Mm, MadviseDontneedZeroFillsAndReportsHoles) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  mmap 0x103000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x103000 3
  madvise 0x101000 pages=1 advice=dontneed
  read 0x100000
  read 0x101000
  madvise 0x100000 pages=4 advice=dontneed
  read 0x100000
  read 0x103000
  madvise 0x200000 pages=1 advice=dontneed
  madvise 0x100000 pages=1 advice=hugepage
  madvise 0x100000 pages=2 advice=hugepage
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "0x103000", "ok", "ok", "ok", "0",
                                                    "1", "0", "ENOMEM", "0", "0", "ENOMEM", "0",
                                                    "0"}));
}

TEST(Mm, MremapShrinksGrowsAndMovesWithTheData) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x103000 4
  mremap 0x100000 pages=4 new_pages=2
  read 0x103000
  mremap 0x100000 pages=2 new_pages=6
  read 0x100000
  read 0x105000
  mmap 0x106000 pages=1 prot=rw flags=private,anon,fixed
  mremap 0x100000 pages=6 new_pages=8
  mremap 0x100000 pages=6 new_pages=8 flags=maymove
  read 0x100000
  mremap 0x106000 pages=1 new_pages=1 flags=maymove,fixed to=0x200000
  read 0x106000
  mremap 0x300000 pages=1 new_pages=2 flags=maymove
  mremap 0x106000 pages=2 new_pages=2
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    std::vector<std::string> head(v.begin(), v.begin() + 10);
    EXPECT_EQ(head, (std::vector<std::string>{"0x100000", "ok", "ok", "0x100000", "SIGSEGV",
                                              "0x100000", "1", "0", "0x106000", "ENOMEM"}));
    uint64_t moved = std::stoull(v[10], nullptr, 16);
    EXPECT_NE(moved, 0x100000u);  // moved top-down
    EXPECT_EQ(v[11], "SIGSEGV");  // the old place is gone
    EXPECT_EQ(v[12], "0x200000");
    EXPECT_EQ(v[13], "SIGSEGV");
    EXPECT_EQ(v[14], "EFAULT");
    EXPECT_EQ(v[15], "EFAULT");
}

TEST(Mm, MremapMovedPagesKeepTheirContent) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=3 prot=rw flags=private,anon,fixed
  write 0x100008 11
  write 0x102010 33
  mremap 0x100000 pages=3 new_pages=3 flags=maymove,fixed to=0x207000
  read 0x207008
  read 0x209010
  read 0x208000
  fork P1
process P1 forked
thread P1.T0
  read 0x209010
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "0x207000", "11", "33",
                                                    "0", "P1", "33"}));
}

TEST(Mm, X86GeometryRunsTheSameWorkloadsCleanly) {
    // 512-entry tables: one PTE table covers the whole window, so teardown paths differ
    // (free_pgtables keeps tables that neighbours still use).
    WorkloadShape shape;
    shape.geometry = "x86";
    for (uint64_t seed = 0; seed < 300; ++seed) {
        auto r = run_text(random_workload(seed, shape), random_schedule(seed));
        ASSERT_EQ(r.verdict, Verdict::ok) << "seed " << seed << " " << r.check << ": " << r.message;
    }
}

TEST(MmFile, PrivateAndSharedMappingsReadIoRetryAndSigbus) {
    auto r = run_text(R"(mmrace 1
file F pages=2
process P0
thread P0.T0
  file_write F 0 5
  mmap 0x100000 pages=3 prot=rw flags=shared,file:F:0
  mmap 0x200000 pages=2 prot=rw flags=private,file:F:0
  read 0x100000
  read 0x200000
  write 0x200000 6
  read 0x100000
  write 0x100008 7
  read 0x200008
  read 0x201000
  read 0x102000
  file_write F 0 8
  read 0x100000
  read 0x200000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{
                              "ok", "0x100000", "0x200000", "5", "5", "ok", "5", "ok",
                              // the private page was COWed: a write through the shared
                              // mapping no longer shows through it
                              "0", "0", "SIGBUS", "ok", "8", "6"}));
    // Page 1 was never cached: its read went to I/O, dropped mmap_lock and retried.
    EXPECT_EQ(counter(r, "pgmajfault"), 1u);
    EXPECT_EQ(counter(r, "fault_retry"), 1u);
    EXPECT_EQ(counter(r, "sigbus"), 1u);
}

TEST(MmFile, TruncateUnmapsEvenCowCopiesAndShrinksTheCache) {
    auto r = run_text(R"(mmrace 1
file F pages=3
process P0
thread P0.T0
  mmap 0x100000 pages=3 prot=rw flags=private,file:F:0
  mmap 0x200000 pages=3 prot=rw flags=shared,file:F:0
  write 0x102000 1
  write 0x202000 2
  write 0x201000 3
  truncate F pages=1
  read 0x102000
  read 0x202000
  read 0x101000
  read 0x100000
  truncate F pages=3
  read 0x202000
  read 0x101000
  fork P1
process P1 forked
thread P1.T0
  read 0x102000
  write 0x200000 4
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "0x200000", "ok", "ok", "ok", "0",
                                                    "SIGBUS", "SIGBUS", "SIGBUS", "0", "0", "0",
                                                    "0", "P1", "0", "ok"}));
}

TEST(MmFile, ConcurrentFaultsTruncateAndWritesPassEveryCheck) {
    const std::string text = R"(mmrace 1
file F pages=4
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=shared,file:F:0
  write 0x101000 1
  read 0x103000
  truncate F pages=2
  write 0x100000 2
thread P0.T1
  mmap 0x200000 pages=4 prot=rw flags=private,file:F:0
  read 0x201000
  write 0x202000 3
  file_write F 3 4
  read 0x203000
thread P0.T2
  file_write F 1 5
  truncate F pages=4
  mmap 0x300000 pages=2 prot=r flags=shared,file:F:1
  read 0x300000
)";
    for (uint64_t seed = 0; seed < 500; ++seed) {
        Schedule s = random_schedule(seed);
        if (seed % 2) {
            s.kind = Schedule::Kind::pct;
            s.steps = 300;
        }
        auto r = run_text(text, s);
        ASSERT_EQ(r.verdict, Verdict::ok) << "seed " << seed << " " << r.check << ": " << r.message
                                   << "\n" << r.schedule;
    }
}

TEST(MmFile, SharedAnonymousMemoryIsSharedAcrossForkAndDiesWithItsLastMapping) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=shared,anon,fixed
  write 0x100000 1
  fork P1
  read 0x101000
  munmap 0x100000 pages=2
process P1 forked
thread P1.T0
  read 0x100000
  write 0x101000 2
  mremap 0x100000 pages=2 new_pages=3
  read 0x102000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // Parent first (the default schedule): it reads before the child writes.  Growing the
    // mapping past the shmem object's size gives SIGBUS there, as on Linux.
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "P1", "0", "0", "1", "ok",
                                                    "0x100000", "SIGBUS"}));
}

TEST(Mm, GrowsdownStacksExpandOnFaultsAndKeepTheirGuardGap) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x800000 pages=2 prot=rw flags=private,anon,fixed,growsdown
  write 0x7ff000 1
  read 0x7f0000
  mmap 0x600000 pages=1 prot=rw flags=private,anon,fixed
  write 0x6ff000 2
  read 0x700000
  mmap 0x6f0000 pages=1 prot=rw flags=private,anon
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    // Below the stack: it grows.  Within 256 pages above another VMA: the guard gap
    // refuses, and a hint there is not honoured.
    EXPECT_EQ(v[1], "ok");
    EXPECT_EQ(v[2], "0");
    EXPECT_EQ(v[4], "SIGSEGV");
    EXPECT_EQ(v[5], "SIGSEGV");
    EXPECT_NE(v[6], "0x6f0000");
}

// Runs keep their kernel between runs on one OS thread (the pools are reset, not
// rebuilt): what ran before must not change a run, and a fresh thread (a fresh kernel)
// gives the same results.
TEST(Mm, AKernelKeptBetweenRunsChangesNothing) {
    auto run = [](uint64_t seed) {
        RunOptions o;
        Schedule s;
        s.kind = Schedule::Kind::random;
        s.seed = seed;
        o.schedule = s;
        return run_program(parse_mmr(random_workload(seed)), o);
    };
    std::vector<RunResult> first;
    for (uint64_t seed = 0; seed < 20; ++seed) first.push_back(run(seed));
    for (uint64_t seed = 20; seed > 0; --seed) {  // again, after other runs, in another order
        RunResult again = run(seed - 1);
        EXPECT_EQ(again.trace_hash, first[seed - 1].trace_hash) << "seed " << seed - 1;
        EXPECT_EQ(again.verdict, Verdict::ok);
    }
    RunResult fresh;
    std::thread t([&] { fresh = run(7); });
    t.join();
    EXPECT_EQ(fresh.trace_hash, first[7].trace_hash);
    EXPECT_EQ(results(fresh), results(first[7]));
}

// Soak seed 99642 (issue 14): MAP_POPULATE of a private writable file mapping breaks
// COW at once (populate_vma_page_range's FOLL_WRITE).  When another thread's read
// fault (or a GUP) maps the page-cache page read-only first, populate's write fault
// finds the PTE taken and returns; populate must then follow the page again, as every
// GUP does, and fault once more to COW it.  Before, the page stayed the page cache's
// and a later write(2) to the file showed through the private mapping.
TEST(Mm, PopulateBreaksCowEvenWhenAReadFaultMappedThePageFirst) {
    for (const char* racer : {"read 0x109000", "pin 0x109000 pages=1 flags=fast",
                              "peek 0x109000", "gup 0x109000 pages=1"}) {
        std::string text = std::string(R"(mmrace 1
config strategy=classic
file F0 pages=1
process P0
thread P0.T0
  mmap 0x109000 pages=1 prot=rw flags=private,file:F0:0,fixed,populate
  file_write F0 0 3
  read 0x109000
thread P0.T1
  )") + racer + "\n";
        Program p = parse_mmr(text);
        for (uint64_t seed = 0; seed < 300; ++seed)
            for (const Schedule& s : {random_schedule(seed), pct_schedule(seed)}) {
                RunOptions o;
                o.schedule = s;
                o.trace = false;
                RunResult r = run_program(p, o);
                ASSERT_EQ(r.verdict, Verdict::ok) << racer << " seed " << seed << ": " << r.message;
                ASSERT_EQ(results(r)[2], "0") << racer << " seed " << seed;
            }
    }
}
