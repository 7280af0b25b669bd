// Page-cache THPs mapped as Linux maps them (mm/file_thp.hpp): a shmem THP made by
// MADV_COLLAPSE (collapse_file) stays large; finish_fault maps it with one huge PMD
// (do_set_pmd) or, where the VMA cannot hold the PMD, with PTEs (per-page mapcounts);
// a file PMD is cleared on split; split_folio makes order-0 folios of it for truncate,
// MADV_PAGEOUT and reclaim, and not while it is pinned.  Small geometry: a PMD maps 8
// pages (0x8000 bytes).
#include <gtest/gtest.h>

#include <string>

#include "mm/filemap.hpp"
#include "mm/huge_memory.hpp"
#include "mm/rmap.hpp"
#include "test_util.hpp"

using namespace mmrace;
using namespace mmrace::testing;

namespace {

std::string prog(const std::string& config, const std::string& body) {
    return "mmrace 1\nconfig " + config + "\n" + body;
}

// A shmem VMA over the PMD range at 0x100000, pages 0, 3 and 7 written, then
// collapsed (ops 0-4 of P0.T0): MADV_COLLAPSE maps the THP with a huge PMD.
const char* kCollapsed = R"(process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=shared,anon,fixed
  write 0x100000 1
  write 0x103008 3
  write 0x107ff8 7
  madvise 0x100000 pages=8 advice=collapse
)";

constexpr mm::Pfn kNone = mm::FolioPool::kNoPfn;

// The folio mapped at addr in the current mm (by a huge PMD or a PTE), or kNone.
mm::Pfn folio_at(mm::Kernel& k, uint64_t addr) {
    mm::Pfn h = huge_pmd_head(k, addr);
    if (h != kNone) return h;
    mm::TableId t = mm::pte_table_lookup(k, k.current_mm(), addr);
    if (t == mm::kNoTable) return kNone;
    mm::pte_t pte = k.tables[t].entries[k.geo.index(addr, mm::PTE_LEVEL)];
    if (!mm::pte_present(pte)) return kNone;
    return mm::page_folio(k.folios, mm::pte_pfn(pte));
}

// The cached folio holding page `index` of the last file (the shmem object).
mm::Pfn cached(mm::Kernel& k, uint64_t index) {
    auto& f = *k.files.back();
    auto it = f.i_pages.find(index);
    return it == f.i_pages.end() ? kNone : mm::page_folio(k.folios, it->second);
}

struct FolioState {
    mm::Pfn head = kNone;
    unsigned order = 0;
    int64_t refcount = 0, mapcount = 0, entire = 0;
};

FolioState state_of(mm::Kernel& k, mm::Pfn head) {
    if (head == kNone) return {};
    const mm::Folio& f = k.folios[head];
    return {head, f.order, f.refcount, f.mapcount, f.entire_mapcount};
}

int sweep_bad(const std::string& text, int runs, RunResult* first) {
    Program p = parse_mmr(text);
    int bad = 0;
    for (int i = 0; i < 2 * runs; ++i) {
        RunOptions o;
        o.schedule = i < runs ? random_schedule(i) : pct_schedule(i);
        o.trace = false;
        o.check_quiescent = true;
        RunResult r = run_program(p, o);
        if (r.verdict != Verdict::ok && bad++ == 0) *first = r;
    }
    return bad;
}

}  // namespace

// After MADV_COLLAPSE, MADV_DONTNEED zaps the huge PMD; the next read fault maps the
// still-large folio with one huge PMD again: entire mapcount 1, a reference per page
// for the page cache and one for the mapping.
TEST(FileThpMap, ReadFaultMapsTheThpWithOnePmd) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  madvise 0x100000 pages=8 advice=dontneed
  read 0x103008
  read 0x107ff8
)");
    FolioState collapsed, zapped, faulted;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 4) collapsed = state_of(k, huge_pmd_head(k, 0x100000));
        if (i == 5) zapped = state_of(k, cached(k, 0));
        if (i == 6) faulted = state_of(k, huge_pmd_head(k, 0x100000));
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0", "0", "3", "7"}));
    ASSERT_NE(collapsed.head, kNone);  // collapse_pte_mapped_thp installed the PMD
    EXPECT_EQ(zapped.head, collapsed.head);
    EXPECT_EQ(zapped.refcount, 8);  // the page cache only
    EXPECT_EQ(zapped.mapcount, 0);
    ASSERT_EQ(faulted.head, collapsed.head);
    EXPECT_EQ(faulted.order, 3u);
    EXPECT_EQ(faulted.entire, 1);
    EXPECT_EQ(faulted.mapcount, 1);
    EXPECT_EQ(faulted.refcount, 8 + 1);
    EXPECT_EQ(counter(r, "thp_split_page"), 0u);
}

