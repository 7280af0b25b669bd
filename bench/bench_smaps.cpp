// Seed 003's monitoring case: N threads fault pages of their own VMAs in while one
// thread maps and unmaps elsewhere, and a kthread reads /proc/PID/smaps in a loop (the
// `smaps` op holds mmap_lock for read across its page-table walk).  For classic and
// pervma, with and without the reader: how often an mmap_lock acquisition had to wait,
// how many faults ran under a VMA lock instead, how long each walk held mmap_lock, and
// how many threads were queued behind it when it let go.  Summed over random
// schedules; prints tables, asserts nothing.
//   bench_smaps [RUNS=1000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"

using namespace mmrace;
using Clock = std::chrono::steady_clock;

namespace {

// Threads T0..T(n-1): map 16 pages of their own, write each, read every third.
// T(n): mmap/munmap of one page, six times.  K0 (if smaps): eight smaps walks of P0.
std::string workload(const char* strategy, int n, bool smaps) {
    std::ostringstream out;
    out << "mmrace 1\nconfig strategy=" << strategy << "\nprocess P0\n";
    for (int t = 0; t < n; ++t) {
        uint64_t base = 0x1000000ull * (t + 1);
        out << "thread P0.T" << t << "\n  mmap 0x" << std::hex << base << std::dec
            << " pages=16 prot=rw flags=private,anon,fixed\n";
        for (int p = 0; p < 16; ++p)
            out << "  write 0x" << std::hex << base + p * 0x1000 << std::dec << " " << p + 1 << "\n";
        for (int p = 0; p < 16; p += 3) out << "  read 0x" << std::hex << base + p * 0x1000 << std::dec << "\n";
    }
    out << "thread P0.T" << n << "\n";
    for (int i = 0; i < 6; ++i)
        out << "  mmap 0x9000000 pages=1 prot=rw flags=private,anon,fixed\n  write 0x9000000 " << i + 1
            << "\n  munmap 0x9000000 pages=1\n";
    if (smaps) {
        out << "kthread K0\n";
        for (int i = 0; i < 8; ++i) out << "  smaps P0\n";
    }
    return out.str();
}

uint64_t get(const RunResult& r, const char* name) {
    for (const auto& [k, v] : r.counters)
        if (k == name) return v;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = argc > 1 ? std::atoi(argv[1]) : 1000;
    std::printf("%d random schedules per row; counters summed, then per run or per walk\n\n", runs);
    std::printf("| strategy | faulting threads | smaps reader | not ok | pgfault/run | vma_lock_success/run |"
                " mmap_lock_wait/run | walks/run | hold steps/walk | waiters queued/walk | walks a writer waited on | runs/s |\n"
                "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const char* strategy : {"classic", "pervma"})
        for (int n : {1, 2, 4})
            for (bool smaps : {false, true}) {
                Program p = parse_mmr(workload(strategy, n, smaps));
                uint64_t fault = 0, vma = 0, wait = 0, walks = 0, hold = 0, waiters = 0, contended = 0;
                int bad = 0;
                auto t0 = Clock::now();
                for (int i = 0; i < runs; ++i) {
                    RunOptions o;
                    Schedule s;
                    s.kind = Schedule::Kind::random;
                    s.seed = static_cast<uint64_t>(i);
                    o.schedule = s;
                    o.trace = false;
                    o.check_semantics = false;
                    RunResult r = run_program(p, o);
                    bad += r.verdict != Verdict::ok;
                    fault += get(r, "pgfault");
                    vma += get(r, "vma_lock_success");
                    wait += get(r, "mmap_lock_wait");
                    walks += get(r, "smaps");
                    hold += get(r, "smaps_lock_hold_steps");
                    waiters += get(r, "smaps_lock_waiters");
                    contended += get(r, "smaps_lock_contended");
                }
                double secs = std::chrono::duration<double>(Clock::now() - t0).count();
                double per = static_cast<double>(runs), w = walks ? static_cast<double>(walks) : 1.0;
                std::printf("| %s | %d | %s | %d | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f | %.1f%% | %.0f |\n",
                            strategy, n, smaps ? "yes" : "no", bad, fault / per, vma / per, wait / per,
                            walks / per, hold / w, waiters / w, 100.0 * contended / w, runs / secs);
            }
    return 0;
}
