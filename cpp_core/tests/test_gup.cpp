// GUP, pins and COW with pins (mm/gup.c, the FAULT_FLAG_UNSHARE path of do_wp_page,
// fork's copy_present_page), as tools/testing/selftests/mm/cow.c expects them.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iostream>

#include "mutants/catalogue.hpp"
#include "test_util.hpp"

using namespace mmrace;
using namespace mmrace::testing;

namespace {

const char* kHead = "mmrace 1\n";

std::string prog(const std::string& body, const std::string& config = "") {
    return std::string(kHead) + (config.empty() ? "" : "config " + config + "\n") + body;
}

void expect_ok(const RunResult& r) {
    EXPECT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
}

}  // namespace

TEST(Gup, WritePinAliasesProcessMemory) {
    auto r = run_text(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x101008 5
  pin 0x100000 pages=2 flags=write
  dma_read H0 4104
  dma_write H0 16 7
  read 0x100010
  write 0x100018 9
  dma_read H0 24
  unpin H0
)"));
    expect_ok(r);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "H0", "5", "ok", "7", "ok", "9", "0"}));
}

TEST(Gup, BadHandlesGetErrnosNotCrashes) {
    auto r = run_text(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  pin 0x100000 pages=1
  dma_write H0 0 1
  unpin H0
  unpin H0
  dma_read H0 0
  pin 0x200000 pages=1 flags=write
  dma_read H1 0
  unpin H1
)"));
    expect_ok(r);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "H0", "EACCES", "0", "EINVAL", "EINVAL",
                                                    "EFAULT", "EINVAL", "EINVAL"}));
}

// cow.c "R/O pin on shared anon page": after fork, a R/O FOLL_PIN unshares (copies) the
// parent's page, so the parent's later writes are what the device sees.
TEST(Gup, ReadOnlyPinAfterForkUnsharesAndSeesLaterWrites) {
    for (const char* strategy : {"classic", "spf", "pervma"}) {
        for (const char* fast : {"", ",fast"}) {
            auto r = run_text(prog(std::string(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  fork P1
  pin 0x100000 pages=1 flags=longterm)") + fast + R"(
  write 0x100000 2
  dma_read H0 0
  unpin H0
process P1 forked
thread P1.T0
  read 0x100000
)", std::string("strategy=") + strategy));
            expect_ok(r);
            EXPECT_EQ(results(r)[5], "2") << strategy << fast;
            EXPECT_EQ(results(r)[7], "1") << strategy << fast;
            EXPECT_GE(counter(r, "cow_copy"), 1u) << strategy << fast;
        }
    }
}

// 70e806e4e645: a page pinned before fork stays the parent's; the child gets a copy.
TEST(Gup, ForkCopiesPinnedPageForChild) {
    auto r = run_text(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  pin 0x100000 pages=1 flags=write
  fork P1
  dma_write H0 0 3
  read 0x100000
  write 0x100000 4
  dma_read H0 0
process P1 forked
thread P1.T0
  read 0x100000
  write 0x100000 5
  read 0x100000
)", "strategy=classic"));
    expect_ok(r);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "H0", "P1", "ok", "3", "ok", "4",
                                                    "1", "ok", "5"}));
    EXPECT_EQ(counter(r, "cow_copy"), 0u);  // neither side needed a COW fault
}

TEST(Gup, PinOutlivesMunmapAndIsReleasedAtExit) {
    auto r = run_text(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  pin 0x100000 pages=1 flags=write
  munmap 0x100000 pages=1
  read 0x100000
  dma_read H0 0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 2
  dma_write H0 0 3
  read 0x100000
)"));
    expect_ok(r);  // the leak check passes: exit released the pin
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "H0", "0", "SIGSEGV", "1", "0x100000",
                                                    "ok", "ok", "2"}));
}

TEST(Gup, PinAfterDontneedIsNotThePage) {
    auto r = run_text(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  pin 0x100000 pages=1 flags=write,fast
  madvise 0x100000 pages=1 advice=dontneed
  read 0x100000
  dma_read H0 0
  write 0x100000 2
  dma_read H0 0
  unpin H0
)"));
    expect_ok(r);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "H0", "0", "0", "1", "ok", "1", "0"}));
}

