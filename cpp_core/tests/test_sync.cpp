// The sim-backend primitives: rwsem, spinlock/rwlock, seqcount, RCU, IRQ-off and IPIs,
// refcount/atomics.  Pinned interleavings use replay schedules (each list entry is the
// index among runnable threads, then ready events, at one decision; the comments walk
// through the decisions); invariants are checked over 200 random schedules.
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"
#include "sync/sync.hpp"

using namespace mmrace;
using namespace mmrace::sync;

namespace {

constexpr uint64_t kSeeds = 200;

struct Harness {
    rt::Runtime rt;
    SyncDomain dom{rt};
    std::vector<std::string> log;

    explicit Harness(SyncConfig cfg = {}) : dom(rt, cfg) {}

    rt::Tid add(std::string name, std::function<void()> body) {
        return rt.add_thread(std::move(name), std::move(body));
    }
    rt::RunOutcome replay(std::vector<uint64_t> schedule) {
        log.clear();
        auto p = rt::make_replay_policy(std::move(schedule));
        return dom.run(*p);
    }
    rt::RunOutcome random(uint64_t seed) {
        log.clear();
        auto p = rt::make_random_policy(seed);
        return dom.run(*p);
    }
    void say(std::string s) { log.push_back(std::move(s)); }
};

// A scheduling point inside a critical section.
void work() { rt::current_runtime()->yield(MMR_SITE("work"), rt::Ev::yield); }

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

using Log = std::vector<std::string>;

}  // namespace

// =================================================================================
// rwsem

TEST(RwSem, WaitingWriterBlocksNewReaders) {
    Harness h;
    RwSem sem{"&mm->mmap_lock"};
    h.add("R1", [&] {
        sem.down_read();
        h.say("R1 in");
        work();
        h.say("R1 sees " + std::to_string(sem.waiters()) + " waiters");
        sem.up_read();
        h.say("R1 out");
    });
    h.add("W", [&] {
        sem.down_write();
        h.say("W in");
        sem.up_write();
    });
    h.add("R2", [&] {
        sem.down_read();
        h.say("R2 in");
        sem.up_read();
    });
    // d0 R1 starts; d1 R1 takes the read lock; d2 (R1's work) W starts; d3 W queues;
    // d4 R2 starts; d5 R2 finds W queued and queues behind it although only readers
    // hold the lock.  R1 releases: W gets the lock, then R2.
    auto out = h.replay({0, 0, 1, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"R1 in", "R1 sees 2 waiters", "R1 out", "W in", "R2 in"}));
}

TEST(RwSem, ReaderTrylockFailsBehindAQueuedWriter) {
    Harness h;
    RwSem sem{"sem"};
    h.add("R1", [&] {
        sem.down_read();
        work();
        h.say(std::string("read trylock ") + (sem.down_read_trylock() ? "ok" : "fails"));
        h.say(std::string("write trylock ") + (sem.down_write_trylock() ? "ok" : "fails"));
        sem.up_read();
    });
    h.add("W", [&] {
        sem.down_write();
        sem.up_write();
    });
    // d0 R1; d1 R1 takes it; d2 W starts; d3 W queues; then R1 runs on.
    auto out = h.replay({0, 0, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"read trylock fails", "write trylock fails"}));
}

TEST(RwSem, DowngradeWakesQueuedReaders) {
    Harness h;
    RwSem sem{"sem"};
    h.add("W", [&] {
        sem.down_write();
        work();
        sem.downgrade_write();
        h.say("readers " + std::to_string(sem.readers()) + " waiters " +
              std::to_string(sem.waiters()));
        sem.up_read();
    });
    for (const char* r : {"R1", "R2"})
        h.add(r, [&, r] {
            sem.down_read();
            h.say(std::string(r) + " in");
            sem.up_read();
        });
    // d0 W; d1 W takes it; d2 R1 starts; d3 R1 queues; d4 R2 starts; d5 R2 queues;
    // W downgrades and runs on: both readers already hold the lock with it.
    auto out = h.replay({0, 0, 1, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"readers 3 waiters 0", "R1 in", "R2 in"}));
}