// A VMA that no longer covers the aligned range (munmap of its last page) cannot hold
// the PMD: the fault maps the page with a PTE, the folio stays large, only that page's
// mapcount counts it.  With VM_NOHUGEPAGE (vma_thp_disabled) in a VMA that does cover
// it, the fault maps the whole folio with PTEs (finish_fault, 6.11+).
TEST(FileThpMap, WhereNoPmdFitsPtesMapIt) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  munmap 0x107000 pages=1
  read 0x103008
  write 0x101000 11
  mmap 0x200000 pages=8 prot=rw flags=shared,anon,fixed
  write 0x200000 1
  madvise 0x200000 pages=8 advice=collapse
  madvise 0x200000 pages=8 advice=nohugepage
  madvise 0x200000 pages=8 advice=dontneed
  read 0x202000
)");
    FolioState partial, whole;
    int64_t page3 = -1, page0 = -1, page1 = -1;
    bool huge_partial = true, huge_whole = true;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 7) {
            huge_partial = huge_pmd_head(k, 0x100000) != kNone;
            partial = state_of(k, folio_at(k, 0x103000));
            if (partial.head != kNone) {
                page0 = k.folios[partial.head].page_mapcount;
                page1 = k.folios[partial.head + 1].page_mapcount;
                page3 = k.folios[partial.head + 3].page_mapcount;
            }
        }
        if (i == 13) {
            huge_whole = huge_pmd_head(k, 0x200000) != kNone;
            whole = state_of(k, folio_at(k, 0x202000));
        }
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    EXPECT_EQ(v[6], "3");
    EXPECT_FALSE(huge_partial);
    ASSERT_NE(partial.head, kNone);
    EXPECT_EQ(partial.order, 3u);
    EXPECT_EQ(page3, 1);
    EXPECT_EQ(page1, 1);
    EXPECT_EQ(page0, 0);
    EXPECT_EQ(partial.mapcount, 2);
    EXPECT_EQ(partial.refcount, 8 + 2);
    EXPECT_FALSE(huge_whole);
    ASSERT_NE(whole.head, kNone);
    EXPECT_EQ(whole.order, 3u);
    EXPECT_EQ(whole.entire, 0);
    EXPECT_EQ(whole.mapcount, 8);
    EXPECT_EQ(whole.refcount, 8 + 8);
    EXPECT_EQ(counter(r, "thp_split_page"), 0u);
}

// A fault whose folio's other PTEs are already set maps its page alone instead of
// retrying the whole folio forever (soak workload seed 7050, classic: budget; the
// fix upstream is "mm: fix finish_fault() handling for large folios").
TEST(FileThpMap, APartlyMappedFolioMapsTheFaultingPage) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  madvise 0x100000 pages=8 advice=nohugepage
  madvise 0x100000 pages=8 advice=dontneed
  read 0x101000
  madvise 0x103000 pages=1 advice=dontneed
  read 0x103008
)");
    FolioState s;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 9) s = state_of(k, folio_at(k, 0x103000));
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r).back(), "3");
    EXPECT_EQ(s.order, 3u);
    EXPECT_EQ(s.mapcount, 8);
    EXPECT_EQ(s.refcount, 8 + 8);
}

// fork does not copy a file huge PMD (copy_huge_pmd: the child refaults); the child's
// read maps the same folio with its own PMD, its write finds it read-only, clears it
// and refaults it writable, into the one shmem object.
TEST(FileThpMap, ForkThenTheChildFaults) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  fork P1
  read 0x102000
process P1 forked
thread P1.T0
  read 0x107ff8
  write 0x102000 22
  read 0x100000
  read 0x102000
)");
    FolioState parent, child_read, child_write;
    bool child_writable = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 4) parent = state_of(k, huge_pmd_head(k, 0x100000));
        if (t == "P1.T0" && i == 0) child_read = state_of(k, huge_pmd_head(k, 0x100000));
        if (t == "P1.T0" && i == 1) {
            child_write = state_of(k, huge_pmd_head(k, 0x100000));
            mm::PmdRef pmd = mm::pmd_lookup(k, k.current_mm(), 0x100000);
            child_writable = pmd && mm::pte_write(mm::pmd_entry(k, pmd));
        }
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r),
              (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0", "P1", "0", "7", "ok", "1", "22"}));
    ASSERT_NE(parent.head, kNone);
    EXPECT_EQ(child_read.head, parent.head);
    EXPECT_EQ(child_read.refcount, 8 + child_read.entire);  // a reference per PMD
    EXPECT_EQ(child_write.head, parent.head);
    EXPECT_TRUE(child_writable);
    EXPECT_EQ(counter(r, "thp_split_page"), 0u);
}