// /proc/pid/mem: FOLL_FORCE writes COW a private read-only file mapping and never reach
// the page cache; a shared read-only mapping refuses them (EIO).
TEST(Gup, PokeIntoPrivateReadOnlyFileMappingCows) {
    auto r = run_text(prog(R"(file F pages=1
process P0
thread P0.T0
  file_write F 0 7
  mmap 0x100000 pages=1 prot=r flags=private,file:F:0,fixed
  mmap 0x200000 pages=1 prot=r flags=shared,file:F:0,fixed
  peek 0x100000
  poke 0x100000 9
  peek 0x100000
  read 0x100000
  read 0x200000
  poke 0x200000 9
  write 0x100000 1
  peek 0x300000
  poke 0x300000 1
)"));
    expect_ok(r);
    EXPECT_EQ(results(r), (std::vector<std::string>{"ok", "0x100000", "0x200000", "7", "ok", "9", "9", "7",
                                                    "EIO", "SIGSEGV", "EIO", "EIO"}));
    EXPECT_EQ(counter(r, "cow_copy"), 1u);  // the peek mapped the page-cache page first
}

TEST(Gup, GupWriteBreaksCowAndForceNeedsCowMapping) {
    auto r = run_text(prog(R"(file F pages=2
process P0
thread P0.T0
  file_write F 0 7
  mmap 0x100000 pages=2 prot=r flags=private,file:F:0,fixed
  gup 0x100000 pages=2 flags=write
  gup 0x100000 pages=2 flags=write,force
  file_write F 0 8
  read 0x100000
  gup 0x100000 pages=3 flags=unlocked
  gup 0x300000 pages=1
)"));
    expect_ok(r);
    EXPECT_EQ(results(r), (std::vector<std::string>{"ok", "0x100000", "EFAULT", "2", "ok", "7", "2", "EFAULT"}));
}

TEST(Gup, UnlockedGupRetriesAfterFileReadDropsTheLock) {
    auto r = run_text(prog(R"(file F pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=r flags=private,file:F:0,fixed
  gup 0x100000 pages=2 flags=unlocked
  gup 0x100000 pages=2
)"));
    expect_ok(r);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "2", "2"}));
    EXPECT_GE(counter(r, "fault_retry"), 1u);
}

TEST(Gup, PinsAreAccountedAtEveryQuiescentPoint) {
    // A pin whose bias goes missing must fail folio_accounting.
    auto r = run_text(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  pin 0x100000 pages=1 flags=write
  read 0x100000
)"), std::nullopt, [](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 1) k.folios[mm::pte_pfn(pte_of(k, 0x100000))].refcount -= 1;
    });
    EXPECT_EQ(r.verdict, Verdict::violation);
    EXPECT_EQ(r.check, Check::folio_accounting);
}

TEST(Gup, RandomSchedulesOfPinsForkAndUnmapStayClean) {
    std::string text = prog(R"(file F pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 1
  pin 0x100000 pages=2 flags=write,fast
  dma_write H0 8 2
  fork P1
  dma_read H0 0
  unpin H0
thread P0.T1
  pin 0x100000 pages=1 flags=longterm
  write 0x100000 3
  munmap 0x101000 pages=1
  poke 0x100008 4
  gup 0x100000 pages=2 flags=write,unlocked
process P1 forked
thread P1.T0
  write 0x100000 5
  peek 0x100008
  pin 0x100000 pages=1 flags=fast
)");
    for (uint64_t seed = 0; seed < 300; ++seed) {
        auto r = run_text(text, seed % 2 ? random_schedule(seed) : pct_schedule(seed));
        ASSERT_EQ(r.verdict, Verdict::ok) << seed << " " << r.check << ": " << r.message;
    }
}

// --- mutants (DESIGN §8) ---------------------------------------------------------------

namespace {

// The first of `tries` random schedules under which `text` (with its mutant) fails the
// check the catalogue expects; the same schedule must pass without the mutant.
void expect_caught(const std::string& text, const std::string& mutant, uint64_t tries,
                   uint64_t* found = nullptr) {
    Program with = parse_mmr(text);
    ASSERT_EQ(with.config.mutants, std::vector<std::string>{mutant});
    Program without = with;
    without.config.mutants.clear();
    RunOptions o;
    for (uint64_t seed = 0; seed < tries; ++seed) {
        o.schedule = random_schedule(seed);
        auto bad = run_program(with, o);
        if (bad.verdict == Verdict::ok) continue;
        EXPECT_EQ(bad.verdict, Verdict::violation) << bad.message;
        EXPECT_EQ(bad.check, find_mutant(mutant)->check) << bad.message;
        auto good = run_program(without, o);
        EXPECT_EQ(good.verdict, Verdict::ok) << good.check << ": " << good.message;
        if (found) *found = seed;
        return;
    }
    ADD_FAILURE() << mutant << " not caught in " << tries << " schedules";
}

}  // namespace

// Seed 004: a R/O pin after fork that does not unshare pins the shared page; today's
// follow_page_pte asserts (VM_BUG_ON_PAGE) that a pinned anonymous page is exclusive.
TEST(GupMutants, GupPinNoEarlyCow) {
    expect_caught(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  fork P1
  pin 0x100000 pages=1
  write 0x100000 2
  dma_read H0 0
process P1 forked
thread P1.T0
  read 0x100000
)", "strategy=classic mutants=gup_pin_no_early_cow"), "gup_pin_no_early_cow", 1);
}

