// lockdep of the sim backend: dependency cycles on schedules that do not deadlock, the
// deadlock verdict on the schedule that does, subclasses, trylocks, recursive readers,
// held-lock assertions, unlock balance, sleeping in atomic context, locks held at exit.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"
#include "sync/sync.hpp"

using namespace mmrace;
using namespace mmrace::sync;

namespace {

// A runtime, its sync domain, and replay/random runs.
struct Harness {
    rt::Runtime rt;
    SyncDomain dom{rt};

    rt::Tid add(std::string name, std::function<void()> body) {
        return rt.add_thread(std::move(name), std::move(body));
    }
    rt::RunOutcome replay(std::vector<uint64_t> schedule) {
        auto p = rt::make_replay_policy(std::move(schedule));
        return dom.run(*p);
    }
    rt::RunOutcome random(uint64_t seed) {
        auto p = rt::make_random_policy(seed);
        return dom.run(*p);
    }
};

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// The AB/BA program: T0 takes A then B, T1 takes B then A.
struct AbBa : Harness {
    SpinLock a{"lock A"}, b{"lock B"};
    AbBa() {
        add("T0", [this] {
            a.spin_lock(MMR_SITE("t0_lock_a"));
            b.spin_lock(MMR_SITE("t0_lock_b"));
            b.spin_unlock();
            a.spin_unlock();
        });
        add("T1", [this] {
            b.spin_lock(MMR_SITE("t1_lock_b"));
            a.spin_lock(MMR_SITE("t1_lock_a"));
            a.spin_unlock();
            b.spin_unlock();
        });
    }
};

}  // namespace

// ---------------------------------------------------------------------------------
// Circular dependencies

TEST(Lockdep, AbBaOnASerialScheduleIsLockOrderWithBothChains) {
    AbBa p;
    // No list: T0 runs to completion, then T1.  Nothing deadlocks, but T1's A under B
    // closes the cycle A -> B -> A.
    auto out = p.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::lock_order) << out.message;
    EXPECT_EQ(out.check, Check::lockdep);
    const std::string& m = out.message;
    EXPECT_TRUE(contains(m, "circular locking dependency")) << m;
    // The existing chain: T0 took B at t0_lock_b while holding A from t0_lock_a.
    EXPECT_TRUE(contains(m, "lock A -> lock B: T0 acquired lock B at t0_lock_b while holding "
                            "lock A (acquired at t0_lock_a)"))
        << m;
    // The new dependency: T1 took A at t1_lock_a while holding B from t1_lock_b.
    EXPECT_TRUE(contains(m, "lock B -> lock A: T1 acquired lock A at t1_lock_a while holding "
                            "lock B (acquired at t1_lock_b)"))
        << m;
}

TEST(Lockdep, AbBaOnTheDeadlockingScheduleIsDeadlockWithTheWaitForCycle) {
    AbBa p;
    // d0 T0 starts; d1 T0 takes A; d2 T1 starts; d3 T1 takes B; d4 T1 blocks on A,
    // then T0 blocks on B and nothing can run.
    auto out = p.replay({0, 0, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::deadlock) << out.message;
    EXPECT_TRUE(contains(out.message, "T0 waits for lock B held by T1")) << out.message;
    EXPECT_TRUE(contains(out.message, "T1 waits for lock A held by T0")) << out.message;
}

TEST(Lockdep, EveryScheduleOfAbBaIsReported) {
    AbBa p;
    for (uint64_t seed = 0; seed < 200; ++seed) {
        auto out = p.random(seed);
        ASSERT_TRUE(out.verdict == rt::Verdict::lock_order || out.verdict == rt::Verdict::deadlock)
            << "seed " << seed << ": " << rt::verdict_name(out.verdict);
    }
}

TEST(Lockdep, ThreeLockCycleShowsTheWholeChain) {
    Harness h;
    SpinLock a{"A"}, b{"B"}, c{"C"};
    auto nest = [](SpinLock& x, SpinLock& y) {
        x.spin_lock();
        y.spin_lock();
        y.spin_unlock();
        x.spin_unlock();
    };
    h.add("T0", [&] { nest(a, b); });
    h.add("T1", [&] { nest(b, c); });
    h.add("T2", [&] { nest(c, a); });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::lock_order) << out.message;
    EXPECT_TRUE(contains(out.message, "A -> B: T0")) << out.message;
    EXPECT_TRUE(contains(out.message, "B -> C: T1")) << out.message;
    EXPECT_TRUE(contains(out.message, "C -> A: T2")) << out.message;
}

