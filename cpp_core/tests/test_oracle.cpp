// The semantic oracle (check/linearizability.cpp, check/refmodel.cpp): hand-written
// histories it must accept and reject, and a run whose memory is broken by hand.
#include <gtest/gtest.h>

#include <cstdio>

#include "check/history.hpp"
#include "mm/kernel.hpp"
#include "mm/pgalloc.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/test_hooks.hpp"

using namespace mmrace;

namespace {

// One op of a hand-written history: thread, index in it, invocation, response, result.
struct H {
    std::string thread;
    size_t index;
    uint64_t inv, resp;
    std::string result;
};

// Checks the history `ops` of the program `mmr`; "" when it is linearizable.  On a
// failure `failing` (if given) gets the failing group's history.
std::string lin(const std::string& mmr, const std::vector<H>& ops, LinHistory* failing = nullptr,
                size_t* nodes = nullptr) {
    static std::vector<std::unique_ptr<Program>> keep;  // HistOps point into it
    keep.push_back(std::make_unique<Program>(parse_mmr(mmr)));
    const Program& p = *keep.back();
    check::History h;
    h.program = &p;
    std::vector<std::pair<const Thread*, int>> threads;
    for (size_t pi = 0; pi < p.processes.size(); ++pi)
        for (const auto& t : p.processes[pi].threads) {
            threads.emplace_back(&t, static_cast<int>(pi));
            h.thread_names.push_back(t.name);
        }
    for (const auto& o : ops) {
        int tid = 0;
        while (threads.at(tid).first->name != o.thread) ++tid;
        const Thread& t = *threads[tid].first;
        h.ops.push_back({&t.ops.at(o.index), tid, threads[tid].second, o.index, o.inv, o.resp, o.result});
    }
    std::sort(h.ops.begin(), h.ops.end(), [](auto& a, auto& b) { return a.inv < b.inv; });
    check::LinStats st;
    std::string r = check::check_linearizable(h, &st, {}, failing);
    if (nodes) *nodes = st.nodes;
    EXPECT_FALSE(st.skipped);
    EXPECT_EQ(st.gave_up, 0u);
    return r;
}

const char* kTwoThreads = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100008 5
  read 0x100008
thread P0.T1
  read 0x100008
)";

}  // namespace

TEST(Oracle, SequentialReadSeesTheLastWrite) {
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 4, "ok"}, {"P0.T0", 2, 5, 6, "5"}};
    EXPECT_EQ(lin(kTwoThreads, h), "");
    h[2].result = "0";  // a lost write
    std::string r = lin(kTwoThreads, h);
    EXPECT_NE(r.find("P0 page 0x100000"), std::string::npos) << r;
    EXPECT_NE(r.find("read 0x100008 -> 0"), std::string::npos) << r;
}

TEST(Oracle, AFailedGroupHandsOutItsHistoryMarkedAsTheSearchLeftIt) {
    // T0 writes 5 and reads it back; T1's read overlaps the write and sees 7: no order
    // fits it, whatever goes first.
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 8, "ok"},
                        {"P0.T1", 0, 4, 5, "7"}, {"P0.T0", 2, 9, 10, "5"}};
    size_t plain_nodes = 0, nodes = 0;
    std::string plain = lin(kTwoThreads, h, nullptr, &plain_nodes);
    LinHistory failing;
    EXPECT_EQ(lin(kTwoThreads, h, &failing, &nodes), plain);
    EXPECT_EQ(nodes, plain_nodes);  // asking for the history changes nothing
    EXPECT_EQ(failing.pages, "P0 page 0x100000");
    ASSERT_EQ(failing.ops.size(), 4u);
    EXPECT_EQ(failing.ops[2].thread, "P0.T1");
    EXPECT_EQ(failing.ops[2].mark, LinOp::Mark::stuck);
    EXPECT_EQ(failing.ops[3].mark, LinOp::Mark::unreached);  // its read comes after T1's
    EXPECT_EQ(failing.ops[0].mark, LinOp::Mark::linearized);
    EXPECT_EQ(failing.linearized, 2u);  // the mmap and the write
    EXPECT_EQ(failing.ops[1].inv, 3u);
    EXPECT_EQ(failing.ops[1].resp, 8u);
}

TEST(Oracle, ConcurrentReadMaySeeEitherValue) {
    for (const char* seen : {"0", "5"}) {
        std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 8, "ok"},
                            {"P0.T1", 0, 4, 5, seen}};
        EXPECT_EQ(lin(kTwoThreads, h), "") << seen;
    }
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 8, "ok"}, {"P0.T1", 0, 4, 5, "7"}};
    EXPECT_NE(lin(kTwoThreads, h), "");
}

