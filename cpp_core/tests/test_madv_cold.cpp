// MADV_COLD (`madvise ... advice=cold`, ops/madvise.cpp: madvise_cold and the !pageout
// branch of madvise_cold_or_pageout_pte_range): the folios only this mm maps lose their
// young bits and PG_referenced and move to the inactive LRU; nothing is reclaimed, so
// every page keeps its content and its mapping.  A folio another mm maps is left alone,
// a THP the range covers is deactivated whole and one it does not is split first, and
// the op races everything else with every check passing.
#include <gtest/gtest.h>

#include "test_util.hpp"

#include "mm/kernel.hpp"
#include "mm/kswapd.hpp"
#include "mm/lru.hpp"
#include "mm/pgalloc.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"

using namespace mmrace;
using namespace mmrace::mm;
using namespace mmrace::testing;

namespace {

// The folio the PTE of addr maps in the current mm.
Pfn folio_at(Kernel& k, uint64_t addr) { return page_folio(k.folios, pte_pfn(pte_of(k, addr))); }

// Activates the folio at addr as two accesses through read(2) would (folio_mark_accessed
// twice), so that there is something for MADV_COLD to deactivate.
void activate(Kernel& k, uint64_t addr) {
    folio_mark_accessed(k, folio_at(k, addr));
    folio_mark_accessed(k, folio_at(k, addr));
}

}  // namespace

// Two written pages of a 4-page VMA, activated by hand after op 2; op 3 is MADV_COLD
// over the VMA.  After it both folios are inactive, unreferenced and mapped by old
// PTEs, with their content; nothing went to swap.
TEST(MadvCold, DeactivatesTheFoliosAndReclaimsNothing) {
    std::vector<std::string> seen;
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 10
  write 0x101000 11
  madvise 0x100000 pages=4 advice=cold
  read 0x100000
  read 0x101000
)",
                      std::nullopt, [&](Kernel& k, const std::string&, size_t i) {
                          if (i == 2) {
                              activate(k, 0x100000);
                              activate(k, 0x101000);
                              EXPECT_TRUE(pte_of(k, 0x100000) & _PAGE_ACCESSED);
                          }
                          if (i != 3) return;
                          for (uint64_t a : {0x100000ull, 0x101000ull}) {
                              Pfn f = folio_at(k, a);
                              EXPECT_TRUE(pte_present(pte_of(k, a)));
                              EXPECT_FALSE(pte_of(k, a) & _PAGE_ACCESSED);
                              EXPECT_FALSE(k.folios[f].flags & (PG_active | PG_referenced));
                              EXPECT_EQ(k.folios[f].lru, LRU_INACTIVE_ANON);
                              seen.push_back(lru_list_name(k.folios[f].lru));
                          }
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(seen.size(), 2u);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "0", "10", "11"}));
    EXPECT_EQ(counter(r, "pgdeactivate"), 2u);
    EXPECT_EQ(counter(r, "pswpout"), 0u);
    EXPECT_EQ(counter(r, "pgsteal_anon"), 0u);
}

// After fork the parent's folio is mapped by the child too: MADV_COLD does not
// interfere with other mappings of a folio (folio_mapcount != folio_nr_pages), so it
// stays active and referenced.  A hole in the range makes the result ENOMEM, but the
// walk goes on.
TEST(MadvCold, LeavesAFolioAnotherMmMapsAloneAndAHoleIsEnomem) {
    bool checked = false;
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 10
  fork P1
  madvise 0x100000 pages=4 advice=cold
  read 0x100000
process P1 forked
thread P1.T0
  read 0x100000
)",
                      std::nullopt, [&](Kernel& k, const std::string& t, size_t i) {
                          if (t != "P0.T0") return;
                          if (i == 1) activate(k, 0x100000);
                          if (i != 3) return;
                          Pfn f = folio_at(k, 0x100000);
                          EXPECT_TRUE(k.folios[f].flags & PG_active);
                          EXPECT_EQ(k.folios[f].lru, LRU_ACTIVE_ANON);
                          checked = true;
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_TRUE(checked);
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "P1", "ENOMEM", "10", "10"}));
    EXPECT_EQ(counter(r, "pgdeactivate"), 0u);
}

