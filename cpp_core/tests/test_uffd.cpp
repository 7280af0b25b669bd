// userfaultfd: registration, MISSING and WP userfaults served by a handler thread,
// uffd-wp bits across fork and swap, mmap_changing against fork and mremap, and the
// mutant of df2cc96e7701.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "fault/fault.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/userfaultfd.hpp"
#include "program/generate/workload.hpp"
#include "test_util.hpp"

namespace mmrace {
namespace {

using namespace testing;

const char* const kStrategies[] = {"strategy=classic", "strategy=spf", "strategy=pervma",
                                   "strategy=pervma vma_lock=uffd",
                                   "strategy=pervma vma_lock=swapin,uffd"};

std::string with_config(const std::string& config, const std::string& body) {
    return "mmrace 1\nconfig " + config + "\n" + body;
}

// MISSING: the faulting reads and writes wait for the handler, whose UFFDIO_COPY fills
// the page with V.
const char* const kMissing = R"(process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=2 mode=missing
  read 0x100008
  write 0x101000 5
  read 0x101008
  read 0x101000
thread P0.T1
  uffd_serve 2 value=7
)";

TEST(Uffd, MissingFaultIsServedWithTheHandlersValueUnderEveryStrategy) {
    for (const char* config : kStrategies) {
        RunResult r = run_text(with_config(config, kMissing));
        ASSERT_EQ(r.verdict, Verdict::ok) << config << ": " << r.check << ": " << r.message;
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "0", "7", "ok", "7", "5", "0"}))
            << config;
        EXPECT_EQ(counter(r, "uffd_fault"), 2u) << config;
        EXPECT_EQ(counter(r, "uffd_copy"), 2u) << config;
        for (uint64_t seed = 0; seed < 150; ++seed) {
            RunResult s = run_text(with_config(config, kMissing),
                                   seed % 2 ? random_schedule(seed) : pct_schedule(seed));
            ASSERT_EQ(s.verdict, Verdict::ok) << config << " seed " << seed << ": " << s.message;
            EXPECT_EQ(results(s)[2], "7");
            EXPECT_EQ(results(s)[4], "7");
            EXPECT_EQ(results(s)[5], "5");
        }
    }
}

TEST(Uffd, SpfGivesUpOnUffdVmasAndPervmaFallsBackUnless66) {
    RunResult spf = run_text(with_config("strategy=spf", kMissing));
    ASSERT_EQ(spf.verdict, Verdict::ok);
    EXPECT_GE(counter(spf, "spf_vma_notsup"), 1u);  // the write, once the copy made an anon_vma
    EXPECT_EQ(counter(spf, "spf"), 0u);
    RunResult v64 = run_text(with_config("strategy=pervma", kMissing));
    ASSERT_EQ(v64.verdict, Verdict::ok);
    EXPECT_EQ(counter(v64, "vma_lock_retry"), 0u);
    EXPECT_GE(counter(v64, "vma_lock_abort"), 2u);
    // 6.6: the write's userfault runs under the VMA lock, drops it and retries.
    RunResult v66 = run_text(with_config("strategy=pervma vma_lock=uffd", kMissing));
    ASSERT_EQ(v66.verdict, Verdict::ok);
    EXPECT_EQ(counter(v66, "vma_lock_retry"), 1u);
}

TEST(Uffd, WpFaultWaitsUntilUnprotectedAndKeepsContent) {
    const char* text = R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 3
  uffd_register 0x100000 pages=1 mode=wp
  uffd_wp 0x100000 pages=1 on
  read 0x100000
  write 0x100008 4
  read 0x100000
thread P0.T1
  uffd_serve 1 value=9
)";
    for (const char* config : kStrategies) {
        bool checked = false;
        RunResult r = run_text(with_config(config, text), std::nullopt,
                               [&](mm::Kernel& k, const std::string& t, size_t i) {
                                   if (t != "P0.T0" || i != 3) return;
                                   mm::pte_t pte = pte_of(k, 0x100000);
                                   EXPECT_TRUE(mm::pte_uffd_wp(pte));
                                   EXPECT_FALSE(mm::pte_write(pte));
                                   checked = true;
                               });
        ASSERT_EQ(r.verdict, Verdict::ok) << config << ": " << r.message;
        EXPECT_TRUE(checked);
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "0", "0", "3", "ok", "3", "0"}))
            << config;
        EXPECT_EQ(counter(r, "uffd_fault"), 1u) << config;
        EXPECT_EQ(counter(r, "uffd_copy"), 0u) << config;
    }
}