TEST(RwSem, DowngradeDoesNotWakePastAQueuedWriter) {
    Harness h;
    RwSem sem{"sem"};
    h.add("W1", [&] {
        sem.down_write();
        work();
        sem.downgrade_write();
        h.say("readers " + std::to_string(sem.readers()) + " waiters " +
              std::to_string(sem.waiters()));
        sem.up_read();
    });
    h.add("W2", [&] {
        sem.down_write();
        h.say("W2 in");
        sem.up_write();
    });
    h.add("R3", [&] {
        sem.down_read();
        h.say("R3 in");
        sem.up_read();
    });
    // W1 holds; W2 then R3 queue; W1 downgrades: the head is a writer, nobody is woken.
    auto out = h.replay({0, 0, 1, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"readers 1 waiters 2", "W2 in", "R3 in"}));
}

TEST(RwSem, ReaderAtTheHeadWakesEveryQueuedReader) {
    // rwsem_mark_wake: phase-fair, queued writers are skipped.
    Harness h;
    RwSem sem{"sem"};
    h.add("W1", [&] {
        sem.down_write();
        work();
        sem.up_write();
        h.say("readers " + std::to_string(sem.readers()) + " waiters " +
              std::to_string(sem.waiters()));
    });
    h.add("R2", [&] { sem.down_read(); h.say("R2 in"); work(); sem.up_read(); });
    h.add("W3", [&] { sem.down_write(); h.say("W3 in"); sem.up_write(); });
    h.add("R4", [&] { sem.down_read(); h.say("R4 in"); work(); sem.up_read(); });
    // d0 W1; d1 W1 takes it; d2 R2 starts, d3 queues; d4 W3 starts, d5 queues;
    // d6 R4 starts, d7 queues.  W1's up_write grants R2 and R4, W3 keeps waiting.
    auto out = h.replay({0, 0, 1, 1, 1, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    ASSERT_EQ(h.log.size(), 4u);
    EXPECT_EQ(h.log[0], "readers 2 waiters 1");
    EXPECT_EQ(h.log.back(), "W3 in");
}

TEST(RwSem, KillableVariantsReturnZero) {
    Harness h;
    RwSem sem{"sem"};
    int r = -1, w = -1;
    h.add("T", [&] {
        w = sem.down_write_killable();
        sem.up_write();
        r = sem.down_read_killable();
        sem.up_read();
    });
    EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
    EXPECT_EQ(r, 0);
    EXPECT_EQ(w, 0);
}

TEST(RwSem, RandomSchedulesKeepReadersAndWritersApart) {
    Harness h;
    RwSem sem{"sem"};
    int readers_in = 0, writers_in = 0, bad = 0;
    std::set<uint64_t> hashes;
    auto reader = [&] {
        for (int i = 0; i < 2; ++i) {
            sem.down_read();
            ++readers_in;
            if (writers_in) ++bad;
            work();
            if (writers_in) ++bad;
            --readers_in;
            sem.up_read();
        }
    };
    auto writer = [&](bool downgrade) {
        for (int i = 0; i < 2; ++i) {
            sem.down_write();
            if (readers_in || writers_in) ++bad;
            ++writers_in;
            work();
            if (readers_in || writers_in != 1) ++bad;
            --writers_in;
            if (downgrade) {
                sem.downgrade_write();
                ++readers_in;
                work();
                --readers_in;
                sem.up_read();
            } else {
                sem.up_write();
            }
        }
    };
    h.add("R1", reader);
    h.add("R2", reader);
    h.add("W1", [&] { writer(false); });
    h.add("W2", [&] { writer(true); });
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        readers_in = writers_in = 0;
        auto out = h.random(seed);
        ASSERT_EQ(out.verdict, rt::Verdict::ok) << "seed " << seed << ": " << out.message;
        hashes.insert(out.trace_hash);
    }
    EXPECT_EQ(bad, 0);
    EXPECT_GT(hashes.size(), 50u);  // the schedules really differ
}

// =================================================================================
// spinlock and rwlock

TEST(SyncSpinLock, TrylockAndQueries) {
    Harness h;
    SpinLock l{"ptlock"};
    h.add("T0", [&] {
        l.spin_lock();
        work();
        l.spin_unlock();
    });
    h.add("T1", [&] {
        h.say(l.spin_trylock() ? "got it" : "busy");
        h.say(l.spin_is_locked() ? "locked" : "free");
    });
    // d0 T0; d1 T0 locks; d2 T1 starts; d3 T1 tries.
    auto out = h.replay({0, 0, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"busy", "locked"}));
}

