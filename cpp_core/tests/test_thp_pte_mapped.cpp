// PTE-mapped large folios (issue 5 item 4, "split back to PTEs where the kernel
// splits them"): fork shares an unpinned THP's huge PMD (copy_huge_pmd); a PMD split
// keeps the folio large (__split_huge_pmd_locked); COW of a shared THP splits only the
// writer's PMD and copies one page; a PTE-mapped THP only this mm maps is reused
// (__wp_can_reuse_large_anon_folio); only reclaim and MADV_PAGEOUT split the folio
// itself (split_folio), and not while it may be pinned.
#include <gtest/gtest.h>

#include <string>

#include "mm/huge_memory.hpp"
#include "mm/rmap.hpp"
#include "test_util.hpp"

using namespace mmrace;
using namespace mmrace::testing;

namespace {

std::string prog(const std::string& body) { return "mmrace 1\nconfig strategy=classic\n" + body; }

mm::PmdRef pmd_at(mm::Kernel& k, uint64_t addr) { return mm::pmd_lookup(k, k.current_mm(), addr); }

}  // namespace

// copy_huge_pmd shares an unpinned THP: one folio, two huge PMDs (entire mapcount 2,
// a reference each), both write-protected, the head no longer PageAnonExclusive.  The
// child reads through its own huge PMD; nothing is split or copied.
TEST(ThpPteMapped, ForkSharesAnUnpinnedThpPmd) {
    std::string text = prog(std::string(kThpProgram) + R"(  fork P1
  read 0x201000
process P1 forked
thread P1.T0
  read 0x201000
  read 0x200000
)");
    mm::Pfn parent = mm::FolioPool::kNoPfn, child = mm::FolioPool::kNoPfn;
    int64_t entire = 0, refcount = 0;
    bool exclusive = true, parent_writable = true, child_writable = true;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 4) {
            parent = huge_pmd_head(k, 0x200000);
            if (parent == mm::FolioPool::kNoPfn) return;
            entire = k.folios[parent].entire_mapcount;
            refcount = k.folios[parent].refcount;
            exclusive = mm::PageAnonExclusive(k.folios, parent);
            parent_writable = mm::pte_write(mm::pmd_entry(k, pmd_at(k, 0x200000)));
        }
        if (t == "P1.T0" && i == 0) {
            child = huge_pmd_head(k, 0x200000);
            if (child != mm::FolioPool::kNoPfn) child_writable = mm::pte_write(mm::pmd_entry(k, pmd_at(k, 0x200000)));
        }
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    EXPECT_EQ(std::vector<std::string>(v.begin() + 4, v.end()), (std::vector<std::string>{"P1", "2", "2", "1"}));
    ASSERT_NE(parent, mm::FolioPool::kNoPfn);
    EXPECT_EQ(child, parent);
    EXPECT_EQ(entire, 2);
    EXPECT_EQ(refcount, 2);
    EXPECT_FALSE(exclusive);
    EXPECT_FALSE(parent_writable);
    EXPECT_FALSE(child_writable);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
    EXPECT_EQ(counter(r, "cow_copy"), 0u);
}

// A write to a THP both processes map (in either order, under random schedules):
// the writer's huge PMD is split, the folio stays large, and one page is copied while
// the other still maps it.  Results never depend on the order, and the folio is never
// split into small folios.
TEST(ThpPteMapped, CowOfASharedThpSplitsOnlyTheWritersPmd) {
    std::string text = prog(std::string(kThpProgram) + R"(  fork P1
  write 0x202000 5
  read 0x201000
  read 0x202000
process P1 forked
thread P1.T0
  write 0x201000 20
  read 0x201000
  read 0x200000
  read 0x202000
)");
    int copied = 0;
    for (uint64_t seed = 0; seed < 80; ++seed) {
        RunOptions o;
        o.schedule = random_schedule(seed);
        o.check_quiescent = true;
        RunResult r = run_program(parse_mmr(text), o);
        ASSERT_EQ(r.verdict, Verdict::ok) << seed << ": " << r.check << ": " << r.message;
        auto v = results(r);
        EXPECT_EQ(std::vector<std::string>(v.begin() + 4, v.end()),
                  (std::vector<std::string>{"P1", "ok", "2", "5", "ok", "20", "1", "0"}))
            << seed;
        EXPECT_EQ(counter(r, "thp_split_page"), 0u) << seed;
        EXPECT_GE(counter(r, "thp_split_pmd"), 1u) << seed;
        copied += counter(r, "cow_copy") > 0;
    }
    EXPECT_GT(copied, 40);
}

// The parent exits first (the default schedule runs it to its end); the child then
// splits its PMD with an mprotect and writes: the large folio only its mm maps, with
// as many references as mappings, is reused in place (6.15's
// __wp_can_reuse_large_anon_folio), not copied.
TEST(ThpPteMapped, APteMappedThpOnlyThisMmMapsIsReused) {
    std::string text = prog(std::string(kThpProgram) + R"(  fork P1
process P1 forked
thread P1.T0
  mprotect 0x200000 pages=1 prot=r
  mprotect 0x200000 pages=1 prot=rw
  write 0x201000 20
  read 0x200000
)");
    mm::Pfn head = mm::FolioPool::kNoPfn, page1 = mm::FolioPool::kNoPfn;
    bool writable = false, shared = true;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 3) head = huge_pmd_head(k, 0x200000);
        if (t == "P1.T0" && i == 1) shared = mm::folio_maybe_mapped_shared(k.folios, head);
        if (t == "P1.T0" && i == 2) {
            page1 = mm::pte_pfn(pte_of(k, 0x201000));
            writable = mm::pte_write(pte_of(k, 0x201000));
        }
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    ASSERT_NE(head, mm::FolioPool::kNoPfn);
    EXPECT_FALSE(shared);
    EXPECT_EQ(page1, head + 1);  // the same page, now writable
    EXPECT_TRUE(writable);
    EXPECT_EQ(counter(r, "cow_copy"), 0u);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 1u);
    EXPECT_EQ(results(r).back(), "1");
}

