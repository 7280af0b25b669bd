// The false-positive soak (issue 3): random multi-threaded workloads on the correct
// model under random and PCT schedules, and under random schedules again with tiny
// pools (config folios=, swap_slots=, pgtables=) so that allocations fail in every
// path.  Every run must end `ok`; the first that does not is printed as a reproducer
// and the soak exits 1.
//   soak [PROGRAMS=10000] [FIRST_SEED=0] [STRATEGY=classic|spf|pervma|pervma+swapin|pervma+file|pervma+uffd|all]
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "check/history.hpp"
#include "mmrace/explore.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/generate/workload.hpp"

using namespace mmrace;

namespace {

// Pool sizes small enough that the workloads run out: a first fault needs three
// page tables, and a workload touches a few dozen pages.  swap_slots=0: no swap.
struct Pools {
    uint64_t folios, swap_slots, pgtables;
};
constexpr Pools kTiny[] = {{2, kDefaultSwapSlots, kDefaultPgtables}, {4, 1, 5},
                           {kDefaultFolios, kDefaultSwapSlots, 4}, {3, 2, 6},
                           {1, kDefaultSwapSlots, 7}, {6, 0, kDefaultPgtables}};

// The workload of a seed for `strategy` (pervma+swapin, pervma+file: pervma with
// config vma_lock=swapin or vma_lock=file; pervma+uffd: vma_lock=swapin,uffd), with
// tiny pools if asked.
ProgramSource workloads(const char* strategy, bool tiny) {
    std::string name = strategy;
    bool uffd = name == "pervma+uffd";
    bool swapin = uffd || name == "pervma+swapin";
    bool file = name == "pervma+file";
    WorkloadShape shape;
    shape.strategy = swapin || file ? "pervma" : strategy;
    shape.gup = shape.peek_poke = true;
    return [=](uint64_t seed) {
        Program p = parse_mmr(random_workload(seed, shape));
        p.config.vma_lock_swapin = swapin;
        p.config.vma_lock_file = file;
        p.config.vma_lock_uffd = uffd;
        if (tiny) {
            const Pools& pools = kTiny[seed % std::size(kTiny)];
            p.config.folios = pools.folios;
            p.config.swap_slots = pools.swap_slots;
            p.config.pgtables = pools.pgtables;
        }
        return p;
    };
}

void print_failure(const ExploreFailure& f, const char* strategy) {
    const RunResult& r = f.result;
    if (f.model_error)
        std::printf("\nworkload seed %llu (%s): internal model error: %s\n%s\n",
                    static_cast<unsigned long long>(f.seed), strategy, r.message.c_str(),
                    f.reproducer().c_str());
    else
        std::printf("\nworkload seed %llu: verdict %s (%s): %s\n%s\n", static_cast<unsigned long long>(f.seed),
                    verdict_name(r.verdict), check_name(r.check), r.message.c_str(), f.reproducer().c_str());
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t programs = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000;
    uint64_t first = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
    std::string which = argc > 3 ? argv[3] : "classic";
    std::vector<const char*> strategies;
    for (const char* s : {"classic", "spf", "pervma", "pervma+swapin", "pervma+file", "pervma+uffd"})
        if (which == "all" || which == s) strategies.push_back(s);
    if (strategies.empty()) {
        std::fprintf(stderr, "soak: unknown strategy '%s' (classic, spf, pervma, pervma+swapin, pervma+file, pervma+uffd or all)\n",
                     which.c_str());
        return 2;
    }
    std::printf("| strategy | policy | programs | runs | not ok | seconds | runs/s | oracle groups | ops checked | search nodes | gave up | skipped |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const char* strategy : strategies)
    for (int pass = 0; pass < 3; ++pass) {
        bool tiny = pass == 2;
        ExploreOptions o;
        o.policies = {pass == 1 ? Schedule::Kind::pct : Schedule::Kind::random};
        o.first_seed = first;
        o.max_runs = programs;
        o.pct_depth = 3;
        o.pct_steps = 300;
        o.stop_at_first_failure = true;
        check::LinStats st, total;
        size_t skipped = 0;
        o.run.lin_stats = &st;
        o.on_run = [&](uint64_t seed, const Program&, const RunResult&) {
            total.groups += st.groups;
            total.subops += st.subops;
            total.nodes += st.nodes;
            total.gave_up += st.gave_up;
            skipped += st.skipped;
            if (st.gave_up && std::getenv("SOAK_SHOW_GAVE_UP")) std::printf("gave up: seed %llu\n", (unsigned long long)seed);
            st = {};
        };
        ExploreResult res;
        try {
            res = explore(workloads(strategy, tiny), o);
        } catch (const std::exception& e) {
            std::printf("\nsoak (%s): %s\n", strategy, e.what());
            return 1;
        }
        if (!res.failures.empty()) {
            print_failure(res.failures.front(), strategy);
            return 1;
        }
        std::printf("| %s | %s | %llu | %llu | %llu | %.1f | %.0f | %zu | %zu | %zu | %zu | %zu |\n",
                    strategy, tiny ? "random, tiny pools" : pass == 0 ? "random" : "pct",
                    static_cast<unsigned long long>(programs), static_cast<unsigned long long>(res.runs),
                    static_cast<unsigned long long>(res.not_ok()), res.seconds, res.runs_per_second(),
                    total.groups, total.subops, total.nodes, total.gave_up, skipped);
    }
    return 0;
}
