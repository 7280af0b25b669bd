// The reproducer of a run (DESIGN §9): the one text every front end prints for a
// failure, and what a run's replay is checked against.
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"

namespace mmrace {

// The budget goes into the config line, so the text alone replays a `budget` verdict.
std::string RunResult::reproducer() const {
    if (!program) return {};
    Program p = *program;
    p.config.budget = budget;
    p.schedule = parse_schedule(schedule);
    return print_mmr(p);
}

}  // namespace mmrace
