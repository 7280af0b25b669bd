// The two-way coder of the fuzz targets' programs (DESIGN §9, the byte decoder).
//
// Every target describes its program once, as a function over a Coder: each field is
// one call num(v, n) with v in [0, n).  Decoding, the call reads v from the input
// through the generator's ByteChoices (so the decoder is that byte driver: fewest
// big-endian bytes that hold n - 1, 0 past the end); encoding, it writes v's bytes.
// Because one function walks the program both ways, decode(encode(p)) == p holds by
// construction wherever encode succeeds, and an encoder cannot drift from its decoder.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "program/generate/choice_source.hpp"

namespace mmrace::fuzz {

// A program a target cannot express: what() names the op or field and the bound.
class EncodeError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

class Coder {
public:
    virtual ~Coder() = default;
    // Decoding: v = the next choice in [0, n).  Encoding: writes v; EncodeError naming
    // `what` when v >= n.  n <= 1 reads and writes nothing.
    virtual void num(uint64_t& v, uint64_t n, std::string_view what) = 0;
    virtual bool decoding() const = 0;

    template <class T>
    void pick(T& v, uint64_t n, std::string_view what) {
        auto x = static_cast<uint64_t>(v);
        num(x, n, what);
        v = static_cast<T>(x);
    }
    bool coin(bool& b, std::string_view what) {
        pick(b, 2, what);
        return b;
    }
    // Encoding only: a program the target cannot express.
    [[noreturn]] void reject(const std::string& why) const { throw EncodeError(why); }
};

// Reads choices from the program part of a fuzz input.  Total: never throws.
class DecodeCoder final : public Coder {
public:
    explicit DecodeCoder(std::string_view bytes) : choices_(bytes) {}
    void num(uint64_t& v, uint64_t n, std::string_view) override { v = choices_.choose(n); }
    bool decoding() const override { return true; }

private:
    gen::ByteChoices choices_;
};

// Writes the bytes a DecodeCoder reads back as the same choices.
class EncodeCoder final : public Coder {
public:
    void num(uint64_t& v, uint64_t n, std::string_view what) override;
    bool decoding() const override { return false; }
    const std::string& bytes() const { return out_; }

private:
    std::string out_;
};

}  // namespace mmrace::fuzz