TEST(SyncSpinLock, RandomSchedulesGiveMutualExclusion) {
    Harness h;
    SpinLock l{"ptlock"};
    int counter = 0;
    bool contended = false;
    for (int t = 0; t < 3; ++t)
        h.add("T" + std::to_string(t), [&] {
            for (int i = 0; i < 3; ++i) {
                if (i == 1) {
                    unsigned long flags = l.spin_lock_irqsave();
                    int v = read_once(counter);
                    write_once(counter, v + 1);
                    l.spin_unlock_irqrestore(flags);
                } else {
                    l.spin_lock();
                    contended |= lock_waited();
                    int v = read_once(counter);
                    write_once(counter, v + 1);
                    l.spin_unlock();
                }
            }
        });
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        counter = 0;
        auto out = h.random(seed);
        ASSERT_EQ(out.verdict, rt::Verdict::ok) << "seed " << seed << ": " << out.message;
        ASSERT_EQ(counter, 9) << "seed " << seed;
    }
    EXPECT_TRUE(contended);
}

TEST(SyncSpinLock, SelfDeadlockIsADeadlock) {
    Harness h;
    SpinLock l{"ptlock"};
    h.add("T", [&] { l.spin_lock(); l.spin_lock(); });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::deadlock) << out.message;
    EXPECT_TRUE(contains(out.message, "T waits for ptlock held by T")) << out.message;
}

TEST(SyncRwLock, ReadersShareWritersExclude) {
    for (bool recursive : {true, false}) {
        Harness h;
        RwLock l{"mm_rb_lock", recursive};
        int readers_in = 0, writers_in = 0, bad = 0, max_readers = 0;
        for (int t = 0; t < 3; ++t)
            h.add("R" + std::to_string(t), [&] {
                l.read_lock();
                ++readers_in;
                max_readers = std::max(max_readers, readers_in);
                if (writers_in) ++bad;
                work();
                --readers_in;
                l.read_unlock();
            });
        h.add("W", [&] {
            for (int i = 0; i < 2; ++i) {
                l.write_lock();
                if (readers_in || writers_in) ++bad;
                ++writers_in;
                work();
                --writers_in;
                l.write_unlock();
            }
        });
        for (uint64_t seed = 0; seed < kSeeds; ++seed) {
            readers_in = writers_in = 0;
            auto out = h.random(seed);
            ASSERT_EQ(out.verdict, rt::Verdict::ok) << "seed " << seed << ": " << out.message;
        }
        EXPECT_EQ(bad, 0);
        EXPECT_GT(max_readers, 1);
    }
}

TEST(SyncRwLock, NestedReadLockWithAWaitingWriter) {
    // Classic rwlock_t: the nested read_lock gets in past the queued writer.  x86 qrwlock
    // in process context: it queues behind the writer, which waits for it: deadlock.
    for (bool recursive : {true, false}) {
        Harness h;
        RwLock l{"rwlock", recursive};
        h.add("R", [&] {
            l.read_lock();
            work();
            l.read_lock();
            l.read_unlock();
            l.read_unlock();
        });
        h.add("W", [&] {
            l.write_lock();
            l.write_unlock();
        });
        // d0 R; d1 R reads; d2 W starts; d3 W queues; R nests.
        auto out = h.replay({0, 0, 1, 1});
        if (recursive)
            EXPECT_EQ(out.verdict, rt::Verdict::ok) << out.message;
        else
            EXPECT_EQ(out.verdict, rt::Verdict::deadlock) << out.message;
    }
}

// =================================================================================
// seqcount

TEST(SeqCount, ReadersNeverAcceptATornRead) {
    Harness h;
    SpinLock lock{"&vma->vm_lock"};
    SeqCount seq{"&vma->vm_sequence", &lock};
    int a = 0, b = 0, torn = 0, retries = 0;
    h.add("writer", [&] {
        for (int i = 1; i <= 2; ++i) {
            lock.spin_lock();
            seq.write_seqcount_begin();
            write_once(a, i);
            write_once(b, i);
            seq.write_seqcount_end();
            lock.spin_unlock();
        }
    });
    h.add("reader", [&] {
        for (int i = 0; i < 2; ++i) {
            unsigned s;
            int x, y;
            do {
                s = seq.read_seqcount_begin();
                x = read_once(a);
                y = read_once(b);
            } while (seq.read_seqcount_retry(s) && ++retries);
            if (x != y) ++torn;
        }
    });
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        a = b = 0;
        auto out = h.random(seed);
        ASSERT_EQ(out.verdict, rt::Verdict::ok) << "seed " << seed << ": " << out.message;
    }
    EXPECT_EQ(torn, 0);
    EXPECT_GT(retries, 0);
}

