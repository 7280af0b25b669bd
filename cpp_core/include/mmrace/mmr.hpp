// The .mmr text format (DESIGN §9): parser and canonical printer.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "mmrace/program.hpp"

namespace mmrace {

// A malformed .mmr file.  what() is "FILE:LINE:COL: message", the text the CLI prints
// and the Python API raises as ValueError.
class ParseError : public std::runtime_error {
public:
    ParseError(std::string file, int line, int col, std::string message);
    const std::string& file() const { return file_; }
    int line() const { return line_; }
    int col() const { return col_; }
    const std::string& message() const { return message_; }

private:
    std::string file_;
    int line_, col_;
    std::string message_;
};

// Parses and validates a whole program.  Throws ParseError; never crashes or hangs on
// any input (random bytes included).
Program parse_mmr(std::string_view text, std::string_view filename = "<string>");

// The canonical text of a program: print_mmr(parse_mmr(print_mmr(p))) == print_mmr(p)
// and parse_mmr(print_mmr(p)) == p.
std::string print_mmr(const Program& p);

// The canonical text of one op, as it appears in a thread (without indentation).
std::string print_op(const Program& p, const Op& op);

// One schedule, in the grammar of the file's `schedule` line, with or without the word
// `schedule` in front: "replay 0 1 1", "schedule random seed=7", "pct seed=1 depth=3".
// The one schedule parser: the CLI's --schedule and Python's schedule= strings use it,
// so they take exactly what a result prints, with the file's messages and bounds.
// Throws ParseError ("SOURCE:1:COL: message").
Schedule parse_schedule(std::string_view text, std::string_view source = "<schedule>");

// The canonical `schedule ...` line of s (no newline); parse_schedule reads it back.
std::string schedule_text(const Schedule& s);

}  // namespace mmrace
