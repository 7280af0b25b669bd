// lockdep for the sim backend (kernel/locking/lockdep.c): lock classes, the held-lock
// stack of every simulated thread, the class dependency graph with lockdep's
// read/recursive-read dependency kinds, and the checks that come with them:
//   - a new dependency that closes a (strong) cycle      -> verdict lock_order, "lockdep"
//   - the same class taken twice without a subclass       -> verdict lock_order, "lockdep"
//   - lockdep_assert_held() on a lock the thread lacks    -> violation "lockdep_assert_held"
//   - releasing a lock the thread does not hold           -> violation "bad_unlock_balance"
//   - sleeping in atomic context (might_sleep)            -> violation "might_sleep"
//
// Unlike the kernel, a dependency is recorded when an acquisition SUCCEEDS, not when it
// is attempted: a schedule that really deadlocks then ends with verdict `deadlock` and the
// runtime's wait-for cycle, and every other schedule of the same program still gets the
// lock_order report as soon as both orders have been seen.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/runtime.hpp"

namespace mmrace::sync {

class SyncDomain;

using ClassId = uint32_t;
constexpr ClassId kNoClass = UINT32_MAX;
constexpr unsigned MAX_LOCKDEP_SUBCLASSES = 8;  // include/linux/lockdep_types.h
constexpr unsigned SINGLE_DEPTH_NESTING = 1;    // include/linux/lockdep.h

// lock_acquire()'s `read` argument: 0 exclusive, 1 shared (rwsem readers, qrwlock
// readers in process context), 2 shared-recursive (rwlock_t readers that never wait for
// a queued writer, seqcount readers, rcu_read_lock).
enum class Acquire : uint8_t { exclusive = 0, shared = 1, shared_recursive = 2 };

// lockdep_assert_held{,_read,_write}.
enum class LockMode : uint8_t { any, read, write };

// struct lockdep_map: what every lock embeds.  The class is the lock's name (every
// mm's "&mm->mmap_lock" is one class) plus a subclass for *_nested acquisitions.
//
// It also remembers which run (epoch) its owner's state belongs to, so that a lock that
// outlives a run, possibly a failed one that unwound with the lock held, starts the next
// run unlocked.
class LockdepMap {
public:
    explicit LockdepMap(std::string name);
    LockdepMap(const LockdepMap&) = delete;
    LockdepMap& operator=(const LockdepMap&) = delete;

    const std::string& lock_name() const { return name_; }
    // fnv1a of the name: the `arg` of this lock's trace records (stable across builds).
    uint64_t name_hash() const { return hash_; }

protected:
    // True the first time the lock is touched in run `epoch`; the caller then clears the
    // state an earlier run left behind.
    bool new_run(uint64_t epoch) {
        if (state_epoch_ == epoch) return false;
        state_epoch_ = epoch;
        return true;
    }
    // Whether the lock's state belongs to the run of the bound domain (true when no
    // domain is bound: a test inspecting a lock after its run).
    bool live() const;

private:
    friend class Lockdep;
    std::string name_;
    uint64_t hash_;
    uint64_t state_epoch_ = 0;
    uint64_t class_epoch_ = 0;
    std::array<ClassId, MAX_LOCKDEP_SUBCLASSES> class_cache_{};
};

// struct held_lock: one entry of a thread's held-lock stack.
struct HeldLock {
    const LockdepMap* lock;  // the instance (identity only, never ordered by address)
    ClassId cls;
    Acquire read;
    bool trylock;
    const rt::Site* site;    // where it was acquired
};

// The per-run lockdep state of one SyncDomain.
class Lockdep {
public:
    explicit Lockdep(SyncDomain& d) : d_(d) {}

    // Forgets classes, the graph and every held-lock stack; `threads` stacks, run `epoch`.
    void reset(size_t threads, uint64_t epoch);

    // lock_acquire() after the acquisition succeeded: validates (unless trylock) and
    // pushes the lock on t's stack.  May end the run with verdict lock_order.
    void acquire(rt::Tid t, LockdepMap& lock, unsigned subclass, Acquire read, bool trylock,
                 const rt::Site* site);
    // lock_release(): removes the lock from t's stack (violation bad_unlock_balance if
    // t does not hold it).
    void release(rt::Tid t, const LockdepMap& lock, const rt::Site* site);
    // lock_downgrade(): t's write hold of `lock` becomes a read hold.
    void downgrade(rt::Tid t, const LockdepMap& lock, const rt::Site* site);

