// Each check of DESIGN §7 catches a state broken by hand (through TestRunOptions::after_op,
// a test-only hook, not a mutant) and names itself.
#include <gtest/gtest.h>

#include "test_util.hpp"

#include "mm/kernel.hpp"
#include "mm/pgalloc.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"

using namespace mmrace;
using namespace mmrace::mm;
using mmrace::testing::pte_of;

namespace {

const char* kProgram = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=r flags=private,anon,fixed
  read 0x100000
  mmap 0x200000 pages=2 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x200008 2
  read 0x200000
)";

// Runs kProgram, calling `breakit` once after op `at` of P0.T0.
RunResult run_broken(size_t at, std::function<void(Kernel&)> breakit, bool quiescent = true) {
    TestRunOptions o;
    o.check_quiescent = quiescent;
    o.after_op = [=](Kernel& k, const std::string&, size_t index) {
        if (index == at) breakit(k);
    };
    return run_program(parse_mmr(kProgram), o);
}

}  // namespace

TEST(Checks, CorrectRunPassesEveryCheck) {
    auto r = run_broken(99, [](Kernel&) {});
    EXPECT_EQ(r.verdict, Verdict::ok) << r.check << ": " << r.message;
}

TEST(Checks, WritablePteInReadOnlyVmaIsAnInvariantViolation) {
    auto r = run_broken(1, [](Kernel& k) { pte_of(k, 0x100000) |= _PAGE_RW; });
    EXPECT_EQ(r.verdict, Verdict::violation);
    EXPECT_EQ(r.check, Check::invariant);
    EXPECT_NE(r.message.find("without VM_WRITE"), std::string::npos) << r.message;
}

