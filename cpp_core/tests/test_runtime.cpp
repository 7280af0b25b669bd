// The deterministic runtime: policies, determinism, events, budget, deadlock, unwinding.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"

using namespace mmrace::rt;

namespace {

// A minimal one-owner lock, enough to make threads block (the real primitives live in
// sync/ and have their own tests).
struct TestMutex : Waitable {
    Tid owner = kNoThread;
    std::vector<Tid> waiters;
    std::string name;
    explicit TestMutex(std::string n) : name(std::move(n)) {}
    std::string describe() const override { return name; }
    void holders(std::vector<Tid>& out) const override {
        if (owner != kNoThread) out.push_back(owner);
    }
    void lock(Runtime& rt) {
        rt.yield(MMR_SITE("test_lock"), Ev::lock_acquire);
        while (owner != kNoThread) {
            waiters.push_back(rt.self());
            rt.wait(MMR_SITE("test_lock"), this);
        }
        owner = rt.self();
    }
    void unlock(Runtime& rt) {
        owner = kNoThread;
        for (Tid w : waiters) rt.wake(w);
        waiters.clear();
        rt.yield(MMR_SITE("test_unlock"), Ev::lock_release);
    }
};

std::string order_of(Runtime& rt, const std::vector<uint64_t>& sched, std::vector<char>& log) {
    log.clear();
    auto p = make_replay_policy(sched);
    auto out = rt.run(*p);
    EXPECT_EQ(out.verdict, Verdict::ok) << out.message;
    return std::string(log.begin(), log.end());
}

}  // namespace

TEST(Runtime, ReplayPicksByIndexAndContinuesCurrent) {
    Runtime rt;
    std::vector<char> log;
    for (char c : {'a', 'b'})
        rt.add_thread(std::string(1, c), [&, c] {
            for (int i = 0; i < 3; ++i) {
                rt.yield(MMR_SITE("step"), Ev::yield);
                log.push_back(c);
            }
        });
    // No list: thread 0 runs to completion, then thread 1.
    EXPECT_EQ(order_of(rt, {}, log), "aaabbb");
    // First decision picks thread 1; later ones keep running the current thread.
    EXPECT_EQ(order_of(rt, {1}, log), "bbbaaa");
    // Alternate at every decision while the list lasts (each thread yields before it
    // logs), then b, the current thread, runs on.
    EXPECT_EQ(order_of(rt, {0, 1, 0, 1, 0, 1}, log), "ababba");
}

TEST(Runtime, SameScheduleSameHashDifferentScheduleDifferentHash) {
    Runtime rt;
    int shared = 0;
    for (int k = 0; k < 3; ++k)
        rt.add_thread("T" + std::to_string(k), [&] {
            for (int i = 0; i < 10; ++i) {
                rt.yield(MMR_SITE("load"), Ev::access, static_cast<uint64_t>(shared));
                ++shared;
            }
        });
    auto run_with = [&](std::vector<uint64_t> s) {
        shared = 0;
        auto p = make_replay_policy(std::move(s));
        return rt.run(*p);
    };
    auto a = run_with({1, 2, 0, 1});
    auto b = run_with({1, 2, 0, 1});
    auto c = run_with({2, 2, 0, 1});
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_NE(a.trace_hash, c.trace_hash);
    EXPECT_EQ(rt.trace().size(), c.step + 3 * 2);  // yields + start/exit notes
}

TEST(Runtime, RandomAndPctAreSeededAndReplayable) {
    Runtime rt;
    std::vector<char> log;
    for (char c : {'a', 'b', 'c'})
        rt.add_thread(std::string(1, c), [&, c] {
            for (int i = 0; i < 8; ++i) {
                rt.yield(MMR_SITE("step"), Ev::yield);
                log.push_back(c);
            }
        });
    for (auto make : {+[](uint64_t s) { return make_random_policy(s); },
                      +[](uint64_t s) { return make_pct_policy(s, 3, 30); }}) {
        std::set<std::string> seen;
        for (uint64_t seed = 0; seed < 20; ++seed) {
            auto p = make(seed);
            log.clear();
            auto o1 = rt.run(*p);
            std::string first(log.begin(), log.end());
            log.clear();
            auto o2 = rt.run(*p);
            EXPECT_EQ(first, std::string(log.begin(), log.end()));
            EXPECT_EQ(o1.trace_hash, o2.trace_hash);
            // The recorded decisions replay the same run.
            auto r = make_replay_policy(o1.decisions);
            log.clear();
            auto o3 = rt.run(*r);
            EXPECT_EQ(first, std::string(log.begin(), log.end()));
            EXPECT_EQ(o1.trace_hash, o3.trace_hash);
            seen.insert(first);
        }
        EXPECT_GT(seen.size(), 5u);
    }
}

