// The speculative fault strategies (issue 4): spf (seed 000) and pervma (seed 003).
// Their rules, and the first mutants: each test that pins a rule also shows, where a
// mutant breaks that rule, that the same program then fails.
#include <gtest/gtest.h>

#include <string>

#include "program/generate/workload.hpp"
#include "test_util.hpp"

using namespace mmrace;
using namespace mmrace::testing;

namespace {

std::string with_config(const std::string& config, const std::string& body) {
    return "mmrace 1\nconfig " + config + "\n" + body;
}

// Thread T0 faults pages of its VMA in (the first write sets up the anon_vma and the
// PTE table under mmap_lock, the rest may go speculative) while T1 changes the VMA.
std::string race_body(const std::string& writer_op) {
    return R"(process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  write 0x103000 4
  write 0x104000 5
  read 0x101000
thread P0.T1
  read 0x100000
  )" + writer_op + "\n  read 0x102000\n";
}

}  // namespace

// A single-threaded program has the same results under every strategy.
TEST(Strategies, SingleThreadedProgramsAgree) {
    WorkloadShape shape;
    shape.min_threads = shape.max_threads = 1;
    shape.fork = false;
    shape.uffd = false;  // a uffd handler is a second thread
    for (uint64_t seed = 0; seed < 200; ++seed) {
        std::string text = random_workload(seed, shape);
        RunResult classic = run_text(text);
        for (const char* s : {"strategy=spf", "strategy=pervma"}) {
            std::string other = text;
            other.replace(other.find("strategy=classic"), 16, s);
            RunResult r = run_text(other);
            ASSERT_EQ(r.verdict, Verdict::ok) << s << " seed " << seed << ": " << r.message;
            EXPECT_EQ(results(r), results(classic)) << s << " seed " << seed << "\n" << text;
        }
    }
}

// Faults racing mprotect, munmap or mremap of their VMA complete before the change or
// fall back; they never leave a PTE the change forbids (the structural invariants run
// at every quiescent point, and the oracle checks every result).
TEST(Strategies, FaultsRacingVmaChangesStayConsistent) {
    for (const char* strategy : {"spf", "pervma"})
        for (const char* op : {"mprotect 0x100000 pages=8 prot=r", "munmap 0x101000 pages=3",
                               "mremap 0x100000 pages=8 new_pages=8 flags=maymove,fixed to=0x200000",
                               "mprotect 0x102000 pages=2 prot=none"}) {
            RaceSweep s = race_sweep(with_config(std::string("strategy=") + strategy, race_body(op)), 150);
            EXPECT_EQ(s.bad, 0) << strategy << " / " << op << ": " << s.first.check << ": "
                                << s.first.message << "\n" << s.first.schedule;
        }
}

// mremap onto a range its neighbours absorb (copy_vma merges the new VMA into both):
// the merged VMA must stay inside its write section until move_ptes is done, or a
// speculative fault fills the destination and move_ptes overwrites that PTE (the spf
// series' __vma_merge keep_locked; soak spf pct seed 65579).  The source has no
// anon_vma (only the zero page), so its new pgoff is the destination's and both
// neighbours can merge.
TEST(Strategies, SpeculativeFaultsWaitForAnMremapMergingIntoNeighbours) {
    const std::string body = R"(process P0
thread P0.T0
  mmap 0x100000 pages=16 prot=rw flags=private,anon,fixed
  write 0x10a000 1
  mmap 0x120000 pages=1 prot=rw flags=private,anon,fixed
  read 0x120000
thread P0.T1
  read 0x100000
  mremap 0x120000 pages=1 new_pages=3 flags=maymove,fixed to=0x109000
thread P0.T2
  write 0x109000 2
  write 0x109000 3
  write 0x109000 4
  write 0x109000 5
  read 0x10a000
)";
    RaceSweep s = race_sweep(with_config("strategy=spf", body), 2000);  // without keep_locked: 5 of 4000 fail
    EXPECT_EQ(s.bad, 0) << s.first.check << ": " << s.first.message << "\n" << s.first.schedule;
}

// The speculative paths really run: counters show speculative successes and, in a race
// with mprotect, aborts with the series' reasons.
TEST(Strategies, CountersShowSpeculativeFaults) {
    uint64_t spf = 0, changed = 0, success = 0;
    for (uint64_t i = 0; i < 100; ++i) {
        RunResult a = run_text(with_config("strategy=spf", race_body("mprotect 0x100000 pages=8 prot=r")),
                               random_schedule(i));
        spf += counter(a, "spf");
        changed += counter(a, "spf_vma_changed");
        RunResult b = run_text(with_config("strategy=pervma", race_body("mprotect 0x100000 pages=8 prot=r")),
                               random_schedule(i));
        success += counter(b, "vma_lock_success");
    }
    EXPECT_GT(spf, 0u);
    EXPECT_GT(changed, 0u);
    EXPECT_GT(success, 0u);
}

// spf_no_seqcount_check (seed 000): without the sequence re-check under the PTE lock a
// speculative fault that read the flags before mprotect(PROT_READ) installs a writable
// PTE after change_protection passed it.
TEST(Mutants, SpfNoSeqcountCheckIsCaught) {
    std::string body = race_body("mprotect 0x100000 pages=8 prot=r");
    RaceSweep bad = race_sweep(with_config("strategy=spf mutants=spf_no_seqcount_check", body), 300);
    EXPECT_GT(bad.bad, 0);
    EXPECT_EQ(bad.first.check, Check::invariant) << bad.first.message;
    EXPECT_EQ(race_sweep(with_config("strategy=spf", body), 300).bad, 0);
}

