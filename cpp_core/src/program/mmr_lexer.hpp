// The .mmr scanner: lines and whitespace-separated words, with 1-based positions.
//
// It never copies the input and scans each byte a bounded number of times, so a huge
// line or a file of random bytes costs one linear pass.  Lines end at '\n'; ' ', '\t'
// and '\r' separate words (so CRLF files read like LF files).  Columns count bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mmrace/program.hpp"

namespace mmrace::mmr {

bool is_space(char c);

// One word and where it starts.
struct Token {
    std::string_view text;
    int line = 0;
    int col = 0;

    // text.substr(pos, len) as a token of its own, so that an error inside a word
    // ("flags=private,anom") can point at the part that is wrong ("anom").
    Token sub(size_t pos, size_t len = std::string_view::npos) const;
};

// The words of one line, read on demand.
class LineScanner {
public:
    LineScanner() = default;
    LineScanner(std::string_view text, int line);

    // The next word; false at the end of the line.
    bool next(Token& out);
    int line() const { return line_; }
    // True when the line starts with whitespace (an op under a thread).
    bool indented() const { return !text_.empty() && is_space(text_[0]); }
    // An empty token just past the last word read: where a missing word belongs.
    Token end() const;

private:
    std::string_view text_;
    size_t pos_ = 0;
    size_t last_end_ = 0;  // one past the last word returned by next()
    int line_ = 0;
};

// The lines of the input that carry words: blank lines and comment lines (first
// non-space character '#') are skipped.
class Lexer {
public:
    explicit Lexer(std::string_view text) : text_(text) {}

    // The next line with words; false at the end of the input.
    bool next_line(LineScanner& out);
    // The number of the last line read (0 before the first).
    int line() const { return line_; }

private:
    std::string_view text_;
    size_t pos_ = 0;
    int line_ = 0;
};

// The format's vocabulary, shared by the parser and the printer so that the two
// cannot drift apart.  Lists are in canonical print order.
template <class V>
struct Word {
    std::string_view name;
    V value;
};

// mmap flags after private|shared and anon|file:F:PGOFF.
inline constexpr std::array<Word<uint32_t>, 4> kMmapOptions{{
    {"fixed", MAPF_FIXED},
    {"fixed_noreplace", MAPF_FIXED_NOREPLACE},
    {"growsdown", MAPF_GROWSDOWN},
    {"populate", MAPF_POPULATE},
}};
inline constexpr std::array<Word<uint32_t>, 2> kMremapFlags{{
    {"maymove", MREMAPF_MAYMOVE},
    {"fixed", MREMAPF_FIXED},
}};
inline constexpr std::array<Word<uint32_t>, 3> kPinFlags{{
    {"write", GUPF_WRITE},
    {"longterm", GUPF_LONGTERM},
    {"fast", GUPF_FAST},
}};
inline constexpr std::array<Word<uint32_t>, 4> kGupFlags{{
    {"write", GUPF_WRITE},
    {"force", GUPF_FORCE},
    {"unlocked", GUPF_UNLOCKED},
    {"fast_only", GUPF_FAST_ONLY},
}};
inline constexpr std::array<Word<Advice>, 6> kAdvice{{
    {"dontneed", Advice::dontneed},
    {"pageout", Advice::pageout},
    {"hugepage", Advice::hugepage},
    {"nohugepage", Advice::nohugepage},
    {"collapse", Advice::collapse},
    {"cold", Advice::cold},
}};
inline constexpr std::array<Word<UffdMode>, 2> kUffdModes{{
    {"missing", UffdMode::missing},
    {"wp", UffdMode::wp},
}};
inline constexpr std::array<Word<Strategy>, 3> kStrategies{{
    {"classic", Strategy::classic},
    {"spf", Strategy::spf},
    {"pervma", Strategy::pervma},
}};
inline constexpr std::array<Word<Geometry>, 2> kGeometries{{
    {"small", Geometry::small},
    {"x86", Geometry::x86},
}};

// The name of `value` in `words`, or "?" for a value the format cannot express.
template <class V, size_t N>
std::string_view word_for(const std::array<Word<V>, N>& words, V value) {
    for (const auto& w : words)
        if (w.value == value) return w.name;
    return "?";
}

// An address as the format writes it: lowercase hex with 0x, no leading zeros.
std::string hex_address(uint64_t addr);

// Limits of the format (DESIGN §9): generous for real programs, small enough that a
// hostile file cannot make the model allocate without bound.
// kPageSize, kUserTop, kMaxPages and kMaxPctDepth are public (mmrace/ops.hpp).
using ::mmrace::kMaxPages;
using ::mmrace::kMaxPctDepth;
using ::mmrace::kPageSize;
using ::mmrace::kUserTop;
inline constexpr size_t kMaxThreads = 64;          // process threads and kthreads together
inline constexpr size_t kMaxOpsPerThread = 1u << 16;
inline constexpr size_t kMaxInputBytes = 16u << 20;

}  // namespace mmrace::mmr