TEST(Lockdep, RwsemReadersInOppositeOrdersAreReported) {
    // down_read is not a recursive read: a queued writer between two readers deadlocks.
    Harness h;
    RwSem a{"sem A"}, b{"sem B"};
    h.add("T0", [&] { a.down_read(); b.down_read(); b.up_read(); a.up_read(); });
    h.add("T1", [&] { b.down_read(); a.down_read(); a.up_read(); b.up_read(); });
    auto out = h.replay({});
    EXPECT_EQ(out.verdict, rt::Verdict::lock_order) << out.message;
}

TEST(Lockdep, RecursiveReadersCloseNoStrongCycle) {
    // rwlock_t readers never wait for a queued writer: read_lock(A); spin_lock(B) against
    // spin_lock(B); read_lock(A) cannot deadlock, and lockdep (strong paths) agrees.
    for (bool recursive : {true, false}) {
        Harness h;
        RwLock a{"rwlock A", recursive};
        SpinLock b{"spin B"};
        h.add("T0", [&] { a.read_lock(); b.spin_lock(); b.spin_unlock(); a.read_unlock(); });
        h.add("T1", [&] { b.spin_lock(); a.read_lock(); a.read_unlock(); b.spin_unlock(); });
        auto out = h.replay({});
        if (recursive)
            EXPECT_EQ(out.verdict, rt::Verdict::ok) << out.message;
        else  // qrwlock in process context: a reader queues behind a waiting writer
            EXPECT_EQ(out.verdict, rt::Verdict::lock_order) << out.message;
    }
}

TEST(Lockdep, RecursiveReadCycleThroughAWriterIsReported) {
    // With a writer in the cycle it is strong again: T0 read A -> B, T1 B -> write A.
    Harness h;
    RwLock a{"rwlock A"};
    SpinLock b{"spin B"};
    h.add("T0", [&] { a.read_lock(); b.spin_lock(); b.spin_unlock(); a.read_unlock(); });
    h.add("T1", [&] { b.spin_lock(); a.write_lock(); a.write_unlock(); b.spin_unlock(); });
    auto out = h.replay({});
    EXPECT_EQ(out.verdict, rt::Verdict::lock_order) << out.message;
}

// ---------------------------------------------------------------------------------
// Classes and subclasses

TEST(Lockdep, NestedSubclassOfTheSameClassIsNotReported) {
    Harness h;
    RwSem mm1{"&mm->mmap_lock"}, mm2{"&mm->mmap_lock"};
    SpinLock pt1{"ptlock"}, pt2{"ptlock"};
    h.add("fork", [&] {
        // dup_mmap: the parent's mmap_lock, then the child's nested; copy_pte_range: the
        // destination PTL, then the source PTL nested.
        mm1.down_write();
        mm2.down_write_nested(SINGLE_DEPTH_NESTING);
        pt1.spin_lock();
        pt2.spin_lock_nested(SINGLE_DEPTH_NESTING);
        pt2.spin_unlock();
        pt1.spin_unlock();
        mm2.up_write();
        mm1.up_write();
    });
    auto out = h.replay({});
    EXPECT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_TRUE(h.dom.lockdep().has_dependency("&mm->mmap_lock", "&mm->mmap_lock/1"));
}

TEST(Lockdep, SameClassWithoutNestingIsReported) {
    Harness h;
    RwSem mm1{"&mm->mmap_lock"}, mm2{"&mm->mmap_lock"};
    h.add("fork", [&] {
        mm1.down_write(MMR_SITE("dup_mmap_parent"));
        mm2.down_write(MMR_SITE("dup_mmap_child"));
        mm2.up_write();
        mm1.up_write();
    });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::lock_order) << out.message;
    EXPECT_EQ(out.check, Check::lockdep);
    EXPECT_TRUE(contains(out.message, "possible recursive locking detected")) << out.message;
    EXPECT_TRUE(contains(out.message, "dup_mmap_parent")) << out.message;
    EXPECT_TRUE(contains(out.message, "dup_mmap_child")) << out.message;
}

