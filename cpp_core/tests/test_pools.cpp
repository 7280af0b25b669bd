// Pools bounded by config (`config folios=N swap_slots=N pgtables=N`): exhausting each
// one fails where the kernel fails (VM_FAULT_OOM in a fault, -ENOMEM from fork and
// mremap, populate stops, reclaim keeps what it cannot swap), every check still passes,
// and a kernel kept between runs applies new limits to storage it reuses.
//
// Addresses in the small geometry: a PTE table maps 8 pages (0x8000), a PMD table 64
// (0x40000), a PUD table 512 (0x200000); the first fault of a program needs three tables.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "test_util.hpp"

#include "mm/anon_vma.hpp"
#include "mm/free_id_tree.hpp"
#include "mm/kernel.hpp"
#include "mm/swap.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"

using namespace mmrace;
using namespace mmrace::mm;
using namespace mmrace::testing;

namespace {

using Results = std::vector<std::string>;

}  // namespace

TEST(Pools, FolioExhaustionFailsTheFaultWithOom) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small folios=2
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  read 0x102000
  read 0x100000
  munmap 0x101000 pages=1
  write 0x102000 4
  read 0x102000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // The third folio does not exist: do_anonymous_page returns VM_FAULT_OOM and the
    // write fails without writing.  A read needs no folio (the zero page).  Once munmap
    // gave a folio back, the write goes in.
    EXPECT_EQ(results(r), (Results{"0x100000", "ok", "ok", "OOM", "0", "1", "0", "ok", "4"}));
    EXPECT_EQ(counter(r, "fault_oom"), 1u);
    EXPECT_EQ(counter(r, "pgalloc_anon"), 3u);
    EXPECT_EQ(counter(r, "sigsegv"), 0u);
}

TEST(Pools, CowCopyAndSwapInOutOfFoliosFailWithOom) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small folios=1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 7
  fork P1
  write 0x100000 8
  read 0x100000
process P1 forked
thread P1.T0
  read 0x100000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // The parent's write after fork must copy (the child maps the page too):
    // wp_page_copy has no folio for the copy, and both still see the old value.
    EXPECT_EQ(results(r), (Results{"0x100000", "ok", "P1", "OOM", "7", "7"}));
    EXPECT_EQ(counter(r, "fault_oom"), 1u);
    EXPECT_EQ(counter(r, "cow_copy"), 0u);

    auto s = run_text(R"(mmrace 1
config strategy=classic geometry=small folios=1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 5
  madvise 0x100000 pages=1 advice=pageout
  write 0x101000 6
  read 0x100000
  munmap 0x101000 pages=1
  read 0x100000
)");
    ASSERT_EQ(s.verdict, Verdict::ok) << s.check << ": " << s.message;
    // Swapped out, the folio is free for page 1; swapping page 0 back in needs one more.
    EXPECT_EQ(results(s), (Results{"0x100000", "ok", "0", "ok", "OOM", "0", "5"}));
    EXPECT_EQ(counter(s, "pswpout"), 1u);
    EXPECT_EQ(counter(s, "pswpin"), 1u);
}

TEST(Pools, FileFaultOutOfFoliosRetriesOnceThenFailsWithOom) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small folios=1
file F pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=r flags=shared,file:F:0
  read 0x100000
  read 0x101000
  file_write F 1 9
  munmap 0x100000 pages=2
  truncate F pages=0
  file_write F 1 9
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // filemap_fault drops mmap_lock for the read I/O on the first attempt, fails to get
    // a folio and retries; the retry (FAULT_FLAG_TRIED) keeps the lock and ends in
    // VM_FAULT_OOM instead of retrying forever.  write(2) cannot get a folio either,
    // until truncate empties the page cache.
    EXPECT_EQ(results(r), (Results{"0x100000", "0", "OOM", "ENOMEM", "0", "0", "ok"}));
    EXPECT_EQ(counter(r, "fault_retry"), 2u);  // one per first attempt that did I/O
    EXPECT_EQ(counter(r, "fault_oom"), 1u);
}

TEST(Pools, PopulateStopsWhereFoliosRunOut) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small folios=2
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed,populate
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  munmap 0x100000 pages=1
  write 0x103000 4
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // __mm_populate ignores the error: mmap succeeds with two pages populated, the
    // others are left to fault (and fail) later.
    EXPECT_EQ(results(r), (Results{"0x100000", "ok", "ok", "OOM", "0", "ok"}));
    EXPECT_EQ(counter(r, "pgalloc_anon"), 3u);
    EXPECT_EQ(counter(r, "fault_oom"), 1u);  // populate's own failures are not user faults
}