TEST(SeqCount, ReadBeginWaitsWhileAWriteIsInProgress) {
    Harness h;
    SeqCount seq{"seq"};
    unsigned raw = 0, begun = 0;
    h.add("writer", [&] {
        seq.write_seqcount_begin();
        work();
        h.say("write ends");
        seq.write_seqcount_end();
    });
    h.add("reader", [&] {
        raw = seq.raw_read_seqcount();
        begun = seq.read_seqcount_begin();
        h.say("read begins");
    });
    // d0 writer; d1 writer begins (odd); d2 (its work) reader starts; d3 raw read sees
    // the odd count; d4 read_seqcount_begin blocks until the write ends.
    auto out = h.replay({0, 0, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(raw, 1u);
    EXPECT_EQ(begun, 2u);
    EXPECT_EQ(h.log, (Log{"write ends", "read begins"}));
}

TEST(SeqCount, WriterMustHoldTheAssociatedLock) {
    Harness h;
    SpinLock lock{"&mm->page_table_lock"};
    SeqCount seq{"seq", &lock};
    h.add("writer", [&] { seq.write_seqcount_begin(MMR_SITE("vm_write_begin")); });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::lockdep_assert_held);
    EXPECT_TRUE(contains(out.message, "&mm->page_table_lock")) << out.message;
    EXPECT_TRUE(contains(out.message, "vm_write_begin")) << out.message;
}

TEST(SeqCount, ConcurrentRawWritersAreReported) {
    Harness h;
    SeqCount seq{"seq"};
    for (const char* n : {"W0", "W1"})
        h.add(n, [&] {
            seq.raw_write_seqcount_begin();
            work();
            seq.raw_write_seqcount_end();
        });
    // d0 W0; d1 W0 begins; d2 W1 starts; d3 W1 begins while W0 is inside.
    auto out = h.replay({0, 0, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::seqcount);
}

TEST(SeqCount, ReaderSpinningUnderTheWritersLockDeadlocks) {
    Harness h;
    SpinLock l{"L"};
    SeqCount seq{"seq"};
    h.add("writer", [&] {
        seq.raw_write_seqcount_begin();
        l.spin_lock();
        l.spin_unlock();
        seq.raw_write_seqcount_end();
    });
    h.add("reader", [&] {
        l.spin_lock();
        seq.read_seqcount_begin();
        l.spin_unlock();
    });
    // d0 writer; d1 writer begins (odd); d2 (its spin_lock) reader starts; d3 reader
    // locks L; d4 reader blocks on the odd count; the writer blocks on L.
    auto out = h.replay({0, 0, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::deadlock) << out.message;
    EXPECT_TRUE(contains(out.message, "reader waits for seq held by writer")) << out.message;
    EXPECT_TRUE(contains(out.message, "writer waits for L held by reader")) << out.message;
}

// =================================================================================
// RCU

TEST(Rcu, ReaderThatBeganBeforeCallRcuKeepsTheObjectAlive) {
    // On every schedule: a reader inside before call_rcu never sees the object freed,
    // and on some schedules a reader that began after call_rcu is overtaken by the free.
    Harness h;
    struct Obj {
        bool freed = false;
    } obj;
    Obj* ptr = &obj;
    bool called = false;
    int early_readers = 0, uaf = 0, freed_under_late_reader = 0;
    h.add("reader", [&] {
        rcu_read_lock();
        bool early = !called;
        Obj* p = read_once(ptr);
        for (int i = 0; i < 3; ++i) {
            work();
            if (p && p->freed) ++uaf;
            if (!early && obj.freed) ++freed_under_late_reader;
        }
        early_readers += early;
        rcu_read_unlock();
    });
    h.add("updater", [&] {
        write_once(ptr, static_cast<Obj*>(nullptr));  // unpublish
        called = true;
        call_rcu(MMR_SITE("vma_free"), [&] { obj.freed = true; });
    });
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        obj.freed = false;
        ptr = &obj;
        called = false;
        auto out = h.random(seed);
        ASSERT_EQ(out.verdict, rt::Verdict::ok) << "seed " << seed << ": " << out.message;
        ASSERT_TRUE(obj.freed) << "seed " << seed;  // the callback always runs eventually
    }
    EXPECT_EQ(uaf, 0);
    EXPECT_GT(early_readers, 0);
    EXPECT_GT(freed_under_late_reader, 0);
}

TEST(Rcu, CallbackWaitsForAnOlderReader) {
    Harness h;
    h.add("reader", [&] {
        rcu_read_lock();
        work();
        work();
        h.say("reader unlocks");
        rcu_read_unlock();
        work();
    });
    h.add("updater", [&] { call_rcu(nullptr, [&] { h.say("freed"); }); });
    // d0 reader; d1 reader enters; d2 (its work) updater starts; d3 call_rcu's yield:
    // the updater finishes.  From then on the event is never ready before the unlock;
    // the entry for the unlock's decision picks the event (index 1) as soon as it can.
    auto out = h.replay({0, 0, 1, 1, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"reader unlocks", "freed"}));
}

TEST(Rcu, ReaderThatBeganAfterCallRcuDoesNotDelayIt) {
    Harness h;
    h.add("updater", [&] { call_rcu(nullptr, [&] { h.say("freed"); }); });
    h.add("reader", [&] {
        rcu_read_lock();
        work();
        work();
        h.say("reader unlocks");
        rcu_read_unlock();
    });
    // d0 updater; d1 (call_rcu's yield: updater, reader, event) updater finishes;
    // d2 reader starts; d3 reader enters; d4 at its first work the event fires.
    auto out = h.replay({0, 0, 0, 0, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"freed", "reader unlocks"}));
}

