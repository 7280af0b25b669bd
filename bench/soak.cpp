// The false-positive soak (issue 3): random multi-threaded workloads on the correct
// model under random and PCT schedules.  Every run must end `ok`; the first that does
// not is printed as a reproducer and the soak exits 1.
//   soak [PROGRAMS=10000] [FIRST_SEED=0]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "check/history.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/random_workload.hpp"

using namespace mmrace;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    uint64_t programs = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000;
    uint64_t first = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
    std::printf("| policy | programs | runs | not ok | seconds | runs/s | oracle groups | ops checked | search nodes | gave up | skipped |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (auto kind : {Schedule::Kind::random, Schedule::Kind::pct}) {
        auto t0 = Clock::now();
        uint64_t runs = 0, bad = 0;
        check::LinStats total;
        size_t skipped = 0;
        for (uint64_t seed = first; seed < first + programs; ++seed) {
            std::string text = random_workload(seed);
            Program p = parse_mmr(text);
            RunOptions o;
            Schedule s;
            s.kind = kind;
            s.seed = seed;
            s.depth = 3;
            s.steps = 300;
            o.schedule = s;
            o.trace = false;
            check::LinStats st;
            o.lin_stats = &st;
            RunResult r = run_program(p, o);
            total.groups += st.groups;
            total.subops += st.subops;
            total.nodes += st.nodes;
            total.gave_up += st.gave_up;
            skipped += st.skipped;
            if (st.gave_up && std::getenv("SOAK_SHOW_GAVE_UP")) std::printf("gave up: seed %llu\n", (unsigned long long)seed);
            ++runs;
            if (r.verdict != "ok") {
                ++bad;
                std::printf("\nworkload seed %llu: verdict %s (%s): %s\n%s%s\n",
                            static_cast<unsigned long long>(seed), r.verdict.c_str(),
                            r.check.c_str(), r.message.c_str(), text.c_str(), r.schedule.c_str());
                return 1;
            }
        }
        double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        std::printf("| %s | %llu | %llu | %llu | %.1f | %.0f | %zu | %zu | %zu | %zu | %zu |\n",
                    kind == Schedule::Kind::random ? "random" : "pct",
                    static_cast<unsigned long long>(programs), static_cast<unsigned long long>(runs),
                    static_cast<unsigned long long>(bad), secs, static_cast<double>(runs) / secs,
                    total.groups, total.subops, total.nodes, total.gave_up, skipped);
    }
    return 0;
}