// Without NUMA hinting a PROT_NONE PTE belongs in a PROT_NONE VMA only.
TEST(Checks, ProtnonePteInAnAccessibleVmaIsAnInvariantViolation) {
    auto r = run_broken(4, [](Kernel& k) {
        pte_t& p = pte_of(k, 0x200000);
        p = (p & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE;
    });
    EXPECT_EQ(r.check, Check::invariant);
    EXPECT_NE(r.message.find("PROT_NONE in an accessible VMA"), std::string::npos) << r.message;
}

TEST(Checks, PteOutsideEveryVmaIsAnInvariantViolation) {
    auto r = run_broken(3, [](Kernel& k) {
        pte_of(k, 0x203000) = pte_mkspecial(mk_pte(kZeroPfn, false));
    });
    EXPECT_EQ(r.check, Check::invariant);
    EXPECT_NE(r.message.find("outside every VMA"), std::string::npos) << r.message;
}

TEST(Checks, SharedFolioMappedWritableIsCaught) {
    auto r = run_broken(3, [](Kernel& k) {
        k.folios[pte_pfn(pte_of(k, 0x200000))].flags &= ~PG_anon_exclusive;
    });
    EXPECT_EQ(r.check, Check::invariant);
    EXPECT_NE(r.message.find("shared"), std::string::npos) << r.message;
}

TEST(Checks, MapcountDisagreeingWithPageTablesIsCaught) {
    auto r = run_broken(3, [](Kernel& k) {
        pte_t& e = pte_of(k, 0x200000);
        e = pte_wrprotect(e);  // so that only the accounting can object
        ++k.folios[pte_pfn(e)].mapcount;
    });
    EXPECT_EQ(r.check, Check::folio_accounting);
    EXPECT_NE(r.message.find("mapcount 2 but 1 PTEs"), std::string::npos) << r.message;
}

TEST(Checks, VmaNotOfItsMmIsAnInvariantViolation) {
    auto r = run_broken(3, [](Kernel& k) { k.current_mm().vma_lookup(0x200000)->detached = true; });
    EXPECT_EQ(r.check, Check::invariant);
    EXPECT_NE(r.message.find("VMA 0x200000-0x202000 is not this mm's"), std::string::npos)
        << r.message;
}

TEST(Checks, PteMappingAPfnNeverAllocatedIsUseAfterFree) {
    auto r = run_broken(3, [](Kernel& k) {
        pte_t& e = pte_of(k, 0x200000);
        e = pte_wrprotect(mk_pte(static_cast<Pfn>(k.folios.high_water() + 5), false));
    });
    EXPECT_EQ(r.check, Check::use_after_free);
    EXPECT_NE(r.message.find("which this run never allocated"), std::string::npos) << r.message;
}

TEST(Checks, ExtraReferenceIsCaught) {
    auto r = run_broken(3, [](Kernel& k) { k.folios.get(pte_pfn(pte_of(k, 0x200000))); });
    EXPECT_EQ(r.check, Check::folio_accounting);
    EXPECT_NE(r.message.find("refcount 2 but mapcount 1"), std::string::npos) << r.message;
}

TEST(Checks, PteMappingAFreedFolioIsUseAfterFree) {
    auto r = run_broken(3, [](Kernel& k) {
        Pfn p = pte_pfn(pte_of(k, 0x200000));
        k.folios[p].mapcount = 0;
        k.folios.put(p);
    });
    EXPECT_EQ(r.check, Check::use_after_free);
}

TEST(Checks, WriteThroughAStaleTlbEntryIsUseAfterFree) {
    // Unmap and free the page by hand without the TLB flush: the next write hits the
    // cached translation.
    auto r = run_broken(3, [](Kernel& k) {
        pte_t& e = pte_of(k, 0x200000);
        Pfn p = pte_pfn(e);
        e = 0;
        k.folios[p].mapcount = 0;
        k.folios.put(p);
    });
    EXPECT_EQ(r.check, Check::use_after_free);
    EXPECT_NE(r.message.find("stale TLB entry"), std::string::npos) << r.message;
}

TEST(Checks, WriteThroughAStaleTlbEntryToAReusedFolio) {
    auto r = run_broken(3, [](Kernel& k) {
        pte_t& e = pte_of(k, 0x200000);
        Pfn p = pte_pfn(e);
        e = 0;
        k.folios[p].mapcount = 0;
        k.folios.put(p);
        Pfn again = k.folios.alloc();  // lowest free pfn first: the same one
        ASSERT_EQ(again, p);
    }, /*quiescent=*/false);
    EXPECT_EQ(r.check, Check::stale_tlb) << r.message;
}

TEST(Checks, RefcountUnderflowIsCaught) {
    auto r = run_broken(3, [](Kernel& k) {
        Pfn p = k.folios.alloc();
        k.folios.put(p);
        k.folios.put(p);
    });
    EXPECT_EQ(r.check, Check::refcount);
}

TEST(Checks, PageTableDoubleFreeIsCaught) {
    auto r = run_broken(3, [](Kernel& k) {
        TableId t = k.tables.alloc(PTE_LEVEL);
        k.tables.free(t);
        k.tables.free(t);
    });
    EXPECT_EQ(r.check, Check::double_free);
}

TEST(Checks, LeakedFolioIsReportedAfterExit) {
    auto r = run_broken(5, [](Kernel& k) { k.folios.alloc(); });
    // The quiescent check sees the unmapped folio's refcount first... unless it is
    // exactly what the accounting expects of an unmapped folio; either check names it.
    EXPECT_EQ(r.verdict, Verdict::violation);
    EXPECT_TRUE(r.check == Check::leak || r.check == Check::folio_accounting) << r.check;
}

TEST(Checks, LeakCheckRunsAfterEveryProcessExited) {
    TestRunOptions o;
    o.check_quiescent = false;
    o.after_op = [](Kernel& k, const std::string&, size_t index) {
        if (index == 5) k.folios.alloc();
    };
    auto r = run_program(parse_mmr(kProgram), o);
    EXPECT_EQ(r.check, Check::leak);
    EXPECT_EQ(r.message, "1 folios left after every process exited");
}
