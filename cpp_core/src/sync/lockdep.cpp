#include "sync/lockdep.hpp"

#include <stdexcept>

#include "sync/domain.hpp"

namespace mmrace::sync {

namespace {

// Dependency kinds of an edge prev -> next (lockdep.c DEP_*_BIT): bit0 = prev held
// exclusively, bit1 = next is not a recursive reader.
constexpr uint8_t DEP_SR_MASK = 1u << 0;  // prev shared, next recursive-read
constexpr uint8_t DEP_ER_MASK = 1u << 1;  // prev exclusive, next recursive-read
constexpr uint8_t DEP_SN_MASK = 1u << 2;  // prev shared, next non-recursive
constexpr uint8_t DEP_EN_MASK = 1u << 3;  // prev exclusive, next non-recursive

// calc_dep()
uint8_t calc_dep(const HeldLock& prev, const HeldLock& next) {
    unsigned bit = (prev.read == Acquire::exclusive ? 1u : 0u) +
                   (next.read != Acquire::shared_recursive ? 2u : 0u);
    return static_cast<uint8_t>(1u << bit);
}

std::string site_name(const rt::Site* s) { return s ? s->name : "?"; }

}  // namespace

// ---------------------------------------------------------------------------------
// LockdepMap

LockdepMap::LockdepMap(std::string name) : name_(std::move(name)), hash_(rt::fnv1a(name_)) {
    class_cache_.fill(kNoClass);
}

bool LockdepMap::live() const {
    const SyncDomain* d = SyncDomain::current_or_null();
    return !d || state_epoch_ == d->epoch();
}

// ---------------------------------------------------------------------------------
// Classes and the held-lock stacks

void Lockdep::reset(size_t threads, uint64_t epoch) {
    epoch_ = epoch;
    classes_.clear();
    by_name_.clear();
    after_.clear();
    held_.resize(threads);
    for (auto& h : held_) h.clear();
}

// register_lock_class() by name: every lock named "&mm->mmap_lock" is one class; a
// subclass is a class of its own, printed "name/N" as lockdep does.
ClassId Lockdep::class_of(LockdepMap& lock, unsigned subclass) {
    if (subclass >= MAX_LOCKDEP_SUBCLASSES)
        throw std::out_of_range("lockdep: subclass " + std::to_string(subclass) + " of " +
                                lock.name_ + " >= MAX_LOCKDEP_SUBCLASSES");
    if (lock.class_epoch_ != epoch_) {
        lock.class_epoch_ = epoch_;
        lock.class_cache_.fill(kNoClass);
    }
    ClassId& cached = lock.class_cache_[subclass];
    if (cached != kNoClass) return cached;
    std::string key = subclass ? lock.name_ + "/" + std::to_string(subclass) : lock.name_;
    auto [it, inserted] = by_name_.try_emplace(key, static_cast<ClassId>(classes_.size()));
    if (inserted) {
        classes_.push_back(key);
        after_.emplace_back();
    }
    return cached = it->second;
}

const HeldLock* Lockdep::find_held(rt::Tid t, const LockdepMap& lock) const {
    const auto& h = held_.at(t);
    for (size_t i = h.size(); i-- > 0;)
        if (h[i].lock == &lock) return &h[i];
    return nullptr;
}

bool Lockdep::is_held(rt::Tid t, const LockdepMap& lock, LockMode mode) const {
    const HeldLock* h = find_held(t, lock);
    if (!h) return false;
    if (mode == LockMode::any) return true;
    return (mode == LockMode::read) == (h->read != Acquire::exclusive);
}

std::string Lockdep::describe_held(rt::Tid t) const {
    std::string s;
    for (const HeldLock& h : held_.at(t)) {
        if (!s.empty()) s += ", ";
        s += classes_[h.cls] + " (acquired at " + site_name(h.site) + ")";
    }
    return s.empty() ? "no locks" : s;
}

// ---------------------------------------------------------------------------------
// Acquire: validate_chain() -> check_deadlock() + check_prevs_add()

void Lockdep::acquire(rt::Tid t, LockdepMap& lock, unsigned subclass, Acquire read,
                      bool trylock, const rt::Site* site) {
    HeldLock next{&lock, class_of(lock, subclass), read, trylock, site};
    // validate_chain(): a trylock cannot block, so it is neither checked nor the target
    // of new dependencies (it still is a `prev` for what is taken under it).
    if (!trylock) {
        check_deadlock(t, next);
        check_prevs_add(t, next);
    }
    held_.at(t).push_back(next);
}

// check_deadlock(): the class is already held by this thread.  Read-after-read of a
// recursive reader is fine; anything else needs a subclass (*_nested) to be told apart.
void Lockdep::check_deadlock(rt::Tid t, const HeldLock& next) {
    for (const HeldLock& prev : held_[t]) {
        if (prev.cls != next.cls) continue;
        if (next.read == Acquire::shared_recursive && prev.read != Acquire::exclusive) continue;
        print_deadlock_bug(t, prev, next);
    }
}

// check_prevs_add(): a dependency from every held lock down to and including the
// nearest non-trylock entry (the ones below are connected through it already).
void Lockdep::check_prevs_add(rt::Tid t, const HeldLock& next) {
    const auto& h = held_[t];
    for (size_t i = h.size(); i-- > 0;) {
        check_prev_add(t, h[i], next);
        if (!h[i].trylock) break;
    }
}

Lockdep::Dep* Lockdep::find_dep(ClassId prev, ClassId next) {
    for (Dep& e : after_[prev])
        if (e.next == next) return &e;
    return nullptr;
}

// check_prev_add(): prove that prev -> next closes no strong cycle, then record it.
void Lockdep::check_prev_add(rt::Tid t, const HeldLock& prev, const HeldLock& next) {
    // Same class: check_deadlock() has ruled on it; a self edge adds no strong path.
    if (prev.cls == next.cls) return;
    uint8_t bit = calc_dep(prev, next);
    if (Dep* e = find_dep(prev.cls, next.cls); e && (e->dep & bit)) return;  // nothing new
    std::vector<PathStep> path;
    if (find_strong_path(next, prev, path)) print_circular_bug(t, prev, next, path);
    if (Dep* e = find_dep(prev.cls, next.cls))
        e->dep |= bit;
    else
        after_[prev.cls].push_back(Dep{next.cls, bit, t, prev.site, next.site});
}

// check_noncircular(): a breadth-first search from `from` (the new lock) for a strong
// path to `to` (the held lock), as __bfs() with hlock_conflict().  A path is strong when
// it never has an edge into a recursive reader (-(*R)->) followed by an edge out of a
// shared holder (-(S*)->); only strong cycles can deadlock.  The search state is (class,
// "arrived through -(*R)-> only"), exact where the kernel marks each edge once.
bool Lockdep::find_strong_path(const HeldLock& from, const HeldLock& to,
                               std::vector<PathStep>& path) const {
    struct Node {
        ClassId cls;
        bool only_xr;
        int parent;
        const Dep* edge;
    };
    std::vector<Node> q{{from.cls, from.read == Acquire::shared_recursive, -1, nullptr}};
    std::vector<uint8_t> seen(classes_.size() * 2, 0);
    seen[from.cls * 2 + q[0].only_xr] = 1;
    for (size_t i = 0; i < q.size(); ++i) {
        Node n = q[i];
        // hlock_conflict(): the cycle to -> .. -> from -> to is strong if the new edge
        // leaves `to` exclusively or the path reaches `to` through a non-recursive edge.
        if (n.cls == to.cls && (to.read == Acquire::exclusive || !n.only_xr)) {
            for (int j = static_cast<int>(i); q[j].parent >= 0; j = q[j].parent)
                path.insert(path.begin(), PathStep{q[q[j].parent].cls, q[j].edge});
            return true;
        }
        for (const Dep& e : after_[n.cls]) {
            uint8_t dep = e.dep;
            if (n.only_xr) dep &= static_cast<uint8_t>(~(DEP_SR_MASK | DEP_SN_MASK));
            if (!dep) continue;
            bool xr = !(dep & (DEP_SN_MASK | DEP_EN_MASK));
            uint8_t& s = seen[e.next * 2 + xr];
            if (s) continue;
            s = 1;
            q.push_back(Node{e.next, xr, static_cast<int>(i), &e});
        }
    }
    return false;
}

// ---------------------------------------------------------------------------------
// Reports

std::string Lockdep::describe_edge(ClassId from, const Dep& e) const {
    return "  " + classes_[from] + " -> " + classes_[e.next] + ": " + d_.name(e.thread) +
           " acquired " + classes_[e.next] + " at " + site_name(e.next_site) + " while holding " +
           classes_[from] + " (acquired at " + site_name(e.prev_site) + ")\n";
}

// print_circular_bug(): both orders, with the thread and the sites of every edge.
void Lockdep::print_circular_bug(rt::Tid t, const HeldLock& prev, const HeldLock& next,
                                 const std::vector<PathStep>& path) {
    std::string m = "WARNING: possible circular locking dependency detected\n";
    m += d_.name(t) + " acquired lock:\n  " + classes_[next.cls] + " at " + site_name(next.site) +
         "\nwhile holding lock:\n  " + classes_[prev.cls] + " (acquired at " +
         site_name(prev.site) + ")\nwhich lock already depends on the new lock.\n";
    m += "existing dependency chain:\n";
    for (const PathStep& s : path) m += describe_edge(s.from, *s.edge);
    m += "new dependency:\n";
    Dep fresh{next.cls, calc_dep(prev, next), t, prev.site, next.site};
    m += describe_edge(prev.cls, fresh);
    m += "locks held by " + d_.name(t) + ": " + describe_held(t);
    d_.fail(Check::lockdep, m);
}

void Lockdep::print_deadlock_bug(rt::Tid t, const HeldLock& prev, const HeldLock& next) {
    std::string m = "WARNING: possible recursive locking detected\n";
    m += d_.name(t) + " acquired lock:\n  " + classes_[next.cls] + " at " + site_name(next.site) +
         "\nwhile already holding lock:\n  " + classes_[prev.cls] + " (acquired at " +
         site_name(prev.site) + ")\n";
    m += prev.lock == next.lock ? "(the same lock instance)\n"
                                : "(another lock of the same class: if this nesting is intended, "
                                  "annotate it with a *_nested() subclass)\n";
    m += "locks held by " + d_.name(t) + ": " + describe_held(t);
    d_.fail(Check::lockdep, m);
}

// ---------------------------------------------------------------------------------
// Release, downgrade, assertions

void Lockdep::release(rt::Tid t, const LockdepMap& lock, const rt::Site* site) {
    auto& h = held_.at(t);
    for (size_t i = h.size(); i-- > 0;) {
        if (h[i].lock != &lock) continue;
        h.erase(h.begin() + static_cast<std::ptrdiff_t>(i));
        return;
    }
    d_.violation(Check::bad_unlock_balance, "WARNING: bad unlock balance detected! " + d_.name(t) +
                                           " is trying to release lock " + lock.lock_name() +
                                           " at " + site_name(site) +
                                           " but does not hold it; held: " + describe_held(t));
}

void Lockdep::downgrade(rt::Tid t, const LockdepMap& lock, const rt::Site* site) {
    auto& h = held_.at(t);
    for (size_t i = h.size(); i-- > 0;) {
        if (h[i].lock != &lock) continue;
        h[i].read = Acquire::shared;
        return;
    }
    d_.violation(Check::bad_unlock_balance, "WARNING: bad unlock balance detected! " + d_.name(t) +
                                           " is trying to downgrade lock " + lock.lock_name() +
                                           " at " + site_name(site) + " but does not hold it");
}

void Lockdep::assert_held(rt::Tid t, const LockdepMap& lock, LockMode mode,
                          const rt::Site* site) {
    if (is_held(t, lock, mode)) return;
    const HeldLock* h = find_held(t, lock);
    static const char* const want[] = {"held", "held for read", "held for write"};
    std::string why = !h ? "it is not held"
                         : (h->read == Acquire::exclusive ? "it is held for write"
                                                          : "it is held for read");
    d_.violation(Check::lockdep_assert_held, d_.name(t) + ": lock " + lock.lock_name() + " must be " +
                                            want[static_cast<int>(mode)] + " at " +
                                            site_name(site) + ", but " + why + "; held: " +
                                            describe_held(t));
}

void Lockdep::assert_not_held(rt::Tid t, const LockdepMap& lock, const rt::Site* site) {
    const HeldLock* h = find_held(t, lock);
    if (!h) return;
    d_.violation(Check::lockdep_assert_not_held, d_.name(t) + ": lock " + lock.lock_name() +
                                                " must not be held at " + site_name(site) +
                                                " (acquired at " + site_name(h->site) + ")");
}

void Lockdep::assert_class_not_held(rt::Tid t, std::string_view lock_name, const rt::Site* site) {
    for (const HeldLock& h : held_.at(t))
        if (h.lock->lock_name() == lock_name) return assert_not_held(t, *h.lock, site);
}

size_t Lockdep::dependency_count() const {
    size_t n = 0;
    for (const auto& a : after_) n += a.size();
    return n;
}

bool Lockdep::has_dependency(std::string_view from, std::string_view to) const {
    auto f = by_name_.find(std::string(from));
    auto g = by_name_.find(std::string(to));
    if (f == by_name_.end() || g == by_name_.end()) return false;
    for (const Dep& e : after_[f->second])
        if (e.next == g->second) return true;
    return false;
}

// ---------------------------------------------------------------------------------
// The kernel API

void lockdep_assert_held(const LockdepMap& lock, LockMode mode, const rt::Site* site) {
    SyncDomain& d = SyncDomain::current();
    d.lockdep().assert_held(d.self(), lock, mode, site ? site : MMR_SITE("lockdep_assert_held"));
}

void lockdep_assert_not_held(const LockdepMap& lock, const rt::Site* site) {
    SyncDomain& d = SyncDomain::current();
    d.lockdep().assert_not_held(d.self(), lock, site ? site : MMR_SITE("lockdep_assert_not_held"));
}

void lockdep_assert_class_not_held(std::string_view lock_name, const rt::Site* site) {
    SyncDomain& d = SyncDomain::current();
    d.lockdep().assert_class_not_held(d.self(), lock_name,
                                      site ? site : MMR_SITE("lockdep_assert_not_held"));
}

bool lockdep_is_held(const LockdepMap& lock) {
    SyncDomain& d = SyncDomain::current();
    return d.lockdep().is_held(d.self(), lock, LockMode::any);
}

void might_lock_read(LockdepMap& lock, const rt::Site* site) {
    SyncDomain& d = SyncDomain::current();
    site = site ? site : MMR_SITE("might_lock_read");
    d.lockdep().acquire(d.self(), lock, 0, Acquire::shared, false, site);
    d.lockdep().release(d.self(), lock, site);
}

// __might_resched(): the report names what makes the context atomic.
void might_sleep(const rt::Site* site) {
    SyncDomain& d = SyncDomain::current();
    rt::Tid t = d.self();
    const ThreadCtx& c = d.ctx(t);
    if (!c.irq_depth && !c.preempt_depth && !c.rcu_depth) return;
    site = site ? site : MMR_SITE("might_sleep");
    std::string m = "BUG: sleeping function called from invalid context at " + site_name(site) +
                    "\nin_atomic(): " + std::to_string(c.preempt_depth ? 1 : 0) +
                    ", irqs_disabled(): " + std::to_string(c.irq_depth ? 1 : 0) +
                    ", RCU nest depth: " + std::to_string(c.rcu_depth) + ", name: " + d.name(t);
    if (c.irq_depth) m += "\nIRQs disabled at " + site_name(c.irq_site);
    if (c.rcu_depth) m += "\ninside rcu_read_lock() taken at " + site_name(c.rcu_site);
    m += "\nlocks held: " + d.lockdep().describe_held(t);
    d.violation(Check::might_sleep, m);
}

}  // namespace mmrace::sync
