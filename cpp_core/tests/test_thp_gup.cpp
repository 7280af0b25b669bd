// GUP on a whole THP (issue 5): follow_huge_pmd and gup_fast_pmd_leaf grab a huge PMD's
// pages without splitting it, pins count the large-folio way (one reference and one
// _pincount each), and every later split, fork, unmap and unpin keeps them.
#include <gtest/gtest.h>

#include <string>

#include "gup/gup.hpp"
#include "mm/huge_memory.hpp"
#include "test_util.hpp"

using namespace mmrace;
using namespace mmrace::testing;

namespace {

std::string prog(const std::string& config, const std::string& body) {
    return "mmrace 1\nconfig " + config + "\n" + body;
}

struct ThpState {
    mm::Pfn head = mm::FolioPool::kNoPfn;
    int64_t refcount = 0, pincount = 0;
    bool maybe_pinned_tail7 = false;
};

ThpState thp_state(mm::Kernel& k, uint64_t addr) {
    ThpState s;
    s.head = huge_pmd_head(k, addr);
    if (s.head == mm::FolioPool::kNoPfn) return s;
    const mm::Folio& f = k.folios[s.head];
    s.refcount = f.refcount;
    s.pincount = f.pincount;
    s.maybe_pinned_tail7 = gup::folio_maybe_dma_pinned(k, s.head + 7);
    return s;
}

}  // namespace

// try_grab_folio on a large folio: a pin is one reference and one _pincount, the PMD
// stays huge, folio_maybe_dma_pinned holds for every page, and GUP grabs the page the
// address names (slow path, then gup_fast_pmd_leaf).
TEST(ThpGup, PinHoldsTheThpWholeAndCountsInPincount) {
    for (const char* fast : {"", ",fast"}) {
        std::string text = prog("strategy=classic", std::string(kThpProgram) +
                                                         "  pin 0x201000 pages=2 flags=write" + fast + R"(
  dma_read H0 0
  dma_write H0 4096 9
  read 0x202000
  unpin H0
  pin 0x200000 pages=8)" + std::string(*fast ? " flags=fast" : "") + R"(
  dma_read H1 4096
  unpin H1
)");
        ThpState pinned, unpinned, all;
        RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
            if (i == 4) pinned = thp_state(k, 0x200000);
            if (i == 8) unpinned = thp_state(k, 0x200000);
            if (i == 9) all = thp_state(k, 0x200000);
        });
        ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "H0", "2", "ok", "9",
                                                        "0", "H1", "2", "0"}));
        ASSERT_NE(pinned.head, mm::FolioPool::kNoPfn) << "GUP split the huge PMD";
        EXPECT_EQ(pinned.pincount, 2);
        EXPECT_EQ(pinned.refcount, 3);  // the PMD mapping + one per pin, no bias
        EXPECT_TRUE(pinned.maybe_pinned_tail7);  // folio-wide
        EXPECT_EQ(unpinned.refcount, 1);
        EXPECT_EQ(unpinned.pincount, 0);
        EXPECT_FALSE(unpinned.maybe_pinned_tail7);
        EXPECT_EQ(all.pincount, 8);
        EXPECT_EQ(all.refcount, 9);
        EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
    }
}

// FOLL_GET on a THP (get_user_pages, then put_page): references on the head, through
// each page, all returned; no split.  FOLL_FORCE writes through a R/O huge PMD of a
// private mapping to its exclusive page (can_follow_write_pmd), without a fault.
TEST(ThpGup, GupGetAndForceWriteOnAHugePmd) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  gup 0x200000 pages=16
  gup 0x203000 pages=3 flags=write,unlocked
  mprotect 0x200000 pages=8 prot=r
  poke 0x201008 7
  read 0x201008
  peek 0x201000
)");
    ThpState after;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 9) after = thp_state(k, 0x200000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "16", "3", "0", "ok",
                                                    "7", "2"}));
    ASSERT_NE(after.head, mm::FolioPool::kNoPfn);
    EXPECT_EQ(after.refcount, 1);  // every GUP reference returned
    EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
    EXPECT_EQ(counter(r, "thp_fault_alloc"), 2u);
}

