// The .mmr format (DESIGN §9) and the mutant catalogue (DESIGN §8): parsing, the
// canonical printer, round trips over random programs, and one test per kind of
// malformed input, each pinned to the exact line:col of the offending word.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "mm/kernel.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/test_hooks.hpp"
#include "mutants/catalogue.hpp"
#include "program/generate/valid_program.hpp"

using namespace mmrace;

namespace {

// DESIGN §9's example, with the mutant name of the §8 table.
const char* const kDesignExample = R"(mmrace 1
config strategy=pervma geometry=small mutants=pervma_fork_no_vma_write_lock
file F0 pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100008 7
  fork P1
thread P0.T1
  write 0x101000 9
process P1 forked
thread P1.T0
  read 0x100008
schedule replay 0 0 1 1 0 2
)";

// Canonical text with every op kind and every optional field set at least once.
const char* const kEveryOp = R"(mmrace 1
config strategy=spf geometry=x86 mutants=spf_no_seqcount_check,stackrot
file F0 pages=4
file data pages=1
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  mmap 0x200000 pages=2 prot=r flags=shared,file:F0:1,fixed_noreplace,populate
  mmap 0x0 pages=1 prot=none flags=private,anon,growsdown
  munmap 0x100000 pages=1
  mprotect 0x101000 pages=1 prot=rx
  madvise 0x102000 pages=2 advice=pageout
  mremap 0x100000 pages=4 new_pages=8
  mremap 0x100000 pages=4 new_pages=2 flags=maymove
  mremap 0x100000 pages=4 new_pages=2 flags=maymove,fixed to=0x400000
  read 0x100008
  write 0x100010 18446744073709551615
  peek 0x100000
  poke 0x100000 0
  fork P1
  pin 0x100000 pages=2
  pin 0x102000 pages=1 flags=write,longterm,fast
  gup 0x100000 pages=1 flags=write,force,unlocked
  unpin H0
  dma_read H1 8
  dma_write H1 4088 5
  uffd_register 0x300000 pages=2 mode=wp
  uffd_wp 0x300000 pages=1 on
  uffd_wp 0x300000 pages=1 off
  uffd_serve 2 value=42
  file_write F0 3 9
  truncate data pages=0
  sysfs_write 0x100ff8
  exit
thread P0.T1
  write 0x101000 1
process P1 forked
thread P1.T0
  read 0x100008
kthread khugepaged
  collapse P0 0x100000
  smaps P1
kthread kswapd
  reclaim 16
  cpu_hotplug
schedule pct seed=7 depth=3 steps=100
)";

const Op& op_at(const Program& p, size_t process, size_t thread, size_t index) {
    return p.processes.at(process).threads.at(thread).ops.at(index);
}

// Accepted text must round-trip through the printer; rejected text must be a
// ParseError with a sane position and a short printable message.  Anything else fails.
void parse_or_fail_cleanly(const std::string& text) {
    try {
        Program p = parse_mmr(text);
        std::string canon = print_mmr(p);
        Program q = parse_mmr(canon);
        ASSERT_TRUE(q == p) << text;
        ASSERT_EQ(print_mmr(q), canon);
    } catch (const ParseError& e) {
        ASSERT_GE(e.line(), 1);
        ASSERT_GE(e.col(), 1);
        ASSERT_LT(e.message().size(), 400u) << e.message();
        for (char c : e.message()) ASSERT_TRUE(c >= 0x20 && c < 0x7f) << e.message();
        std::string prefix =
            "<string>:" + std::to_string(e.line()) + ":" + std::to_string(e.col()) + ": ";
        ASSERT_EQ(std::string(e.what()), prefix + e.message());
    }
}

// splitmix64 for the tests' own random inputs.
struct TestRng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }
};

}  // namespace

// --- the format ---------------------------------------------------------------------------

TEST(MmrFormat, DesignExampleParses) {
    Program p = parse_mmr(kDesignExample);
    EXPECT_EQ(p.config.strategy, Strategy::pervma);
    EXPECT_EQ(p.config.geometry, Geometry::small);
    EXPECT_EQ(p.config.mutants, std::vector<std::string>{"pervma_fork_no_vma_write_lock"});
    ASSERT_EQ(p.files.size(), 1u);
    EXPECT_EQ(p.files[0].name, "F0");
    EXPECT_EQ(p.files[0].pages, 2u);
    ASSERT_EQ(p.processes.size(), 2u);
    EXPECT_FALSE(p.processes[0].forked);
    EXPECT_TRUE(p.processes[1].forked);
    EXPECT_EQ(p.processes[0].threads[1].name, "P0.T1");
    EXPECT_EQ(p.thread_count(), 3u);

    const Op& mmap = op_at(p, 0, 0, 0);
    EXPECT_EQ(mmap.kind, OpKind::mmap);
    EXPECT_EQ(mmap.addr, 0x100000u);
    EXPECT_EQ(mmap.pages, 4u);
    EXPECT_EQ(mmap.prot, PROT_READ_ | PROT_WRITE_);
    EXPECT_EQ(mmap.flags, MAPF_PRIVATE | MAPF_ANON | MAPF_FIXED);
    EXPECT_EQ(mmap.file, -1);
    EXPECT_EQ(mmap.loc, (SrcLoc{6, 3}));
    EXPECT_EQ(op_at(p, 0, 0, 1).value, 7u);
    EXPECT_EQ(op_at(p, 0, 0, 2).kind, OpKind::fork);
    EXPECT_EQ(op_at(p, 0, 0, 2).process, 1);  // P1, declared after the fork
    ASSERT_TRUE(p.schedule);
    EXPECT_EQ(p.schedule->kind, Schedule::Kind::replay);
    EXPECT_EQ(p.schedule->replay, (std::vector<uint64_t>{0, 0, 1, 1, 0, 2}));

    EXPECT_EQ(print_mmr(p), kDesignExample);
}

TEST(MmrFormat, EveryOpKindRoundTripsExactly) {
    Program p = parse_mmr(kEveryOp);
    EXPECT_EQ(print_mmr(p), kEveryOp);
    EXPECT_TRUE(parse_mmr(print_mmr(p)) == p);

    std::set<OpKind> kinds;
    for (const auto& proc : p.processes)
        for (const auto& t : proc.threads)
            for (const auto& op : t.ops) kinds.insert(op.kind);
    for (const auto& t : p.kthreads)
        for (const auto& op : t.ops) kinds.insert(op.kind);
    EXPECT_EQ(kinds.size(), static_cast<size_t>(OpKind::cpu_hotplug) + 1);
}

