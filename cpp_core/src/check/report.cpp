#include "check/report.hpp"

#include "mmrace/run.hpp"
#include "runtime/runtime.hpp"

namespace mmrace::check {

void violation(Check check, const std::string& message) {
    if (auto* rt = rt::current_runtime(); rt && rt->running() && rt->self() != rt::kNoThread)
        rt->fail(check, message);
    throw ModelError(std::string(check_name(check)) + ": " + message);
}

}  // namespace mmrace::check