TEST(Runtime, BudgetStopsALivelock) {
    RuntimeConfig cfg;
    cfg.budget = 1000;
    Runtime rt(cfg);
    rt.add_thread("spin", [&] {
        for (;;) rt.yield(MMR_SITE("spin"), Ev::yield);
    });
    auto p = make_replay_policy({});
    auto out = rt.run(*p);
    EXPECT_EQ(out.verdict, Verdict::budget);
    EXPECT_EQ(out.check, mmrace::Check::budget);
    EXPECT_EQ(out.step, 1001u);
}

TEST(Runtime, DeadlockReportsTheWaitForCycle) {
    Runtime rt;
    TestMutex A("lock A"), B("lock B");
    rt.add_thread("T0", [&] { A.lock(rt); B.lock(rt); B.unlock(rt); A.unlock(rt); });
    rt.add_thread("T1", [&] { B.lock(rt); A.lock(rt); A.unlock(rt); B.unlock(rt); });
    // T0 takes A, T1 takes B, then each waits for the other.
    auto p = make_replay_policy({0, 0, 1, 1});
    auto out = rt.run(*p);
    ASSERT_EQ(out.verdict, Verdict::deadlock) << out.message;
    EXPECT_NE(out.message.find("T0 waits for lock B held by T1"), std::string::npos) << out.message;
    EXPECT_NE(out.message.find("T1 waits for lock A held by T0"), std::string::npos) << out.message;
    // Serial order: no deadlock, and the run ends cleanly.
    A.owner = B.owner = kNoThread;
    A.waiters.clear();
    B.waiters.clear();
    auto q = make_replay_policy({});
    EXPECT_EQ(rt.run(*q).verdict, Verdict::ok);
}

// A wait only the program can end (a userfault nobody serves): user_wait() is true.
struct UserWait : Waitable {
    std::string describe() const override { return "a userfault"; }
    bool user_wait() const override { return true; }
};
struct NoOneWait : Waitable {
    std::string describe() const override { return "a wake-up that never comes"; }
};

// A deadlock is the program's own (RunOutcome::user_wait) when every blocked thread waits
// on a user wait, itself or through the holders of the lock it waits for; never for a
// wait-for cycle, nor when one thread is stuck for another reason.
TEST(Runtime, DeadlockBehindAUserWaitIsTheProgramsOwn) {
    Runtime rt;
    TestMutex A("lock A"), B("lock B");
    UserWait uw;
    NoOneWait lost;
    auto run = [&](bool lost_wakeup) {
        A.owner = B.owner = kNoThread;
        A.waiters.clear();
        B.waiters.clear();
        rt.reset({});
        rt.add_thread("T0", [&] { A.lock(rt); rt.wait(MMR_SITE("uffd"), &uw); });
        rt.add_thread("T1", [&] { B.lock(rt); A.lock(rt); });  // behind T0
        rt.add_thread("T2", [&] { B.lock(rt); });               // behind T1, behind T0
        if (lost_wakeup) rt.add_thread("T3", [&] { rt.wait(MMR_SITE("lost"), &lost); });
        auto p = make_replay_policy({});  // each runs until it blocks, in order
        return rt.run(*p);
    };
    auto own = run(false);
    ASSERT_EQ(own.verdict, Verdict::deadlock) << own.message;
    EXPECT_TRUE(own.user_wait) << own.message;
    auto mixed = run(true);
    ASSERT_EQ(mixed.verdict, Verdict::deadlock) << mixed.message;
    EXPECT_FALSE(mixed.user_wait) << mixed.message;

    // A cycle is never the program's own, even with a user wait beside it.
    A.owner = B.owner = kNoThread;
    A.waiters.clear();
    B.waiters.clear();
    rt.reset({});
    rt.add_thread("T0", [&] { A.lock(rt); B.lock(rt); });
    rt.add_thread("T1", [&] { B.lock(rt); A.lock(rt); });
    rt.add_thread("T2", [&] { rt.wait(MMR_SITE("uffd"), &uw); });
    auto p = make_replay_policy({0, 0, 1, 1});
    auto cycle = rt.run(*p);
    ASSERT_EQ(cycle.verdict, Verdict::deadlock) << cycle.message;
    EXPECT_NE(cycle.message.find("wait-for cycle"), std::string::npos) << cycle.message;
    EXPECT_FALSE(cycle.user_wait);
}