// A PMD split of a pinned THP (partial munmap, mprotect, DONTNEED, an mremap to an
// address off the PMD boundary) keeps the
// folio large (__split_huge_pmd_locked): its pins stay in _pincount, each PTE holds a
// reference.  Pageout of the whole PMD isolates the folio, and reclaim keeps it: it
// may be pinned (no split, no swap).  The unpin then finds the pins where they were.
TEST(ThpGup, PmdSplitKeepsAPinnedThpWhole) {
    for (const char* change : {"munmap 0x203000 pages=1", "mprotect 0x200000 pages=1 prot=r",
                               "madvise 0x204000 pages=2 advice=dontneed",
                               "mremap 0x200000 pages=8 new_pages=8 flags=maymove,fixed to=0x241000",
                               "madvise 0x200000 pages=8 advice=pageout"}) {
        std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  pin 0x201000 pages=2 flags=write
  )" + change + R"(
  dma_write H0 0 5
  dma_read H0 4096
  unpin H0
)");
        mm::Pfn head = mm::FolioPool::kNoPfn;
        int64_t order = -1, pincount = -1, extra = -1, extra_after = -1;
        RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
            if (i == 4) head = huge_pmd_head(k, 0x200000);
            if (head == mm::FolioPool::kNoPfn) return;
            const mm::Folio& f = k.folios[head];
            if (i == 5) order = f.order, pincount = f.pincount, extra = f.refcount - f.mapcount;
            if (i == 8) extra_after = f.refcount - f.mapcount;
        });
        ASSERT_EQ(r.verdict, Verdict::ok) << change << ": " << r.check << ": " << r.message;
        EXPECT_EQ(results(r).back(), "0") << change;
        ASSERT_NE(head, mm::FolioPool::kNoPfn);
        EXPECT_EQ(order, 3) << change;
        EXPECT_EQ(pincount, 2) << change;
        EXPECT_EQ(extra, 2) << change;  // a reference per pin, no bias
        EXPECT_EQ(extra_after, 0) << change;
        bool pageout = std::string(change).find("pageout") != std::string::npos;
        EXPECT_EQ(counter(r, "thp_split_pmd_pinned"), pageout ? 0u : 1u) << change;
        EXPECT_EQ(counter(r, "thp_split_page"), 0u) << change;
    }
}

// A whole munmap of a pinned THP zaps the huge PMD without splitting: the folio lives
// on with its pins as its only references, the device still reads and writes it, and
// the last unpin frees it (the leak check passes).
TEST(ThpGup, UnmappedPinnedThpLivesUntilTheLastUnpin) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  pin 0x201000 pages=1 flags=write,fast
  pin 0x207000 pages=1
  munmap 0x200000 pages=8
  dma_read H0 0
  dma_write H0 8 3
  unpin H0
  dma_read H1 0
  unpin H1
)");
    int64_t refs_unmapped = -1;
    mm::Pfn head = mm::FolioPool::kNoPfn;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 5) head = huge_pmd_head(k, 0x200000);
        if (i == 6) refs_unmapped = k.folios[head].refcount;
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(refs_unmapped, 2);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "H0", "H1", "0", "2", "ok",
                                                    "0", "0", "0"}));
    EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
}

// copy_huge_pmd: folio_try_dup_anon_rmap_pmd fails for a maybe-pinned THP; upstream the
// split folio stays one pinned large folio, so copy_present_ptes copies every
// exclusive page of it for the child, and the parent's PTEs all stay writable.
TEST(ThpGup, ForkCopiesEveryPageOfAPinnedThp) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  pin 0x201000 pages=1
  fork P1
  write 0x207000 4
  read 0x207000
process P1 forked
thread P1.T0
  read 0x207000
  read 0x201000
)");
    int writable = 0;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 5)
            for (uint64_t a = 0x200000; a < 0x208000; a += 0x1000) writable += mm::pte_write(pte_of(k, a));
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(writable, 8);
    EXPECT_EQ(counter(r, "thp_split_pmd_pinned"), 1u);
    EXPECT_EQ(counter(r, "pgalloc_anon"), 8u);  // copy_present_page, once per page
    auto v = results(r);
    EXPECT_EQ(std::vector<std::string>(v.begin() + 5, v.end()),
              (std::vector<std::string>{"P1", "ok", "4", "0", "2"}));
}

// khugepaged / MADV_COLLAPSE refuse a range with a pinned page (is_refcount_suitable:
// SCAN_PAGE_COUNT, EAGAIN); after the unpin the collapse goes through.
TEST(ThpGup, CollapseRefusesPinnedPages) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  pin 0x201000 pages=1 flags=write
  mprotect 0x201000 pages=1 prot=r
  mprotect 0x201000 pages=1 prot=rw
  madvise 0x200000 pages=8 advice=collapse
  unpin H0
  madvise 0x200000 pages=8 advice=collapse
  read 0x201000
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    EXPECT_EQ(std::vector<std::string>(v.begin() + 4, v.end()),
              (std::vector<std::string>{"H0", "0", "0", "EAGAIN", "0", "0", "2"}));
    EXPECT_EQ(counter(r, "thp_collapse_ok"), 1u);
}