TEST(Rcu, SynchronizeRcuWaitsForReaders) {
    Harness h;
    bool inside = false;
    int bad = 0;
    h.add("reader", [&] {
        rcu_read_lock();
        inside = true;
        work();
        work();
        inside = false;
        rcu_read_unlock();
    });
    h.add("updater", [&] {
        bool was_inside = inside;
        synchronize_rcu();
        // A reader inside when synchronize_rcu began must have left by now.
        if (was_inside && inside) ++bad;
        h.say(was_inside ? "waited" : "no reader");
    });
    bool saw_wait = false;
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        auto out = h.random(seed);
        ASSERT_EQ(out.verdict, rt::Verdict::ok) << "seed " << seed << ": " << out.message;
        saw_wait |= h.log == Log{"waited"};
    }
    EXPECT_EQ(bad, 0);
    EXPECT_TRUE(saw_wait);
}

TEST(Rcu, SynchronizeRcuReturnsAfterTheReaderLeaves) {
    Harness h;
    h.add("reader", [&] {
        rcu_read_lock();
        work();
        h.say("reader unlocks");
        rcu_read_unlock();
    });
    h.add("updater", [&] {
        synchronize_rcu();
        h.say("synchronized");
    });
    // d0 reader; d1 reader enters; d2 updater starts; d3 updater posts and sleeps.
    auto out = h.replay({0, 0, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"reader unlocks", "synchronized"}));
}

TEST(Rcu, NestingAndHeldQuery) {
    Harness h;
    std::vector<bool> held;
    h.add("T", [&] {
        held.push_back(rcu_read_lock_held());
        rcu_read_lock();
        rcu_read_lock();
        rcu_read_unlock();
        held.push_back(rcu_read_lock_held());
        rcu_read_unlock();
        held.push_back(rcu_read_lock_held());
    });
    EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
    EXPECT_EQ(held, (std::vector<bool>{false, true, false}));
}

TEST(Rcu, IrqOffSectionHoldsOffTheGracePeriod) {
    // Consolidated RCU (v4.20+): gup_fast's IRQ-off walk delays page-table freeing.
    for (bool atomic_is_reader : {true, false}) {
        SyncConfig cfg;
        cfg.rcu_waits_for_atomic = atomic_is_reader;
        Harness h(cfg);
        h.add("gup_fast", [&] {
            local_irq_disable();
            work();
            work();
            h.say("irqs on");
            local_irq_enable();
        });
        h.add("free_pgtables", [&] { call_rcu(nullptr, [&] { h.say("table freed"); }); });
        // d0 gup_fast; d1 IRQs off; d2 (work) the freer starts; d3 call_rcu's yield, the
        // freer finishes; then pick the event whenever it is ready.
        auto out = h.replay({0, 0, 1, 1, 1, 1, 1});
        ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
        if (atomic_is_reader)
            EXPECT_EQ(h.log, (Log{"irqs on", "table freed"}));
        else
            EXPECT_EQ(h.log, (Log{"table freed", "irqs on"}));
    }
}

