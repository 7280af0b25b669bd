// Random valid Programs, for round-trip tests of the .mmr format.
#pragma once

#include <cstdint>

#include "mmrace/program.hpp"

namespace mmrace {

// A valid Program drawn from `seed` alone (the same on every platform): every op kind,
// files, forked processes, pins with the handles that use them, kthreads, schedules,
// and numbers at the edges of the format's limits.  parse_mmr(print_mmr(p)) == p.
Program random_program(uint64_t seed);

}  // namespace mmrace
