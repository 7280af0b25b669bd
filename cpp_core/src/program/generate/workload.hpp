// The workload shape: runnable multi-threaded programs over the ops the model has built,
// crowded into a few pages so that they race.  The soak benchmark, hunt and the
// false-positive tests run them under random and PCT schedules: on the correct model
// every run must end with verdict ok.
#pragma once

#include <cstdint>
#include <string>

#include "program/generate/choice_source.hpp"

namespace mmrace {

// What a workload draws.  Each feature switched off draws nothing for it (no choice is
// asked), so a shrinker that turns features off shrinks the choices too.  The defaults
// are the soak's first shape (GUP, /proc/pid/mem, sysfs and CPU hotplug off): a seed
// draws the text it always drew (tests/test_generator.cpp pins digests).
struct WorkloadShape {
    int min_threads = 2, max_threads = 4;  // threads of the first process
    int min_ops = 3, max_ops = 10;         // per thread
    int pages = 16;                        // the contested window at 0x100000
    std::string geometry = "small";        // or "x86"
    std::string strategy = "classic";      // or "spf", "pervma"
    std::string vma_lock;                  // config vma_lock= (pervma): "swapin,file,uffd" or less
    std::string mutants;                   // config mutants=, comma-separated

    bool fork = true;       // forked processes P1, P2
    bool gup = false;       // pin, unpin, gup, dma_read, dma_write
    bool peek_poke = false;  // /proc/pid/mem: peek, poke (FOLL_FORCE)
    bool mremap = true;
    bool mprotect = true;
    bool dontneed = true;  // MADV_DONTNEED
    bool pageout = true;   // MADV_PAGEOUT, and touching the page again (swap-in)
    bool collapse = true;  // MADV_COLLAPSE (anon and shmem)
    // userfaultfd: a handler thread (uffd_register, then uffd_serve) in two processes
    // of three, and uffd_wp ops in every thread; in half of those processes the other
    // threads register too and the handler goes on after its serve (the uffd's
    // lifetime against its registrations: forks, faults and registers after the close).
    bool uffd = true;
    bool files = true;  // file mappings, file_write, truncate
    bool shmem = true;  // MAP_SHARED|MAP_ANONYMOUS mappings
    bool thp = true;    // MADV_HUGEPAGE/NOHUGEPAGE, and ops over whole PMD ranges
    // A kthread K0 in half the workloads, of `reclaim COUNT` (kswapd: races faults,
    // fork, munmap, mremap, madvise and exit) and `smaps PNAME` (/proc: holds mmap_lock
    // against them) ops, drawn from a stream of its own.
    bool reclaim = true;
    bool smaps = true;
    bool khugepaged = true;  // a kthread khugepaged collapsing the window's PMD ranges
    // Threads write to a sysfs attribute (kernfs_fop_write: a user copy under s_active)
    // and a kthread cpuhp takes a CPU down and up (cpu_hotplug_lock, kernfs_drain).
    bool sysfs = false;
    bool cpu_hotplug = false;
    // Patterns of real programs that random ops rarely line up, each on a stream of
    // its own.  debugger: a debugger pokes breakpoints (/proc/pid/mem, FOLL_FORCE) into
    // a program's text, a private read-only file mapping, and another mapping of the
    // file reads its page cache (needs files).  kvm: a VMM's guest memory is shmem over
    // a PMD range; a vCPU thread translates guest pages through
    // get_user_page_fast_only (hva_to_pfn_fast) again and again, and the VMM may
    // MADV_COLLAPSE it.  purge: threads give ranges back with MADV_DONTNEED, as a malloc
    // purges its free pages (a whole arena, or a few pages).  bursts: a write is a loop
    // of stores over a page's words.  counters: a process's threads update counters
    // packed into one page (each its own word: false sharing) and read each other's.
    bool debugger = false;
    bool kvm = false;
    bool purge = false;
    bool bursts = false;
    bool counters = false;

    // Swarm testing (Groce et al., ISSTA 2012): each program keeps each feature that is
    // on with probability 1/2 (a stream of its own; off at 0), so features that crowd
    // out or suppress each other's races each get programs without the others.
    bool swarm = false;

    // When true every choice is simplest at 0: the few that today turn a feature on at 0
    // (K0, a closing exit, the first thread's MADV_HUGEPAGE, a shared mapping, ...) turn
    // it on at their last value instead, so a shrinker moving choices to 0 drops them.
    // When false, the seeds' texts as always.
    bool simplest_first = false;
};

namespace gen {

// The .mmr text of the workload `choices` draw.  Each feature that was added after the
// first soak draws from a stream of its own (Stream), so a seed's workload kept its
// processes and ops when the feature came.
std::string workload(ChoiceSource& choices, const WorkloadShape& shape);

}  // namespace gen

// The workload drawn from `seed` (SplitMix64Choices): the same on every platform, and
// the same text random_workload.cpp drew before the generator was one (issue 15).
std::string random_workload(uint64_t seed, const WorkloadShape& shape = {});

}  // namespace mmrace