// config vma_lock=swapin (6.6): under pervma a swap-in starts its read under the VMA
// lock, before any mmap_lock; without it (6.4) the fault falls back first.  The results
// are the same either way.
TEST(Strategies, SwapInUnderTheVmaLockIsAConfigOption) {
    const std::string body = R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 5
  madvise 0x100000 pages=1 advice=pageout
  read 0x100000
)";
    auto io_before_mmap_lock = [](const RunResult& r) {
        bool reading = false;  // inside the final read op
        for (const auto& e : r.trace) {
            if (e.event == "op_begin" && e.arg == 3) reading = true;
            if (!reading) continue;
            if (e.event == "io_submit") return true;
            if (e.site == "lock_mm_and_find_vma") return false;
        }
        ADD_FAILURE() << "the read neither did I/O nor took mmap_lock";
        return false;
    };
    RunResult off = run_text(with_config("strategy=pervma", body));
    RunResult on = run_text(with_config("strategy=pervma vma_lock=swapin", body));
    ASSERT_EQ(off.verdict, Verdict::ok) << off.message;
    ASSERT_EQ(on.verdict, Verdict::ok) << on.message;
    EXPECT_EQ(results(on), results(off));
    EXPECT_EQ(results(on).back(), "5");
    EXPECT_EQ(counter(on, "pswpin"), 1u);
    EXPECT_FALSE(io_before_mmap_lock(off));
    EXPECT_TRUE(io_before_mmap_lock(on));
    EXPECT_THROW(run_text(with_config("strategy=classic vma_lock=swapin", body)), std::invalid_argument);
}

// config vma_lock=file (6.7): a file fault runs under the VMA lock.  A page-cache hit
// completes there; a miss drops the VMA lock for the read and retries under mmap_lock
// (FAULT_FLAG_TRIED); a private COW in a VMA without an anon_vma retries too
// (vmf_anon_prepare).  The results are those of 6.4, which takes mmap_lock for all.
TEST(Strategies, FileFaultsUnderTheVmaLockAreAConfigOption) {
    const std::string body = R"(file F pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=shared,file:F:0,fixed
  mmap 0x200000 pages=2 prot=rw flags=private,file:F:0,fixed
  file_write F 1 7
  read 0x100000
  read 0x101000
  write 0x100008 3
  read 0x200008
  write 0x201000 4
  read 0x101000
  truncate F pages=1
  read 0x101000
)";
    RunResult off = run_text(with_config("strategy=pervma", body));
    RunResult on = run_text(with_config("strategy=pervma vma_lock=file", body));
    RunResult both = run_text(with_config("strategy=pervma vma_lock=swapin,file", body));
    ASSERT_EQ(off.verdict, Verdict::ok) << off.message;
    ASSERT_EQ(on.verdict, Verdict::ok) << on.message;
    std::vector<std::string> want{"0x100000", "0x200000", "ok", "0", "7", "ok", "3", "ok", "7", "0", "SIGBUS"};
    EXPECT_EQ(results(off), want);
    EXPECT_EQ(results(on), want);
    EXPECT_EQ(results(both), want);
    EXPECT_EQ(counter(off, "vma_lock_success"), 0u);
    // Under the VMA lock: the write to the mapped shared page is a fault that hits,
    // and so is the private read of page 0 and the read past the truncation (SIGBUS).
    EXPECT_GE(counter(on, "vma_lock_success"), 3u);
    EXPECT_GE(counter(on, "vma_lock_retry"), 1u);  // page 0 was read from the file
    EXPECT_EQ(counter(on, "pgmajfault"), counter(off, "pgmajfault"));
    EXPECT_THROW(run_text(with_config("strategy=spf vma_lock=file", body)), std::invalid_argument);
}

// fault_retry_stale_vma (seeds 001, 003): a read of a file page waits for its I/O with
// the fault's lock dropped (VM_FAULT_RETRY) while T1 unmaps the file; the retry must
// look the VMA up again.  Under pervma with vma_lock=file the first try holds only the
// VMA lock, and it is that VMA the mutant's retry reuses: one munmap detached but RCU
// has not freed yet, so the retry installs a PTE where no VMA is (the invariant check)
// instead of reading a freed VMA.
TEST(Mutants, FaultRetryStaleVmaIsCaught) {
    const std::string body = R"(file F pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=r flags=private,file:F:0,fixed
  read 0x100000
  read 0x101000
thread P0.T1
  munmap 0x100000 pages=2
)";
    for (const char* config : {"strategy=classic", "strategy=pervma", "strategy=pervma vma_lock=file"}) {
        SCOPED_TRACE(config);
        std::string mutated = std::string(config) + " mutants=fault_retry_stale_vma";
        RaceSweep bad = race_sweep(with_config(mutated, body), 200);
        EXPECT_GT(bad.bad, 0);
        EXPECT_TRUE(bad.first.check == Check::use_after_free ||
                    (bad.first.check == Check::invariant &&
                     bad.first.message.find("outside every VMA") != std::string::npos))
            << bad.first.check << ": " << bad.first.message;
        EXPECT_EQ(race_sweep(with_config(config, body), 200).bad, 0);
    }
}
