// Reporting a failed check: ends the current run with verdict `violation`, naming the
// check (DESIGN §7).  Outside a run (a unit test poking the model directly) it throws.
#pragma once

#include <string>

#include "mmrace/verdict.hpp"

namespace mmrace::check {

[[noreturn]] void violation(Check check, const std::string& message);

}  // namespace mmrace::check
