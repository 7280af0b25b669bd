// What every fuzz_<target>.cpp shares: the runtime knobs, running one input, and the
// report of a finding.  One harness source per target keeps OSS-Fuzz's layout; the
// engines (libFuzzer, AFL++'s libFuzzer-compatible driver) call these two functions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmrace/fuzz.hpp"

namespace mmrace::fuzz::harness {

// LLVMFuzzerInitialize: reads MMRACE_MUTANTS=a,b (an unknown or unbuilt name, or one
// the target cannot run, prints why and exits 2) and MMRACE_FUZZ_COUNTERS=0 (the
// interleaving counters off; default on).
int init(Target target);

// LLVMFuzzerTestOneInput: decodes and runs one input.  A finding (any verdict but ok,
// or a model error) prints the verdict, the check, the message and the .mmr
// reproducer to stderr and abort()s.
int run_one(const uint8_t* data, size_t size);

}  // namespace mmrace::fuzz::harness
