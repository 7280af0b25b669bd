// The fuzz targets' decoder and encoder (cpp_core/src/fuzz/, issue 17): total decoding,
// decode(encode(p)) == p, and inputs whose .mmr replays to the same run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/coder.hpp"
#include "fuzz/interleave.hpp"
#include "mmrace/fuzz.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "runtime/policy.hpp"

using namespace mmrace;
using namespace mmrace::fuzz;

namespace {

const Target kProgramTargets[] = {Target::program, Target::spf, Target::pervma, Target::gup};

// `len` bytes from SplitMix64(seed).
std::string random_bytes(uint64_t seed, size_t len) {
    rt::SplitMix64 rng(seed);
    std::string s(len, '\0');
    for (char& c : s) c = static_cast<char>(rng.next());
    return s;
}

// A random input whose program part is `prog` bytes long, the rest schedule.
std::string random_input(uint64_t seed, size_t prog, size_t sched) {
    std::string s = random_bytes(seed, 2 + prog + sched);
    s[0] = static_cast<char>(prog >> 8);
    s[1] = static_cast<char>(prog & 0xff);
    return s;
}

RunOptions brief() {
    RunOptions o;
    o.trace = false;
    o.budget = 50'000;
    return o;
}

std::vector<std::filesystem::path> reproducers() {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(std::string(MMRACE_SOURCE_DIR) + "/examples/mutants"))
        if (e.path().extension() == ".mmr") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

Program without_schedule(Program p) {
    p.schedule.reset();
    return p;
}

}  // namespace

TEST(Fuzz, AnyByteStringDecodesToAValidProgramInEveryTarget) {
    for (Target t : kProgramTargets)
        for (uint64_t seed = 0; seed < 150; ++seed) {
            std::string in = seed % 5 == 0 ? random_bytes(seed, seed % 40) : random_input(seed, seed % 300, 64);
            SCOPED_TRACE(std::string(target_name(t)) + " seed " + std::to_string(seed));
            Decoded d;
            ASSERT_NO_THROW(d = decode(t, in));
            EXPECT_EQ(parse_mmr(print_mmr(d.program)), d.program);
            EXPECT_NO_THROW(run_decoded(d, brief()));
        }
}

TEST(Fuzz, AMutationOfAScheduleByteLeavesTheProgramAlone) {
    std::string in = random_input(7, 40, 32);
    Program before = decode(Target::spf, in).program;
    in.back() ^= 0x5a;
    in[2 + 40] ^= 0x33;
    EXPECT_EQ(decode(Target::spf, in).program, before);
}

TEST(Fuzz, EncodeThenDecodeGivesTheProgramAndItsDecisionsBack) {
    for (Target t : kProgramTargets)
        for (uint64_t seed = 0; seed < 100; ++seed) {
            SCOPED_TRACE(std::string(target_name(t)) + " seed " + std::to_string(seed));
            Decoded d = decode(t, random_input(seed, 20 + seed % 200, 48));
            RunResult r = run_decoded(d, brief());
            std::vector<uint64_t> picks = parse_schedule(r.schedule).replay;
            std::string bytes;
            ASSERT_NO_THROW(bytes = encode(t, d.program, picks));
            Decoded back = decode(t, bytes);
            EXPECT_EQ(back.program, d.program);
            EXPECT_EQ(back.schedule, picks);
            RunResult again = run_decoded(back, brief());
            EXPECT_EQ(again.trace_hash, r.trace_hash);
            EXPECT_EQ(again.verdict, r.verdict);
        }
}

// Every catalogue reproducer is a `program` input: the same program, and the same run.
TEST(Fuzz, TheProgramTargetEncodesEveryCatalogueReproducer) {
    for (const auto& path : reproducers()) {
        SCOPED_TRACE(path.filename().string());
        Program p = parse_mmr(slurp(path));
        RunOptions ro;
        ro.trace = false;
        RunResult want = run_program(p, ro);
        std::string bytes = encode(Target::program, p);
        Decoded d = decode(Target::program, bytes, Options{p.config.mutants});
        EXPECT_EQ(d.program, without_schedule(p));
        RunResult got = run_decoded(d, ro);
        EXPECT_EQ(got.verdict, want.verdict);
        EXPECT_EQ(got.check, want.check);
        EXPECT_EQ(got.trace_hash, want.trace_hash);
        EXPECT_NE(got.verdict, Verdict::ok);  // the reproducer still finds its mutant
        // Without the mutant the same bytes are the same program: seeds mean one thing.
        Program plain = without_schedule(p);
        plain.config.mutants.clear();
        EXPECT_EQ(decode(Target::program, bytes).program, plain);
    }
}

// to_mmr's text runs to the verdict, check and trace hash the input ran to.
TEST(Fuzz, ToMmrReplaysTheInputsRun) {
    for (Target t : kProgramTargets)
        for (uint64_t seed = 0; seed < 40; ++seed) {
            SCOPED_TRACE(std::string(target_name(t)) + " seed " + std::to_string(seed));
            std::string in = random_input(seed, 30 + seed, 80);
            RunOptions ro;
            ro.trace = false;
            RunResult direct = run_decoded(decode(t, in), ro);
            RunResult replay = run_program(parse_mmr(to_mmr(t, in)), ro);
            EXPECT_EQ(replay.trace_hash, direct.trace_hash);
            EXPECT_EQ(replay.verdict, direct.verdict);
            EXPECT_EQ(replay.check, direct.check);
        }
}

