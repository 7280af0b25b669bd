// LRU reclaim (the `reclaim COUNT` kthread op, mm/kswapd.cpp) and the /proc/PID/smaps
// reader (the `smaps PNAME` kthread op, ops/smaps.cpp): reclaim takes the oldest folios
// first and gives referenced ones a second chance, anonymous folios go to swap and come
// back with their content, clean file folios are dropped and read again, dirty ones are
// kept; both ops race everything else with every check passing; smaps counts what it
// walks and how long it held mmap_lock.
//
// The functional tests reclaim at a chosen point of a thread's op list by calling
// kswapd_reclaim from the after_op hook (direct reclaim on that thread: the same code
// the kthread op runs); the kthread op itself is exercised by .mmr programs.
#include <gtest/gtest.h>

#include "test_util.hpp"

#include "mm/kernel.hpp"
#include "mm/kswapd.hpp"
#include "mm/lru.hpp"
#include "mm/pgalloc.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "ops/ops.hpp"
#include "program/generate/workload.hpp"

using namespace mmrace;
using namespace mmrace::mm;
using namespace mmrace::testing;

namespace {

constexpr uint64_t kBase = 0x100000;
uint64_t page(int i) { return kBase + static_cast<uint64_t>(i) * PAGE_SIZE; }

// What the PTE of page i of the current mm says: "swap", "none" or "present".
std::string pte_state(Kernel& k, int i) {
    pte_t p = pte_of(k, page(i));
    return is_swap_pte(p) ? "swap" : pte_none(p) ? "none" : "present";
}

// Every in-use folio is on the LRU list its type and PG_active name (nothing is
// isolated at a quiescent point).
void expect_all_on_lru(Kernel& k) {
    for (Pfn p = 1; p < k.folios.high_water(); ++p) {
        const Folio& f = k.folios[p];
        if (!f.in_use) continue;
        EXPECT_EQ(f.lru, folio_lru_list(k, p)) << "pfn " << p;
    }
}

}  // namespace

// Four pages faulted in order 0..3 (all young).  Reclaiming one: every page's first
// look finds its fault's young bit and rotates it (PG_referenced); the oldest, page 0,
// is the first seen again with no young bit and goes to swap.  Then T1 touches page 1
// (a fresh walk on its own CPU sets the young bit): the next reclaim activates page 1
// (referenced twice) and takes page 2, the oldest of the rest.
TEST(Reclaim, OldestFirstAndReferencedFoliosGetASecondChance) {
    std::vector<std::string> seen;
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  write 0x100000 10
  write 0x101000 11
  write 0x102000 12
  write 0x103000 13
thread P0.T1
  read 0x107000
  read 0x101000
  read 0x100000
  read 0x101000
  read 0x102000
  read 0x103000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (t != "P0.T1" || i > 1) return;
                          kswapd_reclaim(k, 1);
                          std::string s;
                          for (int pg = 0; pg < 4; ++pg) s += pte_state(k, pg) + " ";
                          seen.push_back(s);
                          if (i == 1) {
                              Pfn p1 = pte_pfn(pte_of(k, page(1)));
                              EXPECT_TRUE(k.folios[p1].flags & PG_active);
                              EXPECT_EQ(k.folios[p1].lru, LRU_ACTIVE_ANON);
                          }
                          expect_all_on_lru(k);
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(seen, (std::vector<std::string>{"swap present present present ",
                                              "swap present swap present "}));
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "ok", "0", "11",
                                                    "10", "11", "12", "13"}));
    EXPECT_EQ(counter(r, "pgsteal_kswapd"), 2u);
    EXPECT_EQ(counter(r, "pgsteal_anon"), 2u);
    EXPECT_EQ(counter(r, "pswpout"), 2u);
    EXPECT_EQ(counter(r, "pswpin"), 2u);  // pages 0 and 2 read back from swap
    EXPECT_EQ(counter(r, "pgactivate"), 1u);
    EXPECT_GE(counter(r, "pgscan_kswapd"), 6u);
}