TEST(MmrFormat, EveryOpKindFieldsLandWhereProgramHppSays) {
    Program p = parse_mmr(kEveryOp);
    const Op& file_map = op_at(p, 0, 0, 1);
    EXPECT_EQ(file_map.flags, MAPF_SHARED | MAPF_FIXED_NOREPLACE | MAPF_POPULATE);
    EXPECT_EQ(file_map.file, 0);
    EXPECT_EQ(file_map.pgoff, 1u);
    EXPECT_EQ(op_at(p, 0, 0, 2).prot, PROT_NONE_);
    EXPECT_EQ(op_at(p, 0, 0, 4).prot, PROT_READ_ | PROT_EXEC_);
    EXPECT_EQ(op_at(p, 0, 0, 5).advice, Advice::pageout);
    const Op& fixed = op_at(p, 0, 0, 8);
    EXPECT_EQ(fixed.new_pages, 2u);
    EXPECT_EQ(fixed.flags, MREMAPF_MAYMOVE | MREMAPF_FIXED);
    EXPECT_EQ(fixed.to, std::optional<uint64_t>(0x400000));
    EXPECT_EQ(op_at(p, 0, 0, 6).to, std::nullopt);
    EXPECT_EQ(op_at(p, 0, 0, 10).value, UINT64_MAX);
    EXPECT_EQ(op_at(p, 0, 0, 15).flags, GUPF_WRITE | GUPF_LONGTERM | GUPF_FAST);
    EXPECT_EQ(op_at(p, 0, 0, 16).flags, GUPF_WRITE | GUPF_FORCE | GUPF_UNLOCKED);
    EXPECT_EQ(op_at(p, 0, 0, 17).handle, 0);
    const Op& dma = op_at(p, 0, 0, 19);
    EXPECT_EQ(dma.handle, 1);
    EXPECT_EQ(dma.offset, 4088u);
    EXPECT_EQ(dma.value, 5u);
    EXPECT_EQ(op_at(p, 0, 0, 20).uffd_mode, UffdMode::wp);
    EXPECT_TRUE(op_at(p, 0, 0, 21).on);
    EXPECT_FALSE(op_at(p, 0, 0, 22).on);
    const Op& serve = op_at(p, 0, 0, 23);
    EXPECT_EQ(serve.pages, 2u);
    EXPECT_EQ(serve.value, 42u);
    const Op& fw = op_at(p, 0, 0, 24);
    EXPECT_EQ(fw.file, 0);
    EXPECT_EQ(fw.offset, 3u);
    EXPECT_EQ(fw.value, 9u);
    EXPECT_EQ(op_at(p, 0, 0, 25).file, 1);
    EXPECT_EQ(op_at(p, 0, 0, 25).pages, 0u);
    EXPECT_EQ(p.kthreads[0].ops[0].process, 0);
    EXPECT_EQ(p.kthreads[0].ops[0].addr, 0x100000u);
    EXPECT_EQ(p.kthreads[0].ops[1].process, 1);
    EXPECT_EQ(p.kthreads[1].ops[0].pages, 16u);
    EXPECT_EQ(p.schedule->kind, Schedule::Kind::pct);
    EXPECT_EQ(p.schedule->depth, 3u);
    EXPECT_EQ(p.schedule->steps, 100u);
}

TEST(MmrFormat, OtherSpellingsNormaliseToTheCanonicalText) {
    // Comments, blank lines, CRLF, tabs, any key and flag order, leading zeros,
    // an empty pin flag list, no config line.
    const char* loose =
        "# a reproducer\r\n"
        "\r\n"
        "mmrace 1\r\n"
        "  # an indented comment\n"
        "process P0\n"
        "thread P0.T0\n"
        "\tmmap 0x0100000 flags=fixed,anon,private prot=wr pages=04\r\n"
        "  uffd_wp 0x100000 on pages=1\n"
        "  pin 0x100000 pages=1 flags=\n"
        "  mremap 0x100000 to=0x200000 flags=fixed,maymove new_pages=1 pages=1\n"
        "schedule random seed=007\n";
    const char* canonical =
        "mmrace 1\n"
        "config strategy=classic geometry=small\n"
        "process P0\n"
        "thread P0.T0\n"
        "  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed\n"
        "  uffd_wp 0x100000 pages=1 on\n"
        "  pin 0x100000 pages=1\n"
        "  mremap 0x100000 pages=1 new_pages=1 flags=maymove,fixed to=0x200000\n"
        "schedule random seed=7\n";
    Program p = parse_mmr(loose);
    EXPECT_EQ(print_mmr(p), canonical);
    EXPECT_TRUE(parse_mmr(canonical) == p);
}

TEST(MmrFormat, AByteOrderMarkIsSkipped) {
    Program p = parse_mmr("\xEF\xBB\xBFmmrace 1\nprocess P0\nthread P0.T0\n  exit\n");
    EXPECT_EQ(p.processes[0].threads[0].ops.size(), 1u);
}

TEST(MmrFormat, HandlesCountPinsInFileOrderAcrossThreads) {
    Program p = parse_mmr(R"(mmrace 1
process P0
thread P0.T0
  unpin H1
  pin 0x100000 pages=1
thread P0.T1
  pin 0x200000 pages=2
  dma_read H1 4096
  dma_write H0 4088 3
)");
    EXPECT_EQ(op_at(p, 0, 0, 0).handle, 1);  // the pin of the later thread
    EXPECT_EQ(op_at(p, 0, 1, 1).handle, 1);
    EXPECT_EQ(op_at(p, 0, 1, 2).handle, 0);
    EXPECT_EQ(print_op(p, op_at(p, 0, 0, 0)), "unpin H1");
}

TEST(MmrFormat, NamesMayBeUsedBeforeTheirProcessIsDeclared) {
    // A kthread may come first; the printer moves it after the processes, and thread
    // order (processes first, then kthreads) is what the AST keeps.
    Program p = parse_mmr(R"(mmrace 1
kthread scan
  smaps P0
  collapse P1 0x200000
process P0
thread P0.T0
  fork P1
process P1 forked
thread P1.T0
  exit
)");
    EXPECT_EQ(p.kthreads[0].ops[0].process, 0);
    EXPECT_EQ(p.kthreads[0].ops[1].process, 1);
    std::string canon = print_mmr(p);
    EXPECT_LT(canon.find("process P1 forked"), canon.find("kthread scan"));
    EXPECT_TRUE(parse_mmr(canon) == p);
}