// 70e806e4e645: fork shares the pinned page; the parent's next write COWs it away from
// the pin, and the unpin's sanity check sees a pinned page that is no longer exclusive.
TEST(GupMutants, ForkSharesPinnedPage) {
    expect_caught(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  pin 0x100000 pages=1 flags=write
  fork P1
  write 0x100000 2
  dma_read H0 0
  unpin H0
process P1 forked
thread P1.T0
  read 0x100000
)", "strategy=classic mutants=fork_shares_pinned_page"), "fork_shares_pinned_page", 1);
}

// Seed 001: GUP waits for a file read with mmap_lock dropped; munmap frees the VMA; the
// retry goes on with the old VMA.
TEST(GupMutants, GupVmasAfterRetry) {
    uint64_t seed = 0;
    expect_caught(prog(R"(file F pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=r flags=private,file:F:0,fixed
  gup 0x100000 pages=1 flags=unlocked
thread P0.T1
  munmap 0x100000 pages=1
)", "strategy=classic mutants=gup_vmas_after_retry"), "gup_vmas_after_retry", 500, &seed);
    std::cout << "gup_vmas_after_retry: seed " << seed << "\n";
}

// CVE-2016-5195: poke's retry after the COW drops FOLL_WRITE; MADV_DONTNEED zaps the COW
// copy; the read-only lookup maps the page-cache page, and the write lands in the file.
TEST(GupMutants, DirtyCow) {
    uint64_t seed = 0;
    expect_caught(prog(R"(file F pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=r flags=private,file:F:0,fixed
  mmap 0x200000 pages=1 prot=r flags=shared,file:F:0,fixed
  poke 0x100000 9
  poke 0x100000 9
  poke 0x100000 9
thread P0.T1
  madvise 0x100000 pages=1 advice=dontneed
  madvise 0x100000 pages=1 advice=dontneed
  madvise 0x100000 pages=1 advice=dontneed
  madvise 0x100000 pages=1 advice=dontneed
  madvise 0x100000 pages=1 advice=dontneed
  madvise 0x100000 pages=1 advice=dontneed
  read 0x200000
)", "strategy=classic mutants=dirty_cow"), "dirty_cow", 2000, &seed);
    std::cout << "dirty_cow: seed " << seed << "\n";
}

// CVE-2020-29374: the child's read-only pin of a page shared after fork, the child's
// munmap, then the parent's write.  The 5.7 kernel neither broke COW for the read GUP
// nor counted the pin's reference in do_wp_page: the parent wrote in place and the
// child's pin read it.  Today the pin unshares and the write copies.
TEST(GupMutants, CowReuseAfterRoGup) {
    uint64_t seed = 0;
    expect_caught(prog(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  fork P1
  write 0x100000 2
process P1 forked
thread P1.T0
  pin 0x100000 pages=1
  munmap 0x100000 pages=1
  dma_read H0 0
)", "strategy=classic mutants=cow_reuse_after_ro_gup"), "cow_reuse_after_ro_gup", 500, &seed);
    std::cout << "cow_reuse_after_ro_gup: seed " << seed << "\n";
}

// The reproducers in examples/mutants/ (tested from Python too): each fails with its
// mutant and the expected check, and passes without it.
TEST(GupMutants, Reproducers) {
    for (const char* name : {"gup_pin_no_early_cow", "fork_shares_pinned_page", "gup_vmas_after_retry",
                             "dirty_cow", "cow_reuse_after_ro_gup"}) {
        std::ifstream f(std::string(MMRACE_SOURCE_DIR) + "/examples/mutants/" + name + ".mmr");
        ASSERT_TRUE(f) << name;
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        Program p = parse_mmr(text);
        auto bad = run_program(p);
        EXPECT_EQ(bad.verdict, Verdict::violation) << name;
        EXPECT_EQ(bad.check, find_mutant(name)->check) << name << ": " << bad.message;
        p.config.mutants.clear();
        auto good = run_program(p);
        EXPECT_EQ(good.verdict, Verdict::ok) << name << ": " << good.check << " " << good.message;
    }
}

// As the host kernel does (pytests/test_conform.py): FOLL_FORCE reads and writes a
// PROT_NONE private page (a COW write into a PAGE_NONE PTE), not a read-only shared one.
TEST(Gup, PeekAndPokeReachProtNonePrivateMemory) {
    for (const char* strategy : {"classic", "spf", "pervma"}) {
        auto r = run_text(prog(R"(file F0 pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=none flags=private,anon,fixed
  poke 0x100000 3
  peek 0x100000
  read 0x100000
  peek 0x110000
  mmap 0x102000 pages=1 prot=r flags=shared,file:F0:0
  poke 0x102000 4
  mprotect 0x100000 pages=1 prot=r
  read 0x100000
  peek 0x100008
)", std::string("strategy=") + strategy));
        expect_ok(r);
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "3", "SIGSEGV", "EIO", "0x102000",
                                                        "EIO", "0", "3", "0"}))
            << strategy;
    }
}