TEST(Rcu, CallbacksRunInEventContext) {
    Harness h;
    SpinLock l{"l"};
    h.add("T", [&] { call_rcu(nullptr, [&] { l.spin_lock(); }); });
    auto out = h.replay({});
    // A model error, not a verdict about the program.
    EXPECT_EQ(out.verdict, rt::Verdict::ok);
    EXPECT_TRUE(contains(out.error, "event context")) << out.error;
}

// =================================================================================
// IRQs and IPIs

TEST(Irq, IpiWaitsForAnIrqOffSection) {
    Harness h;
    h.add("gup_fast", [&] {
        local_irq_disable();
        work();
        work();
        h.say("irqs on");
        local_irq_enable();
        work();
    });
    h.add("khugepaged", [&] {
        on_each_cpu_sync(MMR_SITE("tlb_remove_table_sync_one"),
                         [&](rt::Tid cpu) { h.say("ack " + h.rt.thread_name(cpu)); });
        h.say("ipi done");
    });
    // d0 gup_fast; d1 IRQs off; d2 (work) khugepaged starts; d3 it sends and sleeps;
    // the ack is never ready before IRQs come back on; then pick it (index 1) at once.
    auto out = h.replay({0, 0, 1, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_EQ(h.log, (Log{"ack khugepaged", "irqs on", "ack gup_fast", "ipi done"}));
}

TEST(Irq, IpiNeverCompletesInsideAnIrqOffSectionOnAnySchedule) {
    Harness h;
    bool irq_off = false;
    int bad = 0, waited = 0;
    h.add("walker", [&] {
        for (int i = 0; i < 2; ++i) {
            local_irq_disable();
            irq_off = true;
            work();
            irq_off = false;
            local_irq_enable();
        }
    });
    h.add("flusher", [&] {
        bool sent_while_off = irq_off;
        smp_call_function_sync(nullptr, [&](rt::Tid) {
            if (irq_off) ++bad;
        });
        waited += sent_while_off;
    });
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        irq_off = false;
        auto out = h.random(seed);
        ASSERT_EQ(out.verdict, rt::Verdict::ok) << "seed " << seed << ": " << out.message;
    }
    EXPECT_EQ(bad, 0);
    EXPECT_GT(waited, 0);
}

TEST(Irq, IpiToACpuSpinningWithIrqsOffOnTheSendersLockDeadlocks) {
    Harness h;
    SpinLock ptl{"ptlock"};
    h.add("sender", [&] {
        ptl.spin_lock();
        smp_call_function_sync();
        ptl.spin_unlock();
    });
    h.add("spinner", [&] {
        local_irq_disable();
        ptl.spin_lock();
        ptl.spin_unlock();
        local_irq_enable();
    });
    // d0 sender; d1 it locks; d2 (IPI send) spinner starts; d3 IRQs off; d4 it spins.
    auto out = h.replay({0, 0, 1, 1, 1});
    ASSERT_EQ(out.verdict, rt::Verdict::deadlock) << out.message;
    EXPECT_TRUE(contains(out.message, "sender waits for IPI acknowledgment")) << out.message;
    EXPECT_TRUE(contains(out.message, "held by spinner")) << out.message;
    EXPECT_TRUE(contains(out.message, "spinner waits for ptlock held by sender")) << out.message;
}

TEST(Irq, IpiWithIrqsDisabledIsReported) {
    Harness h;
    h.add("T", [] {
        local_irq_disable();
        smp_call_function_sync();
    });
    h.add("other", [] {});
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::ipi_irqs_disabled);
}

TEST(Irq, IpiSkipsThreadsNotStartedOrFinished) {
    Harness h;
    std::vector<std::string> acked;
    h.add("done", [] {});
    h.rt.add_thread("unborn", [] {}, /*started=*/false);
    h.add("sender", [&] {
        smp_call_function_sync(nullptr, [&](rt::Tid t) { acked.push_back(h.rt.thread_name(t)); });
    });
    EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
    EXPECT_TRUE(acked.empty());
}

