#include "harness.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "fuzz/interleave.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"

namespace mmrace::fuzz::harness {

namespace {

// The interleaving counters (fuzz/interleave.hpp).  libFuzzer reads this section after
// each input.  AFL++'s driver does not, so an AFL++ build turns each counter that is
// set into calls of one of kEdges distinct functions (feedback_edges.cpp): AFL++'s
// instrumentation counts those as edges, hit counts bucketed as for any edge.
constexpr size_t kCounters = 4096;
#if defined(MMRACE_FUZZ_LIBFUZZER)
__attribute__((used, section("__libfuzzer_extra_counters")))
#endif
uint8_t g_counters[kCounters];

Target g_target = Target::program;
Options g_options;
bool g_feedback = true;
InterleaveFeedback g_interleave(g_counters, kCounters);

std::vector<std::string> split_commas(const char* s) {
    std::vector<std::string> out;
    std::string cur;
    for (const char* p = s; ; ++p) {
        if (*p == ',' || *p == '\0') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
            if (*p == '\0') break;
        } else {
            cur += *p;
        }
    }
    return out;
}

[[noreturn]] void finding(const char* verdict, const char* check, const std::string& message, const std::string& mmr) {
    std::fprintf(stderr, "\n==mmrace== finding in fuzz_%s\nverdict: %s\ncheck: %s\nmessage: %s\n--- reproducer (.mmr) ---\n%s--- end ---\n",
                 target_name(g_target), verdict, check, message.c_str(), mmr.c_str());
    std::fflush(stderr);
    std::abort();
}

// The parser's target: never a crash, and what parses prints back to itself.
int run_parser(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    Program p;
    try {
        p = parse_mmr(text, "<fuzz input>");
    } catch (const ParseError&) {
        return 0;
    }
    std::string printed = print_mmr(p);
    try {
        if (!(parse_mmr(printed) == p) || print_mmr(parse_mmr(printed)) != printed)
            finding("round_trip", "format", "parse(print(p)) != p", printed);
    } catch (const ParseError& e) {
        finding("round_trip", "format", std::string("the canonical text does not parse: ") + e.what(), printed);
    }
    return 0;
}

}  // namespace

void report_edges(const uint8_t* counters, size_t n);  // feedback_edges.cpp

int init(Target target) {
    g_target = target;
    if (const char* m = std::getenv("MMRACE_MUTANTS")) g_options.mutants = split_commas(m);
    if (const char* c = std::getenv("MMRACE_FUZZ_COUNTERS")) g_feedback = std::strcmp(c, "0") != 0;
    try {
        check_options(target, g_options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_%s: MMRACE_MUTANTS: %s\n", target_name(target), e.what());
        std::exit(2);
    }
    return 0;
}

int run_one(const uint8_t* data, size_t size) {
    if (g_target == Target::mmr_parser) return run_parser(data, size);
    std::string_view in(reinterpret_cast<const char*>(data), size);
    Decoded d = decode(g_target, in, g_options);
    RunOptions ro;
    ro.trace = false;
    if (g_feedback) {
        std::memset(g_counters, 0, sizeof g_counters);
        g_interleave.begin_run();
        ro.record_sink = &g_interleave;
    }
    RunResult r;
    try {
        r = run_decoded(d, ro);
    } catch (const ModelError& e) {
        finding("model_error", "-", e.what(), replay_mmr(d.program, e.schedule()));
    } catch (const std::exception& e) {
        finding("exception", "-", e.what(), print_mmr(d.program));
    }
    if (g_feedback) {
        g_interleave.add_counters(r);
        report_edges(g_counters, kCounters);
    }
    if (!r.ok() && !programs_own_wait(r))
        finding(verdict_name(r.verdict), check_name(r.check), r.message, r.reproducer());
    return 0;
}

}  // namespace mmrace::fuzz::harness