// The folio accounting knows a large folio's pins and mappings: a pin lost from
// _pincount, or a PMD mapping counted as a PTE mapping of a page, is a violation.
TEST(ThpGup, AccountingCatchesALostOrMisplacedThpPin) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  pin 0x201000 pages=1
  read 0x200000
  unpin H0
)");
    for (int which : {0, 1}) {
        TestRunOptions o;
        o.check_quiescent = true;
        o.after_op = [&](mm::Kernel& k, const std::string&, size_t i) {
            if (i != 4) return;
            mm::Pfn head = huge_pmd_head(k, 0x200000);
            if (which == 0) {
                --k.folios[head].pincount;
            } else {
                --k.folios[head].entire_mapcount;
                ++k.folios[head + 1].page_mapcount;
            }
        };
        RunResult r = run_program(parse_mmr(text), o);
        EXPECT_EQ(r.verdict, Verdict::violation) << which;
        EXPECT_EQ(r.check, Check::folio_accounting) << r.message;
    }
}

// Racing: one thread pins a tail page of the THP (slow or fast, R/O or R/W), reads it
// through the device and unpins, while another splits it (partial munmap, mprotect,
// DONTNEED, mremap), forks or unmaps it whole.  Every schedule ends ok: no pin lost or
// doubled (folio accounting at every quiescent point, leak check), and the device
// reads the page's content.
TEST(ThpGup, PinRacesSplitForkAndMunmapUnderEveryStrategy) {
    const char* changes[] = {"munmap 0x203000 pages=1", "mprotect 0x200000 pages=2 prot=r",
                             "madvise 0x204000 pages=2 advice=dontneed",
                             "mremap 0x200000 pages=8 new_pages=8 flags=maymove,fixed to=0x241000",
                             "fork P1", "munmap 0x200000 pages=8"};
    int runs = 0;
    for (const char* strat : {"classic", "spf", "pervma"})
        for (const char* flags : {"", "flags=fast", "flags=write", "flags=write,fast"})
            for (const char* change : changes) {
                std::string body = R"(process P0
thread P0.T0
  mmap 0x200000 pages=16 prot=rw flags=private,anon,fixed
  madvise 0x200000 pages=16 advice=hugepage
  write 0x200000 1
  write 0x201000 2
  pin 0x201000 pages=2 )" + std::string(flags) + R"(
  dma_read H0 0
  unpin H0
thread P0.T1
  read 0x200000
  )" + change + "\n";
                if (std::string(change) == "fork P1") body += "process P1 forked\nthread P1.T0\n  read 0x201000\n";
                Program p = parse_mmr(prog(std::string("strategy=") + strat, body));
                for (int seed = 0; seed < 8; ++seed) {
                    RunOptions o;
                    o.schedule = seed < 4 ? random_schedule(seed) : pct_schedule(seed);
                    o.check_quiescent = true;
                    o.trace = false;
                    RunResult r = run_program(p, o);
                    ++runs;
                    ASSERT_EQ(r.verdict, Verdict::ok) << strat << " " << flags << " " << change << " seed " << seed
                                               << ": " << r.check << ": " << r.message;
                    // The pin either got the THP's page 1 or failed (EFAULT once
                    // unmapped; the dma then finds no handle).
                    // A write the change beat (SIGSEGV) left page 1 zero.
                    std::string wrote = r.ops[3].result.value_or("-");
                    std::string pin = r.ops[4].result.value_or("-");
                    std::string dma = r.ops[5].result.value_or("-");
                    if (pin == "H0") EXPECT_EQ(dma, wrote == "ok" ? "2" : "0") << change;
                    else EXPECT_EQ(dma, "EINVAL") << change;
                }
            }
    EXPECT_EQ(runs, 3 * 4 * 6 * 8);
}

// GUP of two pages of a THP takes the first through follow_huge_pmd and the second with
// page_increm, after the PMD lock was dropped: a pageout of the second page in between
// splits the THP (in the model, the folio too) and frees that page, which the reference
// on the first does not keep.  page_increm then takes only the page it followed
// (soak pervma pct seed 17556: folio_put on a freed page; 5 of these 4000 schedules).
TEST(ThpGup, GupOfTwoThpPagesRacesAPageoutOfTheSecond) {
    Program p = parse_mmr(prog("strategy=classic", R"(process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  madvise 0x100000 pages=8 advice=hugepage
  gup 0x100000 pages=2 flags=write
  gup 0x100000 pages=2 flags=write
thread P0.T1
  madvise 0x101000 pages=1 advice=pageout
  read 0x101000
  madvise 0x101000 pages=1 advice=pageout
)"));
    for (int seed = 0; seed < 4000; ++seed) {
        RunOptions o;
        o.schedule = seed < 2000 ? random_schedule(seed) : pct_schedule(seed - 2000);
        o.trace = false;
        RunResult r = run_program(p, o);
        ASSERT_EQ(r.verdict, Verdict::ok) << "seed " << seed << ": " << r.check << ": " << r.message;
        EXPECT_EQ(r.ops[2].result.value_or("-"), "2");
    }
}