TEST(Lockdep, RecursiveReadOfTheSameClassIsAllowed) {
    Harness h;
    RwLock l{"rwlock"};
    h.add("T", [&] { l.read_lock(); l.read_lock(); l.read_unlock(); l.read_unlock(); });
    EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
}

TEST(Lockdep, TrylockAddsNoDependency) {
    Harness h;
    SpinLock a{"lock A"}, b{"lock B"};
    h.add("T0", [&] {
        a.spin_lock();
        ASSERT_TRUE(b.spin_trylock());
        b.spin_unlock();
        a.spin_unlock();
    });
    h.add("T1", [&] {
        b.spin_lock();
        a.spin_lock();
        a.spin_unlock();
        b.spin_unlock();
    });
    auto out = h.replay({});
    EXPECT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_FALSE(h.dom.lockdep().has_dependency("lock A", "lock B"));
    EXPECT_TRUE(h.dom.lockdep().has_dependency("lock B", "lock A"));
}

TEST(Lockdep, LockTakenUnderATrylockDependsOnEverythingBelow) {
    // check_prevs_add walks past trylock entries to the first blocking one.
    Harness h;
    SpinLock a{"A"}, b{"B"}, c{"C"};
    h.add("T", [&] {
        a.spin_lock();
        ASSERT_TRUE(b.spin_trylock());
        c.spin_lock();
        c.spin_unlock();
        b.spin_unlock();
        a.spin_unlock();
    });
    EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
    EXPECT_TRUE(h.dom.lockdep().has_dependency("B", "C"));
    EXPECT_TRUE(h.dom.lockdep().has_dependency("A", "C"));
    EXPECT_FALSE(h.dom.lockdep().has_dependency("A", "B"));
}

// ---------------------------------------------------------------------------------
// Assertions and balance

TEST(Lockdep, AssertHeldCatchesAMissingLock) {
    Harness h;
    RwSem sem{"&mm->mmap_lock"};
    h.add("munmap", [&] { lockdep_assert_held(sem, LockMode::any, MMR_SITE("mmap_assert_locked")); });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::lockdep_assert_held);
    EXPECT_TRUE(contains(out.message, "&mm->mmap_lock")) << out.message;
    EXPECT_TRUE(contains(out.message, "mmap_assert_locked")) << out.message;
    EXPECT_TRUE(contains(out.message, "not held")) << out.message;
}

TEST(Lockdep, AssertHeldChecksTheMode) {
    Harness h;
    RwSem sem{"&mm->mmap_lock"};
    bool read_ok = false;
    h.add("T", [&] {
        sem.down_read();
        lockdep_assert_held(sem);
        lockdep_assert_held_read(sem);
        read_ok = lockdep_is_held(sem);
        lockdep_assert_held_write(sem, MMR_SITE("mmap_assert_write_locked"));
    });
    auto out = h.replay({});
    EXPECT_TRUE(read_ok);
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::lockdep_assert_held);
    EXPECT_TRUE(contains(out.message, "held for read")) << out.message;
}