TEST(Irq, SaveRestoreNestsAndEnableInsideNestingIsReported) {
    {
        Harness h;
        std::vector<bool> state;
        h.add("T", [&] {
            unsigned long f1 = local_irq_save();
            unsigned long f2 = local_irq_save();
            local_irq_restore(f2);
            state.push_back(irqs_disabled());
            local_irq_restore(f1);
            state.push_back(irqs_disabled());
            SpinLock l{"l"};
            unsigned long f = l.spin_lock_irqsave();
            lockdep_assert_irqs_disabled();
            l.spin_unlock_irqrestore(f);
            lockdep_assert_irqs_enabled();
        });
        EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
        EXPECT_EQ(state, (std::vector<bool>{true, false}));
    }
    {
        Harness h;
        SpinLock l{"l"};
        h.add("T", [&] {
            local_irq_disable(MMR_SITE("outer"));
            l.spin_lock_irq();
            l.spin_unlock_irq(MMR_SITE("inner_unlock"));
        });
        auto out = h.replay({});
        ASSERT_EQ(out.verdict, rt::Verdict::violation);
        EXPECT_EQ(out.check, Check::irq_state);
        EXPECT_TRUE(contains(out.message, "inner_unlock")) << out.message;
        EXPECT_TRUE(contains(out.message, "outer")) << out.message;
    }
    {
        Harness h;
        h.add("T", [] { local_irq_disable(); });
        EXPECT_EQ(h.replay({}).check, Check::irqs_disabled_at_exit);
    }
}

// =================================================================================
// refcount and atomics

TEST(Refcount, UnderflowIsUseAfterFree) {
    Harness h;
    Refcount ref{1, "vma->vm_refcnt"};
    h.add("T", [&] {
        EXPECT_TRUE(ref.refcount_dec_and_test());
        ref.refcount_dec_and_test(MMR_SITE("vma_put"));
    });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::refcount);
    EXPECT_TRUE(contains(out.message, "underflow; use-after-free")) << out.message;
    EXPECT_TRUE(contains(out.message, "vma_put")) << out.message;
}

TEST(Refcount, IncrementOnZero) {
    Harness h;
    Refcount ref{0, "folio->_refcount"};
    bool got = true;
    h.add("T", [&] {
        got = ref.refcount_inc_not_zero();
        ref.refcount_inc();
    });
    auto out = h.replay({});
    EXPECT_FALSE(got);
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::refcount);
    EXPECT_TRUE(contains(out.message, "increment on 0; use-after-free")) << out.message;
}

TEST(Refcount, DecrementToZeroLeaks) {
    Harness h;
    Refcount ref{1};
    h.add("T", [&] { ref.refcount_dec(); });
    auto out = h.replay({});
    EXPECT_EQ(out.check, Check::refcount);
    EXPECT_TRUE(contains(out.message, "decrement hit 0; leaking memory")) << out.message;
}

TEST(Refcount, BalancedUseIsFine) {
    Harness h;
    Refcount ref{1};
    AtomicCounter map{0, "mapcount"};
    h.add("T", [&] {
        ref.refcount_inc();
        ref.refcount_dec();
        map.atomic_inc();
        EXPECT_EQ(map.atomic_inc_return(), 2);
        EXPECT_FALSE(map.atomic_dec_and_test());
        EXPECT_TRUE(map.atomic_dec_and_test());
        EXPECT_EQ(map.atomic_cmpxchg(0, 5), 0);
        EXPECT_FALSE(map.atomic_add_unless(1, 5));
        EXPECT_TRUE(ref.refcount_dec_and_test());
    });
    EXPECT_EQ(h.replay({}).verdict, rt::Verdict::ok);
    EXPECT_EQ(map.value(), 5);
}

TEST(Refcount, AtomicUnderflow) {
    Harness h;
    AtomicCounter c{0, "mm->pgtables_bytes"};
    h.add("T", [&] { c.atomic_dec(); });
    auto out = h.replay({});
    ASSERT_EQ(out.verdict, rt::Verdict::violation);
    EXPECT_EQ(out.check, Check::atomic_underflow);
    EXPECT_TRUE(contains(out.message, "mm->pgtables_bytes")) << out.message;
}

TEST(Refcount, ReadOnceWriteOnceAreSchedulingPoints) {
    // An unlocked read-modify-write through READ_ONCE/WRITE_ONCE loses updates on some
    // schedules: proof that the policy can interleave at them.
    Harness h;
    int x = 0;
    for (const char* n : {"A", "B"})
        h.add(n, [&] { write_once(x, read_once(x) + 1); });
    std::set<int> finals;
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        x = 0;
        ASSERT_EQ(h.random(seed).verdict, rt::Verdict::ok);
        finals.insert(x);
    }
    EXPECT_EQ(finals, (std::set<int>{1, 2}));
}

// =================================================================================
// The domain: determinism, per-run state, misuse