// mprotect changes a file huge PMD in place (change_huge_pmd): read-only, PROT_NONE,
// back to read-write (still read-only until a write refaults it writable).
TEST(FileThpMap, MprotectOverIt) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  mprotect 0x100000 pages=8 prot=r
  write 0x100000 5
  read 0x103008
  mprotect 0x100000 pages=8 prot=none
  read 0x100000
  mprotect 0x100000 pages=8 prot=rw
  write 0x100000 5
  read 0x100000
)");
    bool huge_ro = false, huge_none = false, huge_rw = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 5) huge_ro = huge_pmd_head(k, 0x100000) != kNone;
        if (i == 8) huge_none = huge_pmd_head(k, 0x100000) != kNone;
        if (i == 11) huge_rw = huge_pmd_head(k, 0x100000) != kNone;
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0", "0", "SIGSEGV", "3", "0",
                                                    "SIGSEGV", "0", "ok", "5"}));
    EXPECT_TRUE(huge_ro);
    EXPECT_TRUE(huge_none);
    EXPECT_TRUE(huge_rw);
    EXPECT_EQ(counter(r, "thp_split_page"), 0u);
}

// munmap of part of it clears the PMD (vma_adjust_trans_huge); munmap of the rest is
// the last mapping: the THP goes whole with the shmem object, no leak.
TEST(FileThpMap, MunmapZapsIt) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  munmap 0x100000 pages=2
  read 0x107ff8
  munmap 0x102000 pages=6
  read 0x107ff8
)");
    FolioState after_part;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 6) after_part = state_of(k, folio_at(k, 0x107000));
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0", "0", "7", "0", "SIGSEGV"}));
    EXPECT_EQ(after_part.order, 3u);
    EXPECT_EQ(after_part.entire, 0);
    EXPECT_EQ(counter(r, "thp_split_page"), 0u);
}

// MADV_PAGEOUT of the whole PMD range isolates the THP and reclaim splits it
// (shmem_writeout); the pages stay in the page cache, the data survives.  A pin of one
// page keeps it whole (can_split_folio) until unpinned.
TEST(FileThpMap, PageoutSplitsItUnlessPinned) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  pin 0x103000 pages=1
  madvise 0x100000 pages=8 advice=pageout
  read 0x103008
  unpin H0
  madvise 0x100000 pages=8 advice=pageout
  read 0x103008
  read 0x107ff8
)");
    FolioState pinned, split;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 6) pinned = state_of(k, cached(k, 3));
        if (i == 9) split = state_of(k, cached(k, 3));
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r),
              (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0", "H0", "0", "3", "0", "0", "3", "7"}));
    EXPECT_EQ(pinned.order, 3u);
    EXPECT_EQ(split.order, 0u);
    EXPECT_EQ(counter(r, "thp_split_page"), 1u);
}

// A partial MADV_PAGEOUT of a PTE-mapped file THP splits it (split_folio with the
// pages still mapped by PTEs, under i_mmap_rwsem).
TEST(FileThpMap, PartialPageoutSplitsAPteMappedThp) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  madvise 0x100000 pages=8 advice=nohugepage
  madvise 0x100000 pages=8 advice=dontneed
  read 0x101000
  madvise 0x100000 pages=2 advice=pageout
  read 0x103008
)");
    FolioState before, after;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 7) before = state_of(k, folio_at(k, 0x103000));
        if (i == 8) after = state_of(k, folio_at(k, 0x103000));
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r).back(), "3");
    EXPECT_EQ(before.order, 3u);
    EXPECT_EQ(before.mapcount, 8);
    EXPECT_EQ(after.order, 0u);
    EXPECT_EQ(after.mapcount, 1);  // still mapped by its PTE
    EXPECT_EQ(after.refcount, 2);  // the PTE and the page cache
    EXPECT_EQ(counter(r, "thp_split_page"), 1u);
}

// Truncating the shmem object while the THP is mapped: across it, the PMD is cleared
// and the folio split, its pages past the end dropped; to zero, it goes whole.  A pinned
// THP cannot split: it stays whole, zeroed past the end, and is not mapped past it.
TEST(FileThpMap, TruncateWhileMapped) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  read 0x100000
  read 0x103008
  read 0x105000
  read 0x100000
  mmap 0x200000 pages=8 prot=rw flags=shared,anon,fixed
  write 0x207000 9
  madvise 0x200000 pages=8 advice=collapse
  pin 0x201000 pages=1
  read 0x201000
  read 0x207000
  unpin H0
)");
    FolioState part, second_pinned;
    size_t cached_after_part = 0, cached_after_all = 99;
    TestRunOptions o;
    o.check_semantics = false;  // the reference model knows no truncate of shmem
    o.after_op = [&](mm::Kernel& k, const std::string&, size_t i) {
        auto& f0 = *k.files[0];
        if (i == 5) {
            mm::do_truncate(k, f0, 4);  // across the THP
            part = state_of(k, cached(k, 0));
            cached_after_part = f0.i_pages.size();
        }
        if (i == 6) mm::do_truncate(k, f0, 0);  // all of it, page 0 still mapped
        if (i == 7) cached_after_all = f0.i_pages.size();
        if (i == 12) {
            mm::do_truncate(k, *k.files[1], 4);  // pinned: the split fails
            second_pinned = state_of(k, cached(k, 0));
        }
    };
    RunResult r = run_program(parse_mmr(text), o);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0", "1", "3", "SIGBUS",
                                                    "SIGBUS", "0x200000", "ok", "0", "H0", "0", "SIGBUS", "0"}));
    EXPECT_EQ(part.order, 0u);
    EXPECT_EQ(cached_after_part, 4u);
    EXPECT_EQ(cached_after_all, 0u);
    EXPECT_EQ(second_pinned.order, 3u);
    EXPECT_EQ(counter(r, "thp_split_page"), 1u);
}

