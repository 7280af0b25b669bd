// Reporting a failed check: ends the current run with verdict `violation`, naming the
// check (DESIGN §7).  Outside a run (a unit test poking the model directly) it throws.
#pragma once

#include <string>

namespace mmrace::check {

[[noreturn]] void violation(const std::string& check, const std::string& message);

}  // namespace mmrace::check
