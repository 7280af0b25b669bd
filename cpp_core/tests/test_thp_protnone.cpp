// PROT_NONE huge PMDs: mprotect(PROT_NONE) over a whole THP keeps it huge, as x86
// Linux does (change_huge_pmd: pmd_modify keeps _PAGE_PSE, trades _PAGE_PRESENT for
// _PAGE_PROTNONE), and every walker that meets a PMD copes with one: the MMU (no
// access), FOLL_FORCE GUP (follow_huge_pmd, gup_can_follow_protnone), gup_fast (falls
// back), splits (PROT_NONE PTEs), fork, zap, collapse and the quiescent checks.
#include <gtest/gtest.h>

#include <string>

#include "mm/huge_memory.hpp"
#include "mm/rmap.hpp"
#include "test_util.hpp"

using namespace mmrace;
using namespace mmrace::testing;

namespace {

std::string prog(const std::string& config, const std::string& body) {
    return "mmrace 1\nconfig " + config + "\n" + body;
}

// What the PMD at addr of the current mm looks like (on the simulated thread).
struct PmdState {
    bool huge = false, protnone = false, hw_present = false, write = false, deposited = false;
    mm::Pfn head = mm::FolioPool::kNoPfn;
    int64_t entire = 0, mapcount = 0, refcount = 0;
    bool exclusive = false;
};

PmdState pmd_state(mm::Kernel& k, uint64_t addr) {
    PmdState s;
    mm::PmdRef pmd = mm::pmd_lookup(k, k.current_mm(), addr);
    if (!pmd) return s;
    mm::pmd_t e = mm::pmd_entry(k, pmd);
    s.huge = mm::pmd_trans_huge(e);
    if (!s.huge) return s;
    s.protnone = mm::pmd_protnone(e);
    s.hw_present = mm::pmd_hw_present(e);
    s.write = mm::pte_write(e);
    s.deposited = k.tables[pmd.table].deposited[pmd.index] != mm::kNoTable;
    s.head = mm::pmd_pfn(e);
    const mm::Folio& f = k.folios[s.head];
    s.entire = f.entire_mapcount;
    s.mapcount = f.mapcount;
    s.refcount = f.refcount;
    s.exclusive = mm::PageAnonExclusive(k.folios, s.head);
    return s;
}

}  // namespace

// A whole-PMD mprotect(PROT_NONE) changes the huge PMD in place: same folio, still
// huge with its deposited table, one entire mapping, no split; the MMU no longer
// reaches it (SIGSEGV), and the contents come back with the protection.
TEST(ThpProtNone, MprotectNoneKeepsOneHugePmdAndItsMapcounts) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  mprotect 0x200000 pages=8 prot=none
  read 0x201000
  write 0x200000 5
  mprotect 0x200000 pages=8 prot=r
  read 0x201000
)");
    PmdState before, none, ro;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 3) before = pmd_state(k, 0x200000);
        if (i == 4) none = pmd_state(k, 0x200000);
        if (i == 7) ro = pmd_state(k, 0x200000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "0", "SIGSEGV", "SIGSEGV",
                                                    "0", "2"}));
    ASSERT_TRUE(none.huge);
    EXPECT_TRUE(none.protnone);
    EXPECT_FALSE(none.hw_present);
    EXPECT_FALSE(none.write);
    EXPECT_TRUE(none.deposited);
    EXPECT_EQ(none.head, before.head);
    EXPECT_EQ(none.entire, 1);
    EXPECT_EQ(none.mapcount, 1);
    EXPECT_EQ(none.refcount, 1);
    EXPECT_TRUE(none.exclusive);
    ASSERT_TRUE(ro.huge);
    EXPECT_TRUE(ro.hw_present);
    EXPECT_FALSE(ro.protnone);
    EXPECT_FALSE(ro.write);
    EXPECT_EQ(ro.head, before.head);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
}

// Back from PROT_NONE to PROT_READ|PROT_WRITE in place: writable at once when the
// folio is exclusive (can_change_pmd_writable), read-only when fork shares it.
TEST(ThpProtNone, BackToReadWriteKeepsItHugeAndWritableWhenExclusive) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  mprotect 0x200000 pages=8 prot=none
  mprotect 0x200000 pages=8 prot=rw
  fork P1
  mprotect 0x200000 pages=8 prot=none
  mprotect 0x200000 pages=8 prot=rw
  read 0x201000
