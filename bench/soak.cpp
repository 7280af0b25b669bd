// The false-positive soak (issue 3): random multi-threaded workloads on the correct
// model under random and PCT schedules, and under random schedules again with tiny
// pools (config folios=, swap_slots=, pgtables=) so that allocations fail in every
// path.  Every run must end `ok`; the first that does not is printed as a reproducer
// and the soak exits 1.
//   soak [PROGRAMS=10000] [FIRST_SEED=0] [STRATEGY=classic|spf|pervma|pervma+swapin|pervma+file|pervma+uffd|all]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "check/history.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/generate/workload.hpp"

using namespace mmrace;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    uint64_t programs = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000;
    uint64_t first = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
    std::string which = argc > 3 ? argv[3] : "classic";
    std::vector<const char*> strategies;
    // pervma+swapin, pervma+file: pervma with config vma_lock=swapin or vma_lock=file;
    // pervma+uffd: vma_lock=swapin,uffd.
    for (const char* s : {"classic", "spf", "pervma", "pervma+swapin", "pervma+file", "pervma+uffd"})
        if (which == "all" || which == s) strategies.push_back(s);
    if (strategies.empty()) {
        std::fprintf(stderr, "soak: unknown strategy '%s' (classic, spf, pervma, pervma+swapin, pervma+file, pervma+uffd or all)\n",
                     which.c_str());
        return 2;
    }
    std::printf("| strategy | policy | programs | runs | not ok | seconds | runs/s | oracle groups | ops checked | search nodes | gave up | skipped |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    // Pool sizes small enough that the workloads run out: a first fault needs three
    // page tables, and a workload touches a few dozen pages.  swap_slots=0: no swap.
    struct Pools {
        uint64_t folios, swap_slots, pgtables;
    };
    constexpr Pools kTiny[] = {{2, kDefaultSwapSlots, kDefaultPgtables}, {4, 1, 5},
                               {kDefaultFolios, kDefaultSwapSlots, 4}, {3, 2, 6},
                               {1, kDefaultSwapSlots, 7}, {6, 0, kDefaultPgtables}};
    for (const char* strategy : strategies)
    for (int pass = 0; pass < 3; ++pass) {
        auto kind = pass == 1 ? Schedule::Kind::pct : Schedule::Kind::random;
        bool tiny = pass == 2;
        WorkloadShape shape;
        bool uffd = std::string(strategy) == "pervma+uffd";
        bool swapin = uffd || std::string(strategy) == "pervma+swapin";
        bool file = std::string(strategy) == "pervma+file";
        shape.strategy = swapin || file ? "pervma" : strategy;
        shape.gup = true;
        auto t0 = Clock::now();
        uint64_t runs = 0, bad = 0;
        check::LinStats total;
        size_t skipped = 0;
        for (uint64_t seed = first; seed < first + programs; ++seed) {
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
            RunResult r;
            try {
                r = run_program(p, o);
            } catch (const ModelError& e) {
                std::printf("\nworkload seed %llu (%s): internal model error: %s\n%s\n",
                            static_cast<unsigned long long>(seed), strategy, e.what(),
                            replay_mmr(p, e.schedule()).c_str());
                return 1;
            } catch (const std::exception& e) {
                std::printf("\nworkload seed %llu (%s): %s\n%s\n", static_cast<unsigned long long>(seed),
                            strategy, e.what(), print_mmr(p).c_str());
                return 1;
            }
            total.groups += st.groups;
            total.subops += st.subops;
            total.nodes += st.nodes;
            total.gave_up += st.gave_up;
            skipped += st.skipped;
            if (st.gave_up && std::getenv("SOAK_SHOW_GAVE_UP")) std::printf("gave up: seed %llu\n", (unsigned long long)seed);
            ++runs;
            if (r.verdict != Verdict::ok) {
                ++bad;
                std::printf("\nworkload seed %llu: verdict %s (%s): %s\n%s",
                            static_cast<unsigned long long>(seed), verdict_name(r.verdict),
                            check_name(r.check), r.message.c_str(), r.reproducer().c_str());
                return 1;
            }
        }
        double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        std::printf("| %s | %s | %llu | %llu | %llu | %.1f | %.0f | %zu | %zu | %zu | %zu | %zu |\n",
                    strategy,
                    tiny ? "random, tiny pools" : kind == Schedule::Kind::random ? "random" : "pct",
                    static_cast<unsigned long long>(programs), static_cast<unsigned long long>(runs),
                    static_cast<unsigned long long>(bad), secs, static_cast<double>(runs) / secs,
                    total.groups, total.subops, total.nodes, total.gave_up, skipped);
    }
    return 0;
}