TEST(MmrFormat, EqualityIgnoresSourcePositionsOnly) {
    Program a = parse_mmr("mmrace 1\nprocess P0\nthread P0.T0\n  read 0x1000\n");
    Program b = parse_mmr("# moved\nmmrace 1\n\nprocess P0\nthread P0.T0\n      read 0x1000\n");
    EXPECT_NE(a.processes[0].threads[0].ops[0].loc, b.processes[0].threads[0].ops[0].loc);
    EXPECT_TRUE(a == b);
    Program c = parse_mmr("mmrace 1\nprocess P0\nthread P0.T0\n  read 0x1008\n");
    EXPECT_FALSE(a == c);
    Program d = parse_mmr("mmrace 1\nprocess P0\nthread P0.T1\n  read 0x1000\n");
    EXPECT_FALSE(a == d);
}

TEST(MmrFormat, MinimalProgramsAndEmptyReplay) {
    EXPECT_EQ(print_mmr(parse_mmr("mmrace 1")),
              "mmrace 1\nconfig strategy=classic geometry=small\n");
    const char* replay = "mmrace 1\nconfig strategy=classic geometry=small\nschedule replay\n";
    Program p = parse_mmr(replay);
    ASSERT_TRUE(p.schedule);
    EXPECT_TRUE(p.schedule->replay.empty());
    EXPECT_EQ(print_mmr(p), replay);
}

TEST(MmrFormat, LimitsAreAcceptedUpToTheBound) {
    std::string text = "mmrace 1\nprocess P0\n";
    for (int i = 0; i < 63; ++i) text += "thread P0.T" + std::to_string(i) + "\n";
    text += "kthread K\n";
    Program p = parse_mmr(text);
    EXPECT_EQ(p.thread_count(), 64u);

    std::string ops = "mmrace 1\nprocess P0\nthread P0.T0\n";
    for (int i = 0; i < (1 << 16); ++i) ops += "  exit\n";
    EXPECT_EQ(parse_mmr(ops).processes[0].threads[0].ops.size(), 1u << 16);

    Program edge = parse_mmr(
        "mmrace 1\nprocess P0\nthread P0.T0\n"
        "  munmap 0x7ffffffff000 pages=1\n"
        "  munmap 0x0 pages=1048576\n"
        "  write 0x7ffffffffff8 18446744073709551615\n"
        "schedule pct seed=18446744073709551615 depth=1024\n");
    EXPECT_EQ(op_at(edge, 0, 0, 2).value, UINT64_MAX);
    EXPECT_EQ(edge.schedule->depth, 1024u);
}

TEST(MmrFormat, PoolLimitsRoundTripAndDefaultsAreOmitted) {
    Program p = parse_mmr("mmrace 1\nconfig pgtables=9 folios=0003 swap_slots=1024\n");
    EXPECT_EQ(p.config.folios, 3u);
    EXPECT_EQ(p.config.swap_slots, kDefaultSwapSlots);
    EXPECT_EQ(p.config.pgtables, 9u);
    // Canonical order, the default swap_slots left out.
    const std::string text = "mmrace 1\nconfig strategy=classic geometry=small folios=3 pgtables=9\n";
    EXPECT_EQ(print_mmr(p), text);
    EXPECT_TRUE(parse_mmr(text) == p);
    Program edge = parse_mmr("mmrace 1\nconfig folios=1048576 swap_slots=1 pgtables=262144\n");
    EXPECT_EQ(edge.config.folios, kMaxFolios);
    EXPECT_EQ(edge.config.swap_slots, 1u);
    EXPECT_EQ(edge.config.pgtables, kMaxPgtables);
    EXPECT_EQ(print_mmr(edge),
              "mmrace 1\nconfig strategy=classic geometry=small folios=1048576 swap_slots=1\n");
}

TEST(MmrFormat, PrintOpIsTheExecutorsOpText) {
    Program p = parse_mmr(kDesignExample);
    EXPECT_EQ(print_op(p, op_at(p, 0, 0, 0)),
              "mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed");
    EXPECT_EQ(print_op(p, op_at(p, 0, 0, 2)), "fork P1");
    EXPECT_EQ(op_name(OpKind::dma_write), std::string("dma_write"));
    EXPECT_EQ(strategy_name(Strategy::pervma), std::string("pervma"));
    EXPECT_EQ(geometry_name(Geometry::x86), std::string("x86"));
}

TEST(MmrFormat, PrintingAProgramBuiltInCodeWithBadIndicesDoesNotCrash) {
    Program p;
    Process proc{"P0", {}, false, {}};
    Op op;
    op.kind = OpKind::fork;
    op.process = 7;
    proc.threads.push_back(Thread{"P0.T0", {}, {op}});
    p.processes.push_back(proc);
    std::string text = print_mmr(p);
    EXPECT_NE(text.find("fork ?7"), std::string::npos);
    EXPECT_THROW(parse_mmr(text), ParseError);
}

// --- round trips over random programs ------------------------------------------------------

TEST(MmrRoundTrip, RandomProgramsOver2000Seeds) {
    std::set<OpKind> kinds;
    bool forked = false, files = false, kthreads = false, handles = false, mutants = false,
         pools = false;
    for (uint64_t seed = 0; seed < 2000; ++seed) {
        Program p = random_program(seed);
        std::string text = print_mmr(p);
        Program q;
        try {
            q = parse_mmr(text);
        } catch (const ParseError& e) {
            FAIL() << "seed " << seed << ": " << e.what() << "\n" << text;
        }
        ASSERT_TRUE(q == p) << "seed " << seed << "\n" << text;
        ASSERT_EQ(print_mmr(q), text) << "seed " << seed;

        for (const auto& proc : p.processes) {
            forked |= proc.forked;
            for (const auto& t : proc.threads)
                for (const auto& op : t.ops) {
                    kinds.insert(op.kind);
                    handles |= op.handle >= 0;
                }
        }
        for (const auto& t : p.kthreads)
            for (const auto& op : t.ops) kinds.insert(op.kind);
        files |= !p.files.empty();
        kthreads |= !p.kthreads.empty();
        mutants |= !p.config.mutants.empty();
        pools |= p.config.folios != kDefaultFolios && p.config.swap_slots != kDefaultSwapSlots &&
                 p.config.pgtables != kDefaultPgtables;
    }
    EXPECT_EQ(kinds.size(), static_cast<size_t>(OpKind::cpu_hotplug) + 1)
        << "an op kind is never drawn";
    EXPECT_TRUE(forked && files && kthreads && handles && mutants && pools);
}