TEST(Uffd, MprotectNeverMakesAUffdWpPteWritable) {
    const char* text = R"(mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 3
  uffd_register 0x100000 pages=1 mode=wp
  uffd_wp 0x100000 pages=1 on
  mprotect 0x100000 pages=1 prot=r
  mprotect 0x100000 pages=1 prot=rw
  write 0x100000 4
thread P0.T1
  uffd_serve 1 value=9
)";
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 5) {
            EXPECT_TRUE(mm::pte_uffd_wp(pte_of(k, 0x100000)));
            EXPECT_FALSE(mm::pte_write(pte_of(k, 0x100000)));
        }
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(counter(r, "uffd_fault"), 1u);  // the write still reached the handler
}

// The child of a fork keeps its VMA's WP registration (EVENT_FORK) and so the uffd-wp
// bit: its write COWs only after its own handler un-protects.  Swap keeps the bit too.
TEST(Uffd, UffdWpSurvivesForkAndSwap) {
    const char* text = R"(mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 3
  uffd_register 0x100000 pages=1 mode=wp
  uffd_wp 0x100000 pages=1 on
  madvise 0x100000 pages=1 advice=pageout
  fork P1
  read 0x100000
  write 0x100000 4
  read 0x100000
thread P0.T1
  uffd_serve 1 value=9
process P1 forked
thread P1.T0
  write 0x100000 5
  read 0x100000
thread P1.T1
  uffd_serve 1 value=9
)";
    for (const char* config : kStrategies) {
        int checks = 0;
        RunResult r = run_text(with_config(config, std::string(text).substr(std::string(text).find("process"))),
                               std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
            if (t != "P0.T0") return;
            if (i == 4) {  // swapped out: the swap PTE carries the bit
                mm::pte_t pte = pte_of(k, 0x100000);
                if (mm::is_swap_pte(pte)) {
                    EXPECT_TRUE(mm::pte_swp_uffd_wp(pte));
                    ++checks;
                }
            }
            if (i == 5) {  // the child's copy of the PTE keeps it
                mm::mm_struct* child = k.processes[1].mm;
                mm::TableId tb = mm::pte_table_lookup(k, *child, 0x100000);
                ASSERT_NE(tb, mm::kNoTable);
                mm::pte_t pte = k.tables[tb].entries[k.geo.index(0x100000, mm::PTE_LEVEL)];
                EXPECT_TRUE(mm::pte_uffd_wp(pte) || mm::pte_swp_uffd_wp(pte));
                ++checks;
            }
            if (i == 6) {  // swapped in: present, write-protected, still uffd-wp
                mm::pte_t pte = pte_of(k, 0x100000);
                EXPECT_TRUE(mm::pte_uffd_wp(pte));
                EXPECT_FALSE(mm::pte_write(pte));
                ++checks;
            }
        });
        ASSERT_EQ(r.verdict, Verdict::ok) << config << ": " << r.check << ": " << r.message;
        EXPECT_GE(checks, 2) << config;
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "0", "0", "0", "P1", "3",
                                                        "ok", "4", "0", "ok", "5", "0"}))
            << config;
        EXPECT_EQ(counter(r, "uffd_fault"), 2u) << config;  // one in each process
    }
}

TEST(Uffd, ChildWithoutHandlerRunsUnregistered) {
    const char* text = R"(mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 3
  uffd_register 0x100000 pages=1 mode=wp
  uffd_wp 0x100000 pages=1 on
  fork P1
thread P0.T1
  uffd_serve 1 value=9
process P1 forked
thread P1.T0
  write 0x100000 5
  read 0x100000
)";
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "ok", "0", "0", "P1", "0", "ok", "5"}));
    EXPECT_EQ(counter(r, "uffd_fault"), 0u);
}

