// seqcount_t for the sim backend (include/linux/seqlock.h): vma->vm_sequence of the
// speculative fault path, mm->mm_lock_seq, and the like.
//
// Writers are serialised by an associated lock (seqcount_LOCKNAME_t): when one is given,
// write_seqcount_begin lockdep-asserts it.  The write side is a lockdep acquisition of
// the seqcount's own class (seqcount_acquire), the read side a momentary recursive read
// of it (seqcount_lockdep_reader_access), so lockdep sees a reader that could spin
// forever under a lock its writer needs.  read_seqcount_begin waits while the count is
// odd; the deterministic equivalent of the kernel's spin is blocking, with the writer as
// the holder in a deadlock report.  Every operation is a scheduling point.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"
#include "sync/domain.hpp"
#include "sync/lockdep.hpp"

namespace mmrace::sync {

class SeqCount : public rt::Waitable, public LockdepMap {
public:
    // `lock` (optional) is the associated lock every writer must hold.
    explicit SeqCount(std::string name = "seqcount", const LockdepMap* lock = nullptr)
        : LockdepMap(std::move(name)), lock_(lock) {}

    // seqcount_LOCKNAME_init(): (re)associates the writers' lock.
    void associate(const LockdepMap* lock) { lock_ = lock; }

    // write_seqcount_begin(): scheduling point; the associated lock must be held
    // (violation lockdep_assert_held); another thread inside a write section is a
    // violation "seqcount" (lost serialisation).  Makes the count odd.
    void write_seqcount_begin(const rt::Site* site = nullptr) {
        write_begin(site ? site : MMR_SITE("write_seqcount_begin"), 0, true);
    }
    void write_seqcount_begin_nested(unsigned subclass, const rt::Site* site = nullptr) {
        write_begin(site ? site : MMR_SITE("write_seqcount_begin_nested"), subclass, true);
    }
    // write_seqcount_end(): makes the count even, wakes waiting readers, scheduling point.
    void write_seqcount_end(const rt::Site* site = nullptr) {
        write_end(site ? site : MMR_SITE("write_seqcount_end"), true);
    }
    // raw_write_seqcount_begin/end(): without lockdep and the lock assertion.
    void raw_write_seqcount_begin(const rt::Site* site = nullptr) {
        write_begin(site ? site : MMR_SITE("raw_write_seqcount_begin"), 0, false);
    }
    void raw_write_seqcount_end(const rt::Site* site = nullptr) {
        write_end(site ? site : MMR_SITE("raw_write_seqcount_end"), false);
    }

    // raw_read_seqcount(): the count as is, odd or not; never waits.
    unsigned raw_read_seqcount(const rt::Site* site = nullptr) {
        SyncDomain& d = begin();
        d.rt().yield(site ? site : MMR_SITE("raw_read_seqcount"), rt::Ev::access, seq_);
        return seq_;
    }
    // raw_seqcount_begin(): the count with the low bit cleared; never waits (a section
    // begun during a write fails its retry).
    unsigned raw_seqcount_begin(const rt::Site* site = nullptr) {
        return raw_read_seqcount(site ? site : MMR_SITE("raw_seqcount_begin")) & ~1u;
    }
    // read_seqcount_begin(): waits while a writer is inside, returns the even count.
    unsigned read_seqcount_begin(const rt::Site* site = nullptr) {
        site = site ? site : MMR_SITE("read_seqcount_begin");
        SyncDomain& d = begin();
        rt::Tid me = d.self();
        d.rt().yield(site, rt::Ev::access, seq_);
        while (seq_ & 1) {
            waiters_.push_back(me);
            d.rt().wait(site, this);
        }
        d.lockdep().acquire(me, *this, 0, Acquire::shared_recursive, false, site);
        d.lockdep().release(me, *this, site);
        return seq_;
    }
    // read_seqcount_retry(): true if a write began or ended since `start`.
    bool read_seqcount_retry(unsigned start, const rt::Site* site = nullptr) {
        SyncDomain& d = begin();
        d.rt().yield(site ? site : MMR_SITE("read_seqcount_retry"), rt::Ev::access, seq_);
        return seq_ != start;
    }

    // The count without a scheduling point (tests, invariant checks).
    unsigned sequence() const { return live() ? seq_ : 0; }
    rt::Tid writer() const { return live() ? writer_ : rt::kNoThread; }

    std::string describe() const override { return lock_name(); }
    void holders(std::vector<rt::Tid>& out) const override {
        if (writer_ != rt::kNoThread) out.push_back(writer_);
    }

private:
    // The bound domain, after checking the caller is a simulated thread; clears the
    // state an earlier run left behind.
    SyncDomain& begin() {
        SyncDomain& d = SyncDomain::current();
        d.self();
        if (new_run(d.epoch())) {
            seq_ = 0;
            writer_ = rt::kNoThread;
            waiters_.clear();
        }
        return d;
    }

    void write_begin(const rt::Site* site, unsigned subclass, bool checked) {
        SyncDomain& d = begin();
        rt::Tid me = d.self();
        d.rt().yield(site, rt::Ev::lock_acquire, name_hash());
        if (checked && lock_) d.lockdep().assert_held(me, *lock_, LockMode::any, site);
        if ((seq_ & 1) && writer_ != me)
            d.violation(Check::seqcount, d.name(me) + " begins a write of " + lock_name() + " at " +
                                        site->name + " while " + d.name(writer_) +
                                        " is inside one: writers are not serialised");
        if (checked) d.lockdep().acquire(me, *this, subclass, Acquire::exclusive, false, site);
        ++seq_;
        writer_ = me;
    }

    void write_end(const rt::Site* site, bool checked) {
        SyncDomain& d = begin();
        rt::Tid me = d.self();
        if (!(seq_ & 1) || writer_ != me)
            d.violation(Check::seqcount, d.name(me) + " ends a write of " + lock_name() + " at " +
                                        site->name + " without having begun one");
        if (checked) d.lockdep().release(me, *this, site);
        ++seq_;
        writer_ = rt::kNoThread;
        for (rt::Tid t : waiters_) d.rt().wake(t);
        waiters_.clear();
        d.rt().yield(site, rt::Ev::lock_release, name_hash());
    }

    const LockdepMap* lock_;
    unsigned seq_ = 0;
    rt::Tid writer_ = rt::kNoThread;
    std::vector<rt::Tid> waiters_;
};

// Kernel-style spellings.
inline void write_seqcount_begin(SeqCount& s, const rt::Site* site = nullptr) { s.write_seqcount_begin(site); }
inline void write_seqcount_end(SeqCount& s, const rt::Site* site = nullptr) { s.write_seqcount_end(site); }
inline void raw_write_seqcount_begin(SeqCount& s, const rt::Site* site = nullptr) {
    s.raw_write_seqcount_begin(site);
}
inline void raw_write_seqcount_end(SeqCount& s, const rt::Site* site = nullptr) {
    s.raw_write_seqcount_end(site);
}
inline unsigned raw_read_seqcount(SeqCount& s, const rt::Site* site = nullptr) {
    return s.raw_read_seqcount(site);
}
inline unsigned read_seqcount_begin(SeqCount& s, const rt::Site* site = nullptr) {
    return s.read_seqcount_begin(site);
}
inline bool read_seqcount_retry(SeqCount& s, unsigned start, const rt::Site* site = nullptr) {
    return s.read_seqcount_retry(start, site);
}

}  // namespace mmrace::sync