// MADV_COLLAPSE over a range the THP already maps with a PMD: SCAN_PMD_MAPPED, 0, no
// second collapse_file.
TEST(FileThpMap, CollapseAgainOverAPmdMappedThp) {
    std::string text = prog("strategy=classic", std::string(kCollapsed) + R"(  madvise 0x100000 pages=8 advice=collapse
  madvise 0x100000 pages=8 advice=dontneed
  read 0x100000
  madvise 0x100000 pages=8 advice=collapse
)");
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "ok", "0", "0", "0", "1", "0"}));
    EXPECT_EQ(counter(r, "thp_collapse_file"), 1u);
}

// Faults, fork, GUP pins, MADV_PAGEOUT, reclaim, DONTNEED, mprotect, munmap and
// collapse racing over a PMD-mapped and PTE-mapped shmem THP, under every strategy:
// every check holds.
TEST(FileThpMap, RacesUnderEveryStrategy) {
    for (const char* s : {"strategy=classic", "strategy=spf", "strategy=pervma", "strategy=pervma vma_lock=file"}) {
        std::string text = prog(s, std::string(kCollapsed) + R"(  read 0x102000
  madvise 0x100000 pages=8 advice=pageout
  write 0x104000 4
  madvise 0x100000 pages=8 advice=collapse
  mprotect 0x100000 pages=4 prot=r
  read 0x106000
thread P0.T1
  read 0x107ff8
  pin 0x106000 pages=2 flags=fast
  write 0x101000 5
  madvise 0x100000 pages=3 advice=pageout
  unpin H0
  fork P1
  madvise 0x104000 pages=2 advice=dontneed
  gup 0x100000 pages=8 flags=fast_only
process P1 forked
thread P1.T0
  write 0x106000 6
  madvise 0x100000 pages=8 advice=collapse
  munmap 0x100000 pages=4
  read 0x107000
kthread K0
  reclaim 4
  reclaim 8
)");
        RunResult first;
        int bad = sweep_bad(text, 200, &first);
        EXPECT_EQ(bad, 0) << s << ": " << first.check << ": " << first.message << "\n" << first.schedule;
    }
}

// Truncate (run from T1 between its ops, so that T0's faults and the collapse
// interleave with it) racing faults and a PMD-mapped THP, under every strategy.
TEST(FileThpMap, TruncateRacesFaultsAndCollapse) {
    for (const char* s : {"strategy=classic", "strategy=spf", "strategy=pervma vma_lock=file"}) {
        std::string text = prog(s, std::string(kCollapsed) + R"(  read 0x105000
  write 0x101000 2
  madvise 0x100000 pages=8 advice=collapse
  read 0x107000
thread P0.T1
  read 0x103000
  read 0x106000
  madvise 0x100000 pages=8 advice=pageout
)");
        Program p = parse_mmr(text);
        int bad = 0;
        RunResult first;
        for (int i = 0; i < 300; ++i) {
            TestRunOptions o;
            o.schedule = i % 2 ? random_schedule(i) : pct_schedule(i);
            // No quiescent checks: after_op runs once its op is done, so the truncate
            // would be checked mid-way; the inline checks and the end-of-run ones hold.
            o.trace = false;
            o.check_quiescent = false;
            o.check_semantics = false;  // the reference model knows no truncate of shmem
            o.after_op = [](mm::Kernel& k, const std::string& t, size_t op) {
                if (t == "P0.T1" && op == 0 && k.files.size() == 1) mm::do_truncate(k, *k.files[0], 6);
                if (t == "P0.T1" && op == 1 && k.files.size() == 1) mm::do_truncate(k, *k.files[0], 0);
            };
            RunResult r = run_program(p, o);
            if (r.verdict != Verdict::ok && bad++ == 0) first = r;
        }
        EXPECT_EQ(bad, 0) << s << ": " << first.check << ": " << first.message << "\n" << first.schedule;
    }
}
