// The simulated kernel of one run: the runtime, the sync domain, the memory pools, the
// address spaces and the counters.  Everything a run mutates lives here, so a run
// starts from reset() and nothing leaks between runs.
#pragma once

#include <bitset>
#include <memory>
#include <vector>

#include "fs/kernfs.hpp"
#include "mm/anon_vma.hpp"
#include "mm/counters.hpp"
#include "mm/filemap.hpp"
#include "mm/folio.hpp"
#include "mm/lru.hpp"
#include "gup/pin.hpp"
#include "kernel/process.hpp"
#include "mm/mm_struct.hpp"
#include "mm/pgtable.hpp"
#include "mm/swap.hpp"
#include "mm/tlb.hpp"
#include "mmrace/program.hpp"
#include "mutants/catalogue.hpp"
#include "runtime/runtime.hpp"
#include "sync/domain.hpp"
#include "sync/rwsem.hpp"

namespace mmrace::mm {

struct userfaultfd_state;  // mm/userfaultfd.hpp

class Kernel {
public:
    Kernel(const Config& cfg, rt::RuntimeConfig rcfg);
    ~Kernel();

    Config config;
    rt::Runtime rt;
    sync::SyncDomain sync;
    PtGeometry geo;
    FolioPool folios;
    lruvec lru;  // the LRU lists reclaim scans (mm/lru.hpp)
    PageTablePool tables;
    Counters counters;

    // The program's processes, by index (kernel/process.hpp).
    std::vector<process> processes;
    // The process of each simulated thread (-1 for kernel threads).
    std::vector<int> thread_process;
    // Every anon_vma of the run, by id - 1; a freed one stays (in_use false) so that a
    // use after free is seen, and ids are never reused.
    AnonVmaPool anon_vmas;
    swap_info_struct swap;  // the swap device and the swap cache
    // The program's files (`file F pages=N`), by index.
    std::vector<std::unique_ptr<address_space>> files;
    // One TLB per simulated CPU (= per thread).
    std::vector<Tlb> tlbs;
    // kernel/cpu.c's cpu_hotplug_lock, and the sysfs file of the cpuid device that CPU
    // hotplug removes and creates again (seed 002's lockdep report).
    sync::RwSem cpu_hotplug_lock{"cpu_hotplug_lock"};
    fs::kernfs_node cpuid_kn;
    // The userfaultfd contexts of the run and their handlers (mm/userfaultfd.hpp).
    std::unique_ptr<userfaultfd_state> uffd;
    // The pins the program's `pin` ops hold, by handle (the pin op's index in file order).
    std::vector<gup::PinHandle> pins;

    // Whether CPU t runs mm (is in its mm_cpumask).
    bool thread_runs_mm(rt::Tid t, const mm_struct& mm) const {
        return t < thread_process.size() && thread_process[t] >= 0 &&
               processes[thread_process[t]].mm == &mm;
    }

    // Readies a kernel kept from an earlier run (same geometry) for a new one: no
    // threads, a new runtime configuration, cfg's pool limits.  reset() then clears the
    // rest and applies the limits.
    void prepare(const Config& cfg, rt::RuntimeConfig rcfg);

    // Whether the run re-introduces this historical bug (config mutants=..., DESIGN §8).
    bool mutant(MutantId m) const { return mutants_.test(static_cast<size_t>(m)); }

    mm_struct* mm_alloc();
    // The mm of the thread that is running (current->mm).
    mm_struct& current_mm();
    // Empties every pool (keeping its storage) and sizes it by config for the next run.
    void reset(size_t nprocesses);

    // The kernel whose run executes on this OS thread.
    //
    // The rule: a function that can be handed the kernel takes `Kernel& k` as its first
    // argument; current() is only for facades that keep an upstream signature with no
    // context argument and are called where no Kernel& is at hand, and a facade calls it
    // once and passes k down.  The facades that use it: vma_start_read, vma_start_write
    // and vma_mark_detached (vma_lock.cpp); mm_rb_write_lock/unlock, vm_write_begin/end,
    // put_vma, hold_vma and release_vma (spf_vma.cpp);
    // MapleTree::mas_walk_rcu; mmap_read_lock/mmap_write_lock's wait counter;
    // mm_struct::vm_area_free; split_vma; vma_modify_flags and vma_merge_new_range;
    // expand_downwards.
    static Kernel& current();
    class Scope {
    public:
        explicit Scope(Kernel& k);
        ~Scope();

    private:
        Kernel* saved_;
        sync::SyncDomain::Scope sync_scope_;
    };

private:
    void set_mutants();

    std::bitset<kMutantCount> mutants_;
    std::vector<std::unique_ptr<mm_struct>> mms_;
    size_t mms_used_ = 0;
};

}  // namespace mmrace::mm