TEST(Oracle, RealTimeOrderIsRespected) {
    // The write returned before the read began: the read must see it.
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 4, "ok"}, {"P0.T1", 0, 5, 6, "0"}};
    EXPECT_NE(lin(kTwoThreads, h), "");
    // A read before the mmap returned may fault.
    h = {{"P0.T0", 0, 2, 3, "0x100000"}, {"P0.T1", 0, 1, 2, "SIGSEGV"}};
    EXPECT_EQ(lin(kTwoThreads, h), "");
    h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T1", 0, 3, 4, "SIGSEGV"}};
    EXPECT_NE(lin(kTwoThreads, h), "");
}

TEST(Oracle, ForkGivesTheChildACopy) {
    const char* p = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  fork P1
  write 0x100000 2
process P1 forked
thread P1.T0
  read 0x100000
)";
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 4, "ok"}, {"P0.T0", 2, 5, 6, "P1"},
                        {"P0.T0", 3, 7, 10, "ok"}, {"P1.T0", 0, 8, 9, "1"}};
    EXPECT_EQ(lin(p, h), "");
    h[4].result = "2";  // the parent's write after fork leaked into the child (COW)
    EXPECT_NE(lin(p, h), "");
}

TEST(Oracle, PrivateFileWritesNeverReachTheFile) {
    const char* p = R"(mmrace 1
file F0 pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,file:F0:0,fixed
  write 0x100000 9
thread P0.T1
  mmap 0x200000 pages=1 prot=r flags=shared,file:F0:0,fixed
  read 0x200000
)";
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 4, "ok"},
                        {"P0.T1", 0, 5, 6, "0x200000"}, {"P0.T1", 1, 7, 8, "0"}};
    EXPECT_EQ(lin(p, h), "");
    h[3].result = "9";  // Dirty COW's symptom: a private write in the page cache
    EXPECT_NE(lin(p, h), "");
}

TEST(Oracle, SharedFileWritesReachEveryMapping) {
    const char* p = R"(mmrace 1
file F0 pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=shared,file:F0:0,fixed
  write 0x100000 9
  fork P1
process P1 forked
thread P1.T0
  mmap 0x200000 pages=1 prot=rw flags=private,file:F0:0,fixed
  read 0x200000
  file_write F0 0 4
  read 0x100000
)";
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 4, "ok"}, {"P0.T0", 2, 5, 6, "P1"},
                        {"P1.T0", 0, 7, 8, "0x200000"}, {"P1.T0", 1, 9, 10, "9"},
                        {"P1.T0", 2, 11, 12, "ok"}, {"P1.T0", 3, 13, 14, "4"}};
    EXPECT_EQ(lin(p, h), "");
    h[4].result = "0";
    EXPECT_NE(lin(p, h), "");
    h[4].result = "9";
    h[6].result = "9";  // file_write did not reach the shared mapping
    EXPECT_NE(lin(p, h), "");
}

TEST(Oracle, StaleTlbAccessesAreAllowedOnlyUntilMunmapReturns) {
    const char* p = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  munmap 0x100000 pages=1
thread P0.T1
  write 0x100000 1
thread P0.T2
  write 0x100000 2
)";
    // T1 already faulted on the zapped page while T2's CPU still had the old entry.
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 10, "0"},
                        {"P0.T1", 0, 4, 5, "SIGSEGV"}, {"P0.T2", 0, 6, 7, "ok"}};
    EXPECT_EQ(lin(p, h), "");
    h[3] = {"P0.T2", 0, 11, 12, "ok"};  // after munmap returned: no stale entry may be left
    EXPECT_NE(lin(p, h), "");
}

TEST(Oracle, DontneedZeroesPrivateMemory) {
    const char* p = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 5
  madvise 0x100000 pages=1 advice=dontneed
  read 0x100000
)";
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 4, "ok"},
                        {"P0.T0", 2, 5, 6, "0"}, {"P0.T0", 3, 7, 8, "0"}};
    EXPECT_EQ(lin(p, h), "");
    h[3].result = "5";
    EXPECT_NE(lin(p, h), "");
}