TEST(MmrRoundTrip, RandomProgramIsAFunctionOfItsSeed) {
    for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{42}, UINT64_MAX}) {
        EXPECT_EQ(print_mmr(random_program(seed)), print_mmr(random_program(seed)));
    }
    EXPECT_NE(print_mmr(random_program(1)), print_mmr(random_program(2)));
}

// --- malformed input: one case per kind of mistake ----------------------------------------

struct BadCase {
    const char* name;
    std::string text;
    int line, col;
    std::string words;  // must appear in the message
};

std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.name; }

class MmrErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(MmrErrors, PointsAtTheOffendingWord) {
    const BadCase& c = GetParam();
    try {
        parse_mmr(c.text);
        FAIL() << "parsed:\n" << c.text;
    } catch (const ParseError& e) {
        EXPECT_EQ(e.line(), c.line) << e.what();
        EXPECT_EQ(e.col(), c.col) << e.what();
        EXPECT_NE(e.message().find(c.words), std::string::npos) << e.what();
        EXPECT_EQ(e.file(), "<string>");
    }
}

namespace {

// Three lines of header, so an op is on line 4 and starts at column 3.
std::string in_thread(const std::string& ops) {
    return "mmrace 1\nprocess P0\nthread P0.T0\n" + ops + "\n";
}

const BadCase kBadCases[] = {
    // the version line
    {"EmptyInput", "", 1, 1, "empty input"},
    {"OnlyComments", "# nothing\n\n", 1, 1, "empty input"},
    {"NoVersion", "process P0\n", 1, 1, "expected 'mmrace 1'"},
    {"WrongVersion", "mmrace 2\n", 1, 8, "unsupported version '2'"},
    {"MissingVersion", "mmrace\n", 1, 7, "missing version"},
    {"TwoVersions", "mmrace 1\nmmrace 1\n", 2, 1, "duplicate 'mmrace'"},
    // ops
    {"UnknownOp", in_thread("  mmapp 0x1000 pages=1"), 4, 3,
     "unknown op 'mmapp' (did you mean 'mmap'?)"},
    {"UnknownKeyword", "mmrace 1\nproces P0\n", 2, 1,
     "unknown keyword 'proces' (did you mean 'process'?)"},
    {"OpNotIndented", in_thread("read 0x1000"), 4, 1, "must be indented"},
    {"KeywordIndented", in_thread("  process P1"), 4, 3, "must not be indented"},
    {"OpOutsideThread", "mmrace 1\nprocess P0\n  read 0x1000\n", 3, 3, "outside a thread"},
    {"OpBeforeAnyThread", "mmrace 1\n  read 0x1000\n", 2, 3, "outside a thread"},
    {"KthreadOpInProcessThread", in_thread("  collapse P0 0x100000"), 4, 3,
     "'collapse' is a kthread op"},
    {"ProcessOpInKthread", "mmrace 1\nkthread K\n  read 0x1000\n", 3, 3, "'read' is a process op"},
    {"UnknownKey", in_thread("  munmap 0x100000 pagez=1"), 4, 19,
     "unknown argument 'pagez=' for munmap"},
    {"DuplicateKey", in_thread("  munmap 0x100000 pages=1 pages=2"), 4, 27, "duplicate 'pages='"},
    {"MissingKey", in_thread("  munmap 0x100000"), 4, 18, "missing pages= for munmap"},
    {"MissingAddress", in_thread("  read"), 4, 7, "missing an address for read"},
    {"SurplusArgument", in_thread("  read 0x100000 5"), 4, 17, "unexpected argument '5'"},
    // numbers
    {"BadNumber", in_thread("  write 0x100000 x7"), 4, 18, "expected a number, got 'x7'"},
    {"NumberWithSuffix", in_thread("  write 0x100000 7x"), 4, 18, "expected a number, got '7x'"},
    {"NegativeNumber", in_thread("  write 0x100000 -1"), 4, 18, "expected a number"},
    {"NumberOutOfRange", in_thread("  write 0x100000 18446744073709551616"), 4, 18,
     "number out of range"},
    {"PagesZero", in_thread("  munmap 0x100000 pages=0"), 4, 25, "at least 1"},
    {"PagesAbsurd", in_thread("  munmap 0x100000 pages=1048577"), 4, 25, "too large"},
    {"CountAbsurd", "mmrace 1\nkthread K\n  reclaim 99999999\n", 3, 11, "too large"},
    // addresses
    {"AddressUppercase", in_thread("  read 0x1000A0"), 4, 8, "lowercase"},
    {"AddressUppercaseX", in_thread("  read 0X100000"), 4, 8, "lowercase"},
    {"AddressNo0x", in_thread("  read 4096"), 4, 8, "expected an address like 0x1000, got '4096'"},
    {"AddressOnly0x", in_thread("  read 0x"), 4, 8, "expected an address"},
    {"AddressOverflow", in_thread("  read 0x10000000000000000"), 4, 8, "address out of range"},
    {"AddressKernel", in_thread("  read 0xffff800000000000"), 4, 8,
     "outside the user address space"},
    {"RangePastUserTop", in_thread("  munmap 0x7ffffffff000 pages=2"), 4, 10,
     "ends past the user address space"},
    {"MmapUnaligned", in_thread("  mmap 0x1001 pages=1 prot=r flags=private,anon"), 4, 8,
     "address 0x1001 is not page aligned"},
    {"ReadUnaligned", in_thread("  read 0x100004"), 4, 8, "not 8-byte aligned"},
    {"MremapToUnaligned",
     in_thread("  mremap 0x1000 pages=1 new_pages=1 flags=maymove,fixed to=0x2800"), 4, 60,
     "not page aligned"},
    // flags and words
    {"UnknownMmapFlag", in_thread("  mmap 0x1000 pages=1 prot=r flags=private,anom"), 4, 44,
     "unknown mmap flag 'anom'"},
    {"PrivateAndShared", in_thread("  mmap 0x1000 pages=1 prot=r flags=private,shared,anon"), 4, 44,
     "both private and shared"},
    {"NoPrivateOrShared", in_thread("  mmap 0x1000 pages=1 prot=r flags=anon"), 4, 36,
     "private or shared"},
    {"NoAnonOrFile", in_thread("  mmap 0x1000 pages=1 prot=r flags=private,fixed"), 4, 36,
     "anon or file"},
    {"UnknownFile", in_thread("  mmap 0x1000 pages=1 prot=r flags=private,file:F9:0"), 4, 49,
     "unknown file 'F9'"},
    {"DuplicateFlag", in_thread("  pin 0x1000 pages=1 flags=write,write"), 4, 34,
     "duplicate 'write'"},
    {"GupFlagOnPin", in_thread("  pin 0x1000 pages=1 flags=force"), 4, 28,
     "unknown pin flag 'force' (expected write, longterm or fast)"},
    {"BadProt", in_thread("  mprotect 0x1000 pages=1 prot=rwz"), 4, 32, "bad prot 'rwz'"},
    {"DuplicateProt", in_thread("  mprotect 0x1000 pages=1 prot=rr"), 4, 33,
     "duplicate 'r' in prot"},
    {"BadAdvice", in_thread("  madvise 0x1000 pages=1 advice=free"), 4, 33,
     "unknown advice 'free'"},
    {"BadOnOff", in_thread("  uffd_wp 0x1000 pages=1 maybe"), 4, 26, "expected on or off"},
    {"BadUffdMode", in_thread("  uffd_register 0x1000 pages=1 mode=minor"), 4, 37,
     "unknown uffd mode 'minor'"},
    {"MremapFixedWithoutTo", in_thread("  mremap 0x1000 pages=1 new_pages=1 flags=maymove,fixed"),
     4, 56, "missing to="},
    {"MremapFixedWithoutMaymove",
     in_thread("  mremap 0x1000 pages=1 new_pages=1 flags=fixed to=0x2000"), 4, 43,
     "requires maymove"},
    {"MremapToWithoutFixed", in_thread("  mremap 0x1000 pages=1 new_pages=1 to=0x2000"), 4, 37,
     "to= needs flags=maymove,fixed"},
    // handles
    {"HandleWithoutPins", in_thread("  unpin H3"), 4, 9,
     "unknown handle 'H3' (the program has no pin ops)"},
    {"HandlePastTheLastPin", in_thread("  pin 0x1000 pages=1\n  dma_read H1 0"), 5, 12,
     "the pins are H0..H0"},
    {"HandleSyntax", in_thread("  unpin 3"), 4, 9, "expected a pin handle like H0"},
    {"DmaOffsetUnaligned", in_thread("  pin 0x1000 pages=1\n  dma_read H0 4"), 5, 15,
     "not 8-byte aligned"},
    {"DmaOffsetPastPin", in_thread("  pin 0x1000 pages=1\n  dma_write H0 4096 1"), 5, 16,
     "past the end of H0"},
    // names and declarations
    {"ThreadOfUnknownProcess", "mmrace 1\nprocess P0\nthread P9.T0\n", 3, 8,
     "unknown process 'P9'"},
    {"ThreadWithoutDot", "mmrace 1\nprocess P0\nthread T0\n", 3, 8, "expected PNAME.TNAME"},
    {"ThreadOutOfPlace",
     "mmrace 1\nprocess P0\nthread P0.T0\nprocess P1\nthread P1.T0\nthread P0.T1\n", 6, 8,
     "must follow the other threads of process 'P0'"},
    {"ProcessWithoutThreads", "mmrace 1\nprocess P0\nprocess P1\nthread P1.T0\n", 2, 9,
     "process 'P0' has no threads"},
    {"LastProcessWithoutThreads", "mmrace 1\nprocess P0\n", 2, 9, "has no threads"},
    {"DuplicateThread", "mmrace 1\nprocess P0\nthread P0.T0\nthread P0.T0\n", 4, 8,
     "duplicate thread name 'P0.T0' (first declared at line 3)"},
    {"DuplicateProcess", "mmrace 1\nprocess P0\nthread P0.T0\nprocess P0\n", 4, 9,
     "duplicate process name 'P0' (first declared at line 2)"},
    {"DuplicateFile", "mmrace 1\nfile F pages=1\nfile F pages=2\n", 3, 6,
     "duplicate file name 'F'"},
    {"DuplicateKthread", "mmrace 1\nkthread K\nkthread K\n", 3, 9, "duplicate kthread name 'K'"},
    {"BadProcessName", "mmrace 1\nprocess 9P\n", 2, 9, "bad process name '9P'"},
    {"BadThreadName", "mmrace 1\nprocess P0\nthread P0.T-1\n", 3, 11, "bad thread name 'T-1'"},
    {"ProcessTrailingWord", "mmrace 1\nprocess P0 forkd\n", 2, 12, "expected 'forked'"},
    {"FileAfterProcess", "mmrace 1\nprocess P0\nthread P0.T0\nfile F pages=1\n", 4, 1,
     "before the first process"},
    {"FileWithoutPages", "mmrace 1\nfile F\n", 2, 7, "missing pages= for file"},
    {"ScheduleNotLast", "mmrace 1\nschedule random seed=1\nprocess P0\n", 3, 1,
     "nothing may follow the schedule"},
    // forks
    {"ForkOfUnforkedProcess", in_thread("  fork P1") + "process P1\nthread P1.T0\n", 4, 8,
     "not declared forked"},
    {"ForkOfUnknownProcess", in_thread("  fork P7"), 4, 8, "unknown process 'P7'"},
    {"ForkedTwice", in_thread("  fork P1\n  fork P1") + "process P1 forked\nthread P1.T0\n", 5, 8,
     "already forked at line 4"},
    {"NeverForked", "mmrace 1\nprocess P0\nthread P0.T0\nprocess P1 forked\nthread P1.T0\n", 4, 9,
     "never forked"},
    {"ForkCycle",
     "mmrace 1\nprocess P0\nthread P0.T0\nprocess P1 forked\nthread P1.T0\n  fork P2\n"
     "process P2 forked\nthread P2.T0\n  fork P1\n",
     4, 9, "cycle"},
    {"ForkSelf", "mmrace 1\nprocess P0\nthread P0.T0\nprocess P1 forked\nthread P1.T0\n  fork P1\n",
     4, 9, "cycle"},
    // config and schedule
    {"UnknownMutant", "mmrace 1\nconfig mutants=stackrot,pervma_fork_no_vma_lock\n", 2, 25,
     "unknown mutant 'pervma_fork_no_vma_lock' (did you mean 'pervma_fork_no_vma_write_lock'?)"},
    {"UnknownMutantFarFromAll", "mmrace 1\nconfig mutants=zzz\n", 2, 16, "unknown mutant 'zzz'"},
    {"MutantTwice", "mmrace 1\nconfig mutants=stackrot,stackrot\n", 2, 25, "listed twice"},
    {"EmptyMutantItem", "mmrace 1\nconfig mutants=stackrot,\n", 2, 25, "empty item"},
    {"UnknownConfigKey", "mmrace 1\nconfig strategy=spf stratgy=x\n", 2, 21,
     "unknown config key 'stratgy'"},
    {"ConfigWithoutEquals", "mmrace 1\nconfig spf\n", 2, 8, "expected key=value"},
    {"UnknownStrategy", "mmrace 1\nconfig strategy=lockless\n", 2, 17,
     "unknown strategy 'lockless'"},
    {"UnknownGeometry", "mmrace 1\nconfig geometry=arm\n", 2, 17, "unknown geometry 'arm'"},
    {"DuplicateConfigKey", "mmrace 1\nconfig strategy=spf strategy=spf\n", 2, 21,
     "duplicate config key"},
    {"DuplicateConfigLine", "mmrace 1\nconfig strategy=spf\nconfig geometry=x86\n", 3, 1,
     "duplicate config line"},
    {"ConfigAfterFile", "mmrace 1\nfile F pages=1\nconfig strategy=spf\n", 3, 1,
     "must come before"},
    {"FoliosZero", "mmrace 1\nconfig strategy=classic folios=0\n", 2, 32,
     "folios must be at least 1 (1 to 1048576)"},
    {"SwapSlotsAbsurd", "mmrace 1\nconfig swap_slots=99999999999999999999999\n", 2, 19,
     "swap_slots '99999999999999999999999' is too large (0 to 1048576)"},
    {"PgtablesJustPastTheMaximum", "mmrace 1\nconfig pgtables=262145\n", 2, 17,
     "pgtables '262145' is too large (1 to 262144)"},
    {"FoliosNotANumber", "mmrace 1\nconfig folios=-1\n", 2, 15,
     "folios expects a number (1 to 1048576), got '-1'"},
    {"FoliosEmpty", "mmrace 1\nconfig folios=\n", 2, 15, "folios expects a number"},
    {"BudgetZero", "mmrace 1\nconfig budget=0\n", 2, 15, "budget must be at least 1 step"},
    {"BudgetNotANumber", "mmrace 1\nconfig budget=lots\n", 2, 15, "expected a number, got 'lots'"},
    {"PoolKeyTypo", "mmrace 1\nconfig swapslots=4\n", 2, 8,
     "unknown config key 'swapslots' (expected strategy, geometry, folios, swap_slots, "
     "pgtables, vma_lock, mutants or budget) (did you mean 'swap_slots'?)"},
    {"VmaLockUnknownCase", "mmrace 1\nconfig strategy=pervma vma_lock=swap\n", 2, 33,
     "unknown vma_lock case 'swap' (expected swapin, file or uffd) (did you mean 'swapin'?)"},
    {"DuplicatePoolKey", "mmrace 1\nconfig folios=4 folios=4\n", 2, 17, "duplicate config key"},
    {"UnknownSchedule", "mmrace 1\nschedule dfs\n", 2, 10, "unknown schedule policy 'dfs'"},
    {"ReplayNotANumber", "mmrace 1\nschedule replay 0 1 x\n", 2, 21, "expected a number, got 'x'"},
    {"RandomWithoutSeed", "mmrace 1\nschedule random\n", 2, 16,
     "missing seed= for schedule random"},
    {"PctDepthZero", "mmrace 1\nschedule pct seed=1 depth=0\n", 2, 27, "at least 1"},
    {"PctDepthAbsurd", "mmrace 1\nschedule pct seed=1 depth=5000\n", 2, 27, "too large"},
    // bytes that are not text
    {"TabsAreSpaces", in_thread("\tread\t0x100004"), 4, 7, "not 8-byte aligned"},
    {"CrlfKeepsColumns", "mmrace 1\r\nprocess P0\r\nthread P0.T0\r\n  read 0x100004\r\n", 4, 8,
     "not 8-byte aligned"},
    {"NulByte", in_thread(std::string("  re\0d 0x1000", 13)), 4, 3, "unknown op 're\\x00d'"},
    {"NonUtf8", in_thread("  \xff\xfe 0x1000"), 4, 3, "unknown op '\\xff\\xfe'"},
};

std::string case_name(const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; }

}  // namespace

