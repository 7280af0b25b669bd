// A run's reproducer (RunResult::reproducer) replays it on its own, for every verdict;
// verdicts and checks are typed and named by one registry (MMRACE_CHECKS).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mutants/catalogue.hpp"
#include "test_util.hpp"

namespace mmrace::testing {
namespace {

std::string example(const std::string& rel) {
    std::ifstream f(std::string(MMRACE_SOURCE_DIR) + "/examples/" + rel);
    std::stringstream ss;
    ss << f.rdbuf();
    EXPECT_FALSE(ss.str().empty()) << rel;
    return ss.str();
}

// A userfault no handler serves: the program's own deadlock.
const char* kDeadlock = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  uffd_register 0x100000 pages=1 mode=missing
  read 0x100000
)";

// Runs the reproducer text with no options: same verdict, check, step and trace hash.
void expect_replays(const RunResult& r, const std::string& what) {
    std::string text = r.reproducer();
    ASSERT_FALSE(text.empty()) << what;
    RunResult again = run_program(parse_mmr(text, what));
    EXPECT_EQ(again.verdict, r.verdict) << what << "\n" << text;
    EXPECT_EQ(again.check, r.check) << what;
    EXPECT_EQ(again.step, r.step) << what;
    EXPECT_EQ(again.trace_hash, r.trace_hash) << what << "\n" << text;
    EXPECT_EQ(again.reproducer(), text) << what;  // a fixed point
}

TEST(Reproducer, ReplaysAnOkRunUnderARandomSchedule) {
    RunOptions o;
    o.schedule = parse_schedule("random seed=3");
    RunResult r = run_program(parse_mmr(example("fork_cow.mmr")), o);
    ASSERT_EQ(r.verdict, Verdict::ok) << r.message;
    expect_replays(r, "fork_cow random seed=3");
}

TEST(Reproducer, ReplaysEveryMutantsViolationWithTheCatalogueCheck) {
    size_t violations = 0;
    for (const MutantInfo& m : mutant_catalogue()) {
        if (!m.built) continue;
        RunResult r = run_program(parse_mmr(example("mutants/" + std::string(m.name) + ".mmr")));
        EXPECT_EQ(r.check, m.check) << m.name << ": " << r.message;
        EXPECT_EQ(r.verdict, check_verdict(m.check)) << m.name;
        violations += r.verdict == Verdict::violation;
        expect_replays(r, m.name);
    }
    EXPECT_GE(violations, 10u);
}

TEST(Reproducer, ReplaysADeadlock) {
    RunResult r = run_text(kDeadlock);
    ASSERT_EQ(r.verdict, Verdict::deadlock);
    EXPECT_EQ(r.check, Check::deadlock);
    expect_replays(r, "deadlock");
}

TEST(Reproducer, CarriesABudgetThatIsNotTheDefault) {
    Program p = parse_mmr(example("fork_cow.mmr"));
    for (const char* sched : {"replay", "pct seed=4 depth=2"}) {
        RunOptions o;
        o.budget = 25;
        o.schedule = parse_schedule(sched);
        RunResult r = run_program(p, o);
        ASSERT_EQ(r.verdict, Verdict::budget) << sched;
        EXPECT_EQ(r.check, Check::budget);
        EXPECT_EQ(r.budget, 25u);
        EXPECT_NE(r.reproducer().find(" budget=25"), std::string::npos) << r.reproducer();
        expect_replays(r, sched);
    }
    // The default budget is left out; an ok run's reproducer is the program plus its schedule.
    RunResult ok = run_program(p);
    EXPECT_EQ(ok.budget, kDefaultBudget);
    EXPECT_EQ(ok.reproducer().find("budget="), std::string::npos);
    EXPECT_EQ(ok.reproducer(), replay_mmr(p, ok.schedule));
}

TEST(Reproducer, TheProgramsBudgetIsTheRunsUnlessTheOptionsOverrideIt) {
    Program p = parse_mmr(example("fork_cow.mmr"));
    p.config.budget = 10;
    RunResult small = run_program(p);
    EXPECT_EQ(small.verdict, Verdict::budget);
    EXPECT_EQ(small.step, 11u);
    RunOptions o;
    o.budget = kDefaultBudget;
    EXPECT_EQ(run_program(p, o).verdict, Verdict::ok);
    EXPECT_EQ(parse_mmr(print_mmr(p)), p);
    EXPECT_THROW(parse_mmr("mmrace 1\nconfig budget=0\n"), ParseError);
}

TEST(Checks, EveryCheckHasANameADescriptionAndAVerdict) {
    for (const CheckInfo& c : kChecks) {
        EXPECT_EQ(find_check(c.name), c.check) << c.name;
        EXPECT_STREQ(check_name(c.check), c.name);
        EXPECT_EQ(check_verdict(c.check), c.verdict) << c.name;
        EXPECT_NE(c.verdict, Verdict::ok) << c.name;
        EXPECT_GT(std::string_view(c.description).size(), 10u) << c.name;
    }
    EXPECT_STREQ(check_name(Check::none), "");
    EXPECT_EQ(find_check(""), std::nullopt);
    EXPECT_EQ(find_check("uaf"), std::nullopt);  // the catalogue's old vocabulary is gone
    EXPECT_EQ(check_verdict(Check::lockdep), Verdict::lock_order);
    for (Verdict v : kVerdicts) EXPECT_EQ(find_verdict(verdict_name(v)), v);
}

}  // namespace
}  // namespace mmrace::testing
