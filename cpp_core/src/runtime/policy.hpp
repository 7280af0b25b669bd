// The one interface every schedule policy implements (DESIGN §2).
//
// At every scheduling point with more than one choice the runtime hands the policy the
// runnable entities, threads first in declaration order, then enabled events in the
// order they were posted, and the policy returns an index into that list.  Points with
// a single choice are not decisions: no policy is asked and no replay entry is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mmrace::rt {

using Entity = uint32_t;                // a thread id, or kEventBase + event serial
constexpr Entity kEventBase = 1u << 16;
inline bool is_event(Entity e) { return e >= kEventBase; }

struct Decision {
    const Entity* options;
    size_t count;        // >= 2
    int current;         // index of the thread that was running, or -1 if it cannot run
    uint64_t step;       // the runtime's step counter
    uint64_t index;      // how many decisions came before this one in the run
    size_t threads;      // options[0, threads) are threads, the rest events
};

class Policy {
public:
    virtual ~Policy() = default;
    // Called once before each run; a policy may be reused for many runs.
    virtual void begin_run() {}
    virtual size_t pick(const Decision& d) = 0;
    // The `schedule ...` line that reproduces this policy's choices for one run.
    virtual std::string describe() const = 0;
};

// What replay picks past the end of its list, and preempt away from its entries: the
// current thread if it can run, else the oldest ready event (an IPI acknowledged, an
// I/O completed: what a blocked thread waits for, before anyone else moves), else
// options[0] (the lowest id).  So a thread runs to its end unless it waits on another.
inline size_t default_pick(const Decision& d) {
    if (d.current >= 0) return static_cast<size_t>(d.current);
    return d.threads < d.count ? d.threads : 0;
}

// replay: decision i picks options[list[i] % count]; past the end, default_pick.
std::unique_ptr<Policy> make_replay_policy(std::vector<uint64_t> list);

// One context switch of a preempt schedule: at decision `decision`, the `choice`-th
// entity other than the current thread (see preempt_pick).
struct Preemption {
    uint64_t decision = 0;
    uint64_t choice = 0;
    bool operator==(const Preemption&) const = default;
};

// The option a preemption with `choice` picks at d: if the current thread can run, the
// choice-th of the others, counted from the one after it (mod count - 1); else
// options[choice % count].
size_t preempt_pick(const Decision& d, uint64_t choice);
// preempt: default_pick at every decision except those of `switches` (sorted by
// decision, each once), where preempt_pick.  An empty list is replay's empty list.
std::unique_ptr<Policy> make_preempt_policy(std::vector<Preemption> switches);

// Runs `inner` and writes down, as preemptions, the decisions where it picked anything
// but default_pick: the same run as a preempt schedule.  The runtime clamps a pick to
// count - 1, so the recorder does too.
class PreemptRecorder final : public Policy {
public:
    explicit PreemptRecorder(Policy& inner) : inner_(inner) {}
    void begin_run() override;
    size_t pick(const Decision& d) override;
    std::string describe() const override { return inner_.describe(); }
    const std::vector<Preemption>& switches() const { return switches_; }

private:
    Policy& inner_;
    std::vector<Preemption> switches_;
};
// random: a uniform choice at each decision from a seeded splitmix64 stream.
std::unique_ptr<Policy> make_random_policy(uint64_t seed);
// pct: probabilistic concurrency testing, Burckhardt et al., ASPLOS 2010: random
// distinct thread priorities, depth-1 priority change points among the first `steps`
// decisions; always run the highest-priority runnable entity.
std::unique_ptr<Policy> make_pct_policy(uint64_t seed, uint32_t depth, uint64_t steps);

// splitmix64: the one PRNG of the project, identical on every platform.
struct SplitMix64 {
    uint64_t state;
    explicit SplitMix64(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) without modulo bias (Lemire's method, fixed-width math).
    uint64_t below(uint64_t n) {
        __uint128_t m = static_cast<__uint128_t>(next()) * n;
        auto lo = static_cast<uint64_t>(m);
        if (lo < n) {
            uint64_t t = -n % n;
            while (lo < t) {
                m = static_cast<__uint128_t>(next()) * n;
                lo = static_cast<uint64_t>(m);
            }
        }
        return static_cast<uint64_t>(m >> 64);
    }
};

}  // namespace mmrace::rt
