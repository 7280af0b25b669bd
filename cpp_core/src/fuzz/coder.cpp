#include "fuzz/coder.hpp"

namespace mmrace::fuzz {

// The inverse of ByteChoices::choose: as many big-endian bytes as n - 1 needs.
void EncodeCoder::num(uint64_t& v, uint64_t n, std::string_view what) {
    if (v >= n && !(n <= 1 && v == 0))
        throw EncodeError(std::string(what) + " " + std::to_string(v) + " is over the target's bound " +
                          std::to_string(n == 0 ? 0 : n - 1));
    if (n <= 1) return;
    int len = 0;
    for (uint64_t left = n - 1; left; left >>= 8) ++len;
    for (int i = len - 1; i >= 0; --i) out_ += static_cast<char>(v >> (8 * i) & 0xff);
}

}  // namespace mmrace::fuzz
