#include "fuzz/interleave.hpp"

#include <bit>
#include <string_view>

namespace mmrace::fuzz {

namespace {

inline uint64_t mix(uint64_t a, uint64_t b, uint64_t tag) {
    uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2));
    h ^= tag * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

// The counters that count a recheck that failed (mm/counters.hpp).
constexpr std::string_view kRechecks[] = {
    "spf_vma_changed", "spf_pmd_changed", "spf_ptl_busy", "vma_lock_abort",
    "vma_lock_retry",  "vma_lock_miss",   "fault_retry",  "uffd_eagain",
};

enum Tag : uint64_t { alias_switch = 1, contended, recheck };

}  // namespace

void InterleaveFeedback::begin_run() {
    last_.fill(Last{});
    prev_ = rt::kNoThread;
}

void InterleaveFeedback::hit(uint64_t h) {
    uint8_t& c = map_[h % size_];
    if (c != 0xff) ++c;
}

void InterleaveFeedback::on_record(rt::Entity who, const rt::Site* site, rt::Ev ev, uint64_t arg) {
    if (who >= rt::kMaxThreads) return;  // events, and records outside a thread
    Last& mine = last_[who];
    if (prev_ != rt::kNoThread && prev_ != who) {
        // `who` runs again after prev_ ran: prev_ stopped at its last record, `who` had
        // stopped at its own.  Both about one object: an alias pair.
        const Last& from = last_[prev_];
        if (from.site && mine.site && from.arg == mine.arg && from.arg != 0)
            hit(mix(from.site->hash, mine.site->hash, alias_switch));
    }
    if (ev == rt::Ev::lock_contended && mine.ev == rt::Ev::lock_acquire)
        hit(mix(site->hash, mine.arg, contended));
    mine = Last{site, ev, arg};
    prev_ = who;
}

void InterleaveFeedback::add_counters(const RunResult& r) {
    for (const auto& [name, value] : r.counters) {
        if (value == 0) continue;
        for (std::string_view c : kRechecks)
            if (c == name) hit(mix(rt::fnv1a(c), static_cast<uint64_t>(std::bit_width(value)), recheck));
    }
}

}  // namespace mmrace::fuzz