TEST(Pools, PopulatingAFileMappingWithNoFolioGivesUp) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small folios=1
file F pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  mmap 0x200000 pages=2 prot=r flags=shared,file:F:0,populate
  read 0x200000
  munmap 0x100000 pages=1
  read 0x200000
)");
    // filemap_fault drops mmap_lock for the read and then finds no folio: a retry.
    // Populate faults the page again, and the third time keeps the lock, gets
    // VM_FAULT_OOM and gives up (the run does not spin to its step budget).
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (Results{"0x100000", "ok", "0x200000", "OOM", "0", "0"}));
}

TEST(Pools, APrivateFilePagePopulateCouldNotCopySeesLaterFileWrites) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small folios=3
file F pages=2
process P0
thread P0.T0
  mmap 0x200000 pages=1 prot=rw flags=private,anon,fixed
  write 0x200000 1
  mmap 0x100000 pages=2 prot=rw flags=private,file:F:0,populate
  munmap 0x200000 pages=1
  file_write F 1 5
  read 0x100000
  read 0x101000
)");
    // Page 0 got its private copy (and the page cache its folio); page 1 had no folio
    // for the copy, so it still follows the file: the oracle must allow for both.
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (Results{"0x200000", "ok", "0x100000", "0", "ok", "0", "5"}));
}

TEST(Pools, AFailedWriteDoesNotGrowTheFile) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small folios=1
file F pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  file_write F 3 5
  mmap 0x200000 pages=4 prot=r flags=shared,file:F:0
  read 0x203000
)");
    // write_begin gets no folio: ENOMEM, and i_size stays one page, so the oracle must
    // not expect page 3 to read 5.
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (Results{"0x100000", "ok", "ENOMEM", "0x200000", "SIGBUS"}));
}

TEST(Pools, PageTableExhaustionFailsFaultsWithOom) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small pgtables=5
process P0
thread P0.T0
  mmap 0x100000 pages=72 prot=rw flags=private,anon,fixed
  write 0x100000 1
  read 0x108000
  read 0x140000
  write 0x107ff8 2
  munmap 0x108000 pages=8
  read 0x140000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // PUD, PMD and PTE tables for the first fault, one more PTE table for the next
    // PTE table's range; the range of another PMD table needs two, and gets only the
    // PMD table, which stays.  munmap frees the PTE table of a range nothing else maps,
    // and the fault then fits.
    EXPECT_EQ(results(r), (Results{"0x100000", "ok", "0", "OOM", "ok", "0", "0"}));
    EXPECT_EQ(counter(r, "fault_oom"), 1u);
}

TEST(Pools, MremapOutOfPageTablesIsEnomemAndMovesNothing) {
    // Two PTE tables' worth of pages; the destination needs two more.  With one to
    // spare the first extent moves, the second cannot: the first moves back, the new
    // range is unmapped, and the data is where it was.
    const std::string body = R"(
process P0
thread P0.T0
  mmap 0x100000 pages=16 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x108008 2
  mremap 0x100000 pages=16 new_pages=16 flags=maymove,fixed to=0x110000
  read 0x100000
  read 0x108008
  read 0x110000
  read 0x118008
)";
    auto r = run_text("mmrace 1\nconfig strategy=classic geometry=small pgtables=5" + body);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (Results{"0x100000", "ok", "ok", "ENOMEM", "1", "2", "SIGSEGV", "SIGSEGV"}));

    auto fits = run_text("mmrace 1\nconfig strategy=classic geometry=small pgtables=6" + body);
    ASSERT_EQ(fits.verdict, Verdict::ok) << fits.check << ": " << fits.message;
    EXPECT_EQ(results(fits),
              (Results{"0x100000", "ok", "ok", "0x110000", "SIGSEGV", "SIGSEGV", "1", "2"}));
}

TEST(Pools, ForkOutOfPageTablesIsEnomemAndTheChildNeverRuns) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small pgtables=8
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  mmap 0x140000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x140000 2
  fork P1
  write 0x100000 3
  read 0x100000
  read 0x140000
