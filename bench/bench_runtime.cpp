// Runtime micro-benchmarks (DESIGN §2, issue 2): fiber switches per second for each
// switch mechanism, and scheduler decisions per second for each policy.
// Prints a table; nothing here asserts a time.
#include <chrono>
#include <cstdio>
#include <string>

#include "runtime/runtime.hpp"

using namespace mmrace::rt;
using Clock = std::chrono::steady_clock;

namespace {

struct PingPong {
    Fiber* host;
    Fiber* self;
    long rounds;
};

void ping_entry(void* arg) {
    Fiber::on_entry();
    auto* p = static_cast<PingPong*>(arg);
    for (long i = 0; i < p->rounds; ++i) Fiber::switch_to(*p->self, *p->host);
    Fiber::switch_final(*p->self, *p->host);
}

// Two switches per round: host -> fiber -> host.
double switch_ns(FiberKind kind, long rounds) {
    Fiber host(kind);
    Fiber f(kind, 64 * 1024);
    PingPong p{&host, &f, rounds};
    f.prepare(&ping_entry, &p);
    auto t0 = Clock::now();
    for (long i = 0; i <= rounds; ++i) Fiber::switch_to(host, f);
    auto dt = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    return dt / (2.0 * static_cast<double>(rounds + 1));
}

struct DecisionResult {
    double decisions_per_s;
    double steps_per_s;
};

DecisionResult decisions(Policy& policy, int threads, int yields, bool trace) {
    RuntimeConfig cfg;
    cfg.budget = ~0ull;
    cfg.record_trace = trace;
    Runtime rt(cfg);
    for (int t = 0; t < threads; ++t)
        rt.add_thread("T" + std::to_string(t), [&rt, yields] {
            for (int i = 0; i < yields; ++i) rt.yield(MMR_SITE("bench"), Ev::yield, i);
        });
    rt.run(policy);  // warm-up: stacks touched, vectors sized
    auto t0 = Clock::now();
    auto out = rt.run(policy);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    return {static_cast<double>(out.decisions.size()) / s, static_cast<double>(out.step) / s};
}

}  // namespace

int main() {
    std::printf("## fiber switch (one direction)\n\n");
    std::printf("| mechanism | ns/switch | switches/s |\n|---|---:|---:|\n");
    for (FiberKind k : {FiberKind::asm_switch, FiberKind::ucontext}) {
        if (k == FiberKind::asm_switch && default_fiber_kind() != FiberKind::asm_switch) continue;
        double best = 1e18;
        for (int rep = 0; rep < 5; ++rep) best = std::min(best, switch_ns(k, 2'000'000));
        std::printf("| %s | %.1f | %.3g |\n", fiber_kind_name(k), best, 1e9 / best);
    }
    std::printf("\n## scheduler decisions (4 threads x 500k yields, fiber=%s)\n\n",
                fiber_kind_name(default_fiber_kind()));
    std::printf("| policy | trace | decisions/s | steps/s |\n|---|---|---:|---:|\n");
    for (bool trace : {false, true}) {
        auto rnd = make_random_policy(1);
        auto pct = make_pct_policy(1, 3, 1'000'000);
        std::vector<uint64_t> alt(2'000'000);
        for (size_t i = 0; i < alt.size(); ++i) alt[i] = i;
        auto rep = make_replay_policy(alt);
        for (auto [name, pol] : {std::pair{"random", rnd.get()}, std::pair{"pct", pct.get()},
                                 std::pair{"replay", rep.get()}}) {
            auto r = decisions(*pol, 4, 500'000, trace);
            std::printf("| %s | %s | %.3g | %.3g |\n", name, trace ? "on" : "off",
                        r.decisions_per_s, r.steps_per_s);
        }
    }
    return 0;
}
