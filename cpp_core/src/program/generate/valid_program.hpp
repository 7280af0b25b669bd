// The valid shape: any program the .mmr format accepts, for the format's round trips
// (parse_mmr(print_mmr(p)) == p), the parser's fuzzing and mmrace.strategies.mmr_programs.
// Every op kind, files, forked processes, pins with the handles that use them, kthreads,
// schedules, odd but valid names, and numbers at the edges of the format's limits.
#pragma once

#include <cstddef>

#include "mmrace/program.hpp"
#include "program/generate/choice_source.hpp"

namespace mmrace::gen {

struct ValidShape {
    size_t max_processes = 4;
    size_t max_threads = 3;  // per process
    size_t max_kthreads = 2;
    size_t max_files = 3;
    size_t max_ops = 8;      // per thread, forks not counted
    // Only mutants that are built and apply to the drawn strategy, so that the program
    // runs; false draws any catalogue name (for tests of the format itself).
    bool runnable = true;
};

// The program `choices` draw; choose(0) everywhere gives `mmrace 1` and the default
// config, nothing else.
Program valid_program(ChoiceSource& choices, const ValidShape& shape = {});

}  // namespace mmrace::gen

namespace mmrace {

// The valid program drawn from `seed` (SplitMix64Choices), with any catalogue mutant.
Program random_program(uint64_t seed);

}  // namespace mmrace
