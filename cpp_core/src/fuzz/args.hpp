// Coders of op arguments shared by the fuzz targets (coder.hpp): numbers at the small
// end cost one byte, anything the format allows costs more, so a mutation of one byte
// moves an address or a value a little and a random one still reaches the limits.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "fuzz/coder.hpp"
#include "mmrace/program.hpp"
#include "program/mmr_lexer.hpp"

namespace mmrace::fuzz {

// A word value: below 256 in one byte, else all 64 bits.
void code_value(Coder& c, uint64_t& v, const char* what);
// A count in [0, max]: up to 16 in one byte, else up to max.
void code_count(Coder& c, uint64_t& v, uint64_t max, const char* what);
// pages=N in [1, max].
void code_pages(Coder& c, uint64_t& pages, uint64_t max, const char* what);
// The page-aligned start of `pages` pages in user space: the first 128 MiB (where
// programs live) in two bytes, else anywhere below kUserTop.
void code_page_addr(Coder& c, uint64_t& addr, uint64_t pages, const char* what);
// An 8-byte aligned word address.
void code_word_addr(Coder& c, uint64_t& addr, const char* what);
// [addr, +pages) as the two above, at most max_pages long.
void code_range(Coder& c, Op& op, uint64_t max_pages, const char* what);

// Any subset of `words`' flags, one choice per flag.
template <size_t N>
void code_flags(Coder& c, uint32_t& flags, const std::array<mmr::Word<uint32_t>, N>& words, const char* what) {
    if (!c.decoding()) {
        uint32_t known = 0;
        for (const auto& w : words) known |= w.value;
        if (flags & ~known) c.reject(std::string(what) + ": flags 0x" + std::to_string(flags & ~known) +
                                     " are not among the target's flags");
    }
    uint32_t out = 0;
    for (const auto& w : words) {
        bool on = flags & w.value;
        if (c.coin(on, what)) out |= w.value;
    }
    flags = out;
}

}  // namespace mmrace::fuzz