// Clean page-cache folios are dropped (unmapped through i_mmap) and read again by a
// major fault; a folio dirtied by write(2) and one dirtied through a shared mapping are
// kept (activated), with their content.
TEST(Reclaim, CleanFilePagesAreDroppedAndDirtyOnesKept) {
    size_t cached_after = 0;
    uint64_t majflt_before = 0;
    auto r = run_text(R"(mmrace 1
file F0 pages=4
process P0
thread P0.T0
  file_write F0 1 41
  mmap 0x100000 pages=4 prot=rw flags=shared,file:F0:0,fixed
  read 0x100000
  read 0x101000
  write 0x102000 42
  read 0x103000
  read 0x100000
  read 0x101000
  read 0x102000
  read 0x103000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (i != 5) return;
                          majflt_before = k.counters.get(Counter::pgmajfault);
                          // Twice: the first pass's looks at each mapped folio mostly
                          // clear their faults' young bits (it drops page 0, seen twice).
                          kswapd_reclaim(k, 4);
                          EXPECT_EQ(pte_state(k, 0), "none");
                          EXPECT_EQ(k.counters.get(Counter::pgsteal_file), 1u);
                          kswapd_reclaim(k, 4);
                          cached_after = k.files[0]->i_pages.size();
                          EXPECT_EQ(pte_state(k, 0), "none");
                          // Page 1 was referenced twice (write(2), then its mapping):
                          // active, still mapped.  Page 2, dirtied through the shared
                          // mapping, is unmapped (try_to_unmap comes before the dirty
                          // test) and kept.
                          EXPECT_EQ(pte_state(k, 1), "present");
                          EXPECT_EQ(pte_state(k, 2), "none");
                          EXPECT_EQ(pte_state(k, 3), "none");
                          expect_all_on_lru(k);
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"ok", "0x100000", "0", "41", "ok", "0", "0",
                                                    "41", "42", "0"}));
    EXPECT_EQ(cached_after, 2u);  // pages 1 and 2, both dirty
    EXPECT_EQ(counter(r, "pgsteal_file"), 2u);
    EXPECT_EQ(counter(r, "pgmajfault") - majflt_before, 2u);  // pages 0 and 3 read again
    EXPECT_GE(counter(r, "pgactivate"), 2u);
    EXPECT_EQ(counter(r, "pswpout"), 0u);
}

// A private file mapping: the page-cache folio is dropped, the written COW copy is
// anonymous and goes to swap; both read back the same.
TEST(Reclaim, PrivateFileMappingCowCopyToSwapPageCacheDropped) {
    auto r = run_text(R"(mmrace 1
file F0 pages=2
process P0
thread P0.T0
  file_write F0 0 5
  mmap 0x100000 pages=2 prot=rw flags=private,file:F0:0,fixed
  read 0x100000
  write 0x101000 6
  read 0x100000
  read 0x101000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (i != 3) return;
                          kswapd_reclaim(k, 8);  // rotates the young COW copy
                          kswapd_reclaim(k, 8);
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"ok", "0x100000", "5", "ok", "5", "6"}));
    EXPECT_EQ(counter(r, "pgsteal_anon"), 1u);  // the COW copy
    EXPECT_EQ(counter(r, "pswpout"), 1u);
    EXPECT_EQ(counter(r, "pgsteal_file"), 1u);  // page 1's clean page-cache folio
}

// Without a free swap slot anonymous lists are not scanned at all.
TEST(Reclaim, NoSwapSpaceLeavesAnonymousMemoryAlone) {
    auto r = run_text(R"(mmrace 1
config swap_slots=1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  madvise 0x100000 pages=1 advice=pageout
  write 0x102000 3
  read 0x100000
  read 0x101000
  read 0x102000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (i == 4) kswapd_reclaim(k, 4);
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "0", "ok", "1", "2", "3"}));
    EXPECT_EQ(counter(r, "pswpout"), 1u);  // only MADV_PAGEOUT's
    EXPECT_EQ(counter(r, "pgscan_kswapd"), 0u);
}

// The kthread op: reclaim while the process is blocked in a file read (its thread
// sleeps on the read I/O with mmap_lock dropped), content kept.  The default schedule
// would complete the I/O first; a replay list of zeros runs the lowest id instead, so
// K0 runs while T0 sleeps.
TEST(Reclaim, KthreadReclaimsWhileTheProcessWaitsForIo) {
    Schedule lowest_first;
    lowest_first.replay.assign(400, 0);
    auto r = run_text(R"(mmrace 1
file F0 pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  mmap 0x200000 pages=1 prot=r flags=private,file:F0:0,fixed
  read 0x200000
  read 0x100000
  read 0x101000
  read 0x102000
kthread K0
  reclaim 16
  reclaim 16
)",
                      lowest_first);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0x200000", "0",
                                                    "1", "2", "3", "0", "0"}));
    // K0's swap write lets T0 run again (its read completes first), so how much of the
    // anonymous memory is still out when T0 reads it back depends on the race.
    EXPECT_GE(counter(r, "pgsteal_kswapd"), 1u);
    EXPECT_GE(counter(r, "pgscan_kswapd"), 3u);
    EXPECT_GE(counter(r, "pswpout"), 1u);
}

