// Random runnable workloads: multi-threaded programs over the ops the model has built,
// crowded into a few pages so that they race.  The soak benchmark and the false-positive
// tests run them under random and PCT schedules: on the correct model every run must
// end with verdict ok.
#pragma once

#include <cstdint>
#include <string>

namespace mmrace {

struct WorkloadShape {
    int min_threads = 2, max_threads = 4;  // threads of the first process
    int min_ops = 3, max_ops = 10;         // per thread
    int pages = 16;                        // the contested window at 0x100000
    bool fork = true;
    // Sometimes a kthread that runs `reclaim COUNT` and `smaps PNAME` ops against the
    // processes (drawn from a stream of its own: the processes are as without it).
    bool kthreads = true;
    const char* geometry = "small";        // or "x86"
    const char* strategy = "classic";      // or "spf", "pervma"
    // userfaultfd: a handler thread (uffd_register, then uffd_serve) in two processes
    // of three, and uffd_wp ops in every thread; in half of those processes the other
    // threads register too and the handler goes on after its serve (the uffd's
    // lifetime against its registrations: forks, faults and registers after the close).
    bool uffd = true;
    bool gup = false;                      // also pin/unpin/gup/dma_read/dma_write/peek/poke
};

// The .mmr text of the workload drawn from `seed` (the same on every platform).
std::string random_workload(uint64_t seed, const WorkloadShape& shape = {});

}  // namespace mmrace