process P1 forked
thread P1.T0
  read 0x100000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // The parent has five tables; the child gets three for the first VMA and no PMD
    // table for the second: dup_mmap fails, exit_mmap tears the child's mm down, and
    // the parent's now write-protected page is reused on its next write.
    EXPECT_EQ(results(r), (Results{"0x100000", "0x140000", "ok", "ok", "ENOMEM", "ok", "3", "2", "-"}));
    EXPECT_EQ(counter(r, "cow_reuse"), 1u);
    EXPECT_EQ(counter(r, "cow_copy"), 0u);
}

TEST(Pools, FullSwapKeepsTheFoliosReclaimCannotSwap) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small swap_slots=1
process P0
thread P0.T0
  mmap 0x100000 pages=3 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  madvise 0x100000 pages=3 advice=pageout
  read 0x100000
  read 0x101000
  read 0x102000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    // add_to_swap finds no free slot for the second and third folios: shrink_folio_list
    // keeps them mapped (activate_locked).
    EXPECT_EQ(results(r), (Results{"0x100000", "ok", "ok", "ok", "0", "1", "2", "3"}));
    EXPECT_EQ(counter(r, "pgscan_anon"), 3u);
    EXPECT_EQ(counter(r, "pgsteal_anon"), 1u);
    EXPECT_EQ(counter(r, "pswpout"), 1u);
    EXPECT_EQ(counter(r, "pswpin"), 1u);
}

// swap_slots=0 is a machine without swap: MADV_PAGEOUT swaps nothing out (a THP is
// split for the fallback to small pages, which fail too), anonymous memory stays
// resident, and a collapse afterwards finds no swap entries to read back.
TEST(Pools, NoSwapKeepsAnonymousMemoryResident) {
    auto r = run_text(R"(mmrace 1
config strategy=classic geometry=small swap_slots=0
process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  madvise 0x200000 pages=8 advice=hugepage
  write 0x200000 1
  mmap 0x300000 pages=2 prot=rw flags=private,anon,fixed
  write 0x301000 2
  madvise 0x300000 pages=2 advice=pageout
  madvise 0x200000 pages=8 advice=pageout
  madvise 0x200000 pages=8 advice=collapse
  read 0x200000
  read 0x301000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (Results{"0x200000", "0", "ok", "0x300000", "ok", "0", "0", "0", "1", "2"}));
    EXPECT_EQ(counter(r, "pswpout"), 0u);
    EXPECT_EQ(counter(r, "pswpin"), 0u);
    EXPECT_EQ(counter(r, "pgsteal_anon"), 0u);
    EXPECT_EQ(counter(r, "thp_collapse_ok"), 1u);
    EXPECT_EQ(parse_mmr(print_mmr(parse_mmr("mmrace 1\nconfig swap_slots=0\n"))).config.swap_slots, 0u);
}

TEST(Pools, AKeptKernelAppliesEachRunsLimits) {
    const std::string body = R"(
process P0
thread P0.T0
  mmap 0x100000 pages=72 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  madvise 0x100000 pages=2 advice=pageout
  write 0x102000 3
  write 0x140000 4
)";
    auto with = [&](const std::string& limits) {
        return run_text("mmrace 1\nconfig strategy=classic geometry=small" + limits + body);
    };
    RunResult small = with(" folios=1 swap_slots=1 pgtables=3");
    RunResult big = with("");
    RunResult small_again = with(" folios=1 swap_slots=1 pgtables=3");
    for (const auto* r : {&small, &big, &small_again})
        ASSERT_EQ(r->verdict, Verdict::ok) << r->check << ": " << r->message;
    // folios=1: the second write fails; one slot: the first page goes out, which frees
    // the folio for the third write; pgtables=3: no table for 0x140000.
    EXPECT_EQ(results(small), (Results{"0x100000", "ok", "OOM", "0", "ok", "OOM"}));
    EXPECT_EQ(results(big), (Results{"0x100000", "ok", "ok", "0", "ok", "ok"}));
    EXPECT_EQ(results(small_again), results(small));
    EXPECT_EQ(small_again.trace_hash, small.trace_hash);
}

