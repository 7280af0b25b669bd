#include "mm/kernel.hpp"

#include "mm/userfaultfd.hpp"
#include "mmrace/run.hpp"

namespace mmrace::mm {

namespace {
thread_local Kernel* tl_kernel = nullptr;
}

Kernel::Kernel(const Config& cfg, rt::RuntimeConfig rcfg)
    : config(cfg), rt(std::move(rcfg)), sync(rt), geo(cfg.geometry), tables(geo) {
    folios.reset(cfg.folios);
    folios.set_lruvec(&lru);
    tables.reset(cfg.pgtables);
    swap.reset(cfg.swap_slots);
    set_mutants();
}

void Kernel::set_mutants() {
    mutants_.reset();
    for (const std::string& name : config.mutants)
        if (const MutantInfo* row = find_mutant(name))
            mutants_.set(static_cast<size_t>(mutant_id(*row)));
}

Kernel::~Kernel() = default;

void Kernel::prepare(const Config& cfg, rt::RuntimeConfig rcfg) {
    if (cfg.geometry != config.geometry) throw ModelError("Kernel::prepare: another geometry");
    config = cfg;
    set_mutants();
    rt.reset(std::move(rcfg));
    thread_process.clear();
}

void Kernel::reset(size_t nprocesses) {
    folios.reset(config.folios);
    lru.reset();
    tables.reset(config.pgtables);
    counters.reset();
    mms_used_ = 0;
    processes.assign(nprocesses, process{});
    anon_vmas.reset();
    swap.reset(config.swap_slots);
    files.clear();
    tlbs.assign(rt.thread_count(), Tlb{});
    pins.clear();
    sync.reset();
    cpuid_kn.removed = false;
    uffd = std::make_unique<userfaultfd_state>();
}

mm_struct* Kernel::mm_alloc() {
    // mm_structs are rebuilt per run (their locks carry per-run state); there are few.
    if (mms_used_ == mms_.size()) mms_.push_back(nullptr);
    mms_[mms_used_] = std::make_unique<mm_struct>(static_cast<int>(mms_used_));
    mm_struct* mm = mms_[mms_used_++].get();
    // The maple tree is in RCU mode where lookups may run without mmap_lock (pervma);
    // spf's readers take the mm_rb lock instead.
    mm->mm_mt.set_in_rcu(config.strategy == Strategy::pervma);
    return mm;
}

mm_struct& Kernel::current_mm() {
    int p = thread_process.at(rt.self());
    if (p < 0 || !processes[p].mm) throw ModelError("current->mm on a thread without an mm");
    return *processes[p].mm;
}

Kernel& Kernel::current() {
    if (!tl_kernel) throw ModelError("no simulated kernel on this thread");
    return *tl_kernel;
}

Kernel::Scope::Scope(Kernel& k) : saved_(tl_kernel), sync_scope_(k.sync) { tl_kernel = &k; }
Kernel::Scope::~Scope() { tl_kernel = saved_; }

}  // namespace mmrace::mm