TEST(Lockdep, AssertHeldIsPerThread) {
    Harness h;
    SpinLock ptl{"ptlock"};
    h.add("T0", [&] {
        ptl.spin_lock();
        rt::current_runtime()->yield(MMR_SITE("work"), rt::Ev::yield);
        ptl.spin_unlock();
    });
    h.add("T1", [&] { lockdep_assert_held(ptl, LockMode::any, MMR_SITE("set_pte")); });
    // T0 holds the PTL when T1 asserts: still a violation, it is T0's.
    auto out = h.replay({0, 0, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::violation) << out.message;
    EXPECT_TRUE(contains(out.message, "T1")) << out.message;
}

TEST(Lockdep, BadUnlockBalance) {
    {
        Harness h;
        SpinLock l{"lock"};
        h.add("T", [&] { l.spin_unlock(); });
        auto out = h.replay({});
        EXPECT_EQ(out.verdict, rt::Verdict::violation);
        EXPECT_EQ(out.check, Check::bad_unlock_balance);
    }
    {
        Harness h;
        RwSem s{"sem"};
        h.add("T", [&] { s.up_read(); });
        EXPECT_EQ(h.replay({}).check, Check::bad_unlock_balance);
    }
    {
        // up_write by a thread that is not the owner.
        Harness h;
        RwSem s{"sem"};
        h.add("owner", [&] {
            s.down_write();
            rt::current_runtime()->yield(MMR_SITE("work"), rt::Ev::yield);
            s.up_write();
        });
        h.add("other", [&] { s.up_write(); });
        auto out = h.replay({0, 0, 1});
        EXPECT_EQ(out.check, Check::bad_unlock_balance);
        EXPECT_TRUE(contains(out.message, "write-held by owner")) << out.message;
    }
    {
        Harness h;
        h.add("T", [] { rcu_read_unlock(); });
        EXPECT_EQ(h.replay({}).check, Check::bad_unlock_balance);
    }
}

// ---------------------------------------------------------------------------------
// might_sleep

TEST(Lockdep, MightSleepUnderSpinlock) {
    Harness h;
    SpinLock ptl{"ptlock"};
    RwSem sem{"&mm->mmap_lock"};
    h.add("T", [&] {
        ptl.spin_lock();
        sem.down_read(MMR_SITE("lock_mm_and_find_vma"));
    });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::might_sleep);
    EXPECT_TRUE(contains(out.message, "lock_mm_and_find_vma")) << out.message;
    EXPECT_TRUE(contains(out.message, "in_atomic(): 1")) << out.message;
    EXPECT_TRUE(contains(out.message, "ptlock")) << out.message;
}

TEST(Lockdep, MightSleepInsideRcuReadLock) {
    Harness h;
    h.add("T", [&] {
        rcu_read_lock(MMR_SITE("lock_vma_under_rcu"));
        synchronize_rcu();
    });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::might_sleep);
    EXPECT_TRUE(contains(out.message, "RCU nest depth: 1")) << out.message;
    EXPECT_TRUE(contains(out.message, "lock_vma_under_rcu")) << out.message;
}

TEST(Lockdep, MightSleepWithIrqsOff) {
    Harness h;
    RwSem sem{"sem"};
    h.add("T", [&] {
        local_irq_disable(MMR_SITE("gup_fast"));
        sem.down_write_killable();
    });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::might_sleep);
    EXPECT_TRUE(contains(out.message, "irqs_disabled(): 1")) << out.message;
    EXPECT_TRUE(contains(out.message, "gup_fast")) << out.message;
}

TEST(Lockdep, TrylockAndSpinningAreFineInAtomicContext) {
    Harness h;
    SpinLock a{"A"}, b{"B"};
    RwSem sem{"sem"};
    h.add("T", [&] {
        local_irq_disable();
        a.spin_lock();
        ASSERT_TRUE(sem.down_read_trylock());  // trylocks never sleep
        b.spin_lock();
        b.spin_unlock();
        sem.up_read();
        a.spin_unlock();
        local_irq_enable();
        might_sleep();  // fine again
    });
    EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
}

// ---------------------------------------------------------------------------------
// Exit

TEST(Lockdep, LockHeldAtExit) {
    Harness h;
    RwSem sem{"&mm->mmap_lock"};
    h.add("faulter", [&] { sem.down_read(MMR_SITE("do_user_addr_fault")); });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::lock_held_at_exit);
    EXPECT_TRUE(contains(out.message, "faulter")) << out.message;
    EXPECT_TRUE(contains(out.message, "&mm->mmap_lock (acquired at do_user_addr_fault)"))
        << out.message;
}

TEST(Lockdep, RcuReadLockHeldAtExit) {
    Harness h;
    h.add("T", [] { rcu_read_lock(); });
    EXPECT_EQ(h.replay({}).check, Check::lock_held_at_exit);
}

TEST(Lockdep, ChainedExitHooksRunAfterTheChecks) {
    Harness h;
    std::vector<rt::Tid> exited;
    h.dom.add_exit_hook([&](rt::Tid t) { exited.push_back(t); });
    h.add("a", [] {});
    h.add("b", [] {});
    EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
    EXPECT_EQ(exited, (std::vector<rt::Tid>{0, 1}));
}
