// The conform shape: programs that `mmrace conform` runs both in the model and on the
// host kernel (bindings/mmrace/conform.py, conform/host_runner.cpp).  One thread per
// process, addresses only inside the arena, and results independent of the order in
// which a parent and its child run (the rules are in conform_program.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "program/generate/choice_source.hpp"

namespace mmrace::gen {

// Where conform programs live: [kArenaBase, kArenaBase + kArenaSize).
inline constexpr uint64_t kArenaBase = 0x300000000000ull;
inline constexpr uint64_t kArenaSize = 1ull << 30;

// The .mmr text of the conform program `choices` draw.  choose(0) everywhere gives one
// process that maps private anonymous memory and stores to it.
std::string conform_program(ChoiceSource& choices);

}  // namespace mmrace::gen