process P1 forked
thread P1.T0
  read 0x201000
)");
    PmdState rw, shared_rw;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 5) rw = pmd_state(k, 0x200000);
        if (t == "P0.T0" && i == 8) shared_rw = pmd_state(k, 0x200000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "0", "0", "P1", "0", "0",
                                                    "2", "2"}));
    ASSERT_TRUE(rw.huge);
    EXPECT_TRUE(rw.hw_present);
    EXPECT_TRUE(rw.write);
    ASSERT_TRUE(shared_rw.huge);
    EXPECT_TRUE(shared_rw.hw_present);
    EXPECT_FALSE(shared_rw.write);  // shared with P1: COW stays
    EXPECT_EQ(shared_rw.entire, 2);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
}

// A partial mprotect(PROT_NONE) splits the huge PMD (__split_huge_pmd_locked): the
// folio stays large, the PROT_NONE pages get PROT_NONE PTEs, the rest present ones.
// A PROT_NONE huge PMD split by a partial munmap gives PROT_NONE PTEs throughout.
TEST(ThpProtNone, PartialMprotectSplitsIntoProtnonePtes) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  mprotect 0x202000 pages=2 prot=none
  read 0x201000
  read 0x202000
  mprotect 0x202000 pages=2 prot=rw
  read 0x202000
)");
    bool huge_after = true, large = false, none_ok = false, rest_ok = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i != 4) return;
        huge_after = huge_pmd_head(k, 0x200000) != mm::FolioPool::kNoPfn;
        mm::pte_t p0 = pte_of(k, 0x200000), p2 = pte_of(k, 0x202000), p3 = pte_of(k, 0x203000),
                  p4 = pte_of(k, 0x204000);
        none_ok = mm::pte_protnone(p2) && mm::pte_protnone(p3) && !mm::pte_write(p2);
        rest_ok = mm::pte_hw_present(p0) && mm::pte_hw_present(p4) && mm::pte_write(p0);
        mm::Pfn head = mm::page_folio(k.folios, mm::pte_pfn(p2));
        large = k.folios[head].order == k.geo.bits && head == mm::pte_pfn(p0);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "0", "2", "SIGSEGV", "0", "0"}));
    EXPECT_FALSE(huge_after);
    EXPECT_TRUE(none_ok);
    EXPECT_TRUE(rest_ok);
    EXPECT_TRUE(large);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 1u);
}

// The same with the second PMD range faulted huge first: munmap of its last page
// splits a PROT_NONE huge PMD, whose PTEs are all PROT_NONE, the folio still large.
TEST(ThpProtNone, SplitOfAProtnoneHugePmdGivesProtnonePtes) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  write 0x208000 8
  mprotect 0x208000 pages=8 prot=none
  munmap 0x20f000 pages=1
  mprotect 0x208000 pages=7 prot=rw
  read 0x208000
  write 0x209000 9
  read 0x209000
)");
    PmdState none;
    bool all_protnone = false, large = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 5) none = pmd_state(k, 0x208000);
        if (i == 6) {
            bool all = true;
            for (uint64_t a = 0x208000; a < 0x20f000; a += 0x1000) all = all && mm::pte_protnone(pte_of(k, a));
            all_protnone = all;
            mm::Pfn p = mm::pte_pfn(pte_of(k, 0x208000));
            large = k.folios[mm::page_folio(k.folios, p)].order == k.geo.bits;
        }
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "ok", "0", "0", "0", "8",
                                                    "ok", "9"}));
    EXPECT_TRUE(none.huge && none.protnone);
    EXPECT_TRUE(all_protnone);
    EXPECT_TRUE(large);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 1u);
}