namespace {

// One program that uses every primitive.
struct Mixed : Harness {
    RwSem mmap_lock{"&mm->mmap_lock"};
    SpinLock ptl{"ptlock"};
    SeqCount seq{"&vma->vm_sequence", &mmap_lock};
    Refcount ref{1, "folio"};
    int data = 0;

    Mixed() {
        add("fault", [this] {
            rcu_read_lock();
            unsigned s = seq.read_seqcount_begin();
            read_once(data);
            bool retry = seq.read_seqcount_retry(s);
            rcu_read_unlock();
            if (retry) {
                mmap_lock.down_read();
                ptl.spin_lock();
                write_once(data, data + 1);
                ptl.spin_unlock();
                mmap_lock.up_read();
            }
            local_irq_disable();
            work();
            local_irq_enable();
        });
        add("munmap", [this] {
            mmap_lock.down_write();
            seq.write_seqcount_begin();
            ref.refcount_inc();
            seq.write_seqcount_end();
            mmap_lock.downgrade_write();
            on_each_cpu_sync();
            mmap_lock.up_read();
            call_rcu(nullptr, [this] { ++data; });
        });
        add("khugepaged", [this] {
            if (mmap_lock.down_write_trylock()) {
                ptl.spin_lock();
                work();
                ptl.spin_unlock();
                mmap_lock.up_write();
            }
            ref.refcount_inc();
            synchronize_rcu();
            ref.refcount_dec();
        });
    }
};

}  // namespace

TEST(Sync, SameScheduleSameTraceHash) {
    Mixed m;
    std::set<uint64_t> distinct;
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        m.data = 0;
        m.ref.set_unchecked(1);
        auto a = m.random(seed);
        ASSERT_EQ(a.verdict, rt::Verdict::ok) << "seed " << seed << ": " << a.message;
        m.data = 0;
        m.ref.set_unchecked(1);
        auto b = m.random(seed);
        EXPECT_EQ(a.trace_hash, b.trace_hash) << "seed " << seed;
        m.data = 0;
        m.ref.set_unchecked(1);
        auto c = m.replay(a.decisions);
        EXPECT_EQ(a.trace_hash, c.trace_hash) << "seed " << seed;
        distinct.insert(a.trace_hash);
    }
    EXPECT_GT(distinct.size(), 50u);
}

TEST(Sync, LockStateDoesNotLeakFromAFailedRun) {
    Harness h;
    RwSem sem{"sem"};
    SpinLock l{"l"};
    bool fail = true;
    h.add("T", [&] {
        sem.down_write();
        l.spin_lock();
        local_irq_disable();
        rcu_read_lock();
        if (fail) h.dom.violation(Check::invariant, "the run ends with everything held");
        rcu_read_unlock();
        local_irq_enable();
        l.spin_unlock();
        sem.up_write();
    });
    h.add("U", [&] {
        sem.down_read();
        sem.up_read();
        synchronize_rcu();
    });
    EXPECT_EQ(h.replay({}).check, Check::invariant);
    EXPECT_TRUE(sem.is_write_locked());  // inspected after the run: its final state
    fail = false;
    auto out = h.replay({1});  // U first: sem and l must be free again
    EXPECT_EQ(out.verdict, rt::Verdict::ok) << out.message;
    EXPECT_FALSE(sem.is_locked());
    EXPECT_FALSE(l.spin_is_locked());
}

TEST(Sync, PrimitivesOutsideASimulatedThreadThrow) {
    rt::Runtime rt;
    SyncDomain dom(rt);
    RwSem sem{"sem"};
    EXPECT_THROW(sem.down_read(), std::logic_error);  // no domain bound
    SyncDomain::Scope bind(dom);
    EXPECT_THROW(sem.down_read(), std::logic_error);  // bound, but not in a run
    EXPECT_THROW(rcu_read_lock(), std::logic_error);
}

TEST(Sync, LockWaitedReportsContention) {
    Harness h;
    RwSem sem{"&mm->mmap_lock"};
    std::vector<bool> waited;
    h.add("W", [&] {
        sem.down_write();
        work();
        sem.up_write();
    });
    h.add("R", [&] {
        sem.down_read();
        waited.push_back(lock_waited());
        sem.up_read();
        sem.down_read();
        waited.push_back(lock_waited());
        sem.up_read();
    });
    // d0 W; d1 W locks; d2 R starts; d3 R queues.
    EXPECT_EQ(h.replay({0, 0, 1, 1}).verdict, rt::Verdict::ok);
    EXPECT_EQ(waited, (std::vector<bool>{true, false}));
}
