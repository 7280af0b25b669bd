// Trace hashes of many runs, for a change that must not change behaviour: run it
// before and after and diff the output.  The soak's workloads (the same programs,
// schedules and tiny pools as bench/soak.cpp), then each .mmr file given, under its own
// schedule and under random and PCT schedules of seeds 0..SEEDS-1.  One line per soak
// row and per file: how many runs, their verdicts, and a digest of their trace hashes
// in order (FNV-1a); with TRACE_HASHES_ALL set, one line per run as well.
//   trace_hashes [PROGRAMS=1000] [FIRST_SEED=0] [SEEDS=50] [FILE.mmr ...]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/generate/workload.hpp"

using namespace mmrace;

namespace {

struct Digest {
    uint64_t hash = 1469598103934665603ull;
    uint64_t runs = 0;
    std::map<std::string, uint64_t> verdicts;
    void add(const RunResult& r, const std::string& what) {
        for (int i = 0; i < 8; ++i) hash = (hash ^ ((r.trace_hash >> (8 * i)) & 0xff)) * 1099511628211ull;
        ++runs;
        ++verdicts[verdict_name(r.verdict)];
        if (std::getenv("TRACE_HASHES_ALL"))
            std::printf("  %s %s %016llx\n", what.c_str(), verdict_name(r.verdict),
                        static_cast<unsigned long long>(r.trace_hash));
    }
    void print(const std::string& name) const {
        std::printf("%s: %llu runs, digest %016llx,", name.c_str(),
                    static_cast<unsigned long long>(runs), static_cast<unsigned long long>(hash));
        for (const auto& [v, n] : verdicts) std::printf(" %s %llu", v.c_str(), static_cast<unsigned long long>(n));
        std::printf("\n");
    }
};

RunResult run_with(const Program& p, std::optional<Schedule> s) {
    RunOptions o;
    o.schedule = std::move(s);
    o.trace = false;
    return run_program(p, o);
}

Schedule schedule(Schedule::Kind kind, uint64_t seed) {
    Schedule s;
    s.kind = kind;
    s.seed = seed;
    s.depth = 3;
    s.steps = 300;
    return s;
}

void soak_rows(uint64_t programs, uint64_t first) {
    // As bench/soak.cpp.
    struct Pools {
        uint64_t folios, swap_slots, pgtables;
    };
    constexpr Pools kTiny[] = {{2, kDefaultSwapSlots, kDefaultPgtables}, {4, 1, 5},
                               {kDefaultFolios, kDefaultSwapSlots, 4}, {3, 2, 6},
                               {1, kDefaultSwapSlots, 7}, {6, 0, kDefaultPgtables}};
    for (const char* strategy : {"classic", "spf", "pervma", "pervma+swapin", "pervma+file", "pervma+uffd"})
    for (int pass = 0; pass < 3; ++pass) {
        auto kind = pass == 1 ? Schedule::Kind::pct : Schedule::Kind::random;
        bool uffd = std::string(strategy) == "pervma+uffd";
        bool swapin = uffd || std::string(strategy) == "pervma+swapin";
        bool file = std::string(strategy) == "pervma+file";
        WorkloadShape shape;
        shape.strategy = swapin || file ? "pervma" : strategy;
        shape.gup = shape.peek_poke = true;
        Digest d;
        for (uint64_t seed = first; seed < first + programs; ++seed) {
            Program p = parse_mmr(random_workload(seed, shape));
            p.config.vma_lock_swapin = swapin;
            p.config.vma_lock_file = file;
            p.config.vma_lock_uffd = uffd;
            if (pass == 2) {
                const Pools& pools = kTiny[seed % std::size(kTiny)];
                p.config.folios = pools.folios;
                p.config.swap_slots = pools.swap_slots;
                p.config.pgtables = pools.pgtables;
            }
            d.add(run_with(p, schedule(kind, seed)), "seed " + std::to_string(seed));
        }
        d.print(std::string(strategy) + (pass == 2 ? " random, tiny pools" : pass == 1 ? " pct" : " random"));
    }
}

void file_row(const char* path, uint64_t seeds) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    Program p = parse_mmr(text.str(), path);
    Digest d;
    d.add(run_with(p, std::nullopt), "own schedule");
    for (uint64_t seed = 0; seed < seeds; ++seed) {
        d.add(run_with(p, schedule(Schedule::Kind::random, seed)), "random " + std::to_string(seed));
        d.add(run_with(p, schedule(Schedule::Kind::pct, seed)), "pct " + std::to_string(seed));
    }
    d.print(path);
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t programs = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000;
    uint64_t first = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
    uint64_t seeds = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 50;
    soak_rows(programs, first);
    for (int i = 4; i < argc; ++i) file_row(argv[i], seeds);
    return 0;
}
