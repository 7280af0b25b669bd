// The random policy: each decision is a uniform choice from a seeded stream.  The
// stream restarts at every run, so a (program, seed) pair always gives one run.
#include "runtime/policy.hpp"

namespace mmrace::rt {
namespace {

class RandomPolicy final : public Policy {
public:
    explicit RandomPolicy(uint64_t seed) : seed_(seed), rng_(seed) {}
    void begin_run() override { rng_ = SplitMix64(seed_); }
    size_t pick(const Decision& d) override { return rng_.below(d.count); }
    std::string describe() const override {
        return "schedule random seed=" + std::to_string(seed_);
    }

private:
    uint64_t seed_;
    SplitMix64 rng_;
};

}  // namespace

std::unique_ptr<Policy> make_random_policy(uint64_t seed) {
    return std::make_unique<RandomPolicy>(seed);
}

}  // namespace mmrace::rt