// FOLL_FORCE (peek/poke, /proc/pid/mem) on a PROT_NONE THP: follow_huge_pmd follows
// the PROT_NONE huge PMD (no FOLL_HONOR_NUMA_FAULT: gup_can_follow_protnone), reads
// and writes the exclusive page (can_follow_write_pmd) without a split, and the PMD
// stays PROT_NONE.  A peek into an empty PMD range of a PROT_NONE THP VMA faults a
// THP in with a PROT_NONE huge PMD (do_huge_pmd_anonymous_page with vm_page_prot).
TEST(ThpProtNone, ForcePeekAndPokeFollowAProtnoneHugePmd) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  mprotect 0x200000 pages=16 prot=none
  peek 0x201000
  poke 0x201008 7
  peek 0x208000
  mprotect 0x200000 pages=16 prot=rw
  read 0x201008
  read 0x208000
)");
    PmdState after_poke, fresh;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 6) after_poke = pmd_state(k, 0x200000);
        if (i == 7) fresh = pmd_state(k, 0x208000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "0", "2", "ok", "0", "0",
                                                    "7", "0"}));
    EXPECT_TRUE(after_poke.huge && after_poke.protnone);
    EXPECT_FALSE(after_poke.write);
    EXPECT_EQ(after_poke.refcount, 1);  // the GUP references were returned
    EXPECT_TRUE(fresh.huge && fresh.protnone);
    EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
    EXPECT_EQ(counter(r, "thp_fault_alloc"), 2u);
}

// do_huge_pmd_wp_page reuses a THP only this mapping references without making the
// PMD writable where the VMA has no VM_WRITE (maybe_pmd_mkwrite).  A FOLL_FORCE write
// into a read-only or PROT_NONE VMA over a THP a fork shared (not exclusive, but the
// parent has exited: refcount 1) reuses it and leaves the PMD read-only / PROT_NONE;
// the poke then writes the now exclusive page.  Setting the write bit there was a bug.
TEST(ThpProtNone, ForceWriteReuseKeepsThePmdReadOnly) {
    for (const char* prot : {"r", "none"}) {
        std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  fork P1
  exit
process P1 forked
thread P1.T0
  mprotect 0x200000 pages=8 prot=)" + prot + R"(
  poke 0x201008 7
  write 0x201008 9
  mprotect 0x200000 pages=8 prot=rw
  read 0x201008
)");
        PmdState before, after;
        RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
            if (t == "P1.T0" && i == 0) before = pmd_state(k, 0x200000);
            if (t == "P1.T0" && i == 1) after = pmd_state(k, 0x200000);
        });
        ASSERT_EQ(r.verdict, Verdict::ok) << prot << ": " << r.check << ": " << r.message;
        auto v = results(r);
        EXPECT_EQ(std::vector<std::string>(v.begin() + 6, v.end()),
                  (std::vector<std::string>{"0", "ok", "SIGSEGV", "0", "7"}))
            << prot;
        ASSERT_TRUE(before.huge) << prot;
        EXPECT_FALSE(before.exclusive) << prot;
        EXPECT_EQ(before.refcount, 1) << prot;
        ASSERT_TRUE(after.huge) << prot;
        EXPECT_FALSE(after.write) << prot;
        EXPECT_TRUE(after.exclusive) << prot;
        EXPECT_EQ(after.protnone, std::string(prot) == "none") << prot;
        EXPECT_EQ(counter(r, "thp_split_pmd"), 0u) << prot;
    }
}

// gup_fast_pmd_range leaves a PROT_NONE huge PMD to the slow path, which refuses a
// PROT_NONE VMA without FOLL_FORCE: the fast pin fails and pins nothing.
TEST(ThpProtNone, GupFastFallsBackOnAProtnonePmd) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  mprotect 0x200000 pages=8 prot=none
  pin 0x200000 pages=2 flags=fast
  pin 0x200000 pages=2
  mprotect 0x200000 pages=8 prot=rw
  pin 0x200000 pages=2 flags=fast
  unpin H2
)");
    PmdState none;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i == 6) none = pmd_state(k, 0x200000);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "0", "EFAULT", "EFAULT", "0",
                                                    "H2", "0"}));
    ASSERT_TRUE(none.huge && none.protnone);
    EXPECT_EQ(none.refcount, 1);  // nothing grabbed
    EXPECT_EQ(counter(r, "thp_split_pmd"), 0u);
}

