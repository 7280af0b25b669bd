#include "program/generate/choice_source.hpp"

namespace mmrace::gen {

// A choice of one still steps the generator, as random_workload's draws did: a seed
// draws the same program it always has.
uint64_t SplitMix64Choices::choose(uint64_t n) {
    if (modulo_) return n ? rng_.next() % n : (rng_.next(), 0);
    return rng_.below(n);
}

// Streams are made on first use and live as long as this source.
ChoiceSource& SplitMix64Choices::stream(const Stream& s) {
    if (s.salt == 0) return *this;
    for (auto& [salt, src] : streams_)
        if (salt == s.salt) return *src;
    streams_.emplace_back(s.salt, std::make_unique<SplitMix64Choices>(seed_ ^ s.salt, s.modulo));
    return *streams_.back().second;
}

uint64_t ByteChoices::choose(uint64_t n) {
    if (n <= 1) return 0;
    uint64_t v = 0;
    for (uint64_t left = n - 1; left; left >>= 8) {
        v = v << 8 | (pos_ < bytes_.size() ? static_cast<uint8_t>(bytes_[pos_++]) : 0);
    }
    return v % n;
}

}  // namespace mmrace::gen