TEST(Pools, StorageIsReusedAcrossRuns) {
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
)";
    struct Seen {
        const Folio* folio = nullptr;
        const PageTable* table = nullptr;
        const anon_vma* av = nullptr;
        const swap_slot* slot = nullptr;
    };
    auto run = [&] {
        Seen s;
        auto r = run_text(text, std::nullopt, [&](Kernel& k, const std::string&, size_t i) {
            if (i != 1) return;
            s.folio = &k.folios[1];
            s.table = &k.tables[0];
            s.av = anon_vma_of(k, 1);
            s.slot = &k.swap.swap_map[0];
        });
        EXPECT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
        return s;
    };
    Seen a = run(), b = run();
    EXPECT_EQ(a.folio, b.folio);
    EXPECT_EQ(a.table, b.table);
    EXPECT_EQ(a.av, b.av);
    EXPECT_EQ(a.slot, b.slot);
}

TEST(Pools, AnonVmaIdsAreNotReusedInARunAndAFreedOneStaysVisible) {
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  munmap 0x100000 pages=1
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 2
)";
    bool checked = false;
    auto r = run_text(text, std::nullopt, [&](Kernel& k, const std::string&, size_t i) {
        if (i != 4) return;
        ASSERT_EQ(k.anon_vmas.size(), 2u);
        EXPECT_FALSE(anon_vma_of(k, 1)->in_use);
        EXPECT_TRUE(anon_vma_of(k, 2)->in_use);
        EXPECT_EQ(anon_vma_of(k, 2)->id, 2u);
        EXPECT_EQ(k.anon_vmas.live(), 1u);
        EXPECT_THROW(anon_vma_of(k, 3), ModelError);
        checked = true;
    });
    EXPECT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_TRUE(checked);

    // Taking a reference on the freed one is a use after free.
    auto uaf = run_text(text, std::nullopt, [](Kernel& k, const std::string&, size_t i) {
        if (i == 2) get_anon_vma(anon_vma_of(k, 1));
    });
    EXPECT_EQ(uaf.verdict, Verdict::violation);
    EXPECT_EQ(uaf.check, Check::use_after_free);
    EXPECT_NE(uaf.message.find("anon_vma 1"), std::string::npos) << uaf.message;
}

TEST(Pools, BadLimitIsAParseErrorNamingKeyLineAndColumn) {
    try {
        parse_mmr("mmrace 1\nconfig geometry=x86 pgtables=1000000\n", "limits.mmr");
        FAIL() << "parsed";
    } catch (const ParseError& e) {
        EXPECT_EQ(e.line(), 2);
        EXPECT_EQ(e.col(), 30);
        EXPECT_EQ(std::string(e.what()),
                  "limits.mmr:2:30: pgtables '1000000' is too large (1 to 262144)");
    }
}

// Which frame a pool hands out decides every later trace: these pin the choice that
// FolioPool, PageTablePool and the swap device made when they kept plain free lists
// (the lowest freed id first) now that they keep a FreeIdTree.

TEST(Pools, AllocReturnsTheLowestFreedPfnWhateverOrderTheyWereFreedIn) {
    FolioPool pool;
    pool.reset(100);
    for (Pfn p = 1; p <= 10; ++p) ASSERT_EQ(pool.alloc(), p);
    for (Pfn p : {7u, 3u, 9u}) pool.put(p);
    EXPECT_EQ(pool.alloc(), 3u);
    EXPECT_EQ(pool.alloc(), 7u);
    EXPECT_EQ(pool.alloc(), 9u);
    EXPECT_EQ(pool.alloc(), 11u);  // then the next never-used pfn
    EXPECT_EQ(pool.high_water(), 12u);
}

TEST(Pools, AllocStopsAtTheLimitUnlessAPfnWasFreed) {
    FolioPool pool;
    pool.reset(3);
    for (Pfn p = 1; p <= 3; ++p) ASSERT_EQ(pool.alloc(), p);
    EXPECT_EQ(pool.alloc(), FolioPool::kNoPfn);
    pool.put(2);
    EXPECT_EQ(pool.alloc(), 2u);
    EXPECT_EQ(pool.alloc(), FolioPool::kNoPfn);
}

