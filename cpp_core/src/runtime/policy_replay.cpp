// The replay policy: a list of integers, one per decision (DESIGN §2).  Short lists
// mean few preemptions, which is what lets Hypothesis shrink toward simple schedules.
#include <sstream>

#include "runtime/policy.hpp"

namespace mmrace::rt {
namespace {

class ReplayPolicy final : public Policy {
public:
    explicit ReplayPolicy(std::vector<uint64_t> list) : list_(std::move(list)) {}

    size_t pick(const Decision& d) override {
        if (d.index < list_.size()) return list_[d.index] % d.count;
        return default_pick(d);
    }

    std::string describe() const override {
        std::ostringstream s;
        s << "schedule replay";
        for (uint64_t v : list_) s << ' ' << v;
        return s.str();
    }

private:
    std::vector<uint64_t> list_;
};

}  // namespace

std::unique_ptr<Policy> make_replay_policy(std::vector<uint64_t> list) {
    return std::make_unique<ReplayPolicy>(std::move(list));
}

}  // namespace mmrace::rt