TEST(Fuzz, AProgramATargetCannotExpressIsAnErrorNamingWhat) {
    Program p = parse_mmr("mmrace 1\nconfig strategy=spf\nprocess P0\nthread P0.T0\n"
                          "  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed\n  uffd_serve 1 value=7\n"
                          "thread P0.T1\n  read 0x100000\n");
    try {
        encode(Target::spf, p, {});
        FAIL() << "encoded";
    } catch (const EncodeError& e) {
        EXPECT_NE(std::string(e.what()).find("P0.T0 op 0 must be `mmap 0x200000 pages=16"), std::string::npos) << e.what();
    }
    Program many = parse_mmr("mmrace 1\nprocess P0\nthread P0.T0\n  exit\nthread P0.T1\n  exit\nthread P0.T2\n  exit\n"
                             "thread P0.T3\n  exit\nthread P0.T4\n  exit\n");
    try {
        encode(Target::program, many, {});
        FAIL() << "encoded";
    } catch (const EncodeError& e) {
        EXPECT_NE(std::string(e.what()).find("threads of a process 4 is over the target's bound 3"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(encode(Target::program, p, {300}), EncodeError);
}

TEST(Fuzz, UnknownTargetsAndMutantsAreErrorsNamingThem) {
    try {
        parse_target("spff");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("'spff'"), std::string::npos);
    }
    EXPECT_THROW(check_options(Target::spf, Options{{"no_such_mutant"}}), std::invalid_argument);
    EXPECT_THROW(check_options(Target::spf, Options{{"pervma_fork_no_vma_write_lock"}}), std::invalid_argument);
    EXPECT_NO_THROW(check_options(Target::pervma, Options{{"pervma_fork_no_vma_write_lock"}}));
    EXPECT_THROW(to_mmr(Target::spf, "abc", Options{{"no_such_mutant"}}), std::invalid_argument);
}

TEST(Fuzz, TheParserTargetRoundTripsTextAndRejectsGarbage) {
    std::string text = slurp(reproducers().front());
    EXPECT_EQ(parse_mmr(to_mmr(Target::mmr_parser, text)), parse_mmr(text));
    EXPECT_THROW(decode(Target::mmr_parser, "\x01\x02garbage"), ParseError);
}

// The feedback hashes into the map it is given, and only when a run switches threads
// around one object or contends a lock.
TEST(Fuzz, InterleaveFeedbackCountsContendedLocksAndAliasSwitches) {
    std::vector<uint8_t> map(4096);
    InterleaveFeedback fb(map.data(), map.size());
    uint64_t hits_serial = 0, hits_racy = 0;
    for (uint64_t seed = 0; seed < 30; ++seed) {
        Decoded d = decode(Target::spf, random_input(seed, 40, 0));
        RunOptions ro;
        ro.trace = false;
        ro.record_sink = &fb;
        std::fill(map.begin(), map.end(), 0);
        fb.begin_run();
        run_decoded(d, ro);  // no schedule bytes: threads run one after another
        for (uint8_t c : map) hits_serial += c;
        d.schedule.assign(400, 0);
        for (size_t i = 0; i < d.schedule.size(); ++i) d.schedule[i] = (seed * 7 + i * 13) % 5;
        std::fill(map.begin(), map.end(), 0);
        fb.begin_run();
        RunResult r = run_decoded(d, ro);
        fb.add_counters(r);
        for (uint8_t c : map) hits_racy += c;
    }
    EXPECT_GT(hits_racy, hits_serial);
    EXPECT_GT(hits_racy, 0u);
}

// A program that waits for good on a userfault nobody serves deadlocks on its own, as on
// Linux: not a finding, and neither is a kthread stuck behind it (cpu_hotplug draining
// the s_active that the faulting sysfs write holds: AFL++ on fuzz_program found this).
TEST(Fuzz, AProgramsOwnUserfaultWaitIsNotAFinding) {
    const std::string prog =
        "mmrace 1\nprocess P0\nthread P0.T0\n"
        "  mmap 0x200000 pages=8 prot=rw flags=private,anon,fixed\n"
        "  uffd_register 0x200000 pages=1 mode=missing\n";
    RunResult own = run_program(parse_mmr(prog + "  read 0x200000\n"));
    ASSERT_EQ(own.verdict, Verdict::deadlock) << own.message;
    EXPECT_TRUE(programs_own_wait(own)) << own.message;

    // Schedule seed 7 lets the write fault first; cpuhp then waits on s_active.
    RunResult behind = run_program(parse_mmr(
        prog + "  sysfs_write 0x200000\nkthread cpuhp\n  cpu_hotplug\nschedule random seed=7\n"));
    ASSERT_EQ(behind.verdict, Verdict::deadlock) << behind.message;
    ASSERT_NE(behind.message.find("cpuhp on s_active"), std::string::npos) << behind.message;
    EXPECT_TRUE(programs_own_wait(behind)) << behind.message;

    RunResult ok;
    EXPECT_FALSE(programs_own_wait(ok));
}
