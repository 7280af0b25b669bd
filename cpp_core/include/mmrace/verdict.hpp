// How a run ends (DESIGN §7): a verdict and, for every verdict but ok, the check that
// ended it.  The names are what results, the JSON object and Python carry; strings
// appear only at those edges.  docs/checks.md lists every check with its description.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string_view>

namespace mmrace {

enum class Verdict : uint8_t { ok, violation, deadlock, lock_order, budget, interrupted };
constexpr Verdict kVerdicts[] = {Verdict::ok,         Verdict::violation, Verdict::deadlock,
                                 Verdict::lock_order, Verdict::budget,    Verdict::interrupted};

// Every check: X(name, the verdict it ends a run with, a one-line description).
#define MMRACE_CHECKS(X)                                                                    \
    X(invariant, violation,                                                                 \
      "a structural rule: VMAs sorted and disjoint, every PTE inside a VMA that allows it, " \
      "a writable anonymous PTE maps an exclusive folio")                                   \
    X(pgtable, violation,                                                                   \
      "page-table lifetime: a huge PMD without its deposited table, a non-empty table "     \
      "freed, a PTE in a deposited or retracted table")                                     \
    X(rmap, violation, "reverse mapping: rmap cannot reach a mapped folio or a swap PTE")   \
    X(use_after_free, violation,                                                            \
      "a freed page table, VMA, maple tree node, anon_vma, folio or swap slot is used")     \
    X(stale_tlb, violation, "a user access through a TLB entry whose folio was freed and reused") \
    X(double_free, violation, "a page table or anon_vma freed twice, or never allocated")    \
    X(refcount, violation,                                                                  \
      "a reference taken or dropped on a free object, an unpin of an unpinned page, a "     \
      "refcount_t saturation or underflow")                                                 \
    X(atomic_underflow, violation, "an atomic counter goes below zero")                     \
    X(mapcount, violation, "a mapcount underflow")                                          \
    X(folio_accounting, violation,                                                          \
      "a folio's refcount, mapcounts or pincount disagree with the page tables, pins and "  \
      "caches")                                                                             \
    X(swap_accounting, violation,                                                           \
      "a swap slot's count or SWAP_HAS_CACHE disagrees with the swap PTEs and swap cache")  \
    X(lru, violation, "LRU list membership: a folio added twice, removed from no list, or on none") \
    X(seqcount, violation, "a seqcount write begun inside another, or ended without a begin") \
    X(bad_unlock_balance, violation, "a lock released or downgraded by a thread that does not hold it") \
    X(lockdep_assert_held, violation, "a lock that must be held is not")                    \
    X(lockdep_assert_not_held, violation, "a lock that must not be held is")                \
    X(lockdep_assert_irqs_disabled, violation, "IRQs are enabled where they must be disabled") \
    X(lockdep_assert_irqs_enabled, violation, "IRQs are disabled where they must be enabled") \
    X(irq_state, violation, "local_irq_restore without a matching save, or out of order")   \
    X(ipi_irqs_disabled, violation, "a synchronous IPI (a TLB flush) sent with IRQs disabled") \
    X(might_sleep, violation, "a sleeping function called from atomic context")            \
    X(lock_held_at_exit, violation,                                                         \
      "a thread returns to user space holding a lock or inside rcu_read_lock")              \
    X(irqs_disabled_at_exit, violation, "a thread exits with IRQs disabled")                \
    X(uffd_event_order, violation,                                                          \
      "UFFDIO_COPY installs a page while a fork or mremap event is under way")              \
    X(leak, violation,                                                                      \
      "folios, swap slots, anon_vmas, page tables or VMAs are left after every process exited") \
    X(linearizability, violation,                                                           \
      "no sequential order of the ops agrees with the reference model")                     \
    X(lockdep, lock_order, "a lock-class dependency cycle, or a class taken twice")         \
    X(deadlock, deadlock, "no thread or event can run while some thread is blocked")        \
    X(budget, budget, "the run exceeds its step budget (possibly a livelock)")              \
    X(interrupted, interrupted, "the run was stopped from outside (Ctrl-C)")

// `none` is the check of an ok run.
enum class Check : uint8_t {
    none,
#define X(name, verdict, description) name,
    MMRACE_CHECKS(X)
#undef X
};

struct CheckInfo {
    Check check;
    const char* name;
    Verdict verdict;
    const char* description;
};

// Every check in MMRACE_CHECKS order (without none).
constexpr CheckInfo kChecks[] = {
#define X(name, verdict, description) {Check::name, #name, Verdict::verdict, description},
    MMRACE_CHECKS(X)
#undef X
};

const char* verdict_name(Verdict v);
// "" for Check::none.
const char* check_name(Check c);
// The verdict a failed check ends a run with (ok for none).
Verdict check_verdict(Check c);
// The check named `name`, or nullopt (none has no name).
std::optional<Check> find_check(std::string_view name);
std::optional<Verdict> find_verdict(std::string_view name);

// For test failure messages: the names.
std::ostream& operator<<(std::ostream& os, Verdict v);
std::ostream& operator<<(std::ostream& os, Check c);

}  // namespace mmrace
