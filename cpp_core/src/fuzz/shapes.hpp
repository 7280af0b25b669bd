// The programs of the fuzz targets, each one function that walks a Program both ways
// over a Coder (coder.hpp): decoding fills `p`, encoding writes `p`'s choices.
#pragma once

#include <string>
#include <vector>

#include "fuzz/coder.hpp"
#include "mmrace/fuzz.hpp"
#include "mmrace/program.hpp"

namespace mmrace::fuzz {

// `program`: any program of the format's ops within ProgramBounds (program_shape.cpp).
void code_program(Coder& c, Program& p, const Options& o);
// `spf`, `pervma`: the window shape (window_shape.cpp).
void code_window(Coder& c, Program& p, const Options& o, Strategy s);
// `gup`: pins, GUP, /proc/pid/mem, fork and COW (gup_shape.cpp).
void code_gup(Coder& c, Program& p, const Options& o);

// The strategies every mutant of `mutants` applies to, in Strategy's order.
std::vector<Strategy> strategies_for(const std::vector<std::string>& mutants);
// config strategy= among those the target `draws`, and the mutants of the options.
void code_strategy(Coder& c, Config& config, const std::vector<Strategy>& draws, const Options& o);
// Every strategy, for the targets that draw any.
inline const std::vector<Strategy> kAllStrategies = {Strategy::classic, Strategy::spf, Strategy::pervma};

// Encoding: the op at ops[i] must be `want` (a fixed op of a shape); decoding: it is
// inserted there.
void fixed_op(Coder& c, const Program& p, std::vector<Op>& ops, size_t i, const Op& want,
              const std::string& where);

}  // namespace mmrace::fuzz