TEST(Uffd, RegisterSplitsAndReleaseMergesBack) {
    const char* text = R"(mmrace 1
config strategy=pervma
process P0
thread P0.T0
  mmap 0x100000 pages=3 prot=rw flags=private,anon,fixed
  uffd_register 0x101000 pages=1 mode=missing
  uffd_register 0x101000 pages=1 mode=missing
thread P0.T1
  uffd_serve 5 value=1
)";
    size_t after_register = 0, after_release = 0;
    auto vmas = [](mm::Kernel& k) {
        size_t n = 0;
        for (auto& entry : k.current_mm().mm_mt) n += entry.second != nullptr;
        return n;
    };
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string& t, size_t i) {
        if (t == "P0.T0" && i == 2) after_register = vmas(k);
        if (t == "P0.T1" && i == 0) after_release = vmas(k);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(after_register, 3u);
    EXPECT_EQ(after_release, 1u);
}

TEST(Uffd, RegisterAndWriteprotectErrors) {
    const char* text = R"(mmrace 1
config strategy=classic
file F0 pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  mmap 0x104000 pages=1 prot=rw flags=shared,anon,fixed
  mmap 0x106000 pages=1 prot=r flags=shared,file:F0:0,fixed
  uffd_register 0x200000 pages=1 mode=missing
  uffd_register 0x104000 pages=1 mode=missing
  uffd_register 0x106000 pages=1 mode=wp
  uffd_register 0x100000 pages=4 mode=wp
  uffd_wp 0x100000 pages=4 on
  uffd_wp 0x104000 pages=1 on
  uffd_wp 0x108000 pages=1 on
thread P0.T1
  uffd_serve 1 value=1
)";
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r),
              (std::vector<std::string>{"0x100000", "0x104000", "0x106000", "EINVAL", "EINVAL",
                                        "EINVAL", "0", "0", "ENOENT", "ENOENT", "0"}));
    // Without a userfaultfd there is nothing to write-protect through.
    RunResult none = run_text(R"(mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_wp 0x100000 pages=1 on
)");
    EXPECT_EQ(results(none), (std::vector<std::string>{"0x100000", "EINVAL"}));
}

TEST(Uffd, HandlerWithLargerCountReturnsWhenNoThreadCanFault) {
    const char* text = R"(mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  read 0x100000
thread P0.T1
  uffd_serve 1000 value=6
thread P0.T2
  uffd_serve 1000 value=6
)";
    for (uint64_t seed = 0; seed < 200; ++seed) {
        RunResult r = run_text(text, random_schedule(seed));
        ASSERT_EQ(r.verdict, Verdict::ok) << seed << ": " << r.message;
        EXPECT_EQ(results(r)[2], "6");
    }
}

// A userfault that no handler will ever serve waits forever: the program's deadlock.
TEST(Uffd, FaultWithoutAnyHandlerIsTheProgramsDeadlock) {
    const char* text = R"(mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  read 0x100000
)";
    RunResult r = run_text(text);
    EXPECT_EQ(r.verdict, Verdict::deadlock);
    EXPECT_NE(r.message.find("userfault"), std::string::npos) << r.message;
}

// The userfault dropped mmap_lock; the VMA went meanwhile (the copy finds no VMA:
// ENOENT, the handler wakes the fault).  The retry looks the VMA up again: SIGSEGV.
TEST(Uffd, RetryAfterAUserfaultLooksTheVmaUpAgain) {
    const char* body = R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  read 0x100000
thread P0.T1
  munmap 0x100000 pages=1
thread P0.T2
  uffd_serve 1 value=3
)";
    for (const char* config : kStrategies) {
        RunResult r = run_text(with_config(config, body));
        ASSERT_EQ(r.verdict, Verdict::ok) << config << ": " << r.message;
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "0", "SIGSEGV", "0", "0"})) << config;
        EXPECT_EQ(counter(r, "uffd_fault"), 1u);
        EXPECT_EQ(counter(r, "fault_retry") + counter(r, "vma_lock_retry"), 1u) << config;
    }
}

