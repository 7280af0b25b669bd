// Interleaving feedback for the fuzzers (issue 17, Build 3).  Code coverage cannot tell
// two interleavings of the same code apart; these counters can.  Each signal hashes to
// one counter of a map the harness hands in (libFuzzer's __libfuzzer_extra_counters,
// or under AFL++ a map turned into edges, fuzz/harness.cpp):
//   - a context switch from site A to site B where both touch the same object (the
//     records' argument: a lock's name, a page-table entry, a VMA's serial, an
//     address): KRACE's alias pairs, Snowboard's potential memory communications;
//   - a lock contended at a site (wait() after the thread's lock_acquire record);
//   - after the run, each recheck that failed and how often, in powers of two: spf's
//     aborts (VMA sequence, PMD, PTE lock), per-VMA lock aborts, retries and misses,
//     fault retries, userfaultfd's EAGAIN.
// It sees the run through rt::RecordSink, so a run without it pays nothing more.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "mmrace/run.hpp"
#include "runtime/record_sink.hpp"
#include "runtime/runtime.hpp"

namespace mmrace::fuzz {

class InterleaveFeedback final : public rt::RecordSink {
public:
    InterleaveFeedback(uint8_t* map, size_t size) : map_(map), size_(size) {}
    // Forgets the previous run's threads (not the map: the harness owns its life).
    void begin_run();
    void on_record(rt::Entity who, const rt::Site* site, rt::Ev ev, uint64_t arg) override;
    // The failed rechecks of a finished run.
    void add_counters(const RunResult& r);

private:
    struct Last {
        const rt::Site* site = nullptr;
        rt::Ev ev{};
        uint64_t arg = 0;
    };
    void hit(uint64_t h);

    uint8_t* map_;
    size_t size_;
    std::array<Last, rt::kMaxThreads> last_{};
    rt::Entity prev_ = rt::kNoThread;
};

}  // namespace mmrace::fuzz