// fork shares a PROT_NONE THP (copy_huge_pmd): both PMDs PROT_NONE and huge, one
// folio; each side gets its own contents back with PROT_READ|PROT_WRITE (a write COWs
// the writer's PMD only).  munmap and MADV_DONTNEED zap a PROT_NONE huge PMD whole.
TEST(ThpProtNone, ForkAndZapOfAProtnoneThp) {
    std::string text = prog("strategy=classic", std::string(kThpProgram) + R"(  write 0x208000 8
  mprotect 0x200000 pages=16 prot=none
  fork P1
  madvise 0x208000 pages=8 advice=dontneed
  mprotect 0x200000 pages=16 prot=rw
  read 0x201000
  read 0x208000
  munmap 0x200000 pages=8
process P1 forked
thread P1.T0
  mprotect 0x200000 pages=8 prot=rw
  write 0x201000 20
  read 0x201000
  mprotect 0x208000 pages=8 prot=r
  read 0x208000
)");
    PmdState parent;
    bool zapped = false;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 6) parent = pmd_state(k, 0x200000);
        if (t == "P0.T0" && i == 7) zapped = !pmd_state(k, 0x208000).huge;
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
    auto v = results(r);
    EXPECT_EQ(v, (std::vector<std::string>{"0x200000", "0", "ok", "ok", "ok", "0", "P1", "0", "0", "2", "0", "0",
                                           "0", "ok", "20", "0", "8"}));
    ASSERT_TRUE(parent.huge && parent.protnone);
    EXPECT_EQ(parent.entire, 2);
    EXPECT_EQ(parent.refcount, 2);
    EXPECT_FALSE(parent.exclusive);
    EXPECT_TRUE(zapped);
}

// MADV_COLLAPSE over a PROT_NONE huge PMD finds it PMD-mapped (success, as Linux);
// over PROT_NONE PTEs it collapses them (nothing in thp_vma_allowable_order refuses a
// VMA without access) into a PROT_NONE huge PMD (folio_mk_pmd with vm_page_prot), and
// so does khugepaged in a VM_HUGEPAGE one.  Contents survive.
TEST(ThpProtNone, CollapseOverAProtnoneRange) {
    std::string text = prog("strategy=classic", R"(process P0
thread P0.T0
  mmap 0x200000 pages=16 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x203008 3
  write 0x208000 8
  madvise 0x200000 pages=16 advice=hugepage
  mprotect 0x200000 pages=16 prot=none
  madvise 0x200000 pages=8 advice=collapse
  madvise 0x200000 pages=8 advice=collapse
  read 0x200000
  mprotect 0x200000 pages=16 prot=rw
  read 0x200000
  read 0x203008
  read 0x208000
kthread khugepaged
  collapse P0 0x208000
)");
    // T0 runs alone up to its SIGSEGV read (9 decisions or so), then khugepaged.
    bool found = false;
    for (size_t n = 0; n < 200 && !found; ++n) {
        PmdState madv, kh, early;
        Schedule s;
        s.kind = Schedule::Kind::replay;
        s.replay.assign(n, 0);
        s.replay.resize(n + 4000, 1);
        RunResult r = run_text(text, s, [&](mm::Kernel& k, const std::string& t, size_t i) {
            if (t == "P0.T0" && i == 5) early = pmd_state(k, 0x208000);
            if (t == "P0.T0" && i == 6) madv = pmd_state(k, 0x200000);
            if (t == "P0.T0" && i == 8) kh = pmd_state(k, 0x208000);
        });
        ASSERT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
        auto v = results(r);
        EXPECT_EQ(std::vector<std::string>(v.begin(), v.begin() + 8),
                  (std::vector<std::string>{"0x200000", "ok", "ok", "ok", "0", "0", "0", "0"}));
        EXPECT_EQ(std::vector<std::string>(v.begin() + 9, v.begin() + 13),
                  (std::vector<std::string>{"0", "1", "3", "8"}));
        EXPECT_TRUE(madv.huge && madv.protnone) << n;
        EXPECT_EQ(madv.mapcount, 1);
        // khugepaged collapsed the second range after it went PROT_NONE.
        if (v[13] != "0" || early.huge || !kh.huge) continue;
        found = true;
        EXPECT_TRUE(kh.protnone);
        EXPECT_EQ(v[8], "SIGSEGV");
        EXPECT_EQ(counter(r, "thp_collapse_ok"), 2u);
    }
    EXPECT_TRUE(found);
}

