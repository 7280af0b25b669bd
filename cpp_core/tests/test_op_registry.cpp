// The op registry (mmrace/ops.hpp): OpKind, op_name, the parser's grammar, the
// printer and the executor's dispatch all follow its rows.
#include <gtest/gtest.h>

#include <string>

#include "mmrace/mmr.hpp"
#include "mmrace/ops.hpp"
#include "mmrace/run.hpp"

using namespace mmrace;

namespace {

// The message of parsing `text`, or "" when it parses.
std::string parse_error(const std::string& text) {
    try {
        parse_mmr(text);
    } catch (const ParseError& e) {
        return e.message();
    }
    return "";
}

// A program whose only thread (a process thread, or a kthread for a kthread op) runs
// `line`.
std::string one_op(const OpSpec& spec, const std::string& line) {
    if (spec.kthread) return "mmrace 1\nprocess P0\nthread P0.T0\n  exit\nkthread K0\n  " + line + "\n";
    return "mmrace 1\nprocess P0\nthread P0.T0\n  " + line + "\n";
}

}  // namespace

TEST(OpRegistry, RowsAreInOpKindOrderAndNamedByOpName) {
    for (size_t i = 0; i < std::size(kOpSpecs); ++i) {
        const OpSpec& spec = kOpSpecs[i];
        EXPECT_EQ(static_cast<size_t>(spec.kind), i) << spec.name;
        EXPECT_EQ(std::string(op_name(spec.kind)), spec.name);
        EXPECT_EQ(find_op(spec.name), &spec);
    }
    EXPECT_EQ(find_op("mmapp"), nullptr);
    EXPECT_EQ(std::string(op_name(OpKind::cpu_hotplug)), "cpu_hotplug");
    EXPECT_TRUE(op_spec(OpKind::reclaim).kthread);
    EXPECT_FALSE(op_spec(OpKind::madvise).kthread);
}

// An unknown key's message lists the keys of the op's row, in the row's order: the
// parser's grammar is the registry's.
TEST(OpRegistry, TheParserTakesExactlyTheKeysOfEachRow) {
    for (const OpSpec& spec : kOpSpecs) {
        std::string expected;
        for (ArgKind a : spec.args)
            if (!arg_spec(a).key.empty())
                expected += (expected.empty() ? "" : ", ") + std::string(arg_spec(a).key) + "=";
        std::string msg = parse_error(one_op(spec, std::string(spec.name) + " zzz=1"));
        std::string want = "unknown argument 'zzz=' for " + std::string(spec.name);
        if (!expected.empty()) want += " (expected " + expected + ")";
        EXPECT_EQ(msg, want);
    }
}

// One more positional word than the row has is refused, naming that word (the words
// are counted before any is read).
TEST(OpRegistry, TheParserTakesExactlyThePositionalWordsOfEachRow) {
    for (const OpSpec& spec : kOpSpecs) {
        size_t positionals = 0;
        for (ArgKind a : spec.args) positionals += arg_spec(a).key.empty();
        std::string line(spec.name);
        for (size_t i = 0; i <= positionals; ++i) line += " w" + std::to_string(i);
        EXPECT_EQ(parse_error(one_op(spec, line)),
                  "unexpected argument 'w" + std::to_string(positionals) + "' for " + std::string(spec.name));
    }
}

// Every row is built and runs through the dispatch; the two ops the oracle does not
// model are the ones whose effects it cannot follow.
TEST(OpRegistry, EveryRowIsBuiltAndOnlySysfsAndHotplugAreNotModelled) {
    for (const OpSpec& spec : kOpSpecs) {
        EXPECT_TRUE(spec.built) << spec.name;
        bool unmodelled = spec.kind == OpKind::sysfs_write || spec.kind == OpKind::cpu_hotplug;
        EXPECT_EQ(spec.modelled, !unmodelled) << spec.name;
    }
}

TEST(OpRegistry, ArgumentWordsComeFromTheFormatsVocabulary) {
    auto words = [](ArgKind k) {
        std::string s;
        for (auto w : arg_words(k)) s += std::string(w) + " ";
        return s;
    };
    EXPECT_EQ(words(ArgKind::advice), "dontneed pageout hugepage nohugepage collapse cold ");
    EXPECT_EQ(words(ArgKind::gup_flags), "write force unlocked fast_only ");
    EXPECT_EQ(words(ArgKind::on_off), "on off ");
    EXPECT_EQ(words(ArgKind::value), "");
    EXPECT_EQ(arg_spec(ArgKind::pages).key, "pages");
    EXPECT_EQ(arg_spec(ArgKind::pages).max, kMaxPages);
    EXPECT_TRUE(arg_spec(ArgKind::mremap_to).optional);
}

// The count of reclaim and uffd_serve reads as count(), file_write's page offset as
// page_offset(), and both print back.
TEST(OpRegistry, CountsAndPageOffsetsHaveTheirOwnNames) {
    Program p = parse_mmr(R"(mmrace 1
file F0 pages=1
process P0
thread P0.T0
  uffd_serve 3 value=7
  file_write F0 5 9
kthread K0
  reclaim 12
)");
    const auto& ops = p.processes[0].threads[0].ops;
    EXPECT_EQ(ops[0].count(), 3u);
    EXPECT_EQ(ops[1].page_offset(), 5u);
    EXPECT_EQ(p.kthreads[0].ops[0].count(), 12u);
    EXPECT_EQ(print_op(p, p.kthreads[0].ops[0]), "reclaim 12");
    EXPECT_EQ(print_op(p, ops[1]), "file_write F0 5 9");
}