// fork waits until the monitor reads its event (userfaultfd_event_wait_completion); with
// no handler in the process that is forever, as on a real kernel.
TEST(Uffd, ForkWaitsForTheMonitorToReadItsEvent) {
    const char* text = R"(mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  fork P1
thread P0.T1
  uffd_serve 1 value=1
process P1 forked
thread P1.T0
  read 0x100000
)";
    RunResult r = run_text(text);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "0", "P1", "0", "0"}));
    std::string no_handler = text;
    no_handler.erase(no_handler.find("thread P0.T1"), std::string("thread P0.T1\n  uffd_serve 1 value=1\n").size());
    RunResult stuck = run_text(no_handler);
    EXPECT_EQ(stuck.verdict, Verdict::deadlock);
    EXPECT_NE(stuck.message.find("userfaultfd event"), std::string::npos) << stuck.message;
}

// A fork or mremap racing a MISSING userfault: the handler's UFFDIO_COPY sees
// mmap_changing (EAGAIN) in some schedules and retries; every schedule is ok.  With
// df2cc96e7701 undone the copy lands while the event is under way.
const char* const kForkRace = R"(process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=2 mode=missing
  read 0x100000
thread P0.T1
  uffd_serve 1 value=7
thread P0.T2
  fork P1
process P1 forked
thread P1.T0
  read 0x100000
thread P1.T1
  uffd_serve 1 value=8
)";

const char* const kRemapRace = R"(process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=2 mode=missing
  read 0x101000
  read 0x301000
thread P0.T1
  uffd_serve 2 value=7
thread P0.T2
  mremap 0x100000 pages=1 new_pages=1 flags=maymove,fixed to=0x300000
)";

TEST(Uffd, MmapChangingMakesCopyRetryDuringForkAndMremap) {
    for (const char* body : {kForkRace, kRemapRace}) {
        uint64_t eagain = 0, child7 = 0, child8 = 0;
        for (uint64_t seed = 0; seed < 400; ++seed) {
            RunResult r = run_text(with_config("strategy=classic", body),
                                   seed % 2 ? random_schedule(seed) : pct_schedule(seed));
            ASSERT_EQ(r.verdict, Verdict::ok) << seed << ": " << r.check << ": " << r.message;
            eagain += counter(r, "uffd_eagain");
            if (body == kForkRace) {
                EXPECT_EQ(results(r)[2], "7");
                if (results(r)[5] == "7") ++child7;  // copied before the fork
                if (results(r)[5] == "8") ++child8;  // the child's own handler
            }
        }
        EXPECT_GT(eagain, 0u);
        if (body == kForkRace) {
            EXPECT_GT(child7, 0u);
            EXPECT_GT(child8, 0u);
        }
    }
}

TEST(Uffd, SameScheduleSameTrace) {
    for (uint64_t seed = 0; seed < 20; ++seed)
        for (const char* body : {kForkRace, kRemapRace, kMissing}) {
            std::string text = with_config("strategy=pervma vma_lock=uffd", body);
            RunResult a = run_text(text, random_schedule(seed));
            RunResult b = run_text(text, random_schedule(seed));
            EXPECT_EQ(a.trace_hash, b.trace_hash);
            EXPECT_EQ(results(a), results(b));
        }
}

TEST(Uffd, CopyIgnoringMmapChangingIsCaught) {
    for (const char* body : {kForkRace, kRemapRace}) {
        int caught = 0;
        for (uint64_t seed = 0; seed < 400 && !caught; ++seed) {
            Schedule s = seed % 2 ? random_schedule(seed) : pct_schedule(seed);
            RunResult bad = run_text(
                with_config("strategy=classic mutants=uffd_copy_ignores_mmap_changing", body), s);
            if (bad.verdict == Verdict::ok) continue;
            ASSERT_EQ(bad.verdict, Verdict::violation) << bad.message;
            EXPECT_EQ(bad.check, Check::uffd_event_order) << bad.message;
            // The same schedule on the correct model is fine.
            Program p = parse_mmr(with_config("strategy=classic", body));
            RunOptions o;
            o.schedule = s;
            EXPECT_EQ(run_program(p, o).verdict, Verdict::ok);
            ++caught;
        }
        EXPECT_EQ(caught, 1) << body;
    }
}

}  // namespace
}  // namespace mmrace