// Reclaim racing faults, munmap, mremap, fork, madvise and exit under many schedules
// of every policy and strategy: every check passes, and reclaim did reclaim.
TEST(Reclaim, RacesEverythingUnderEveryStrategyAndPolicy) {
    const char* text = R"(mmrace 1
config strategy=%s
file F0 pages=4
process P0
thread P0.T0
  mmap 0x100000 pages=6 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  mmap 0x200000 pages=4 prot=rw flags=shared,file:F0:0,fixed
  read 0x200000
  write 0x201000 7
  fork P1
  write 0x100000 3
  munmap 0x101000 pages=1
  read 0x100000
thread P0.T1
  write 0x102000 4
  read 0x202000
  mremap 0x102000 pages=1 new_pages=1 flags=maymove,fixed to=0x104000
  read 0x104000
  madvise 0x100000 pages=2 advice=pageout
  read 0x100000
process P1 forked
thread P1.T0
  read 0x100000
  read 0x101000
  write 0x101000 5
  read 0x201000
  exit
kthread K0
  reclaim 8
  smaps P0
  reclaim 8
  smaps P1
  reclaim 32
)";
    uint64_t stolen = 0, runs = 0;
    for (const char* strategy :
         {"classic", "spf", "pervma", "pervma vma_lock=swapin", "pervma vma_lock=file"}) {
        char buf[4096];
        std::snprintf(buf, sizeof buf, text, strategy);
        Program p = parse_mmr(buf);
        for (uint64_t seed = 0; seed < 100; ++seed)
            for (Schedule s : {random_schedule(seed), pct_schedule(seed)}) {
                RunOptions o;
                o.schedule = s;
                o.trace = false;
                RunResult r = run_program(p, o);
                ASSERT_EQ(r.verdict, Verdict::ok) << strategy << " seed " << seed << ": " << r.check
                                           << ": " << r.message << "\n" << r.schedule;
                stolen += counter(r, "pgsteal_kswapd");
                ++runs;
            }
    }
    EXPECT_GT(stolen, runs);  // more than one folio a run on average
}

TEST(Reclaim, SameScheduleSameTraceHash) {
    std::string text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  read 0x100000
kthread K0
  reclaim 4
  smaps P0
  reclaim 4
)";
    auto a = run_text(text, random_schedule(7));
    auto b = run_text(text, random_schedule(7));
    ASSERT_EQ(a.verdict, Verdict::ok) << a.message;
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_EQ(results(a), results(b));
}

// The soak's workloads carry a reclaim/smaps kthread in half the programs; they must
// pass and their reclaim must actually take folios.
TEST(Reclaim, RandomWorkloadsWithTheKthreadPass) {
    uint64_t stolen = 0, smaps = 0;
    for (const char* strategy : {"classic", "spf", "pervma"}) {
        WorkloadShape shape;
        shape.strategy = strategy;
        for (uint64_t seed = 0; seed < 200; ++seed) {
            Program p = parse_mmr(random_workload(seed, shape));
            RunOptions o;
            o.schedule = random_schedule(seed);
            o.trace = false;
            RunResult r = run_program(p, o);
            ASSERT_EQ(r.verdict, Verdict::ok) << strategy << " seed " << seed << ": " << r.check << ": "
                                       << r.message << "\n" << print_mmr(p) << r.schedule;
            stolen += counter(r, "pgsteal_kswapd");
            smaps += counter(r, "smaps");
        }
    }
    EXPECT_GT(stolen, 50u);
    EXPECT_GT(smaps, 50u);
}

// A broken LRU list is caught by name at the next quiescent point.
TEST(ReclaimChecks, FolioOffItsListIsCaught) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  read 0x100000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (i != 2) return;
                          Pfn p = pte_pfn(pte_of(k, page(0)));
                          k.folios[p].lru = kNoLru;  // says it is off the LRU, still linked
                      });
    EXPECT_EQ(r.verdict, Verdict::violation);
    EXPECT_EQ(r.check, Check::lru);
}