// A THP (small geometry: 8 pages) the range covers whole is deactivated as one folio
// and stays PMD-mapped; one the range covers in part is split first and only the
// pages in the range are deactivated.
TEST(MadvCold, AThpIsDeactivatedWholeOrSplitFirst) {
    std::vector<std::string> seen;
    auto r = run_text(std::string("mmrace 1\nconfig strategy=classic geometry=small\n") + kThpProgram +
                          R"(  write 0x208000 3
  madvise 0x200000 pages=8 advice=cold
  madvise 0x208000 pages=2 advice=cold
  read 0x200000
  read 0x201000
  read 0x208000
)",
                      std::nullopt, [&](Kernel& k, const std::string&, size_t i) {
                          if (i == 4) {
                              Pfn a = huge_pmd_head(k, 0x200000), b = huge_pmd_head(k, 0x208000);
                              ASSERT_NE(a, FolioPool::kNoPfn);
                              ASSERT_NE(b, FolioPool::kNoPfn);
                              for (Pfn f : {a, b}) {
                                  folio_mark_accessed(k, f);
                                  folio_mark_accessed(k, f);
                              }
                          }
                          if (i == 5) {
                              Pfn a = huge_pmd_head(k, 0x200000);
                              ASSERT_NE(a, FolioPool::kNoPfn);  // still PMD-mapped
                              EXPECT_EQ(k.folios[a].lru, LRU_INACTIVE_ANON);
                              seen.push_back("whole");
                          }
                          if (i == 6) {
                              EXPECT_EQ(huge_pmd_head(k, 0x208000), FolioPool::kNoPfn);  // split
                              seen.push_back("split");
                          }
                      });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(seen, (std::vector<std::string>{"whole", "split"}));
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "ok", "0", "0", "1",
                                                    "2", "3"}));
    EXPECT_GE(counter(r, "pgdeactivate"), 8u);  // the whole THP's pages
}

// MADV_COLD against faults, fork, munmap, pageout, write(2) (which activates the page
// cache folio it writes twice: FGP_ACCESSED) and the reclaim kthread under every
// strategy and random and PCT schedules: no check (invariants, lockdep, UAF, LRU,
// linearizability) ever fails, and some runs do deactivate folios.
TEST(MadvCold, RacesEverythingWithEveryCheckPassing) {
    const char* text = R"(mmrace 1
config strategy=%s
file F0 pages=4
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  mmap 0x200000 pages=4 prot=rw flags=shared,file:F0:0,fixed
  write 0x201000 7
  fork P1
  madvise 0x100000 pages=4 advice=cold
  write 0x100000 3
  read 0x201000
thread P0.T1
  read 0x101000
  file_write F0 1 5
  file_write F0 1 6
  madvise 0x200000 pages=4 advice=cold
  madvise 0x100000 pages=2 advice=pageout
  munmap 0x101000 pages=1
  read 0x100000
process P1 forked
thread P1.T0
  madvise 0x100000 pages=2 advice=cold
  read 0x100000
  write 0x101000 5
  read 0x201000
kthread K0
  reclaim 8
  reclaim 8
)";
    uint64_t deactivated = 0;
    for (const char* strategy : {"classic", "spf", "pervma", "pervma vma_lock=swapin,file"}) {
        char buf[4096];
        std::snprintf(buf, sizeof buf, text, strategy);
        Program p = parse_mmr(buf);
        for (uint64_t seed = 0; seed < 100; ++seed)
            for (Schedule s : {random_schedule(seed), pct_schedule(seed)}) {
                RunOptions o;
                o.schedule = s;
                o.trace = false;
                RunResult r = run_program(p, o);
                ASSERT_EQ(r.verdict, Verdict::ok) << strategy << " seed " << seed << ": " << r.check << ": "
                                           << r.message << "\n" << r.schedule;
                deactivated += counter(r, "pgdeactivate") > 0;
            }
    }
    EXPECT_GT(deactivated, 10u);
}

TEST(MadvCold, SameScheduleSameTraceHash) {
    Program p = parse_mmr(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  madvise 0x100000 pages=4 advice=cold
thread P0.T1
  write 0x101000 2
  madvise 0x100000 pages=2 advice=cold
)");
    for (uint64_t seed = 0; seed < 20; ++seed) {
        RunOptions o;
        o.schedule = random_schedule(seed);
        EXPECT_EQ(run_program(p, o).trace_hash, run_program(p, o).trace_hash) << seed;
    }
}