TEST(Runtime, EventsFireWhenReadyAndWakeWaiters) {
    Runtime rt;
    struct Io : Waitable {
        std::string describe() const override { return "I/O"; }
    } io;
    bool done = false, gate = false;
    std::vector<std::string> log;
    rt.add_thread("reader", [&] {
        rt.post_event(MMR_SITE("io"), nullptr, [&] { done = true; rt.wake(0); });
        while (!done) rt.wait(MMR_SITE("io_wait"), &io);
        log.push_back("io done");
    });
    rt.add_thread("other", [&] {
        rt.post_event(MMR_SITE("gated"), [&] { return gate; }, [&] { log.push_back("gated"); });
        rt.yield(MMR_SITE("x"), Ev::yield);
        gate = true;
        log.push_back("gate open");
    });
    auto p = make_replay_policy({});
    auto out = rt.run(*p);
    ASSERT_EQ(out.verdict, Verdict::ok) << out.message;
    // Past the replay list a blocked reader's I/O event fires before another thread
    // moves, so the reader finishes first; then "other" opens the gate and its event
    // fires once it is ready.
    EXPECT_EQ(log, (std::vector<std::string>{"io done", "gate open", "gated"}));
}

TEST(Runtime, ModelErrorEndsTheRunAndUnwindsOthers) {
    Runtime rt;
    int destroyed = 0;
    struct Guard {
        int* n;
        ~Guard() { ++*n; }
    };
    rt.add_thread("a", [&] {
        Guard g{&destroyed};
        for (;;) rt.yield(MMR_SITE("a"), Ev::yield);
    });
    rt.add_thread("b", [&] { throw std::runtime_error("op 'collapse' is not built yet"); });
    auto p = make_replay_policy({0, 1});
    auto out = rt.run(*p);
    EXPECT_EQ(out.error, "op 'collapse' is not built yet");
    EXPECT_EQ(destroyed, 1);  // the spinning thread was unwound
}

TEST(Runtime, UcontextFibersGiveTheSameRun) {
    auto run_kind = [](FiberKind k) {
        RuntimeConfig cfg;
        cfg.fiber = k;
        Runtime rt(cfg);
        for (int t = 0; t < 3; ++t)
            rt.add_thread("T" + std::to_string(t), [&rt] {
                for (int i = 0; i < 50; ++i) rt.yield(MMR_SITE("s"), Ev::yield, i);
            });
        auto p = make_random_policy(7);
        return rt.run(*p).trace_hash;
    };
    EXPECT_EQ(run_kind(FiberKind::ucontext), run_kind(default_fiber_kind()));
}

// preempt_pick counts the others from the one after the current thread, wrapping;
// with no current thread it indexes the options.  Options: T0 T1 T2 E0, current T1.
TEST(Runtime, PreemptPicksTheKthOtherEntityAfterTheCurrent) {
    const Entity options[] = {0, 1, 2, kEventBase};
    Decision running{options, 4, 1, 0, 0, 3};
    EXPECT_EQ(preempt_pick(running, 0), 2u);  // T2
    EXPECT_EQ(preempt_pick(running, 1), 3u);  // E0
    EXPECT_EQ(preempt_pick(running, 2), 0u);  // T0
    EXPECT_EQ(preempt_pick(running, 3), 2u);  // mod the 3 others: T2 again
    Decision blocked{options, 4, -1, 0, 0, 3};
    EXPECT_EQ(preempt_pick(blocked, 1), 1u);
    EXPECT_EQ(preempt_pick(blocked, 5), 1u);
    EXPECT_EQ(default_pick(running), 1u);  // the current thread runs on
    EXPECT_EQ(default_pick(blocked), 3u);  // else the oldest ready event
}
