#include "program/mmr_lexer.hpp"

namespace mmrace::mmr {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

Token Token::sub(size_t pos, size_t len) const {
    if (pos > text.size()) pos = text.size();
    return Token{text.substr(pos, len), line, col + static_cast<int>(pos)};
}

LineScanner::LineScanner(std::string_view text, int line) : text_(text), line_(line) {}

bool LineScanner::next(Token& out) {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
    if (pos_ == text_.size()) return false;
    size_t start = pos_;
    while (pos_ < text_.size() && !is_space(text_[pos_])) ++pos_;
    out = Token{text_.substr(start, pos_ - start), line_, static_cast<int>(start) + 1};
    last_end_ = pos_;
    return true;
}

Token LineScanner::end() const {
    return Token{std::string_view{}, line_, static_cast<int>(last_end_) + 1};
}

bool Lexer::next_line(LineScanner& out) {
    while (pos_ < text_.size()) {
        size_t nl = text_.find('\n', pos_);
        if (nl == std::string_view::npos) nl = text_.size();
        std::string_view line = text_.substr(pos_, nl - pos_);
        pos_ = nl + (nl < text_.size() ? 1 : 0);
        ++line_;
        size_t first = 0;
        while (first < line.size() && is_space(line[first])) ++first;
        if (first == line.size() || line[first] == '#') continue;
        out = LineScanner(line, line_);
        return true;
    }
    return false;
}

std::string hex_address(uint64_t addr) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string digits;
    do {
        digits.insert(digits.begin(), kDigits[addr & 0xf]);
        addr >>= 4;
    } while (addr);
    return "0x" + digits;
}

}  // namespace mmrace::mmr