// smaps counts resident, anonymous and swapped pages (not the zero page), per VMA.
TEST(Smaps, CountsWhatThePageTablesHold) {
    std::string seen;
    uint64_t hold = 0;
    auto r = run_text(R"(mmrace 1
file F0 pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  read 0x103000
  madvise 0x102000 pages=1 advice=pageout
  mmap 0x200000 pages=2 prot=r flags=shared,file:F0:0,fixed
  read 0x200000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (i != 7) return;
                          seen = ops::proc_smaps(k, 0);
                          hold = k.counters.get(Counter::smaps_lock_hold_steps);
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(seen, "vmas=2 rss=3 anon=2 swap=1");
    // At least a PTE lock and unlock per table walked (two tables).
    EXPECT_GE(hold, 4u);
    EXPECT_EQ(counter(r, "smaps"), 1u);
}

// A process not forked yet, or whose threads have all exited, has nothing to read.
TEST(Smaps, ProcessNotStartedOrExitedIsEsrch) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  fork P1
process P1 forked
thread P1.T0
  read 0x100000
kthread K0
  smaps P1
  smaps P0
schedule replay 1
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // K0 runs first (the replay's one decision): P1 is not forked yet, P0 has no VMA.
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "P1", "1", "ESRCH",
                                                    "vmas=0 rss=0 anon=0 swap=0"}));
    auto late = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  exit
kthread K0
  smaps P0
)");
    ASSERT_EQ(late.verdict, Verdict::ok) << late.message;
    EXPECT_EQ(results(late), (std::vector<std::string>{"0x100000", "0", "ESRCH"}));
    EXPECT_EQ(counter(late, "smaps"), 0u);
}

// smaps holds mmap_lock for its whole walk: a writer that comes meanwhile queues, and
// so do the faults behind it.  Across schedules some run sees waiters.  In some runs
// a walk outlives the process's last thread and tears the mm down itself (mmput);
// the leak check then still finds nothing.
TEST(Smaps, WritersQueueBehindTheWalkAndTheLastMmputTearsDown) {
    Program p = parse_mmr(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=16 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x108000 2
  write 0x10f000 3
  mmap 0x200000 pages=1 prot=rw flags=private,anon,fixed
  munmap 0x200000 pages=1
  mmap 0x200000 pages=1 prot=rw flags=private,anon,fixed
  munmap 0x200000 pages=1
  mprotect 0x100000 pages=1 prot=r
  exit
thread P0.T1
  write 0x101000 4
  read 0x108000
  write 0x109000 5
  exit
kthread K0
  smaps P0
  smaps P0
  smaps P0
  smaps P0
  smaps P0
  smaps P0
  smaps P0
  smaps P0
)");
    uint64_t waiters = 0, hold = 0, contended = 0;
    for (uint64_t seed = 0; seed < 300; ++seed) {
        RunOptions o;
        o.schedule = random_schedule(seed);
        o.trace = false;
        RunResult r = run_program(p, o);
        ASSERT_EQ(r.verdict, Verdict::ok) << seed << ": " << r.check << ": " << r.message;
        waiters += counter(r, "smaps_lock_waiters");
        hold += counter(r, "smaps_lock_hold_steps");
        contended += counter(r, "smaps_lock_contended");
        EXPECT_LE(counter(r, "smaps_lock_contended"), counter(r, "smaps_lock_waiters"));
    }
    EXPECT_GT(contended, 0u);
    EXPECT_GE(waiters, contended);
    EXPECT_GT(hold, 0u);
}

// A live folio that never joined an LRU list (a new allocation site that forgot
// folio_add_lru) is caught by name: reclaim would never see it.
TEST(ReclaimChecks, LiveFolioOnNoListIsCaught) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 1
  read 0x100000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (i != 1) return;
                          Pfn p = pte_pfn(pte_of(k, page(0)));
                          lruvec_del_folio(k.lru, k.folios, p);  // cleanly off every list
                      });
    EXPECT_EQ(r.verdict, Verdict::violation);
    EXPECT_EQ(r.check, Check::lru);
    EXPECT_NE(r.message.find("on no LRU list"), std::string::npos) << r.message;
}

// With the folio pool full, reclaim makes room: the next faults get folios instead of
// VM_FAULT_OOM, and the reclaimed pages still read back once there is room again.
TEST(Reclaim, FreesFoliosForLaterFaults) {
    auto r = run_text(R"(mmrace 1
config folios=4
process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  write 0x103000 4
  write 0x104000 5
  write 0x105000 6
  write 0x106000 7
  munmap 0x104000 pages=3
  read 0x100000
  read 0x101000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (i == 4) kswapd_reclaim(k, 2);
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "ok", "ok", "ok",
                                                    "OOM", "0", "1", "2"}));
    EXPECT_EQ(counter(r, "pgsteal_kswapd"), 2u);
    EXPECT_EQ(counter(r, "pswpin"), 2u);
}
