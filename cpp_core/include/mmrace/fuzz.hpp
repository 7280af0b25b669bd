// The fuzz targets (issue 17, DESIGN §9 "the byte decoder"): what a fuzzer's input
// means, and the way back from a program to an input.
//
//   program   any program of the format's ops, within the decoder's bounds
//   spf       a fixed shape around the speculative fault: threads fault in a 16-page
//             window while one thread mprotects, munmaps, mremaps, forks, collapses
//   pervma    the same shape under per-VMA locks
//   gup       pins, get_user_pages, /proc/pid/mem, fork and COW over a few pages
//   mmr_parser  the input is .mmr text (the parser's robustness)
//
// Layout of an input to a program target (docs/fuzzing.md): two bytes, big-endian, give
// the length L of the program part; the next L bytes are the program's choices; every
// byte after them is one scheduling decision (replay's rule: option byte % count).  A
// mutation of a schedule byte never changes the program.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mmrace/program.hpp"
#include "mmrace/run.hpp"

namespace mmrace::fuzz {

enum class Target : uint8_t { program, spf, pervma, gup, mmr_parser };

// The targets' names, in Target's order.
const std::vector<std::string>& target_names();
// The target named `name`; std::invalid_argument naming it and the known ones.
Target parse_target(std::string_view name);
const char* target_name(Target t);

struct Options {
    std::vector<std::string> mutants;  // switched on in every decoded program
};

// Throws std::invalid_argument naming a mutant that is unknown, not built, or (for a
// program target) applies to none of the strategies the target can draw.
void check_options(Target t, const Options& o);

struct Decoded {
    Program program;                 // no schedule line: the input's bytes are the schedule
    std::vector<uint64_t> schedule;  // one entry per decision; past its end, the default pick
};

// Total for the program targets: every byte string decodes to a valid program within the
// target's bounds (never throws, given options that check_options accepts).  For
// mmr_parser the bytes are parsed as .mmr (ParseError).
Decoded decode(Target t, std::string_view bytes, const Options& o = {});

// An input that decodes to `program` (its config's mutants are the options to decode
// with) and makes the same scheduling decisions as `decisions`.  EncodeError naming
// the op or field the target cannot express, or the bound it is over.
std::string encode(Target t, const Program& program, const std::vector<uint64_t>& decisions);
// As above with the decisions of one run of `program` under its own schedule line.
std::string encode(Target t, const Program& program);

// Runs a decoded input once (no trace kept unless `base` asks for one).
RunResult run_decoded(const Decoded& d, RunOptions base = {});

// Whether a run's failure is the program's own (RunResult::user_wait): a deadlock in
// which every blocked thread waits, itself or through the holders of the locks it waits
// for, on a userfault (or a fork's or mremap's uffd event) that no thread of the program
// serves, as a program on Linux hangs for good.  Such a run is not a finding.  A wait-for
// cycle, or a thread stuck on a lock whose holder is not, still is; and a userfault wait
// under mmap_lock or a VMA lock fails a lockdep assert before it can hang.
inline bool programs_own_wait(const RunResult& r) {
    return r.verdict == Verdict::deadlock && r.user_wait;
}

// Decodes, runs once, and returns the .mmr reproducer with a `schedule replay` line of
// the picks actually made: running it gives the input's verdict, check and trace hash.
// For mmr_parser, the canonical text of the parsed program (ParseError if it is none).
std::string to_mmr(Target t, std::string_view bytes, const Options& o = {});

}  // namespace mmrace::fuzz
