// refcount_t, checked atomic counters and annotated shared accesses for the sim backend.
//
// Every operation is one atomic step at a scheduling point (Ev::access): the policy can
// run other threads before it, never in the middle of it.  The checks are the kernel's
// (lib/refcount.c refcount_warn_saturate) plus an underflow check on plain counters that
// must never go negative; a failed check is a violation that ends the run.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "runtime/runtime.hpp"
#include "sync/domain.hpp"

namespace mmrace::sync {

namespace detail {
// The bound domain, after a scheduling point at `site` (arg: the value before the op).
inline SyncDomain& access_point(const rt::Site* site, uint64_t arg) {
    SyncDomain& d = SyncDomain::current();
    d.self();
    d.rt().yield(site, rt::Ev::access, arg);
    return d;
}
}  // namespace detail

// refcount_t: saturating in the kernel, here every misuse ends the run with violation
// "refcount" and the kernel's message.
class Refcount {
public:
    explicit Refcount(int64_t initial = 1, std::string name = "refcount_t")
        : v_(initial), name_(std::move(name)) {}

    // refcount_set(): no check (initialisation).
    void refcount_set(int64_t v, const rt::Site* site = nullptr) {
        at(site, MMR_SITE("refcount_set"));
        v_ = v;
    }
    int64_t refcount_read(const rt::Site* site = nullptr) {
        at(site, MMR_SITE("refcount_read"));
        return v_;
    }
    // refcount_inc(): on 0 the object is already being freed.
    void refcount_inc(const rt::Site* site = nullptr) { refcount_add(1, site ? site : MMR_SITE("refcount_inc")); }
    void refcount_add(int64_t n, const rt::Site* site = nullptr) {
        SyncDomain& d = at(site, MMR_SITE("refcount_add"));
        if (v_ <= 0) warn(d, "increment on 0; use-after-free", site);
        v_ += n;
    }
    // refcount_inc_not_zero(): false (and no change) on 0.
    bool refcount_inc_not_zero(const rt::Site* site = nullptr) {
        SyncDomain& d = at(site, MMR_SITE("refcount_inc_not_zero"));
        if (v_ < 0) warn(d, "underflow; use-after-free", site);
        if (v_ == 0) return false;
        ++v_;
        return true;
    }
    // refcount_dec_and_test(): true when this dropped the last reference.
    bool refcount_dec_and_test(const rt::Site* site = nullptr) {
        return refcount_sub_and_test(1, site ? site : MMR_SITE("refcount_dec_and_test"));
    }
    bool refcount_sub_and_test(int64_t n, const rt::Site* site = nullptr) {
        SyncDomain& d = at(site, MMR_SITE("refcount_sub_and_test"));
        if (v_ - n < 0) warn(d, "underflow; use-after-free", site);
        v_ -= n;
        return v_ == 0;
    }
    // refcount_dec(): must not drop the last reference (that would leak the object).
    void refcount_dec(const rt::Site* site = nullptr) {
        SyncDomain& d = at(site, MMR_SITE("refcount_dec"));
        if (v_ - 1 < 0) warn(d, "underflow; use-after-free", site);
        if (v_ - 1 == 0) warn(d, "decrement hit 0; leaking memory", site);
        --v_;
    }

    // The value without a scheduling point (tests, invariant checks).
    int64_t value() const { return v_; }
    // Sets the value without a scheduling point: set-up between runs only.
    void set_unchecked(int64_t v) { v_ = v; }
    const std::string& name() const { return name_; }

private:
    // The scheduling point of an op; `site` defaults to the op's own.
    SyncDomain& at(const rt::Site*& site, const rt::Site* op) {
        if (!site) site = op;
        return detail::access_point(site, static_cast<uint64_t>(v_));
    }
    [[noreturn]] void warn(SyncDomain& d, const char* what, const rt::Site* site) {
        d.violation(Check::refcount, std::string("refcount_t: ") + what + ". (" + name_ + " = " +
                                    std::to_string(v_) + " at " + site->name + " in " +
                                    d.name(d.self()) + ")");
    }

    int64_t v_;
    std::string name_;
};

// atomic_t / atomic_long_t used as a count that must never go negative (mapcounts,
// nr_ptes, ...): going below 0 is violation "atomic_underflow".
class AtomicCounter {
public:
    explicit AtomicCounter(int64_t initial = 0, std::string name = "atomic_t")
        : v_(initial), name_(std::move(name)) {}

