// The workload shape: runnable multi-threaded programs over the ops the model has built,
// crowded into a few pages so that they race.  The soak benchmark, hunt and the
// false-positive tests run them under random and PCT schedules: on the correct model
// every run must end with verdict ok.
#pragma once

#include <cstdint>
#include <string>

#include "program/generate/choice_source.hpp"

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

namespace gen {

// The .mmr text of the workload `choices` draw.  Each feature that was added after the
// first soak draws from a stream of its own (Stream), so a seed's workload kept its
// processes and ops when the feature came.  Kept from those seeds too: a few choices
// turn a feature on at 0 (the kthread K0, a thread's closing exit, the first thread's
// MADV_HUGEPAGE, a shared mapping); everything else is simplest at 0.
std::string workload(ChoiceSource& choices, const WorkloadShape& shape);

}  // namespace gen

// The workload drawn from `seed` (SplitMix64Choices): the same on every platform, and
// the same text random_workload.cpp drew before the generator was one (issue 15).
std::string random_workload(uint64_t seed, const WorkloadShape& shape = {});

}  // namespace mmrace
