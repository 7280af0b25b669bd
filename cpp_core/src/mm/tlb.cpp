#include "mm/tlb.hpp"

#include "mm/kernel.hpp"
#include "sync/irq.hpp"

namespace mmrace::mm {

const TlbEntry* Tlb::lookup(int mm, uint64_t vpn) const {
    for (const auto& x : e_)
        if (x.valid && x.mm == mm && x.vpn == vpn) return &x;
    return nullptr;
}

void Tlb::insert(const TlbEntry& n) {
    for (auto& x : e_)
        if (x.valid && x.mm == n.mm && x.vpn == n.vpn) {
            x = n;
            return;
        }
    e_[next_] = n;
    e_[next_].valid = true;
    next_ = (next_ + 1) % kEntries;
}

void Tlb::flush_range(int mm, uint64_t start, uint64_t end) {
    for (auto& x : e_)
        if (x.valid && x.mm == mm && x.vpn >= (start >> 12) && x.vpn < ((end + 4095) >> 12))
            x.valid = false;
}

void Tlb::flush_mm(int mm) {
    for (auto& x : e_)
        if (x.mm == mm) x.valid = false;
}

void Tlb::flush_all() {
    for (auto& x : e_) x.valid = false;
}

void flush_tlb_mm_range(Kernel& k, mm_struct& mm, uint64_t start, uint64_t end) {
    int id = mm.id;
    rt::Tid me = k.rt.self();
    if (me < k.tlbs.size()) k.tlbs[me].flush_range(id, start, end);
    // flush_tlb_multi: the other CPUs that run this mm (mm_cpumask).
    sync::smp_call_function_many_sync(
        [&k, &mm](rt::Tid cpu) { return k.thread_runs_mm(cpu, mm); },
        MMR_SITE("flush_tlb_mm_range"),
        [&k, id, start, end](rt::Tid cpu) { k.tlbs[cpu].flush_range(id, start, end); });
}

void flush_tlb_mm(Kernel& k, mm_struct& mm) { flush_tlb_mm_range(k, mm, 0, TASK_SIZE); }

void flush_tlb_page(Kernel& k, mm_struct& mm, uint64_t addr) {
    flush_tlb_mm_range(k, mm, addr & ~(PAGE_SIZE - 1), (addr & ~(PAGE_SIZE - 1)) + PAGE_SIZE);
}

}  // namespace mmrace::mm