TEST(Pools, AllocOrderTakesTheLowestAlignedBlockAfterAMixOfFrees) {
    FolioPool pool;
    pool.reset(64);
    for (Pfn p = 1; p <= 20; ++p) ASSERT_EQ(pool.alloc(), p);
    // [4, 8) all free; [8, 12) is not (8 stays in use).
    for (Pfn p : {11u, 5u, 9u, 7u, 4u, 6u, 10u}) pool.put(p);
    Pfn h = pool.alloc_order(2);
    EXPECT_EQ(h, 4u);
    EXPECT_EQ(pool[4].order, 2u);
    EXPECT_FALSE(pool[4].tail);
    for (Pfn p = 5; p < 8; ++p) EXPECT_TRUE(pool[p].tail && pool[p].head == 4u) << p;
    // Nothing below 20 is a free aligned block of 4 now, but [20, 24) holds 20 (freed)
    // and pfns never handed out.
    pool.put(20);
    EXPECT_EQ(pool.alloc_order(2), 20u);
    EXPECT_EQ(pool.high_water(), 24u);
    // The freed 9, 10, 11 are still the lowest order-0 pfns.
    EXPECT_EQ(pool.alloc(), 9u);
    // Freeing the large folio frees all its pages, lowest first again.
    pool.put(4);
    EXPECT_EQ(pool.alloc_order(1), 4u);
    EXPECT_EQ(pool.alloc(), 6u);
}

TEST(Pools, AllocOrderNeverUsesTheZeroPagesBlockAndRespectsTheLimit) {
    FolioPool pool;
    pool.reset(15);
    EXPECT_EQ(pool.alloc_order(3), 8u);  // [0, 8) holds the zero page: [8, 16) ends at 15
    EXPECT_EQ(pool.alloc_order(2), 4u);  // [4, 8) was skipped, hence free; [0, 4) never
    pool.reset(14);
    EXPECT_EQ(pool.alloc_order(3), FolioPool::kNoPfn);
    EXPECT_EQ(pool.high_water(), 1u);  // and nothing was skipped
    EXPECT_EQ(pool.alloc(), 1u);
}

TEST(Pools, PfnsSkippedByAnAlignedBlockBecomeFree) {
    FolioPool pool;
    pool.reset(64);
    for (Pfn p = 1; p <= 10; ++p) ASSERT_EQ(pool.alloc(), p);
    pool.put(9);
    // [8, 16) holds the used 8: the block is [16, 24), and 11..15 become free.
    EXPECT_EQ(pool.alloc_order(3), 16u);
    EXPECT_EQ(pool.high_water(), 24u);
    EXPECT_EQ(pool.in_use(), 9u + 8u);
    for (Pfn p : {9u, 11u, 12u, 13u, 14u, 15u, 24u}) EXPECT_EQ(pool.alloc(), p);
}

namespace {

// The choices of FolioPool as commit 671d2d4 wrote them, with a set for its list of
// freed pfns: the lowest freed pfn, else the next; the first aligned block (from
// 2^order) whose pages are all freed or never used, trying each in turn.
struct ListFolioPool {
    size_t limit = 0, nr = 1;
    std::set<Pfn> free;
    void reset(size_t l) {
        limit = l;
        nr = 1;
        free.clear();
    }
    Pfn alloc() {
        if (!free.empty()) return free.extract(free.begin()).value();
        return nr <= limit ? static_cast<Pfn>(nr++) : FolioPool::kNoPfn;
    }
    Pfn alloc_order(unsigned order) {
        size_t n = size_t{1} << order, h = n;
        auto all_free = [&](size_t b) {
            for (size_t p = b; p < b + n; ++p)
                if (p < nr && !free.count(static_cast<Pfn>(p))) return false;
            return true;
        };
        while (h + n - 1 <= limit && !all_free(h)) h += n;
        if (h + n - 1 > limit) return FolioPool::kNoPfn;
        for (size_t p = nr; p < h; ++p) free.insert(static_cast<Pfn>(p));
        for (size_t p = h; p < h + n; ++p) free.erase(static_cast<Pfn>(p));
        nr = std::max(nr, h + n);
        return static_cast<Pfn>(h);
    }
    void put(Pfn head, unsigned order) {
        for (size_t i = 0; i < (size_t{1} << order); ++i) free.insert(static_cast<Pfn>(head + i));
    }
};

}  // namespace