namespace mmrace {
namespace {

// The soak's workloads register ranges, write-protect pages and serve userfaults; every
// schedule of them is ok on the correct model (the soak runs many more).
TEST(Uffd, RandomWorkloadsExerciseUserfaultsAndStayOk) {
    uint64_t faults = 0, copies = 0, eagain = 0, handlers = 0;
    for (const char* strategy : {"classic", "spf", "pervma"}) {
        WorkloadShape shape;
        shape.strategy = strategy;
        for (uint64_t seed = 0; seed < 300; ++seed) {
            std::string text = random_workload(seed, shape);
            handlers += text.find("uffd_serve") != std::string::npos;
            Program p = parse_mmr(text);
            p.config.vma_lock_uffd = p.config.vma_lock_swapin = std::string(strategy) == "pervma";
            RunOptions o;
            o.schedule = seed % 2 ? random_schedule(seed) : pct_schedule(seed);
            RunResult r = run_program(p, o);
            ASSERT_EQ(r.verdict, Verdict::ok) << strategy << " seed " << seed << ": " << r.check << ": "
                                       << r.message << "\n" << print_mmr(p) << r.schedule;
            faults += counter(r, "uffd_fault");
            copies += counter(r, "uffd_copy");
            eagain += counter(r, "uffd_eagain");
        }
    }
    EXPECT_GT(handlers, 300u);
    EXPECT_GT(faults, 100u);
    EXPECT_GT(copies, 50u);
    std::printf("uffd in workloads: %llu handlers, %llu userfaults, %llu copies, %llu EAGAIN\n",
                (unsigned long long)handlers, (unsigned long long)faults,
                (unsigned long long)copies, (unsigned long long)eagain);
}

}  // namespace
}  // namespace mmrace

namespace mmrace {
namespace {

TEST(Uffd, ReproducerFailsWithTheMutantAndPassesWithout) {
    std::ifstream f(std::string(MMRACE_SOURCE_DIR) +
                    "/examples/mutants/uffd_copy_ignores_mmap_changing.mmr");
    std::stringstream text;
    text << f.rdbuf();
    RunResult bad = run_text(text.str());
    EXPECT_EQ(bad.verdict, Verdict::violation);
    EXPECT_EQ(bad.check, Check::uffd_event_order) << bad.message;
    std::string good = text.str();
    good.erase(good.find(" mutants="), std::string(" mutants=uffd_copy_ignores_mmap_changing").size());
    RunResult ok = run_text(good);
    ASSERT_EQ(ok.verdict, Verdict::ok) << ok.message;
    // Correct: the copy waited (EAGAIN) for the fork event; the parent got the
    // handler's page, the child faulted on its own and got its handler's.
    EXPECT_EQ(results(ok), (std::vector<std::string>{"0x100000", "0", "7", "0", "P1", "8", "0"}));
    EXPECT_EQ(counter(ok, "uffd_eagain"), 1u);
}

}  // namespace
}  // namespace mmrace

namespace mmrace {
namespace {

// No user fault path of the model lacks FAULT_FLAG_ALLOW_RETRY (the speculative fault
// drops it but gives up on uffd VMAs first), so the fault is raised by hand, as a
// get_user_pages without FOLL_ALLOW_RETRY of 2014 would: it is SIGBUS, without waiting
// and with mmap_lock still held.
TEST(Uffd, UserfaultWithoutAllowRetryIsSigbus) {
    const char* text = R"(mmrace 1
config strategy=classic
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
)";
    uint32_t ret = 0;
    RunResult r = run_text(text, std::nullopt, [&](mm::Kernel& k, const std::string&, size_t i) {
        if (i != 1) return;
        mm::mm_struct& mm = k.current_mm();
        mm::mmap_read_lock(mm);
        mm::vm_area_struct* vma = mm.find_vma(0x100000);
        ret = fault::handle_mm_fault(k, vma, 0x100000, fault::FAULT_FLAG_USER);
        mm::mmap_assert_locked(mm);
        mm::mmap_read_unlock(mm);
    });
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    EXPECT_TRUE(ret & fault::VM_FAULT_SIGBUS);
    EXPECT_EQ(counter(r, "uffd_fault_sigbus"), 1u);
    EXPECT_EQ(counter(r, "uffd_fault"), 0u);
}

}  // namespace
}  // namespace mmrace

