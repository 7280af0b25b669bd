// Swap, the swap cache, anon rmap and MADV_PAGEOUT: content survives swap-out and
// swap-in (alone, across fork, after mremap), swap-in is I/O that retries, the new
// invariants catch broken states by name, and nothing is left after exit.
#include <gtest/gtest.h>

#include "test_util.hpp"

#include "mm/kernel.hpp"
#include "mm/pgalloc.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/generate/workload.hpp"

using namespace mmrace;
using namespace mmrace::mm;

using namespace mmrace::testing;

TEST(Swap, PageoutAndSwapInKeepContent) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 11
  write 0x101008 22
  read 0x102000
  madvise 0x100000 pages=4 advice=pageout
  read 0x100000
  read 0x101008
  read 0x102000
  write 0x101008 33
  madvise 0x100000 pages=4 advice=pageout
  read 0x101008
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "0", "0", "11", "22",
                                                    "0", "ok", "0", "33"}));
    // Two written pages went out (the zero page is not reclaimed).  Swapped in by reads,
    // both stay in the swap cache; the next pageout drops the clean one without writing
    // it and writes the rewritten one (its PTE is dirty) to its slot again.
    EXPECT_EQ(counter(r, "pswpout"), 3u);
    EXPECT_EQ(counter(r, "pgsteal_anon"), 4u);
    EXPECT_EQ(counter(r, "pswpin"), 3u);
    EXPECT_EQ(counter(r, "pgmajfault"), 3u);
}

TEST(Swap, ForkedProcessesBothSwapBackIn) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  madvise 0x100000 pages=2 advice=pageout
  fork P1
  read 0x100000
  write 0x101000 3
  madvise 0x100000 pages=2 advice=pageout
  read 0x101000
process P1 forked
thread P1.T0
  read 0x101000
  write 0x100000 4
  madvise 0x100000 pages=2 advice=pageout
  read 0x100000
  read 0x101000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "ok", "0", "P1", "1", "ok",
                                                    "0", "3", "2", "ok", "0", "4", "2"}));
    EXPECT_GE(counter(r, "pswpin"), 3u);
}

TEST(Swap, SharedFolioIsSwappedOutOfParentAndChildTogether) {
    // After fork the folio is mapped twice: pageout from one mm leaves it (mapcount 2).
    // Each process's pageout of a page only it maps works.
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 7
  fork P1
  madvise 0x100000 pages=1 advice=pageout
  read 0x100000
process P1 forked
thread P1.T0
  read 0x100000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "P1", "0", "7", "7"}));
    EXPECT_EQ(counter(r, "pswpout"), 0u);  // madvise_cold_or_pageout_pte_range skips it
}

TEST(Swap, MremapMovesSwapPtesWithTheirContent) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=3 prot=rw flags=private,anon,fixed
  write 0x100000 5
  write 0x102008 6
  madvise 0x100000 pages=3 advice=pageout
  mremap 0x100000 pages=3 new_pages=3 flags=maymove,fixed to=0x300000
  read 0x300000
  read 0x302008
  mprotect 0x300000 pages=3 prot=r
  madvise 0x300000 pages=3 advice=pageout
  read 0x302008
  mremap 0x300000 pages=3 new_pages=5 flags=maymove
  munmap 0x100000 pages=1
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    EXPECT_EQ(v[5], "5");
    EXPECT_EQ(v[6], "6");
    EXPECT_EQ(v[9], "6");
    EXPECT_GE(counter(r, "pswpin"), 3u);
}

TEST(Swap, FaultOnSwapPteWaitsForReadIoAndRetries) {
    auto r = run_text(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 9
  madvise 0x100000 pages=1 advice=pageout
  write 0x100000 10
  read 0x100000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "0", "ok", "10"}));
    // The read I/O held the folio lock: the fault dropped mmap_lock, waited, retried and
    // found the folio in the swap cache.
    EXPECT_EQ(counter(r, "pswpin"), 1u);
    EXPECT_EQ(counter(r, "pgmajfault"), 1u);
    EXPECT_EQ(counter(r, "fault_retry"), 1u);
    EXPECT_EQ(counter(r, "pswpout"), 1u);
}

