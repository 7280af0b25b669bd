// The seed 002 lockdep scenario without khugepaged: a sysfs write whose user copy may
// fault under kernfs s_active, and CPU hotplug draining s_active under
// cpu_hotplug_lock.  Alone they form no cycle; a thread that takes cpu_hotplug_lock
// under mmap_lock (what collapse_huge_page did through sum_vm_event) closes it.
#include <gtest/gtest.h>

#include "kernel/cpu.hpp"
#include "mm/mmap_lock.hpp"
#include "test_util.hpp"

namespace mmrace::testing {
namespace {

const char* kScenario = R"(mmrace 1
config strategy=%s
process P0
thread P0.T0
  sysfs_write 0x300000
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 5
  sysfs_write 0x100000
  sysfs_write 0x101000
kthread cpuhp
  cpu_hotplug
  cpu_hotplug
)";

std::string scenario(const char* strategy) {
    char buf[1024];
    std::snprintf(buf, sizeof buf, kScenario, strategy);
    return buf;
}

TEST(Hotplug, SysfsWriteCopiesFromUserMemoryOrFailsWithEfault) {
    for (const char* s : {"classic", "spf", "pervma"}) {
        // cpu_hotplug last: every write sees the file.
        RunResult r = run_text(scenario(s), Schedule{Schedule::Kind::replay, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}});
        ASSERT_EQ(r.verdict, Verdict::ok) << s << ": " << r.message;
        std::vector<std::string> want{"EFAULT", "0x100000", "ok", "ok", "ok", "0", "0"};
        EXPECT_EQ(results(r), want) << s;
        // The second page was never touched: the copy faulted it in (the zero page).
        EXPECT_GE(counter(r, "zero_page_map"), 1u) << s;
    }
}

TEST(Hotplug, NoCycleAndNoDeadlockWithoutTheThirdEdge) {
    int enodev = 0;
    for (const char* s : {"classic", "spf", "pervma"}) {
        for (uint64_t seed = 0; seed < 200; ++seed) {
            bool saw_edges = false;
            RunResult r = run_text(scenario(s), seed % 2 ? random_schedule(seed) : pct_schedule(seed),
                                   [&](mm::Kernel& k, const std::string& t, size_t i) {
                                       if (t == "P0.T0" && i == 4)
                                           saw_edges = k.sync.lockdep().has_dependency(
                                               "s_active", "&mm->mmap_lock");
                                   });
            ASSERT_EQ(r.verdict, Verdict::ok) << s << " seed " << seed << ": " << r.message;
            EXPECT_TRUE(saw_edges) << s << " seed " << seed;
            for (const auto& o : r.ops)
                if (o.result == "ENODEV") ++enodev;
        }
    }
    EXPECT_GT(enodev, 0);  // some schedules write while the CPU is down
}

TEST(Hotplug, MmapLockThenCpuHotplugLockClosesTheCycle) {
    // A test-only hook plays collapse_huge_page's pre-fix order after the writes:
    // cpus_read_lock under mmap_write_lock.
    std::string text = scenario("classic");
    text.insert(text.find("kthread"), "thread P0.T1\n  write 0x100008 1\n");
    RunResult r = run_text(
        text, Schedule{Schedule::Kind::replay, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2}},
        [](mm::Kernel& k, const std::string& t, size_t) {
            if (t != "P0.T1") return;
            mm::mmap_write_lock(k.current_mm());
            kernel::cpus_read_lock(k);
            kernel::cpus_read_unlock(k);
            mm::mmap_write_unlock(k.current_mm());
        });
    EXPECT_EQ(r.verdict, Verdict::lock_order) << r.message;
    EXPECT_NE(r.message.find("cpu_hotplug_lock"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("s_active"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("mmap_lock"), std::string::npos) << r.message;
}

// The mutant: collapse_huge_page takes cpu_hotplug_lock under mmap_write_lock (seed
// 002's sum_vm_event).  Some schedules collapse (the kthread must find the process and
// its pages), and each of those closes the cycle; without the mutant none does.
TEST(Hotplug, KhugepagedHotplugLockOrderIsFound) {
    const std::string body = R"(process P0
thread P0.T0
  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed
  write 0x200000 1
  write 0x201000 2
  madvise 0x200000 pages=8 advice=hugepage
  sysfs_write 0x200008
  read 0x200000
  read 0x200000
  read 0x200000
kthread khugepaged
  smaps P0
  smaps P0
  smaps P0
  smaps P0
  smaps P0
  smaps P0
  collapse P0 0x200000
kthread cpuhp
  cpu_hotplug
)";
    int found = 0, collapsed = 0;
    for (uint64_t seed = 0; seed < 200; ++seed) {
        RunResult bad = run_text("mmrace 1\nconfig mutants=khugepaged_hotplug_lock_order\n" + body,
                                 random_schedule(seed));
        RunResult good = run_text("mmrace 1\n" + body, random_schedule(seed));
        ASSERT_EQ(good.verdict, Verdict::ok) << seed << ": " << good.message;
        if (results(good)[14] == "0") ++collapsed;
        if (bad.verdict == Verdict::lock_order) {
            ++found;
            EXPECT_NE(bad.message.find("cpu_hotplug_lock"), std::string::npos) << bad.message;
        } else {
            EXPECT_EQ(bad.verdict, Verdict::ok) << bad.message;
        }
    }
    EXPECT_GT(collapsed, 0);
    EXPECT_GT(found, 0);
}

}  // namespace
}  // namespace mmrace::testing