// CONFIG_MM_ID's two slots: a third mm mapping the folio is not tracked.  Once the two
// tracked mms have exited, the third maps it alone but the folio still counts as maybe
// shared (as upstream), so its write copies the page instead of reusing it.
TEST(ThpPteMapped, AThirdMmIsNotTrackedAndKeepsTheFolioShared) {
    std::string text = prog(std::string(kThpProgram) + R"(  mprotect 0x207000 pages=1 prot=r
  fork P1
  fork P2
process P1 forked
thread P1.T0
  read 0x200000
process P2 forked
thread P2.T0
  read 0x200000
  write 0x201000 20
  read 0x201000
)");
    bool shared_alone = false;
    int64_t mapcount = 0, refcount = 0;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t != "P2.T0" || i != 0) return;
        mm::Pfn head = mm::page_folio(k.folios, mm::pte_pfn(pte_of(k, 0x201000)));
        shared_alone = mm::folio_maybe_mapped_shared(k.folios, head);
        mapcount = k.folios[head].mapcount, refcount = k.folios[head].refcount;
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(mapcount, 8);  // P0 and P1 are gone: only P2's PTEs map it
    EXPECT_EQ(refcount, 8);
    EXPECT_TRUE(shared_alone);
    EXPECT_EQ(counter(r, "cow_copy"), 1u);
    EXPECT_EQ(results(r).back(), "20");
}

// MADV_PAGEOUT of a PTE-mapped THP: the whole folio is isolated and reclaim splits it
// (split_folio_to_list: no THP swap-out here) before swapping its pages out; a part of
// one is split by madvise itself.  The contents come back from swap.
TEST(ThpPteMapped, PageoutSplitsAPteMappedThp) {
    for (const char* range : {"0x200000 pages=8", "0x203000 pages=2"}) {
        std::string text = prog(std::string(kThpProgram) + R"(  mprotect 0x207000 pages=1 prot=r
  madvise )" + range + R"( advice=pageout
  read 0x200000
  read 0x201000
)");
        RunOptions o;
        o.check_quiescent = true;
        RunResult r = run_program(parse_mmr(text), o);
        ASSERT_EQ(r.verdict, Verdict::ok) << range << ": " << r.check << ": " << r.message;
        auto v = results(r);
        EXPECT_EQ(std::vector<std::string>(v.end() - 2, v.end()), (std::vector<std::string>{"1", "2"})) << range;
        EXPECT_EQ(counter(r, "thp_split_pmd"), 1u) << range;
        EXPECT_EQ(counter(r, "thp_split_page"), 1u) << range;
        EXPECT_GE(counter(r, "pswpout"), 1u) << range;
    }
}

// A pinned PTE-mapped THP cannot be split (can_split_folio) nor swapped: pageout
// leaves it whole and mapped, and the device still sees the page.
TEST(ThpPteMapped, APinnedThpIsNotSplit) {
    std::string text = prog(std::string(kThpProgram) + R"(  pin 0x201000 pages=1
  mprotect 0x207000 pages=1 prot=r
  madvise 0x200000 pages=8 advice=pageout
  madvise 0x203000 pages=2 advice=pageout
  dma_read H0 0
  unpin H0
)");
    RunOptions o;
    o.check_quiescent = true;
    RunResult r = run_program(parse_mmr(text), o);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r)[8], "2");
    EXPECT_EQ(counter(r, "thp_split_page"), 0u);
    EXPECT_EQ(counter(r, "pswpout"), 0u);
}

// MADV_COLLAPSE of a PTE-mapped THP copies it into a new THP; the old large folio goes
// once its last PTE does (the leak check at the end finds nothing).
TEST(ThpPteMapped, CollapseReplacesAPteMappedThp) {
    std::string text = prog(std::string(kThpProgram) + R"(  mprotect 0x207000 pages=1 prot=r
  mprotect 0x207000 pages=1 prot=rw
  madvise 0x200000 pages=8 advice=collapse
  read 0x200000
  read 0x201000
)");
    mm::Pfn before = mm::FolioPool::kNoPfn, after = mm::FolioPool::kNoPfn;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 3) before = huge_pmd_head(k, 0x200000);
        if (i == 6) after = huge_pmd_head(k, 0x200000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    EXPECT_EQ(std::vector<std::string>(v.end() - 3, v.end()), (std::vector<std::string>{"0", "1", "2"}));
    ASSERT_NE(after, mm::FolioPool::kNoPfn);
    EXPECT_NE(after, before);
    EXPECT_EQ(counter(r, "thp_collapse_ok"), 1u);
}