INSTANTIATE_TEST_SUITE_P(Mmr, MmrErrors, ::testing::ValuesIn(kBadCases), case_name);

TEST(MmrLimits, TooManyThreads) {
    std::string text = "mmrace 1\nprocess P0\n";
    for (int i = 0; i < 64; ++i) text += "thread P0.T" + std::to_string(i) + "\n";
    text += "kthread K\n";
    try {
        parse_mmr(text);
        FAIL();
    } catch (const ParseError& e) {
        EXPECT_EQ(e.line(), 67);
        EXPECT_EQ(e.col(), 9);
        EXPECT_NE(e.message().find("too many threads"), std::string::npos);
    }
}

TEST(MmrLimits, TooManyOpsInAThread) {
    std::string text = "mmrace 1\nprocess P0\nthread P0.T0\n";
    for (int i = 0; i <= (1 << 16); ++i) text += "  exit\n";
    try {
        parse_mmr(text);
        FAIL();
    } catch (const ParseError& e) {
        EXPECT_EQ(e.line(), 3 + (1 << 16) + 1);
        EXPECT_EQ(e.col(), 3);
        EXPECT_NE(e.message().find("too many ops in thread 'P0.T0'"), std::string::npos);
    }
}

TEST(MmrLimits, InputLargerThan16MiB) {
    std::string text = "mmrace 1\n# " + std::string(16u << 20, 'x') + "\n";
    try {
        parse_mmr(text);
        FAIL();
    } catch (const ParseError& e) {
        EXPECT_EQ(e.line(), 2);
        EXPECT_EQ(e.col(), (16 << 20) - 9 + 1);  // the first byte past the limit
        EXPECT_NE(e.message().find("too large"), std::string::npos);
    }
}

