// Program executions per second (issue 3): fixed 3-thread, 24-op workloads (faults,
// and the same with swap) run under fresh random and PCT schedules, with all checks,
// without the quiescent-point invariants, and without those and the semantic oracle;
// and the peak resident memory.  Prints a table; asserts nothing.
#include <sys/resource.h>

#include <cstdio>

#include "mmrace/explore.hpp"
#include "mmrace/mmr.hpp"

using namespace mmrace;

namespace {

// 3 threads x 8 ops: mappings, faults, COW across fork, munmap and mprotect.
const char* kWorkload = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  fork P1
  write 0x100000 3
  munmap 0x104000 pages=2
  read 0x101000
  mprotect 0x100000 pages=2 prot=r
thread P0.T1
  mmap 0x200000 pages=4 prot=rw flags=private,anon,fixed
  write 0x200000 4
  read 0x100000
  write 0x102000 5
  madvise 0x200000 pages=4 advice=dontneed
  read 0x200000
  write 0x103000 6
  read 0x102000
process P1 forked
thread P1.T0
  read 0x100000
  write 0x100000 7
  read 0x101000
  write 0x105000 8
  munmap 0x100000 pages=1
  read 0x100000
  mmap 0x300000 pages=1 prot=rw flags=private,anon,fixed
  write 0x300000 9
)";

// The same shape with MADV_PAGEOUT: swap-out, swap-in, swap PTEs copied by fork and
// zapped by munmap, so that the swap accounting has slots to check.
const char* kSwapWorkload = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  madvise 0x100000 pages=4 advice=pageout
  fork P1
  write 0x100000 4
  madvise 0x100000 pages=8 advice=pageout
thread P0.T1
  mmap 0x200000 pages=4 prot=rw flags=private,anon,fixed
  write 0x200000 5
  write 0x201000 6
  madvise 0x200000 pages=4 advice=pageout
  read 0x200000
  read 0x100000
  madvise 0x200000 pages=2 advice=pageout
  write 0x201000 7
process P1 forked
thread P1.T0
  read 0x100000
  madvise 0x100000 pages=8 advice=pageout
  read 0x101000
  write 0x102000 8
  read 0x100000
  munmap 0x100000 pages=2
  read 0x102000
  write 0x103000 9
)";

struct Checks {
    bool quiescent, semantics;
    const char* name;
};

void run(const Program& p, Schedule::Kind kind, Checks c, const char* name, const char* workload) {
    const int n = 4000;
    ExploreOptions o;
    o.policies = {kind};
    o.max_runs = n;
    o.pct_depth = 3;
    o.pct_steps = 150;
    o.run.check_quiescent = c.quiescent;
    o.run.check_semantics = c.semantics;
    uint64_t steps = 0;
    o.on_run = [&steps](uint64_t, const Program&, const RunResult& r) { steps += r.step; };
    ExploreResult res = explore(p, o);
    double secs = res.seconds;
    std::printf("| %s | %s | %s | %.0f | %.3g | %.0f | %llu |\n", workload, name, c.name, res.runs_per_second(),
                static_cast<double>(steps) / secs, static_cast<double>(steps) / n,
                (unsigned long long)res.not_ok());
}

}  // namespace

int main() {
    std::printf("## executions of fixed 3-thread, 24-op workloads (4000 runs each)\n\n");
    std::printf("| workload | policy | checks | executions/s | steps/s | steps/run | non-ok |\n");
    std::printf("|---|---|---|---:|---:|---:|---:|\n");
    for (auto [name, text] : {std::pair{"faults", kWorkload}, std::pair{"swap", kSwapWorkload}}) {
        Program p = parse_mmr(text);
        for (Checks c : {Checks{true, true, "all"}, Checks{false, true, "no quiescent invariants"},
                         Checks{false, false, "end-of-run only, no oracle"}}) {
            run(p, Schedule::Kind::random, c, "random", name);
            run(p, Schedule::Kind::pct, c, "pct", name);
        }
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("\npeak RSS: %.1f MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
    return 0;
}
