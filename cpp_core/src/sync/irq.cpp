#include "sync/irq.hpp"

#include <string>
#include <vector>

#include "sync/domain.hpp"

namespace mmrace::sync {

// ---------------------------------------------------------------------------------
// IRQ-off sections (include/linux/irqflags.h)

namespace detail {

void irq_enable_unnested(SyncDomain& d, rt::Tid t, const rt::Site* site) {
    const ThreadCtx& c = d.ctx(t);
    if (c.irq_depth > 1)
        d.violation(Check::irq_state,
                    d.name(t) + ": " + site->name +
                        " enables IRQs inside a nested IRQ-off section (outermost began at " +
                        c.irq_site->name + "): IRQs come back on too early; use "
                        "local_irq_save/restore or spin_lock_irqsave");
    d.irq_enable(t);
}

void irq_restore(SyncDomain& d, rt::Tid t, unsigned long flags, const rt::Site* site) {
    if (!d.ctx(t).irq_depth)
        d.violation(Check::irq_state, d.name(t) + ": " + site->name +
                                     " restores IRQ flags without a matching local_irq_save");
    d.irq_enable(t);
    if ((d.ctx(t).irq_depth != 0) != (flags != 0))
        d.violation(Check::irq_state, d.name(t) + ": " + site->name +
                                     " restores IRQ flags out of order with their saves");
}

}  // namespace detail

void local_irq_disable(const rt::Site* site) {
    site = site ? site : MMR_SITE("local_irq_disable");
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    d.rt().yield(site, rt::Ev::irq_disable);
    d.irq_disable(me, site);
}

void local_irq_enable(const rt::Site* site) {
    site = site ? site : MMR_SITE("local_irq_enable");
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    detail::irq_enable_unnested(d, me, site);
    d.rt().yield(site, rt::Ev::irq_enable);
}

// The flags say whether IRQs were already off (the kernel saves EFLAGS.IF).
unsigned long local_irq_save(const rt::Site* site) {
    site = site ? site : MMR_SITE("local_irq_save");
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    d.rt().yield(site, rt::Ev::irq_disable);
    unsigned long flags = d.ctx(me).irq_depth ? 1 : 0;
    d.irq_disable(me, site);
    return flags;
}

void local_irq_restore(unsigned long flags, const rt::Site* site) {
    site = site ? site : MMR_SITE("local_irq_restore");
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    detail::irq_restore(d, me, flags, site);
    d.rt().yield(site, rt::Ev::irq_enable);
}

bool irqs_disabled() {
    SyncDomain& d = SyncDomain::current();
    return d.ctx(d.self()).irq_depth != 0;
}

void lockdep_assert_irqs_disabled(const rt::Site* site) {
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    if (d.ctx(me).irq_depth) return;
    site = site ? site : MMR_SITE("lockdep_assert_irqs_disabled");
    d.violation(Check::lockdep_assert_irqs_disabled,
                d.name(me) + ": IRQs must be disabled at " + site->name);
}

void lockdep_assert_irqs_enabled(const rt::Site* site) {
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    if (!d.ctx(me).irq_depth) return;
    site = site ? site : MMR_SITE("lockdep_assert_irqs_enabled");
    d.violation(Check::lockdep_assert_irqs_enabled, d.name(me) + ": IRQs must be enabled at " +
                                                   site->name + " (disabled at " +
                                                   d.ctx(me).irq_site->name + ")");
}

// ---------------------------------------------------------------------------------
// Synchronous IPIs (kernel/smp.c smp_call_function_many_cond with SCF_WAIT)

namespace {

// What the sender waits on: the targets that have not acknowledged yet.
struct IpiWait final : rt::Waitable {
    SyncDomain* d = nullptr;
    std::vector<rt::Tid> targets;
    std::vector<uint8_t> acked;
    size_t remaining = 0;

    std::string describe() const override { return "IPI acknowledgment (smp_call_function)"; }
    // Only a target with IRQs off keeps the sender waiting: the others' acks can fire.
    void holders(std::vector<rt::Tid>& out) const override {
        for (size_t i = 0; i < targets.size(); ++i)
            if (!acked[i] && d->ctx(targets[i]).irq_depth) out.push_back(targets[i]);
    }
};

// Every started, unfinished CPU in the mask but the sender's is a target.
void collect_targets(SyncDomain& d, rt::Tid me, const CpuMask& mask, IpiWait& w) {
    for (rt::Tid t = 0; t < d.thread_count(); ++t)
        if (t != me && d.rt().started(t) && !d.ctx(t).exited && (!mask || mask(t)))
            w.targets.push_back(t);
    w.acked.assign(w.targets.size(), 0);
    w.remaining = w.targets.size();
}

// One event per target: ready while the target takes interrupts (or is gone).
void post_ack(SyncDomain& d, rt::Tid me, IpiWait& w, size_t i, const IpiFunc& func,
              const rt::Site* site) {
    SyncDomain* dp = &d;
    rt::Tid cpu = w.targets[i];
    d.rt().post_event(
        site,
        [dp, cpu] {
            const ThreadCtx& c = dp->ctx(cpu);
            return c.irq_depth == 0 || c.exited;
        },
        [dp, me, cpu, i, site, &w, &func] {
            if (func) dp->run_in_event([&] { func(cpu); });
            w.acked[i] = 1;
            dp->rt().note(site, rt::Ev::ipi_ack, cpu);
            if (--w.remaining == 0) dp->rt().wake(me);
        });
}

void call_function_many(const rt::Site* site, const CpuMask& mask, const IpiFunc& func,
                        bool run_local) {
    SyncDomain& d = SyncDomain::current();
    rt::Tid me = d.self();
    if (d.ctx(me).irq_depth)
        d.violation(Check::ipi_irqs_disabled,
                    d.name(me) + " sends a synchronous IPI at " + site->name +
                        " with IRQs disabled (since " + d.ctx(me).irq_site->name +
                        "): it can deadlock against a CPU sending one to it");
    d.rt().yield(site, rt::Ev::ipi_send);
    IpiWait w;
    w.d = &d;
    collect_targets(d, me, mask, w);
    for (size_t i = 0; i < w.targets.size(); ++i) post_ack(d, me, w, i, func, site);
    if (run_local && func) {
        d.irq_disable(me, site);
        d.run_in_event([&] { func(me); });
        d.irq_enable(me);
    }
    // The acks fire at scheduling decisions, so the wait below sees every one of them.
    while (w.remaining) d.rt().wait(site, &w);
}

}  // namespace

void smp_call_function_sync(const rt::Site* site, const IpiFunc& func) {
    call_function_many(site ? site : MMR_SITE("smp_call_function"), {}, func, false);
}

void smp_call_function_many_sync(const CpuMask& mask, const rt::Site* site, const IpiFunc& func) {
    call_function_many(site ? site : MMR_SITE("smp_call_function_many"), mask, func, false);
}

void on_each_cpu_sync(const rt::Site* site, const IpiFunc& func) {
    call_function_many(site ? site : MMR_SITE("on_each_cpu"), {}, func, true);
}

}  // namespace mmrace::sync