namespace mmrace {
namespace {

// A kernel-mode fault (copy_from_user in a sysfs write, no FAULT_FLAG_USER) in a
// registered range is a userfault too (no UFFD_USER_MODE_ONLY): it waits, holding
// kernfs s_active, until the handler serves it.
TEST(Uffd, KernelModeCopyFromUserWaitsForTheHandler) {
    for (const char* config : kStrategies) {
        RunResult r = run_text(with_config(config, R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  sysfs_write 0x100000
  read 0x100008
thread P0.T1
  uffd_serve 1 value=4
)"));
        ASSERT_EQ(r.verdict, Verdict::ok) << config << ": " << r.message;
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "0", "ok", "4", "0"})) << config;
        EXPECT_EQ(counter(r, "uffd_fault"), 1u) << config;
    }
}

}  // namespace
}  // namespace mmrace

namespace mmrace {
namespace {

// Issue 14: the handler's uffd_serve returns (count 0) and closes the uffd while the
// other thread registers and forks.  Before the fix the registration could land on a
// context that was being released, and fork (dup_userfaultfd) or a fault
// (handle_userfault) found a registered VMA without a context: a ModelError.
std::string closing_handler(const char* config, bool read_before_fork) {
    return with_config(config, std::string(R"(process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
)") + (read_before_fork ? "  read 0x100000\n" : "") + R"(  fork P1
thread P0.T1
  uffd_serve 0 value=7
process P1 forked
thread P1.T0
  read 0x100000
)");
}

// Closed for good: once the last handler returned, the process's uffd is gone, so a
// later registration is EBADF (an ioctl on a closed fd) and fork has no event to wait
// for; the child reads zero.
TEST(Uffd, TheUffdStaysClosedAfterItsLastHandlerReturns) {
    for (const char* config : kStrategies) {
        RunResult r = run_text(closing_handler(config, false), parse_schedule("replay 1"));
        ASSERT_EQ(r.verdict, Verdict::ok) << config << ": " << r.message;
        EXPECT_EQ(results(r), (std::vector<std::string>{"0x100000", "EBADF", "P1", "0", "0"}))
            << config;
        RunResult wp = run_text(with_config(config, R"(process P0
thread P0.T0
  uffd_serve 0 value=1
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_wp 0x100000 pages=1 on
  uffd_serve 1 value=1
  uffd_register 0x100000 pages=1 mode=wp
)"));
        ASSERT_EQ(wp.verdict, Verdict::ok) << config << ": " << wp.message;
        EXPECT_EQ(results(wp), (std::vector<std::string>{"0", "0x100000", "EBADF", "0", "EBADF"}))
            << config;
    }
}

// Registered first, then closed: the registration ends with the uffd, so a fork after
// it copies none and the fault in the child is an ordinary one.  Every interleaving of
// the registration, the close and the fork is a valid run of the model.
TEST(Uffd, ARegistrationNeverOutlivesItsContext) {
    for (const char* config : kStrategies)
        for (bool read_first : {false, true}) {
            std::string text = closing_handler(config, read_first);
            RunResult r = run_text(text, parse_schedule("replay 0 0 1"));
            ASSERT_EQ(r.verdict, Verdict::ok) << config << ": " << r.message;
            RaceSweep s = race_sweep(text, 400);
            EXPECT_EQ(s.bad, 0) << config << ": " << s.first.verdict << " " << s.first.message
                                << "\n" << s.first.schedule;
        }
}

}  // namespace
}  // namespace mmrace