TEST(Swap, PrivateFileCowPagesSwapAndCleanPageCacheIsDropped) {
    auto r = run_text(R"(mmrace 1
file F pages=3
process P0
thread P0.T0
  file_write F 0 5
  mmap 0x100000 pages=3 prot=rw flags=private,file:F:0
  read 0x100000
  read 0x101000
  write 0x102000 8
  madvise 0x100000 pages=3 advice=pageout
  read 0x100000
  read 0x101000
  read 0x102000
  truncate F pages=2
  read 0x102000
)");
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"ok", "0x100000", "5", "0", "ok", "0", "5", "0",
                                                    "8", "0", "SIGBUS"}));
    // The COW copy went to swap; the clean page-cache page 1 was dropped; the dirty
    // page 0 (file_write) stays: reclaim does not write back file folios.
    EXPECT_EQ(counter(r, "pswpout"), 1u);
    EXPECT_EQ(counter(r, "pgsteal_anon"), 1u);
    EXPECT_EQ(counter(r, "pgsteal_file"), 1u);
}

TEST(Swap, NothingIsLeftAfterExit) {
    TestRunOptions o;
    size_t slots_mid = 0;
    o.after_op = [&](Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 4) slots_mid = k.swap.inuse_pages;
    };
    auto r = run_program(parse_mmr(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  madvise 0x100000 pages=4 advice=pageout
  fork P1
  read 0x101000
process P1 forked
thread P1.T0
  read 0x100000
  munmap 0x101000 pages=1
)"), o);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(slots_mid, 3u);  // the leak check at the end found no slot, folio or anon_vma
}

TEST(SwapChecks, SwapPteToAFreedSlotIsUseAfterFree) {
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  madvise 0x100000 pages=1 advice=pageout
  read 0x100000
)";
    auto r = run_text(text, std::nullopt, [](Kernel& k, const std::string&, size_t i) {
        if (i != 2) return;
        swp_entry_t e = pte_to_swp_entry(pte_of(k, 0x100000));
        k.swap.slot(e) = swap_slot{};  // freed behind the PTE's back
        --k.swap.inuse_pages;
    });
    EXPECT_EQ(r.verdict, Verdict::violation);
    EXPECT_EQ(r.check, Check::use_after_free) << r.message;
    EXPECT_NE(r.message.find("free swap slot"), std::string::npos) << r.message;
}

TEST(SwapChecks, SwapCountNotCoveringItsPtesIsCaught) {
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  madvise 0x100000 pages=1 advice=pageout
  fork P1
process P1 forked
thread P1.T0
  read 0x100000
)";
    auto r = run_text(text, std::nullopt, [](Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 3) --k.swap.slot(pte_to_swp_entry(pte_of(k, 0x100000))).count;
    });
    EXPECT_EQ(r.check, Check::swap_accounting) << r.message;
    EXPECT_NE(r.message.find("swap count 1 but 2 swap PTEs"), std::string::npos) << r.message;
}

TEST(SwapChecks, SwapCacheFolioWithoutItsReferenceIsCaught) {
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  madvise 0x100000 pages=1 advice=pageout
  read 0x100000
  read 0x100000
)";
    auto r = run_text(text, std::nullopt, [](Kernel& k, const std::string&, size_t i) {
        if (i == 3) k.folios[pte_pfn(pte_of(k, 0x100000))].refcount--;  // swap cache's ref
    });
    EXPECT_EQ(r.check, Check::folio_accounting) << r.message;
    EXPECT_NE(r.message.find("swap cache"), std::string::npos) << r.message;
}

TEST(SwapChecks, SwapCacheAndSwapHasCacheDisagreeingAreCaught) {
    // After the swap-in read the folio stays in the swap cache: its slot has
    // SWAP_HAS_CACHE and no swap PTE.
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  madvise 0x100000 pages=1 advice=pageout
  read 0x100000
  read 0x100000
)";
    auto broken = [&](std::function<void(Kernel&, swp_entry_t)> breakit) {
        return run_text(text, std::nullopt, [=](Kernel& k, const std::string&, size_t i) {
            if (i != 3) return;
            swp_entry_t e{k.folios[pte_pfn(pte_of(k, 0x100000))].swap};
            ASSERT_TRUE(k.swap.valid(e) && k.swap.slot(e).has_cache);
            breakit(k, e);
        });
    };
    auto no_folio = broken([](Kernel& k, swp_entry_t e) { k.swap.swap_cache.erase(e.val); });
    EXPECT_EQ(no_folio.check, Check::swap_accounting) << no_folio.message;
    EXPECT_NE(no_folio.message.find("has SWAP_HAS_CACHE but no folio in the swap cache"),
              std::string::npos) << no_folio.message;

    auto no_flag = broken([](Kernel& k, swp_entry_t e) {
        swap_slot& s = k.swap.slot(e);
        s.has_cache = s.in_use = false;
        --k.swap.inuse_pages;
    });
    EXPECT_EQ(no_flag.check, Check::swap_accounting) << no_flag.message;
    EXPECT_NE(no_flag.message.find("has a swap-cache folio without SWAP_HAS_CACHE"),
              std::string::npos) << no_flag.message;

    auto other_folio = broken([](Kernel& k, swp_entry_t e) { k.folios[k.swap.swap_cache[e.val]].swap = 0; });
    EXPECT_EQ(other_folio.check, Check::swap_accounting) << other_folio.message;
    EXPECT_NE(other_folio.message.find("is not in the swap cache for it"), std::string::npos)
        << other_folio.message;

    auto count = broken([](Kernel& k, swp_entry_t) { ++k.swap.inuse_pages; });
    EXPECT_EQ(count.check, Check::swap_accounting) << count.message;
    EXPECT_NE(count.message.find("1 swap slots in use but inuse_pages 2"), std::string::npos)
        << count.message;
}