// Faults, FOLL_FORCE peeks, pins, partial munmaps, collapses and fork racing
// mprotect PROT_NONE / PROT_READ|PROT_WRITE over THPs, under every strategy and many
// schedules: no check ever fails.
TEST(ThpProtNone, RacesWithMprotectNoneUnderEveryStrategy) {
    for (const char* strat : {"classic", "spf", "pervma"}) {
        std::string text = prog(std::string("strategy=") + strat, R"(process P0
thread P0.T0
  mmap 0x200000 pages=24 prot=rw flags=private,anon,fixed
  madvise 0x200000 pages=24 advice=hugepage
  write 0x200000 1
  write 0x208000 2
  mprotect 0x200000 pages=16 prot=none
  mprotect 0x200000 pages=8 prot=rw
  mprotect 0x204000 pages=8 prot=none
  mprotect 0x200000 pages=16 prot=rw
  read 0x201000
thread P0.T1
  write 0x201000 3
  peek 0x209000
  read 0x208000
  pin 0x200000 pages=2 flags=fast
  write 0x210000 4
  poke 0x202000 5
  munmap 0x20f000 pages=1
  madvise 0x200000 pages=8 advice=collapse
  fork P1
process P1 forked
thread P1.T0
  peek 0x201000
  read 0x200000
  write 0x209000 6
kthread khugepaged
  collapse P0 0x210000
  collapse P0 0x200000
)");
        RaceSweep s = race_sweep(text, 60);
        EXPECT_EQ(s.bad, 0) << strat << ": " << s.first.check << ": " << s.first.message;
    }
}

// mremap of a PROT_NONE THP: to a PMD-aligned address the huge PMD moves whole, still
// PROT_NONE (move_huge_pmd); off the boundary it splits and its PROT_NONE PTEs move.
// The folio stays large either way and reads back once accessible again.
TEST(ThpProtNone, MremapMovesAProtnoneThp) {
    for (uint64_t to : {0x300000u, 0x301000u}) {
        char ops[512];
        std::snprintf(ops, sizeof ops, R"(  mprotect 0x200000 pages=8 prot=none
  mremap 0x200000 pages=8 new_pages=8 flags=maymove,fixed to=%#lx
  read %#lx
  mprotect %#lx pages=8 prot=rw
  read %#lx
  read %#lx
)", (unsigned long)to, (unsigned long)to + 0x1000, (unsigned long)to, (unsigned long)to + 0x1000,
                      (unsigned long)to);
        bool whole = to % 0x8000 == 0;
        bool protnone = false, large = false;
        RunResult r = run_text(prog("strategy=classic", std::string(kThpProgram) + ops), std::nullopt,
                               [&](mm::Kernel& k, const std::string&, size_t i) {
            if (i != 5) return;
            if (whole) {
                mm::PmdRef pmd = mm::pmd_lookup(k, k.current_mm(), to);
                protnone = pmd && mm::pmd_protnone(mm::pmd_entry(k, pmd));
                mm::Pfn h = huge_pmd_head(k, to);
                large = h != mm::FolioPool::kNoPfn && k.folios[h].order == k.geo.bits;
                return;
            }
            bool all = true;
            for (uint64_t a = to; a < to + 0x8000; a += 0x1000) all = all && mm::pte_protnone(pte_of(k, a));
            protnone = all;
            mm::Pfn p = mm::pte_pfn(pte_of(k, to));
            large = k.folios[mm::page_folio(k.folios, p)].order == k.geo.bits;
        });
        ASSERT_EQ(r.verdict, Verdict::ok) << to << ": " << r.check << ": " << r.message;
        char addr[32];
        std::snprintf(addr, sizeof addr, "%#lx", (unsigned long)to);
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x200000", "0", "ok", "ok", "0", addr, "SIGSEGV",
                                                        "0", "2", "1"})) << to;
        EXPECT_TRUE(protnone) << to;
        EXPECT_TRUE(large) << to;
        EXPECT_EQ(counter(r, "thp_split_pmd"), whole ? 0u : 1u) << to;
        EXPECT_EQ(counter(r, "thp_move_pmd"), whole ? 1u : 0u) << to;
    }
}
