#include "program/generate/generate.hpp"

#include "mmrace/mmr.hpp"

namespace mmrace::gen {

std::string generate(ChoiceSource& choices, const Shape& shape) {
    switch (shape.kind) {
        case ShapeKind::workload: return workload(choices, shape.workload);
        case ShapeKind::conform: return conform_program(choices);
        case ShapeKind::valid: break;
    }
    return print_mmr(valid_program(choices, shape.valid));
}

}  // namespace mmrace::gen