TEST(MmrLimits, HugeLinesAndWordsCostOnePass) {
    // Each would take minutes if any step were quadratic in the line or word length.
    std::string word(8u << 20, 'a');
    try {
        parse_mmr(in_thread("  " + word));
        FAIL();
    } catch (const ParseError& e) {
        EXPECT_EQ(e.col(), 3);
        EXPECT_LT(e.message().size(), 100u);  // the word is cut short in the message
    }
    std::string spaces = in_thread("  read" + std::string(8u << 20, ' ') + "0x100004");
    EXPECT_THROW(parse_mmr(spaces), ParseError);

    std::string replay = "mmrace 1\nschedule replay";
    for (int i = 0; i < 1'000'000; ++i) replay += " 1";
    EXPECT_EQ(parse_mmr(replay).schedule->replay.size(), 1'000'000u);
}

TEST(MmrLimits, RandomBytesParseOrFailCleanly) {
    TestRng rng{12345};
    for (int i = 0; i < 2000; ++i) {
        size_t len = rng.below(4) == 0 ? rng.below(20000) : rng.below(300);
        std::string text = i % 2 ? "mmrace 1\n" : "";  // half get past the version line
        for (size_t j = 0; j < len; ++j) text += static_cast<char>(rng.next());
        parse_or_fail_cleanly(text);
    }
}

