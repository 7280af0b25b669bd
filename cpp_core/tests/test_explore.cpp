// The explore loop (include/mmrace/explore.hpp): seeds and families, PCT's learned
// step bound, failures that replay, and the limits that stop it.
#include <gtest/gtest.h>

#include <stdexcept>
#include <utility>
#include <vector>

#include "mmrace/explore.hpp"
#include "mmrace/mmr.hpp"
#include "program/generate/workload.hpp"

namespace mmrace {
namespace {

// Two threads racing a fault against mprotect (test_strategies' race_body).
constexpr const char* kRace = R"(process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  read 0x101000
thread P0.T1
  read 0x100000
  mprotect 0x100000 pages=8 prot=r
  read 0x102000
)";

std::string with_config(const std::string& config) { return "mmrace 1\nconfig " + config + "\n" + kRace; }

TEST(Explore, RunsEachSeedUnderEachFamilyInTurn) {
    Program p = parse_mmr(with_config("strategy=spf"));
    ExploreOptions o;
    o.policies = {Schedule::Kind::random, Schedule::Kind::pct};
    o.first_seed = 5;
    o.max_runs = 5;
    std::vector<uint64_t> seeds;
    o.on_run = [&](uint64_t seed, const Program&, const RunResult&) { seeds.push_back(seed); };
    ExploreResult r = explore(p, o);
    EXPECT_EQ(r.runs, 5u);
    EXPECT_EQ(r.verdicts[Verdict::ok], 5u);
    EXPECT_EQ(r.not_ok(), 0u);
    EXPECT_EQ(r.stopped, ExploreResult::Stop::done);
    EXPECT_EQ(seeds, (std::vector<uint64_t>{5, 5, 6, 6, 7}));
}

// A run of seed s under random (or PCT) is the run that schedule gives by hand.
TEST(Explore, ARunIsTheRunItsScheduleGivesByHand) {
    Program p = parse_mmr(with_config("strategy=pervma"));
    ExploreOptions o;
    o.policies = {Schedule::Kind::random, Schedule::Kind::pct};
    o.first_seed = 3;
    o.max_runs = 2;
    o.pct_steps = 40;
    std::vector<uint64_t> hashes;
    o.on_run = [&](uint64_t, const Program&, const RunResult& r) { hashes.push_back(r.trace_hash); };
    explore(p, o);
    RunOptions ro;
    ro.schedule = parse_schedule("random seed=3");
    EXPECT_EQ(run_program(p, ro).trace_hash, hashes.at(0));
    ro.schedule = parse_schedule("pct seed=3 depth=3 steps=40");
    EXPECT_EQ(run_program(p, ro).trace_hash, hashes.at(1));
}

// With no bound given, PCT's is the length of a run that lets each thread run on, and
// grows when a PCT run is longer; a given bound stays.
TEST(Explore, LearnsPctsStepBoundFromAFirstRun) {
    Program p = parse_mmr(with_config("strategy=classic"));
    RunOptions ro;
    ro.schedule = Schedule{};
    RunResult first = run_program(p, ro);
    size_t decisions = 0;
    for (char c : first.schedule) decisions += c == ' ';
    decisions -= 1;  // "schedule replay d0 d1 ...": one space before each decision, one after "schedule"
    ASSERT_GT(decisions, 0u);

    ExploreOptions o;
    o.policies = {Schedule::Kind::pct};
    o.max_runs = 1;
    ExploreResult one = explore(p, o);
    EXPECT_EQ(one.pct_steps, decisions);

    o.max_runs = 50;
    uint64_t longest = 0;
    o.on_run = [&](uint64_t, const Program&, const RunResult& r) {
        uint64_t d = 0;
        for (char c : r.schedule) d += c == ' ';
        longest = std::max(longest, d - 1);
    };
    ExploreResult many = explore(p, o);
    EXPECT_EQ(many.pct_steps, std::max<uint64_t>(decisions, longest));

    o.pct_steps = 7;
    EXPECT_EQ(explore(p, o).pct_steps, 7u);
}

// spf_no_seqcount_check: a speculative fault installs a writable PTE after mprotect
// made the VMA read-only.  The failure comes back with a reproducer that replays it.
TEST(Explore, AFailureComesBackWithAReproducerThatReplaysIt) {
    Program p = parse_mmr(with_config("strategy=spf mutants=spf_no_seqcount_check"));
    ExploreOptions o;
    o.policies = {Schedule::Kind::random, Schedule::Kind::pct};
    o.max_runs = 2000;
    o.stop_at_first_failure = true;
    ExploreResult r = explore(p, o);
    ASSERT_EQ(r.stopped, ExploreResult::Stop::failure);
    ASSERT_EQ(r.failures.size(), 1u);
    EXPECT_EQ(r.not_ok(), 1u);
    const ExploreFailure& f = r.failures[0];
    EXPECT_EQ(f.result.verdict, Verdict::violation);
    EXPECT_EQ(f.result.check, Check::invariant);
    RunResult again = run_program(parse_mmr(f.reproducer()));
    EXPECT_EQ(again.verdict, f.result.verdict);
    EXPECT_EQ(again.message, f.result.message);
    RunOptions ro;
    ro.schedule = f.schedule;
    EXPECT_EQ(run_program(p, ro).trace_hash, again.trace_hash);
}

TEST(Explore, KeepsTheFirstFailuresAndCountsTheRest) {
    Program p = parse_mmr(with_config("strategy=spf mutants=spf_no_seqcount_check"));
    ExploreOptions o;
    o.policies = {Schedule::Kind::random, Schedule::Kind::pct};
    o.max_runs = 1000;
    o.keep_failures = 2;
    ExploreResult r = explore(p, o);
    EXPECT_EQ(r.runs, 1000u);
    ASSERT_GT(r.not_ok(), 2u);
    EXPECT_EQ(r.failures.size(), 2u);
    EXPECT_EQ(r.verdicts[Verdict::ok] + r.verdicts[Verdict::violation], 1000u);
    EXPECT_LE(r.failures[0].seed, r.failures[1].seed);
}

TEST(Explore, ReplayListsRunFirstOnTheFirstSeedsProgram) {
    Program p = parse_mmr(with_config("strategy=classic"));
    ExploreOptions o;
    o.policies = {};
    o.replays = {{0, 1, 1}, {1}};
    std::vector<std::string> schedules;
    o.on_run = [&](uint64_t, const Program&, const RunResult& r) { schedules.push_back(r.schedule); };
    ExploreResult r = explore(p, o);
    EXPECT_EQ(r.runs, 2u);
    ASSERT_EQ(schedules.size(), 2u);
    EXPECT_EQ(schedules[0].rfind("schedule replay 0 1 1", 0), 0u) << schedules[0];
    EXPECT_EQ(schedules[1].rfind("schedule replay 1", 0), 0u) << schedules[1];
}

TEST(Explore, AGeneratorGivesEachSeedItsProgram) {
    ExploreOptions o;
    o.policies = {Schedule::Kind::random};
    o.first_seed = 40;
    o.max_runs = 3;
    std::vector<std::string> texts;
    o.on_run = [&](uint64_t seed, const Program& p, const RunResult&) {
        EXPECT_EQ(p, parse_mmr(random_workload(seed)));
        texts.push_back(print_mmr(p));
    };
    ExploreResult r = explore([](uint64_t seed) { return parse_mmr(random_workload(seed)); }, o);
    EXPECT_EQ(r.runs, 3u);
    ASSERT_EQ(texts.size(), 3u);
    EXPECT_NE(texts[0], texts[1]);
}

// Generated programs each get a PCT bound measured on themselves: seed 45's PCT run is
// the same whether the exploration starts at it or five seeds earlier.
TEST(Explore, APctRunOfAGeneratedProgramDependsOnlyOnItsSeed) {
    auto source = [](uint64_t seed) { return parse_mmr(random_workload(seed)); };
    auto run_of_45 = [&](uint64_t first) {
        ExploreOptions o;
        o.policies = {Schedule::Kind::pct};
        o.first_seed = first;
        o.max_runs = 46 - first;
        std::string schedule;
        o.on_run = [&](uint64_t seed, const Program&, const RunResult& r) {
            if (seed == 45) schedule = r.schedule;
        };
        explore(source, o);
        return schedule;
    };
    std::string alone = run_of_45(45);
    ASSERT_FALSE(alone.empty());
    EXPECT_EQ(run_of_45(40), alone);
}

// An interrupt stops the loop; the run it cut short is not counted.
TEST(Explore, AnInterruptStopsItAndItsRunIsNotCounted) {
    Program p = parse_mmr(with_config("strategy=classic"));
    ExploreOptions o;
    o.max_runs = 100;
    uint64_t counted = 0;
    o.on_run = [&counted](uint64_t, const Program&, const RunResult&) { ++counted; };
    o.interrupted = [&counted] { return counted >= 3; };
    ExploreResult r = explore(p, o);
    EXPECT_EQ(r.stopped, ExploreResult::Stop::interrupted);
    EXPECT_EQ(r.runs, 3u);
    EXPECT_EQ(r.verdicts.count(Verdict::interrupted), 0u);
}

TEST(Explore, StopsAtItsTimeLimitAndReportsProgress) {
    Program p = parse_mmr(with_config("strategy=classic"));
    ExploreOptions o;
    o.max_runs = 1'000'000;
    o.max_seconds = 1e-9;
    std::vector<uint64_t> progress;
    o.progress = [&](const ExploreResult& r) { progress.push_back(r.runs); };
    ExploreResult r = explore(p, o);
    EXPECT_EQ(r.stopped, ExploreResult::Stop::time);
    EXPECT_EQ(r.runs, 1u);
    EXPECT_EQ(progress, (std::vector<uint64_t>{1}));  // the final call
    EXPECT_GT(r.runs_per_second(), 0.0);
}

TEST(Explore, RejectsReplayAsAFamilyAndAnEmptyPlan) {
    Program p = parse_mmr(with_config("strategy=classic"));
    ExploreOptions o;
    o.policies = {Schedule::Kind::replay};
    EXPECT_THROW(explore(p, o), std::invalid_argument);
    o.policies = {};
    EXPECT_THROW(explore(p, o), std::invalid_argument);
}

}  // namespace
}  // namespace mmrace