TEST(Oracle, TruncateMakesMappedPagesSigbus) {
    const char* p = R"(mmrace 1
file F0 pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,file:F0:0,fixed
  write 0x101000 5
  truncate F0 pages=1
  read 0x101000
  file_write F0 1 3
  read 0x101000
)";
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 4, "ok"}, {"P0.T0", 2, 5, 6, "0"},
                        {"P0.T0", 3, 7, 8, "SIGBUS"}, {"P0.T0", 4, 9, 10, "ok"}, {"P0.T0", 5, 11, 12, "3"}};
    EXPECT_EQ(lin(p, h), "");
    h[5].result = "5";  // the private copy must have gone with the truncate (even_cows)
    EXPECT_NE(lin(p, h), "");
    h[5].result = "3";
    h[3].result = "5";
    EXPECT_NE(lin(p, h), "");
}

TEST(Oracle, MremapMovesTheContent) {
    const char* p = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 5
  mremap 0x100000 pages=1 new_pages=2 flags=maymove,fixed to=0x200000
  read 0x200000
  read 0x201000
  read 0x100000
)";
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 4, "ok"},
                        {"P0.T0", 2, 5, 6, "0x200000"}, {"P0.T0", 3, 7, 8, "5"},
                        {"P0.T0", 4, 9, 10, "0"}, {"P0.T0", 5, 11, 12, "SIGSEGV"}};
    EXPECT_EQ(lin(p, h), "");
    h[3].result = "0";
    EXPECT_NE(lin(p, h), "");
}

TEST(Oracle, MprotectRevokesWriteOnceItReturns) {
    const char* p = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  mprotect 0x100000 pages=1 prot=r
thread P0.T1
  write 0x100000 1
)";
    std::vector<H> h = {{"P0.T0", 0, 1, 2, "0x100000"}, {"P0.T0", 1, 3, 6, "0"}, {"P0.T1", 0, 4, 5, "ok"}};
    EXPECT_EQ(lin(p, h), "");
    h[2] = {"P0.T1", 0, 7, 8, "ok"};
    EXPECT_NE(lin(p, h), "");
}

// A run whose memory is broken by hand: a word of the folio behind a page changes
// behind the program's back, and the next read gives it away.
TEST(Oracle, CorruptedFolioIsCaughtInARun) {
    const char* p = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100008 5
  read 0x100008
)";
    TestRunOptions o;
    o.after_op = [](mm::Kernel& k, const std::string&, size_t index) {
        if (index != 1) return;
        mm::TableId t = mm::pte_table_lookup(k, k.current_mm(), 0x100000);
        mm::pte_t pte = k.tables[t].entries[k.geo.index(0x100000, mm::PTE_LEVEL)];
        k.folios[mm::pte_pfn(pte)].write_word(1, 6);
    };
    RunResult r = run_program(parse_mmr(p), o);
    EXPECT_EQ(r.verdict, Verdict::violation);
    EXPECT_EQ(r.check, Check::linearizability);
    EXPECT_NE(r.message.find("read 0x100008 -> 6"), std::string::npos) << r.message;
    o.after_op = nullptr;
    EXPECT_EQ(run_program(parse_mmr(p), o).verdict, Verdict::ok);
}

// A failed mremap with MREMAP_FIXED still links its ranges (the destination may have
// been unmapped), and onto an overlapping range each page's source is the page below
// it: a chain as long as the range.  The oracle follows it once per page, and past
// kMaxTracked pages gives the check up rather than spend minutes and gigabytes (a
// drawn program of issue 14 did, on a chain of 2^20 pages).
TEST(Oracle, AnOverlappingMremapChainIsFollowedOncePerPageOrGivenUp) {
    auto run_chain = [](uint64_t last_page) {
        char text[400];
        std::snprintf(text, sizeof text, R"(mmrace 1
process P0
thread P0.T0
  read 0x%llx
  mremap 0x100000 pages=1048576 new_pages=1 flags=maymove,fixed to=0x101000
)",
                      static_cast<unsigned long long>(0x100000 + last_page * 4096));
        check::LinStats st;
        RunOptions o;
        o.lin_stats = &st;
        RunResult r = run_program(parse_mmr(text), o);
        EXPECT_EQ(r.verdict, Verdict::ok) << r.message;
        return st;
    };
    check::LinStats shortc = run_chain(1000);
    EXPECT_EQ(shortc.gave_up, 0u);
    EXPECT_EQ(shortc.groups, 1u);
    check::LinStats longc = run_chain((1u << 20) - 1);
    EXPECT_EQ(longc.gave_up, 1u);
    EXPECT_EQ(longc.groups, 0u);
}