TEST(MmrLimits, WordSoupParsesOrFailsCleanly) {
    // Random lines of the format's own words reach far deeper than random bytes.
    static const char* const kWords[] = {
        "mmrace",
        "1",
        "config",
        "strategy=spf",
        "mutants=stackrot",
        "file",
        "F0",
        "pages=1",
        "process",
        "P0",
        "P1",
        "forked",
        "thread",
        "P0.T0",
        "P1.T0",
        "kthread",
        "K",
        "schedule",
        "replay",
        "pct",
        "seed=1",
        "depth=2",
        "mmap",
        "0x1000",
        "0x0",
        "prot=rw",
        "flags=private,anon",
        "flags=shared,file:F0:0",
        "fork",
        "pin",
        "unpin",
        "H0",
        "H1",
        "dma_read",
        "8",
        "collapse",
        "smaps",
        "reclaim",
        "exit",
        "read",
        "write",
        "to=0x2000",
        "#",
        "=",
        ",",
        "0x",
        "",
    };
    static const char* const kSeparators[] = {" ", "  ", "\t", "\n", "\n  ", "\r\n", "\n\n"};
    TestRng rng{7};
    for (int i = 0; i < 2000; ++i) {
        std::string text = "mmrace 1\n";
        for (size_t n = rng.below(60); n; --n)
            text += std::string(kWords[rng.below(std::size(kWords))]) +
                    kSeparators[rng.below(std::size(kSeparators))];
        parse_or_fail_cleanly(text);
    }
}

TEST(MmrLimits, MutatedProgramsParseOrFailCleanly) {
    TestRng rng{99};
    for (uint64_t seed = 0; seed < 2000; ++seed) {
        std::string text = print_mmr(random_program(seed));
        for (size_t n = 1 + rng.below(3); n; --n) {
            size_t at = rng.below(text.size() + 1);
            switch (rng.below(4)) {
                case 0: text.erase(at, rng.below(12)); break;
                case 1: text.insert(at, 1, static_cast<char>(rng.next())); break;
                case 2: text.insert(at, text.substr(rng.below(text.size()), rng.below(40))); break;
                default:
                    if (at < text.size()) text[at] = " \n=,.:0x9H"[rng.below(10)];
            }
        }
        parse_or_fail_cleanly(text);
    }
}

// --- the mutant catalogue ------------------------------------------------------------------

TEST(MutantCatalogue, HasTheRowsOfDesignSection8InOrder) {
    const std::vector<std::string> expected = {
        "khugepaged_no_revalidate",
        "khugepaged_hotplug_lock_order",
        "khugepaged_retract_no_ipi",
        "gup_pin_no_early_cow",
        "fork_shares_pinned_page",
        "gup_vmas_after_retry",
        "fault_retry_stale_vma",
        "spf_no_seqcount_check",
        "spf_no_pmd_recheck",
        "spf_no_vma_refcount",
        "pervma_fork_no_vma_write_lock",
        "pervma_anon_vma_check_unlocked",
        "pervma_dup_anon_vma_unlocked",
        "pervma_new_vma_unlocked",
        "pervma_expand_stack_unlocked",
        "stackrot",
        "munmap_downgrade_expand_stack",
        "dirty_cow",
        "cow_reuse_after_ro_gup",
        "mremap_flush_after_ptl_drop",
        "uffd_copy_ignores_mmap_changing",
    };
    const auto& rows = mutant_catalogue();
    ASSERT_EQ(rows.size(), expected.size());
    for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].name, expected[i]);
}

TEST(MutantCatalogue, EveryRowIsComplete) {
    const std::set<std::string> strategies = {"all", "classic", "spf", "pervma"};
    for (const auto& m : mutant_catalogue()) {
        SCOPED_TRACE(m.name);
        for (const char* field : {m.reference, m.seed, m.summary}) {
            ASSERT_NE(field, nullptr);
            EXPECT_GT(std::string(field).size(), 0u);
        }
        EXPECT_NE(m.check, Check::none);  // a check of MMRACE_CHECKS
        std::string list = m.strategies;
        for (size_t pos = 0; pos <= list.size();) {
            size_t comma = std::min(list.find(',', pos), list.size());
            EXPECT_TRUE(strategies.count(list.substr(pos, comma - pos))) << list;
            pos = comma + 1;
        }
        const std::set<std::string> built = {"spf_no_seqcount_check", "pervma_fork_no_vma_write_lock",
                                             "khugepaged_no_revalidate", "spf_no_pmd_recheck",
                                             "uffd_copy_ignores_mmap_changing",
                                             "gup_pin_no_early_cow", "fork_shares_pinned_page",
                                             "gup_vmas_after_retry", "dirty_cow",
                                             "khugepaged_hotplug_lock_order", "khugepaged_retract_no_ipi",
                                             "fault_retry_stale_vma", "cow_reuse_after_ro_gup"};
        EXPECT_EQ(m.built, built.count(m.name) > 0);
    }
    EXPECT_STREQ(find_mutant("stackrot")->reference, "CVE-2023-3269");
    EXPECT_EQ(find_mutant("khugepaged_hotplug_lock_order")->check, Check::lockdep);
    EXPECT_STREQ(find_mutant("spf_no_vma_refcount")->strategies, "spf");
}

TEST(MutantCatalogue, FindMutantIsExact) {
    EXPECT_NE(find_mutant("dirty_cow"), nullptr);
    EXPECT_EQ(find_mutant("dirty_co"), nullptr);
    EXPECT_EQ(find_mutant("DIRTY_COW"), nullptr);
    EXPECT_EQ(find_mutant(""), nullptr);
}

