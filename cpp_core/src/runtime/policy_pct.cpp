// PCT, "A Randomized Scheduler with Probabilistic Guarantees of Finding Bugs"
// (Burckhardt, Kothari, Musuvathi, Nagarakatte; ASPLOS 2010).
//
// Each entity gets a random distinct initial priority in [depth, depth + n); depth-1
// change points are drawn uniformly from [1, steps]; when decision number k_i is
// reached, the entity that would run has its priority lowered to depth - i, below every
// initial priority.  The highest-priority runnable entity always runs.  A bug of depth
// d is then found with probability at least 1/(n * k^(d-1)) per run.
//
// Entities are created lazily (events appear during the run), so an entity's initial
// priority is drawn when it is first seen: a random position among the priorities
// handed out so far, which keeps all initial priorities distinct and uniformly ordered.
#include <algorithm>
#include <unordered_map>

#include "runtime/policy.hpp"

namespace mmrace::rt {
namespace {

class PctPolicy final : public Policy {
public:
    PctPolicy(uint64_t seed, uint32_t depth, uint64_t steps)
        : seed_(seed), depth_(std::max<uint32_t>(depth, 1)), steps_(steps ? steps : 1000),
          rng_(seed) {}

    void begin_run() override {
        rng_ = SplitMix64(seed_);
        order_.clear();
        lowered_.clear();
        change_points_.clear();
        for (uint32_t i = 1; i < depth_; ++i) change_points_.push_back(1 + rng_.below(steps_));
        std::sort(change_points_.begin(), change_points_.end());
        next_change_ = 0;
    }

    size_t pick(const Decision& d) override {
        for (size_t i = 0; i < d.count; ++i) see(d.options[i]);
        size_t best = highest(d);
        while (next_change_ < change_points_.size() &&
               change_points_[next_change_] <= d.index + 1) {
            // Change point i: lower the entity about to run below all initial priorities.
            ++next_change_;
            lowered_[d.options[best]] = -static_cast<int64_t>(next_change_);
            best = highest(d);
        }
        return best;
    }

    std::string describe() const override {
        return "schedule pct seed=" + std::to_string(seed_) + " depth=" +
               std::to_string(depth_) + " steps=" + std::to_string(steps_);
    }

private:
    void see(Entity e) {
        if (std::find(order_.begin(), order_.end(), e) != order_.end()) return;
        order_.insert(order_.begin() + static_cast<long>(rng_.below(order_.size() + 1)), e);
    }

    // Priority: a lowered entity's change-point rank (negative), else its place in order_.
    int64_t priority(Entity e) const {
        auto it = lowered_.find(e);
        if (it != lowered_.end()) return it->second;
        return static_cast<int64_t>(std::find(order_.begin(), order_.end(), e) - order_.begin());
    }

    size_t highest(const Decision& d) const {
        size_t best = 0;
        for (size_t i = 1; i < d.count; ++i)
            if (priority(d.options[i]) > priority(d.options[best])) best = i;
        return best;
    }

    uint64_t seed_;
    uint32_t depth_;
    uint64_t steps_;
    SplitMix64 rng_;
    std::vector<Entity> order_;                     // lowest priority first
    std::unordered_map<Entity, int64_t> lowered_;   // entities past a change point
    std::vector<uint64_t> change_points_;
    size_t next_change_ = 0;
};

}  // namespace

std::unique_ptr<Policy> make_pct_policy(uint64_t seed, uint32_t depth, uint64_t steps) {
    return std::make_unique<PctPolicy>(seed, depth, steps);
}

}  // namespace mmrace::rt