TEST(SwapChecks, AnonFolioRmapCannotReachIsCaught) {
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  read 0x100000
)";
    auto r = run_text(text, std::nullopt, [](Kernel& k, const std::string&, size_t i) {
        if (i == 1) k.folios[pte_pfn(pte_of(k, 0x100000))].index += 1;
    });
    EXPECT_EQ(r.check, Check::rmap) << r.message;
    auto r2 = run_text(text, std::nullopt, [](Kernel& k, const std::string&, size_t i) {
        if (i == 1) k.current_mm().vma_lookup(0x100000)->anon_vma_chain.clear();
    });
    EXPECT_EQ(r2.check, Check::rmap) << r2.message;
}

TEST(SwapChecks, LeakedSwapSlotIsReported) {
    TestRunOptions o;
    o.check_quiescent = false;
    o.after_op = [](Kernel& k, const std::string&, size_t i) {
        if (i == 2) ++k.swap.slot(pte_to_swp_entry(pte_of(k, 0x100000))).count;
    };
    auto r = run_program(parse_mmr(R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  madvise 0x100000 pages=1 advice=pageout
)"), o);
    EXPECT_EQ(r.check, Check::leak);
    EXPECT_EQ(r.message, "1 swap slots left after every process exited");
}

TEST(Swap, ConcurrentPageoutFaultsForkMunmapMremapPassEveryCheck) {
    const std::string text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  madvise 0x100000 pages=4 advice=pageout
  fork P1
  write 0x101000 3
  read 0x100000
  mremap 0x102000 pages=2 new_pages=2 flags=maymove,fixed to=0x200000
  madvise 0x100000 pages=2 advice=pageout
thread P0.T1
  read 0x101000
  madvise 0x100000 pages=4 advice=pageout
  write 0x100000 4
  mprotect 0x100000 pages=2 prot=r
  read 0x101000
  munmap 0x101000 pages=1
process P1 forked
thread P1.T0
  madvise 0x100000 pages=2 advice=pageout
  read 0x101000
  write 0x100000 5
  madvise 0x100000 pages=4 advice=dontneed
)";
    for (uint64_t seed = 0; seed < 1500; ++seed) {
        Schedule s;
        s.kind = seed % 2 ? Schedule::Kind::pct : Schedule::Kind::random;
        s.seed = seed;
        s.steps = 400;
        auto r = run_text(text, s);
        ASSERT_EQ(r.verdict, Verdict::ok) << "seed " << seed << " " << r.check << ": " << r.message
                                   << "\n" << r.schedule;
    }
}

TEST(Swap, SameScheduleSameTraceHash) {
    const std::string text = random_workload(12345);
    Schedule s;
    s.kind = Schedule::Kind::random;
    s.seed = 3;
    auto a = run_text(text, s), b = run_text(text, s);
    EXPECT_EQ(a.trace_hash, b.trace_hash);
}

TEST(Swap, RandomWorkloadsSwapOutAndInUnderRaces) {
    uint64_t out = 0, in = 0, retry = 0;
    for (uint64_t seed = 0; seed < 300; ++seed) {
        Schedule s;
        s.kind = Schedule::Kind::random;
        s.seed = seed;
        auto r = run_text(random_workload(seed), s);
        ASSERT_EQ(r.verdict, Verdict::ok) << "seed " << seed << " " << r.check << ": " << r.message;
        out += counter(r, "pswpout");
        in += counter(r, "pswpin");
        retry += counter(r, "fault_retry");
    }
    std::cerr << "pswpout " << out << " pswpin " << in << " fault_retry " << retry << "\n";
    EXPECT_GT(out, 100u);
    EXPECT_GT(in, 50u);
}
