// Allocation and free at scale (issue 14, defect 2): one thread maps N pages with
// MAP_POPULATE, writes a word, and unmaps them, for four rounds.  From the second round
// on every folio and page table comes back from the freed ones, which once cost a scan
// of the whole free list per allocation.  The time per page (N * rounds) stays flat
// when a run is linear in N.
//
// Three rows per size: the default RunOptions, without the quiescent invariant checks,
// and without those and the linearizability oracle, to tell which part of a run grows
// faster than N.  trace=false in all three (a million-page run would keep a trace record
// per event; the trace hash is computed either way).
//   bench_pool [MAX_SECONDS=60] [N ...]    (default N: 65536 131072 262144 524288 1048576)
// A size is skipped when the one before it, scaled as if the run were quadratic,
// predicts more than MAX_SECONDS.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"

using namespace mmrace;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRounds = 4;

// The small geometry's PTE table maps 8 pages, its PMD table 64, its PUD table 512.
std::string program_text(uint64_t pages) {
    uint64_t folios = std::max(pages, kDefaultFolios);
    std::string text = "mmrace 1\nconfig strategy=classic geometry=small folios=" +
                       std::to_string(folios) + " pgtables=" + std::to_string(kMaxPgtables) +
                       "\nprocess P0\nthread P0.T0\n";
    const std::string range = "0x100000 pages=" + std::to_string(pages);
    for (int round = 0; round < kRounds; ++round)
        text += "  mmap " + range + " prot=rw flags=private,anon,fixed,populate\n"
                "  write 0x100000 7\n"
                "  munmap " + range + "\n";
    return text;
}

struct Mode {
    const char* name;
    bool check_quiescent;
    bool check_semantics;
};

struct Row {
    double seconds = 0;
    std::string verdict;
    uint64_t trace_hash = 0;
};

Row run(const Program& p, const Mode& m) {
    RunOptions o;
    o.trace = false;
    o.budget = UINT64_MAX;  // a populate of N pages takes steps in proportion to N
    o.check_quiescent = m.check_quiescent;
    o.check_semantics = m.check_semantics;
    auto t0 = Clock::now();
    RunResult r = run_program(p, o);
    Row row;
    row.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    row.verdict = std::string(verdict_name(r.verdict)) +
                  (r.ok() ? "" : std::string(" ") + check_name(r.check) + ": " + r.message);
    // Every op must have succeeded (mmap returns the address, write "ok", munmap 0): a
    // failed mmap or an OOM would time something else.
    static const char* const expected[] = {"0x100000", "ok", "0"};
    for (size_t i = 0; i < r.ops.size() && r.verdict == Verdict::ok; ++i)
        if (r.ops[i].result.value_or("never ran") != expected[i % 3])
            row.verdict = r.ops[i].op + " gave " + r.ops[i].result.value_or("never ran");
    row.trace_hash = r.trace_hash;
    return row;
}

}  // namespace

int main(int argc, char** argv) {
    double max_seconds = argc > 1 ? std::strtod(argv[1], nullptr) : 60;
    std::vector<uint64_t> sizes;
    for (int i = 2; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
    if (sizes.empty()) sizes = {65536, 131072, 262144, 524288, 1048576};
    const Mode modes[] = {{"default", true, true},
                          {"check_quiescent=false", false, true},
                          {"no quiescent checks, no oracle", false, false}};
    std::printf("| pages N | options | seconds | ns per page | verdict | trace hash |\n"
                "|---:|---|---:|---:|---|---|\n");
    for (const Mode& m : modes) {
        double last = 0;
        uint64_t last_n = 0;
        for (uint64_t n : sizes) {
            double ratio = last_n ? static_cast<double>(n) / static_cast<double>(last_n) : 0;
            if (last_n && last * ratio * ratio > max_seconds) {
                std::printf("| %llu | %s | skipped: over %.0f s if quadratic | | | |\n",
                            static_cast<unsigned long long>(n), m.name, max_seconds);
                std::fflush(stdout);
                continue;
            }
            Program p = parse_mmr(program_text(n));
            Row row = run(p, m);
            std::printf("| %llu | %s | %.2f | %.0f | %s | %016llx |\n",
                        static_cast<unsigned long long>(n), m.name, row.seconds,
                        row.seconds * 1e9 / static_cast<double>(n * kRounds), row.verdict.c_str(),
                        static_cast<unsigned long long>(row.trace_hash));
            std::fflush(stdout);
            last = row.seconds;
            last_n = n;
        }
    }
    return 0;
}