    int64_t atomic_read(const rt::Site* site = nullptr) {
        detail::access_point(site ? site : MMR_SITE("atomic_read"), static_cast<uint64_t>(v_));
        return v_;
    }
    void atomic_set(int64_t v, const rt::Site* site = nullptr) {
        detail::access_point(site ? site : MMR_SITE("atomic_set"), static_cast<uint64_t>(v_));
        v_ = v;
    }
    void atomic_inc(const rt::Site* site = nullptr) { add(1, site ? site : MMR_SITE("atomic_inc")); }
    void atomic_dec(const rt::Site* site = nullptr) { add(-1, site ? site : MMR_SITE("atomic_dec")); }
    void atomic_add(int64_t n, const rt::Site* site = nullptr) { add(n, site ? site : MMR_SITE("atomic_add")); }
    void atomic_sub(int64_t n, const rt::Site* site = nullptr) { add(-n, site ? site : MMR_SITE("atomic_sub")); }
    int64_t atomic_inc_return(const rt::Site* site = nullptr) {
        return add(1, site ? site : MMR_SITE("atomic_inc_return"));
    }
    int64_t atomic_dec_return(const rt::Site* site = nullptr) {
        return add(-1, site ? site : MMR_SITE("atomic_dec_return"));
    }
    bool atomic_dec_and_test(const rt::Site* site = nullptr) {
        return add(-1, site ? site : MMR_SITE("atomic_dec_and_test")) == 0;
    }
    // atomic_add_unless(v, n, u): adds n unless the value is u; true if it added.
    bool atomic_add_unless(int64_t n, int64_t unless, const rt::Site* site = nullptr) {
        detail::access_point(site ? site : MMR_SITE("atomic_add_unless"), static_cast<uint64_t>(v_));
        if (v_ == unless) return false;
        check(v_ + n, site ? site : MMR_SITE("atomic_add_unless"));
        v_ += n;
        return true;
    }
    // atomic_cmpxchg(): returns the old value; stores `desired` if it was `expected`.
    int64_t atomic_cmpxchg(int64_t expected, int64_t desired, const rt::Site* site = nullptr) {
        site = site ? site : MMR_SITE("atomic_cmpxchg");
        detail::access_point(site, static_cast<uint64_t>(v_));
        int64_t old = v_;
        if (old == expected) {
            check(desired, site);
            v_ = desired;
        }
        return old;
    }

    int64_t value() const { return v_; }
    // Sets the value without a scheduling point: set-up between runs only.
    void set_unchecked(int64_t v) { v_ = v; }
    const std::string& name() const { return name_; }

private:
    int64_t add(int64_t n, const rt::Site* site) {
        detail::access_point(site, static_cast<uint64_t>(v_));
        check(v_ + n, site);
        return v_ += n;
    }
    void check(int64_t next, const rt::Site* site) {
        if (next >= 0) return;
        SyncDomain& d = SyncDomain::current();
        d.violation(Check::atomic_underflow, name_ + " would go from " + std::to_string(v_) + " to " +
                                            std::to_string(next) + " at " + site->name + " in " +
                                            d.name(d.self()));
    }

    int64_t v_;
    std::string name_;
};

// READ_ONCE / WRITE_ONCE of a plain shared value: a scheduling point, then the access.
// Use them for the racy reads and writes the model wants interleaved (a PTE read by a
// lockless walker, a flag polled by a speculative path).
template <class T>
T read_once(const T& v, const rt::Site* site = nullptr) {
    detail::access_point(site ? site : MMR_SITE("READ_ONCE"), 0);
    return v;
}

template <class T, class U>
void write_once(T& v, U&& value, const rt::Site* site = nullptr) {
    detail::access_point(site ? site : MMR_SITE("WRITE_ONCE"), 1);
    v = std::forward<U>(value);
}

// Kernel-style spellings.
inline void refcount_inc(Refcount& r, const rt::Site* site = nullptr) { r.refcount_inc(site); }
inline bool refcount_inc_not_zero(Refcount& r, const rt::Site* site = nullptr) {
    return r.refcount_inc_not_zero(site);
}
inline bool refcount_dec_and_test(Refcount& r, const rt::Site* site = nullptr) {
    return r.refcount_dec_and_test(site);
}
inline void refcount_dec(Refcount& r, const rt::Site* site = nullptr) { r.refcount_dec(site); }
inline int64_t refcount_read(Refcount& r, const rt::Site* site = nullptr) { return r.refcount_read(site); }
inline void atomic_inc(AtomicCounter& a, const rt::Site* site = nullptr) { a.atomic_inc(site); }
inline void atomic_dec(AtomicCounter& a, const rt::Site* site = nullptr) { a.atomic_dec(site); }
inline int64_t atomic_read(AtomicCounter& a, const rt::Site* site = nullptr) { return a.atomic_read(site); }
inline bool atomic_dec_and_test(AtomicCounter& a, const rt::Site* site = nullptr) {
    return a.atomic_dec_and_test(site);
}

}  // namespace mmrace::sync
