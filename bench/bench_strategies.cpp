// Issue 4's scalability workload: four threads fault pages of their own VMAs in while a
// fifth maps and unmaps elsewhere in the address space.  For each strategy, the share
// of faults handled without mmap_lock and the abort and fallback counts by reason,
// summed over random schedules.  Prints tables; asserts nothing.
//   bench_strategies [RUNS=2000]
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

#include "mmrace/explore.hpp"
#include "mmrace/mmr.hpp"

using namespace mmrace;

namespace {

// Threads T0..T3: map 16 pages of their own at 0x1000000 * (t + 1), then write and read
// each page.  T4: mmap/munmap of one page at 0x9000000, eight times.
std::string workload(const char* strategy) {
    std::ostringstream out;
    out << "mmrace 1\nconfig strategy=" << strategy << "\nprocess P0\n";
    for (int t = 0; t < 4; ++t) {
        uint64_t base = 0x1000000ull * (t + 1);
        out << "thread P0.T" << t << "\n  mmap 0x" << std::hex << base << std::dec
            << " pages=16 prot=rw flags=private,anon,fixed\n";
        for (int p = 0; p < 16; ++p)
            out << "  write 0x" << std::hex << base + p * 0x1000 + 8 * t << std::dec << " " << p + 1 << "\n";
        for (int p = 0; p < 16; p += 3) out << "  read 0x" << std::hex << base + p * 0x1000 << std::dec << "\n";
    }
    out << "thread P0.T4\n";
    for (int i = 0; i < 8; ++i)
        out << "  mmap 0x9000000 pages=1 prot=rw flags=private,anon,fixed\n  write 0x9000000 " << i + 1
            << "\n  munmap 0x9000000 pages=1\n";
    return out.str();
}

}  // namespace

int main(int argc, char** argv) {
    int runs = argc > 1 ? std::atoi(argv[1]) : 2000;
    const char* names[] = {"pgfault", "spf", "spf_vma_changed", "spf_vma_noanon", "spf_vma_notsup",
                           "spf_vma_access", "spf_pmd_changed", "spf_ptl_busy", "vma_lock_success",
                           "vma_lock_abort", "vma_lock_retry", "vma_lock_miss", "mmap_lock_wait",
                           "fault_retry"};
    std::printf("%d random schedules per strategy; counters summed\n\n", runs);
    std::printf("| strategy | runs/s | not ok | pgfault | without mmap_lock | share | mmap_lock_wait |\n"
                "|---|---:|---:|---:|---:|---:|---:|\n");
    std::map<std::string, std::map<std::string, uint64_t>> all;
    for (const char* strategy : {"classic", "spf", "pervma"}) {
        Program p = parse_mmr(workload(strategy));
        auto& sum = all[strategy];
        ExploreOptions o;
        o.policies = {Schedule::Kind::random};
        o.max_runs = static_cast<uint64_t>(runs);
        o.on_run = [&sum](uint64_t, const Program&, const RunResult& r) {
            for (const auto& [k, v] : r.counters) sum[k] += v;
        };
        ExploreResult res = explore(p, o);
        uint64_t spec = sum["spf"] + sum["vma_lock_success"];
        std::printf("| %s | %.0f | %llu | %llu | %llu | %.1f%% | %llu |\n", strategy, res.runs_per_second(),
                    (unsigned long long)res.not_ok(),
                    (unsigned long long)sum["pgfault"], (unsigned long long)spec,
                    sum["pgfault"] ? 100.0 * static_cast<double>(spec) / static_cast<double>(sum["pgfault"]) : 0.0,
                    (unsigned long long)sum["mmap_lock_wait"]);
    }
    std::printf("\n| counter | classic | spf | pervma |\n|---|---:|---:|---:|\n");
    for (const char* n : names)
        std::printf("| %s | %llu | %llu | %llu |\n", n, (unsigned long long)all["classic"][n],
                    (unsigned long long)all["spf"][n], (unsigned long long)all["pervma"][n]);
    return 0;
}
