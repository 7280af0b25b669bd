// One generator over a choice source (issue 15).  Every random program mmrace makes
// comes from here: the shape says what kind, the ChoiceSource says which one.
//   workload  racing multi-threaded programs for the soak and hunt (workload.hpp)
//   conform   programs the host kernel runs too, whatever the order of parent and child
//             (conform_program.hpp)
//   valid     anything the .mmr format accepts, for round trips and mmr_programs()
//             (valid_program.hpp)
// Driven by SplitMix64Choices (a seed), ByteChoices (a fuzzer's input) or a Python
// callback (a Hypothesis strategy, bindings/_core.cpp).
#pragma once

#include <string>

#include "program/generate/choice_source.hpp"
#include "program/generate/conform_program.hpp"
#include "program/generate/valid_program.hpp"
#include "program/generate/workload.hpp"

namespace mmrace::gen {

enum class ShapeKind : uint8_t { workload, conform, valid };

struct Shape {
    ShapeKind kind = ShapeKind::valid;
    WorkloadShape workload;  // when kind is workload
    ValidShape valid;        // when kind is valid
};

// The .mmr text of the program `choices` draw in `shape` (canonical for valid).
std::string generate(ChoiceSource& choices, const Shape& shape);

}  // namespace mmrace::gen
