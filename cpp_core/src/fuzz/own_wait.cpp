// programs_own_wait (mmrace/fuzz.hpp): the runtime names each blocked thread's wait in
// the deadlock message (Runtime::wait_for_cycle), the userfaultfd waits as "... waiting
// for a uffd_serve of process N" (mm/userfaultfd.cpp); a deadlock is the program's own
// when every blocked thread names one.
#include <string_view>

#include "mmrace/fuzz.hpp"

namespace mmrace::fuzz {

namespace {

size_t count(std::string_view s, std::string_view what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string_view::npos; at = s.find(what, at + what.size())) ++n;
    return n;
}

}  // namespace

bool programs_own_wait(const RunResult& r) {
    if (r.verdict != Verdict::deadlock) return false;
    std::string_view m = r.message;
    constexpr std::string_view kBlocked = "no thread can run; blocked: ";
    if (m.substr(0, kBlocked.size()) != kBlocked) return false;  // a wait-for cycle
    std::string_view list = m.substr(kBlocked.size());
    size_t blocked = count(list, " on "), on_uffd = count(list, "waiting for a uffd_serve");
    return blocked > 0 && blocked == on_uffd;
}

}  // namespace mmrace::fuzz
