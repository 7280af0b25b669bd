// Where the generator's choices come from (issue 15).  The generator asks a ChoiceSource
// for every decision it makes, as choose(n): an integer in [0, n).  Choice 0 is always
// the simplest one (fewest processes, threads and ops, the smallest numbers, a feature
// off), so a driver that shrinks its choices toward 0 (Hypothesis, a fuzzer's minimiser)
// shrinks the program along its structure.
//
// Drivers:
//   SplitMix64Choices  a seed (the soak, hunt, conform --random): the same on every platform
//   ByteChoices        the fuzzers' total decoder (DESIGN §9): any byte string decodes;
//                      input that runs out chooses 0
//   (bindings/)        a Python callback, so a Hypothesis strategy draws each choice itself
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "runtime/policy.hpp"

namespace mmrace::gen {

// A named stream of choices.  A seeded driver gives each stream a generator of its own
// (seed ^ salt), so a feature drawn from its own stream can be added to a shape without
// changing the rest of what a seed draws; the other drivers have one stream only.
struct Stream {
    uint64_t salt = 0;    // 0: the main stream
    bool modulo = false;  // a seeded driver reduces next() % n (how random_workload's
                          // kthread stream always drew), not SplitMix64::below(n)
};

class ChoiceSource {
public:
    virtual ~ChoiceSource() = default;
    // An integer in [0, n); 0 when n <= 1 (a choice of one costs nothing).
    virtual uint64_t choose(uint64_t n) = 0;
    // The source of stream `s`; this one unless the driver keeps streams apart.
    virtual ChoiceSource& stream(const Stream& s) {
        (void)s;
        return *this;
    }
};

// Choices drawn from SplitMix64 seeded with `seed`: choose(n) is SplitMix64::below(n).
class SplitMix64Choices final : public ChoiceSource {
public:
    explicit SplitMix64Choices(uint64_t seed, bool modulo = false) : seed_(seed), rng_(seed), modulo_(modulo) {}
    uint64_t choose(uint64_t n) override;
    ChoiceSource& stream(const Stream& s) override;

private:
    uint64_t seed_;
    rt::SplitMix64 rng_;
    bool modulo_;
    std::vector<std::pair<uint64_t, std::unique_ptr<SplitMix64Choices>>> streams_;  // by salt
};

// Choices decoded from a byte string: choose(n) reads the fewest bytes that can hold
// n - 1, big-endian, and reduces them mod n; past the end every byte reads as 0.  Total:
// every string decodes, and the generator's bounds keep every program finite.  The
// bytes must outlive the source.
class ByteChoices final : public ChoiceSource {
public:
    explicit ByteChoices(std::string_view bytes) : bytes_(bytes) {}
    uint64_t choose(uint64_t n) override;
    // How many bytes the choices so far have read (never more than the input's size).
    size_t consumed() const { return pos_; }

private:
    std::string_view bytes_;
    size_t pos_ = 0;
};

// The simplest source: choose(n) is 0 every time (the program a shrinker ends at).
class ZeroChoices final : public ChoiceSource {
public:
    uint64_t choose(uint64_t) override { return 0; }
};

}  // namespace mmrace::gen
