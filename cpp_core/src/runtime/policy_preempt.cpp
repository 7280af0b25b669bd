// The preempt policy: a schedule as a set of context switches (docs/schedules.md).
// Between its entries every thread runs on as under an empty replay list, so each
// entry is one preemption, and removing entries is how a shrinker simplifies a run.
#include <algorithm>
#include <sstream>

#include "runtime/policy.hpp"

namespace mmrace::rt {

size_t preempt_pick(const Decision& d, uint64_t choice) {
    if (d.current < 0) return choice % d.count;
    // The others, rotated to start after the current thread: current+1, ..., current-1.
    uint64_t skip = 1 + choice % (d.count - 1);
    return (static_cast<size_t>(d.current) + skip) % d.count;
}

namespace {

class PreemptPolicy final : public Policy {
public:
    explicit PreemptPolicy(std::vector<Preemption> switches) : switches_(std::move(switches)) {}

    void begin_run() override { next_ = 0; }

    size_t pick(const Decision& d) override {
        // Entries are sorted by decision; skip any the run has passed (none when sorted).
        while (next_ < switches_.size() && switches_[next_].decision < d.index) ++next_;
        if (next_ < switches_.size() && switches_[next_].decision == d.index)
            return preempt_pick(d, switches_[next_].choice);
        return default_pick(d);
    }

    std::string describe() const override {
        std::ostringstream s;
        s << "schedule preempt";
        for (const Preemption& p : switches_) s << ' ' << p.decision << ':' << p.choice;
        return s.str();
    }

private:
    std::vector<Preemption> switches_;
    size_t next_ = 0;
};

}  // namespace

std::unique_ptr<Policy> make_preempt_policy(std::vector<Preemption> switches) {
    return std::make_unique<PreemptPolicy>(std::move(switches));
}

void PreemptRecorder::begin_run() {
    switches_.clear();
    inner_.begin_run();
}

// The inverse of preempt_pick: the choice that picks `idx` away from the current thread.
size_t PreemptRecorder::pick(const Decision& d) {
    size_t idx = std::min(inner_.pick(d), d.count - 1);
    if (idx == default_pick(d)) return idx;
    uint64_t choice = d.current < 0 ? idx
                                    : (idx + d.count - static_cast<size_t>(d.current) - 1) % d.count;
    switches_.push_back(Preemption{d.index, choice});
    return idx;
}

}  // namespace mmrace::rt
