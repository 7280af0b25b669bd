// The fuzz targets' entry points (mmrace/fuzz.hpp): the input layout, decode, encode,
// and the way from an input to its .mmr reproducer.
#include <algorithm>
#include <stdexcept>

#include "fuzz/shapes.hpp"
#include "mmrace/fuzz.hpp"
#include "mmrace/mmr.hpp"
#include "mutants/catalogue.hpp"

namespace mmrace::fuzz {

namespace {

constexpr size_t kHeader = 2;             // the program part's length, big-endian
constexpr size_t kMaxProgramBytes = 0xffff;

struct Parts {
    std::string_view program, schedule;
};

// Inputs shorter than the header are all schedule (an empty program part).
Parts split(std::string_view in) {
    if (in.size() < kHeader) return {{}, in};
    size_t len = static_cast<uint8_t>(in[0]) << 8 | static_cast<uint8_t>(in[1]);
    len = std::min(len, in.size() - kHeader);
    return {in.substr(kHeader, len), in.substr(kHeader + len)};
}

void code(Target t, Coder& c, Program& p, const Options& o) {
    switch (t) {
        case Target::program: return code_program(c, p, o);
        case Target::spf: return code_window(c, p, o, Strategy::spf);
        case Target::pervma: return code_window(c, p, o, Strategy::pervma);
        case Target::gup: return code_gup(c, p, o);
        case Target::mmr_parser: break;
    }
    throw std::logic_error("mmrace: fuzz target without a program shape");
}

}  // namespace

const std::vector<std::string>& target_names() {
    static const std::vector<std::string> names = {"program", "spf", "pervma", "gup", "mmr_parser"};
    return names;
}

const char* target_name(Target t) { return target_names()[static_cast<size_t>(t)].c_str(); }

Target parse_target(std::string_view name) {
    const auto& names = target_names();
    for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == name) return static_cast<Target>(i);
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown fuzz target '" + std::string(name) + "' (targets: " + known + ")");
}

void check_options(Target t, const Options& o) {
    for (const auto& name : o.mutants) {
        const MutantInfo* m = find_mutant(name);
        if (!m) throw std::invalid_argument("unknown mutant '" + name + "'");
        if (!m->built) throw std::invalid_argument("mutant '" + name + "' is not built yet");
    }
    if (t == Target::mmr_parser) return;
    auto allowed = strategies_for(o.mutants);
    auto has = [&](Strategy s) { return std::find(allowed.begin(), allowed.end(), s) != allowed.end(); };
    bool ok = t == Target::spf ? has(Strategy::spf) : t == Target::pervma ? has(Strategy::pervma) : !allowed.empty();
    if (!ok) {
        std::string names;
        for (const auto& n : o.mutants) names += (names.empty() ? "" : ",") + n;
        throw std::invalid_argument("mutants " + names + " apply to no strategy the " + target_name(t) +
                                    " target runs");
    }
}

Decoded decode(Target t, std::string_view bytes, const Options& o) {
    Decoded d;
    if (t == Target::mmr_parser) {
        d.program = parse_mmr(bytes, "<fuzz input>");
        return d;
    }
    Parts parts = split(bytes);
    DecodeCoder c(parts.program);
    code(t, c, d.program, o);
    d.schedule.assign(parts.schedule.begin(), parts.schedule.end());
    for (auto& v : d.schedule) v &= 0xff;  // chars are signed
    return d;
}

std::string encode(Target t, const Program& program, const std::vector<uint64_t>& decisions) {
    if (t == Target::mmr_parser) return print_mmr(program);
    Options o{program.config.mutants};
    check_options(t, o);
    Program p = program;
    p.schedule.reset();
    EncodeCoder c;
    code(t, c, p, o);
    const std::string& prog = c.bytes();
    if (prog.size() > kMaxProgramBytes)
        throw EncodeError("the program takes " + std::to_string(prog.size()) + " bytes; the input's length prefix holds " +
                          std::to_string(kMaxProgramBytes));
    std::string out;
    out += static_cast<char>(prog.size() >> 8);
    out += static_cast<char>(prog.size() & 0xff);
    out += prog;
    for (size_t i = 0; i < decisions.size(); ++i) {
        if (decisions[i] > 0xff)
            throw EncodeError("decision " + std::to_string(i) + " picks option " + std::to_string(decisions[i]) +
                              "; a schedule byte holds at most 255");
        out += static_cast<char>(decisions[i]);
    }
    // One walk codes both ways, so this holds; checked so that a drift is an error, not
    // a corpus file that means something else.
    Decoded back = decode(t, out, o);
    if (!(back.program == p))
        throw std::logic_error("mmrace: fuzz encoder and decoder disagree on the " + std::string(target_name(t)) +
                               " target's program:\n" + print_mmr(p) + "---\n" + print_mmr(back.program));
    return out;
}

std::string encode(Target t, const Program& program) {
    if (t == Target::mmr_parser) return print_mmr(program);
    RunOptions ro;
    ro.trace = false;
    RunResult r = run_program(program, ro);
    return encode(t, program, parse_schedule(r.schedule).replay);
}

RunResult run_decoded(const Decoded& d, RunOptions base) {
    Schedule s;
    s.kind = Schedule::Kind::replay;
    s.replay = d.schedule;
    base.schedule = std::move(s);
    return run_program(d.program, base);
}

std::string to_mmr(Target t, std::string_view bytes, const Options& o) {
    if (t == Target::mmr_parser) return print_mmr(parse_mmr(bytes, "<fuzz input>"));
    check_options(t, o);
    RunOptions ro;
    ro.trace = false;
    return run_decoded(decode(t, bytes, o), ro).reproducer();
}

}  // namespace mmrace::fuzz
