// IRQ-off sections and synchronous IPIs for the sim backend (DESIGN §3).
//
// Every simulated thread is its own CPU.  local_irq_disable/enable keep a nesting count
// per thread.  A synchronous cross-call (smp_call_function_many_cond() with wait, as the
// x86 TLB flush and tlb_remove_table_sync_one() use) sends an IPI to every other started,
// unfinished thread and blocks the sender until each has acknowledged.  An
// acknowledgment is a runtime event per target, ready only while the target has IRQs
// enabled, so the policy chooses when it lands, and a target in an IRQ-off section (a
// gup_fast walk) holds the sender up until it leaves.  A target spinning with IRQs off on
// a lock the sender holds shows up as a deadlock cycle.
#pragma once

#include <functional>

#include "runtime/runtime.hpp"

namespace mmrace::sync {

class SyncDomain;

// local_irq_disable(): scheduling point, then IRQs off (nests).
void local_irq_disable(const rt::Site* site = nullptr);
// local_irq_enable(): IRQs back on, then a scheduling point.  Inside a nested section it
// would re-enable IRQs under the outer one (a kernel bug: use save/restore): violation
// "irq_state".  With IRQs already on it does nothing, like the kernel.
void local_irq_enable(const rt::Site* site = nullptr);
// local_irq_save(): like local_irq_disable; returns opaque flags for local_irq_restore.
unsigned long local_irq_save(const rt::Site* site = nullptr);
// local_irq_restore(): undoes the matching local_irq_save (violation "irq_state" if
// unbalanced).
void local_irq_restore(unsigned long flags, const rt::Site* site = nullptr);
// irqs_disabled(): for the current thread.
bool irqs_disabled();
// lockdep_assert_irqs_disabled() / _enabled(): violation of the same name otherwise.
void lockdep_assert_irqs_disabled(const rt::Site* site = nullptr);
void lockdep_assert_irqs_enabled(const rt::Site* site = nullptr);

// The function an IPI runs on each target CPU (in event context: it must not block,
// yield or use sync primitives), e.g. flushing that CPU's TLB in the model.
using IpiFunc = std::function<void(rt::Tid cpu)>;

// smp_call_function(func, info, wait=1): IPI every other CPU and wait for all of them.
// Violation "ipi_irqs_disabled" if the caller has IRQs off (the kernel's WARN_ON_ONCE:
// it can deadlock).  Not a sleep: allowed under a spinlock.
void smp_call_function_sync(const rt::Site* site = nullptr, const IpiFunc& func = {});
// smp_call_function_many(mask, func, info, wait=1): only the CPUs for which mask(cpu)
// is true (e.g. the CPUs in an mm's mm_cpumask for a TLB flush).
using CpuMask = std::function<bool(rt::Tid cpu)>;
void smp_call_function_many_sync(const CpuMask& mask, const rt::Site* site = nullptr,
                                 const IpiFunc& func = {});
// on_each_cpu(func, info, wait=1): the same, and runs func locally with IRQs off.
void on_each_cpu_sync(const rt::Site* site = nullptr, const IpiFunc& func = {});

namespace detail {
// The IRQ enable of local_irq_enable / spin_unlock_irq, with the nesting check; not a
// scheduling point.
void irq_enable_unnested(SyncDomain& d, rt::Tid t, const rt::Site* site);
// The IRQ restore of local_irq_restore / spin_unlock_irqrestore; not a scheduling point.
void irq_restore(SyncDomain& d, rt::Tid t, unsigned long flags, const rt::Site* site);
}  // namespace detail

}  // namespace mmrace::sync