TEST(Pools, FolioPoolChoosesAsTheFreeListDidOverRandomAllocsAndFrees) {
    std::mt19937_64 rng(14);
    FolioPool pool;
    ListFolioPool ref;
    std::vector<std::pair<Pfn, unsigned>> live;  // (head, order)
    for (int run = 0; run < 6; ++run) {
        size_t limit = 40 + rng() % 300;
        pool.reset(limit);  // a kept pool, rewound: as run after run
        ref.reset(limit);
        live.clear();
        for (int step = 0; step < 5000; ++step) {
            unsigned dice = rng() % 100;
            if (dice < 45 && !live.empty()) {
                size_t i = rng() % live.size();
                pool.put(live[i].first);
                ref.put(live[i].first, live[i].second);
                live[i] = live.back();
                live.pop_back();
                continue;
            }
            unsigned order = dice < 80 ? 0 : 1 + rng() % 4;
            Pfn got = order ? pool.alloc_order(order) : pool.alloc();
            ASSERT_EQ(got, order ? ref.alloc_order(order) : ref.alloc()) << "run " << run << " step " << step;
            ASSERT_EQ(pool.high_water(), ref.nr) << "run " << run << " step " << step;
            if (got != FolioPool::kNoPfn) live.emplace_back(got, order);
        }
    }
}

TEST(Pools, PageTablesComeBackLowestIdFirst) {
    PageTablePool pool{PtGeometry(Geometry::small)};
    pool.reset(6);
    for (TableId id = 0; id < 5; ++id) ASSERT_EQ(pool.alloc(PTE_LEVEL), id);
    pool.free(3);
    pool.free(1);
    EXPECT_EQ(pool.alloc(PMD_LEVEL), 1u);
    EXPECT_EQ(pool.alloc(PTE_LEVEL), 3u);
    EXPECT_EQ(pool.alloc(PTE_LEVEL), 5u);
    EXPECT_EQ(pool.alloc(PTE_LEVEL), kNoTable);
    pool.free(4);
    pool.free(0);
    pool.free(2);
    EXPECT_EQ(pool.alloc(PTE_LEVEL), 0u);
    pool.reset(6);  // rewound: every id is free again, from 0
    EXPECT_EQ(pool.alloc(PTE_LEVEL), 0u);
    EXPECT_EQ(pool.alloc(PTE_LEVEL), 1u);
}

TEST(Pools, SwapSlotsComeBackLowestSlotFirst) {
    const char* text = R"(mmrace 1
config strategy=classic geometry=small swap_slots=8
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  write 0x103000 4
)";
    bool checked = false;
    auto r = run_text(text, std::nullopt, [&](Kernel& k, const std::string&, size_t i) {
        if (i != 4) return;
        for (Pfn p = 1; p <= 4; ++p) ASSERT_TRUE(k.folios[p].in_use) << p;
        auto slot = [&](Pfn p) {
            EXPECT_TRUE(add_to_swap(k, p));
            return k.folios[p].swap;
        };
        EXPECT_EQ(slot(1), 1u);
        EXPECT_EQ(slot(2), 2u);
        EXPECT_EQ(slot(3), 3u);
        delete_from_swap_cache(k, 2);
        delete_from_swap_cache(k, 1);
        EXPECT_EQ(slot(4), 1u);
        EXPECT_EQ(slot(1), 2u);
        EXPECT_EQ(slot(2), 4u);
        for (Pfn p = 1; p <= 4; ++p) delete_from_swap_cache(k, p);  // as it was
        checked = true;
    });
    EXPECT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_TRUE(checked);
}

TEST(Pools, FreeIdTreeFindsTheLowestFreeAlignedBlock) {
    std::mt19937_64 rng(2);
    FreeIdTree tree;
    std::vector<bool> is_free(3000);
    auto lowest_block = [&](unsigned order) {
        size_t n = size_t{1} << order;
        for (size_t h = 0; h + n <= is_free.size(); h += n) {
            bool all = true;
            for (size_t p = h; p < h + n && all; ++p) all = is_free[p];
            if (all) return h;
        }
        return FreeIdTree::npos;
    };
    for (int round = 0; round < 4; ++round) {
        size_t span = 100 + rng() % 2900;  // ids marked this round; the tree grows
        for (int step = 0; step < 4000; ++step) {
            size_t id = rng() % span;
            bool free = rng() % 3 != 0;
            if (free) tree.set_free(id);
            else tree.set_used(id);
            is_free[id] = free;
            unsigned order = static_cast<unsigned>(rng() % 7);
            ASSERT_EQ(tree.find_free_block(order), lowest_block(order)) << "order " << order;
            ASSERT_EQ(tree.test_free(id), free);
        }
        tree.clear();
        is_free.assign(is_free.size(), false);
        EXPECT_EQ(tree.find_first_free(), FreeIdTree::npos);
    }
}
