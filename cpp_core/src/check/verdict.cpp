// The names of verdicts and checks: the edge where they become strings.
#include "mmrace/verdict.hpp"

#include <ostream>

namespace mmrace {

const char* verdict_name(Verdict v) {
    switch (v) {
        case Verdict::ok: return "ok";
        case Verdict::violation: return "violation";
        case Verdict::deadlock: return "deadlock";
        case Verdict::lock_order: return "lock_order";
        case Verdict::budget: return "budget";
        case Verdict::interrupted: return "interrupted";
    }
    return "?";
}

// kChecks[i] is Check(i + 1): none is not in the table.
const char* check_name(Check c) {
    return c == Check::none ? "" : kChecks[static_cast<size_t>(c) - 1].name;
}

Verdict check_verdict(Check c) {
    return c == Check::none ? Verdict::ok : kChecks[static_cast<size_t>(c) - 1].verdict;
}

std::optional<Check> find_check(std::string_view name) {
    for (const CheckInfo& i : kChecks)
        if (name == i.name) return i.check;
    return std::nullopt;
}

std::optional<Verdict> find_verdict(std::string_view name) {
    for (Verdict v : kVerdicts)
        if (name == verdict_name(v)) return v;
    return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, Verdict v) { return os << verdict_name(v); }
std::ostream& operator<<(std::ostream& os, Check c) {
    return os << (c == Check::none ? "none" : check_name(c));
}

}  // namespace mmrace