    // The innermost entry of t's stack for `lock`, or null.
    const HeldLock* find_held(rt::Tid t, const LockdepMap& lock) const;
    bool is_held(rt::Tid t, const LockdepMap& lock, LockMode mode) const;
    // Violation "lockdep_assert_held" unless t holds `lock` in `mode`.
    void assert_held(rt::Tid t, const LockdepMap& lock, LockMode mode, const rt::Site* site);
    // Violation "lockdep_assert_not_held" if t holds `lock`.
    void assert_not_held(rt::Tid t, const LockdepMap& lock, const rt::Site* site);
    void assert_class_not_held(rt::Tid t, std::string_view lock_name, const rt::Site* site);

    const std::vector<HeldLock>& held(rt::Tid t) const { return held_.at(t); }
    // "A (acquired at s1), B (acquired at s2)" for reports.
    std::string describe_held(rt::Tid t) const;

    // Queries for tests and reports: class names are "name" or "name/subclass".
    size_t class_count() const { return classes_.size(); }
    size_t dependency_count() const;
    bool has_dependency(std::string_view from, std::string_view to) const;

private:
    struct Dep {                 // struct lock_list: one edge prev -> next
        ClassId next;
        uint8_t dep;             // DEP_{SR,ER,SN,EN}_MASK bits seen
        rt::Tid thread;          // who created it first, and where
        const rt::Site* prev_site;
        const rt::Site* next_site;
    };
    struct PathStep {
        ClassId from;
        const Dep* edge;
    };

    ClassId class_of(LockdepMap& lock, unsigned subclass);
    void check_deadlock(rt::Tid t, const HeldLock& next);
    void check_prevs_add(rt::Tid t, const HeldLock& next);
    void check_prev_add(rt::Tid t, const HeldLock& prev, const HeldLock& next);
    bool find_strong_path(const HeldLock& from, const HeldLock& to, std::vector<PathStep>& path) const;
    Dep* find_dep(ClassId prev, ClassId next);
    [[noreturn]] void print_circular_bug(rt::Tid t, const HeldLock& prev, const HeldLock& next,
                                         const std::vector<PathStep>& path);
    [[noreturn]] void print_deadlock_bug(rt::Tid t, const HeldLock& prev, const HeldLock& next);
    std::string describe_edge(ClassId from, const Dep& e) const;

    SyncDomain& d_;
    uint64_t epoch_ = 0;
    std::vector<std::string> classes_;                 // ClassId -> display name
    std::unordered_map<std::string, ClassId> by_name_; // lookups only, never iterated
    std::vector<std::vector<Dep>> after_;              // locks_after, in insertion order
    std::vector<std::vector<HeldLock>> held_;          // per thread
};

// ---- the kernel API (act on the current thread of the bound SyncDomain) ----

// lockdep_assert_held(): the current thread must hold `lock` (for read, write or either).
void lockdep_assert_held(const LockdepMap& lock, LockMode mode = LockMode::any,
                         const rt::Site* site = nullptr);
inline void lockdep_assert_held_write(const LockdepMap& lock, const rt::Site* site = nullptr) {
    lockdep_assert_held(lock, LockMode::write, site);
}
inline void lockdep_assert_held_read(const LockdepMap& lock, const rt::Site* site = nullptr) {
    lockdep_assert_held(lock, LockMode::read, site);
}
void lockdep_assert_not_held(const LockdepMap& lock, const rt::Site* site = nullptr);
// The same for every lock of class `lock_name` (any instance): e.g. no mm's mmap_lock.
void lockdep_assert_class_not_held(std::string_view lock_name, const rt::Site* site = nullptr);
// lockdep_is_held(): whether the current thread holds `lock` in any mode.
bool lockdep_is_held(const LockdepMap& lock);

// might_lock_read() (include/linux/lockdep.h): tell lockdep that the current thread
// may take `lock` for read here, without taking it: an acquire (validated, so the
// dependencies on every lock held are recorded) and an immediate release.
// __might_fault() uses it on mmap_lock, so that a user copy under a lock teaches lockdep
// the dependency whether or not this copy happens to fault.
void might_lock_read(LockdepMap& lock, const rt::Site* site = nullptr);

// might_sleep() under CONFIG_DEBUG_ATOMIC_SLEEP (__might_resched): violation "might_sleep"
// if the current thread has IRQs off, holds or spins on a spinlock, or is inside
// rcu_read_lock().  Not a scheduling point by itself.
void might_sleep(const rt::Site* site = nullptr);

}  // namespace mmrace::sync