TEST(MutantCatalogue, EveryNameIsAcceptedByTheConfigLine) {
    std::string list;
    for (const auto& m : mutant_catalogue())
        list += (list.empty() ? "" : ",") + std::string(m.name);
    Program p = parse_mmr("mmrace 1\nconfig mutants=" + list + "\n");
    EXPECT_EQ(p.config.mutants.size(), mutant_catalogue().size());
    EXPECT_TRUE(parse_mmr(print_mmr(p)) == p);
}

TEST(MutantCatalogue, TheDesignExampleTypoGetsASuggestion) {
    try {
        parse_mmr(
            "mmrace 1\nconfig strategy=pervma geometry=small mutants=pervma_fork_no_vma_lock\n");
        FAIL();
    } catch (const ParseError& e) {
        EXPECT_STREQ(e.what(),
                     "<string>:2:47: unknown mutant 'pervma_fork_no_vma_lock' (did you mean "
                     "'pervma_fork_no_vma_write_lock'?)");
    }
}

namespace {

// parse_schedule: the file's schedule grammar on its own, `schedule` optional.
TEST(MmrSchedule, ParsesWhatSchedulesPrint) {
    for (const char* text : {"replay", "replay 0 1 18446744073709551615", "random seed=7",
                             "pct seed=1 depth=3", "pct seed=2 depth=1024 steps=40", "preempt",
                             "preempt 0:0 12:1 18446744073709551615:3"}) {
        Schedule s = parse_schedule(text);
        EXPECT_EQ(schedule_text(s), std::string("schedule ") + text);
        EXPECT_EQ(parse_schedule(schedule_text(s)), s);
    }
}

TEST(MmrSchedule, RejectsWhatTheFileParserRejects) {
    struct Case {
        const char* text;
        const char* message;
    };
    for (const Case& c : {Case{"", "empty schedule"}, Case{"replay -1", "expected a number"},
                          Case{"random", "missing seed="}, Case{"random sed=5", "sed"},
                          Case{"pct seed=1 depth=0", "at least 1"},
                          Case{"random seed=18446744073709551616", "out of range"},
                          Case{"foo 1 2", "unknown schedule policy"},
                          Case{"replay 1\nreplay 2", "one line"},
                          Case{"preempt 12", "expected DECISION:CHOICE"},
                          Case{"preempt 12:", "expected a number"},
                          Case{"preempt :1", "expected a number"},
                          Case{"preempt 3:1:2", "expected a number"},
                          Case{"preempt 5:0 5:1", "does not come after decision 5"},
                          Case{"preempt 7:0 2:1", "sorted by decision"},
                          Case{"prempt 1:0", "did you mean"}}) {
        try {
            parse_schedule(c.text, "--schedule");
            ADD_FAILURE() << "accepted: " << c.text;
        } catch (const ParseError& e) {
            EXPECT_EQ(e.file(), "--schedule");
            EXPECT_NE(e.message().find(c.message), std::string::npos) << c.text << ": " << e.what();
        }
    }
}

// A bad entry is pointed at by column: the part of `D:K` that is wrong.
TEST(MmrSchedule, APreemptEntryErrorNamesItsColumn) {
    try {
        parse_schedule("preempt 4:1 9:x", "--schedule");
        ADD_FAILURE() << "accepted";
    } catch (const ParseError& e) {
        EXPECT_NE(std::string(e.what()).find("--schedule:1:15:"), std::string::npos) << e.what();
    }
}

// Every run's preempt_schedule replays it exactly, and has one entry per decision that
// did not let the current thread run on: none for the default schedule.
TEST(MmrSchedule, APreemptScheduleReplaysTheRunItDescribes) {
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=2 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  read 0x100000
thread P0.T1
  read 0x100000
  write 0x101000 3
  munmap 0x100000 pages=1
)";
    Program p = parse_mmr(text);
    RunOptions o;
    RunResult quiet = run_program(p, o);
    EXPECT_EQ(quiet.preempt_schedule, "schedule preempt");
    o.schedule = parse_schedule("preempt");
    EXPECT_EQ(run_program(p, o).trace_hash, quiet.trace_hash);  // == `schedule replay`
    size_t switched = 0;
    for (uint64_t seed = 0; seed < 40; ++seed) {
        o.schedule = parse_schedule("random seed=" + std::to_string(seed));
        RunResult r = run_program(p, o);
        o.schedule = parse_schedule(r.preempt_schedule);
        RunResult again = run_program(p, o);
        EXPECT_EQ(again.trace_hash, r.trace_hash) << r.preempt_schedule;
        EXPECT_EQ(again.schedule, r.schedule);  // Result.schedule stays the replay form
        EXPECT_EQ(again.preempt_schedule, r.preempt_schedule);
        switched += r.preempt_schedule != "schedule preempt";
    }
    EXPECT_GT(switched, 20u);
}

// A ModelError carries the schedule that replays the run up to it, and replay_mmr makes
// a program of it that fails the same way.  (Thrown here from the after_op hook: no
// valid program is known to raise one.)
TEST(MmrSchedule, AModelErrorCarriesItsReplay) {
    const char* text = R"(mmrace 1
process P0
thread P0.T0
  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed
  write 0x100000 1
  read 0x100000
thread P0.T1
  read 0x100000
)";
    auto boom = [](mm::Kernel&, const std::string& thread, size_t index) {
        if (thread == "P0.T0" && index == 1) throw ModelError("boom");
    };
    TestRunOptions o;
    o.schedule = parse_schedule("random seed=5");
    o.after_op = boom;
    std::string schedule;
    try {
        run_program(parse_mmr(text), o);
        FAIL() << "no ModelError";
    } catch (const ModelError& e) {
        EXPECT_STREQ(e.what(), "boom");
        schedule = e.schedule();
    }
    ASSERT_EQ(schedule.rfind("schedule replay", 0), 0u) << schedule;
    Program replay = parse_mmr(replay_mmr(parse_mmr(text), schedule));
    ASSERT_TRUE(replay.schedule);
    EXPECT_EQ(schedule_text(*replay.schedule), schedule);
    TestRunOptions again;
    again.after_op = boom;
    try {
        run_program(replay, again);
        FAIL() << "the replay did not fail";
    } catch (const ModelError& e) {
        EXPECT_EQ(e.schedule(), schedule);
    }
}

}  // namespace
