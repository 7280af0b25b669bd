// The generator over a choice source (program/generate/, issue 15): the drivers, the
// shrinking direction, and that a seed still draws the soak's workloads.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "mmrace/mmr.hpp"
#include "mmrace/run.hpp"
#include "program/generate/generate.hpp"
#include "runtime/policy.hpp"

using namespace mmrace;
using namespace mmrace::gen;

namespace {

// FNV-1a over the texts of seeds [0, n), each followed by 0xff.
uint64_t workload_digest(const WorkloadShape& shape, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t seed = 0; seed < n; ++seed) {
        for (unsigned char ch : random_workload(seed, shape)) h = (h ^ ch) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

WorkloadShape soak_shape(const char* strategy) {
    WorkloadShape s;
    s.strategy = strategy;
    s.gup = s.peek_poke = true;
    return s;
}

// `len` bytes from SplitMix64(seed).
std::string random_bytes(uint64_t seed, size_t len) {
    rt::SplitMix64 rng(seed);
    std::string s(len, '\0');
    for (char& c : s) c = static_cast<char>(rng.next());
    return s;
}

// Runs a program briefly; every verdict is fine, an exception is not.
RunResult run_briefly(const Program& p) {
    RunOptions o;
    o.trace = false;
    o.budget = 20'000;
    return run_program(p, o);
}

}  // namespace

// The digests random_workload.cpp gave for seeds 0..1999 before the generator was one
// (the comparison over seeds 0..99999 and these shapes is in the issue 15 report).
TEST(Generator, SplitMix64DrawsTheSoaksWorkloadsAsBefore) {
    EXPECT_EQ(workload_digest({}, 2000), 0x2a626f1691921403ull);
    EXPECT_EQ(workload_digest(soak_shape("classic"), 2000), 0x25f804c6f99d4cd1ull);
    EXPECT_EQ(workload_digest(soak_shape("spf"), 2000), 0xb2f99e0de4e1d037ull);
    EXPECT_EQ(workload_digest(soak_shape("pervma"), 2000), 0x11e705268882c027ull);
    WorkloadShape x86;
    x86.geometry = "x86";
    EXPECT_EQ(workload_digest(x86, 2000), 0xc11181dbe7b81f6bull);
    WorkloadShape single;
    single.min_threads = single.max_threads = 1;
    single.fork = single.uffd = false;
    EXPECT_EQ(workload_digest(single, 2000), 0x01c03e2086b1824eull);
}

TEST(Generator, ASeedDrawsTheSameProgramEveryTime) {
    for (uint64_t seed = 0; seed < 50; ++seed) {
        EXPECT_EQ(random_workload(seed), random_workload(seed));
        EXPECT_EQ(print_mmr(random_program(seed)), print_mmr(random_program(seed)));
        SplitMix64Choices a(seed), b(seed);
        EXPECT_EQ(conform_program(a), conform_program(b));
    }
    EXPECT_NE(random_workload(1), random_workload(2));
}

// A stream of its own is untouched by what the main stream draws, and the other way round.
TEST(Generator, SplitMix64StreamsAreIndependentOfEachOther) {
    SplitMix64Choices a(7), b(7);
    const Stream side{0x1234};
    for (int i = 0; i < 10; ++i) a.choose(1000);  // only a's main stream moves
    for (int i = 0; i < 10; ++i) EXPECT_EQ(a.stream(side).choose(1u << 30), b.stream(side).choose(1u << 30));
    EXPECT_EQ(&a.stream(Stream{}), &a);
    EXPECT_EQ(&a.stream(side), &a.stream(side));
}

TEST(Generator, ByteChoicesReadBigEndianAndChooseZeroOnceTheInputRunsOut) {
    const std::string bytes("\x01\x02\x03", 3);
    ByteChoices c(bytes);
    EXPECT_EQ(c.choose(1), 0u);        // a choice of one reads nothing
    EXPECT_EQ(c.choose(256), 1u);      // one byte
    EXPECT_EQ(c.choose(1000), 0x0203u % 1000);  // two bytes
    EXPECT_EQ(c.consumed(), 3u);
    EXPECT_EQ(c.choose(1u << 20), 0u);  // past the end
    EXPECT_EQ(c.choose(UINT64_MAX), 0u);
    EXPECT_EQ(c.consumed(), 3u);
}

// The fuzzers' decoder is total: any byte string, of any length, decodes in every shape
// to a program that parses back from its text and runs to a verdict.
TEST(Generator, AnyByteStringDecodesToAProgramThatParsesBackAndRuns) {
    for (uint64_t seed = 0; seed < 120; ++seed) {
        std::string bytes = random_bytes(seed, seed % 7 == 0 ? seed : 16 * seed);
        SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(bytes.size()) + " bytes");
        ByteChoices valid_bytes(bytes);
        Program p = valid_program(valid_bytes);
        EXPECT_EQ(parse_mmr(print_mmr(p)), p);
        EXPECT_NO_THROW(run_briefly(p));

        ByteChoices workload_bytes(bytes);
        Program w = parse_mmr(workload(workload_bytes, WorkloadShape{}));
        EXPECT_NO_THROW(run_briefly(w));

        ByteChoices conform_bytes(bytes);
        Program c = parse_mmr(conform_program(conform_bytes));
        EXPECT_NO_THROW(run_briefly(c));
    }
}

// choose(0) everywhere (what a shrinker ends at) is the simplest program of each shape.
TEST(Generator, ChoosingZeroEverywhereGivesTheSimplestProgram) {
    ZeroChoices zero;
    EXPECT_EQ(print_mmr(valid_program(zero)), "mmrace 1\nconfig strategy=classic geometry=small\n");
    EXPECT_EQ(conform_program(zero),
              "mmrace 1\nprocess P0\nthread P0.T0\n"
              "  mmap 0x300000000000 pages=1 prot=rw flags=private,anon,fixed\n"
              "  write 0x300000000000 101\n  write 0x300000000000 102\n  write 0x300000000000 103\n");
    // The workload shape keeps a few seeded choices that are on at 0 (workload.hpp); it
    // still has one process, the fewest threads and the fewest ops.
    Program w = parse_mmr(workload(zero, WorkloadShape{}));
    ASSERT_EQ(w.processes.size(), 1u);
    EXPECT_EQ(w.processes[0].threads.size(), 2u);
    for (const Thread& t : w.processes[0].threads) EXPECT_LE(t.ops.size(), 6u) << t.name;
}

// With simplest_first, choosing 0 everywhere turns every feature off: one process, the
// fewest threads, each with its fewest ops (anonymous memory only), no kthread, no exit.
TEST(Generator, SimplestFirstChoosingZeroTurnsEveryFeatureOff) {
    WorkloadShape s;
    s.simplest_first = true;
    s.gup = s.peek_poke = s.sysfs = s.cpu_hotplug = true;
    ZeroChoices zero;
    EXPECT_EQ(workload(zero, s),
              "mmrace 1\nconfig strategy=classic geometry=small\nfile F0 pages=4\nfile F1 pages=2\n"
              "process P0\nthread P0.T0\n"
              "  mmap 0x100000 pages=16 prot=rw flags=private,anon,fixed\n"
              "  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed\n"
              "  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed\n"
              "  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed\n"
              "thread P0.T1\n"
              "  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed\n"
              "  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed\n"
              "  mmap 0x100000 pages=1 prot=rw flags=private,anon,fixed\n");
}

// Each feature switched off draws none of its ops over many seeds, where switched on it
// draws them; the rest of the workload still parses.
TEST(Generator, AFeatureSwitchedOffDrawsNoneOfItsOps) {
    struct Case {
        bool WorkloadShape::*feature;
        const char* text;
    };
    const Case cases[] = {
        {&WorkloadShape::fork, " forked\n"},           {&WorkloadShape::gup, "  pin "},
        {&WorkloadShape::peek_poke, "  poke "},        {&WorkloadShape::mremap, "  mremap "},
        {&WorkloadShape::mprotect, "  mprotect "},     {&WorkloadShape::dontneed, "advice=dontneed"},
        {&WorkloadShape::pageout, "advice=pageout"},   {&WorkloadShape::collapse, "advice=collapse"},
        {&WorkloadShape::uffd, "uffd_"},               {&WorkloadShape::files, "file"},
        {&WorkloadShape::shmem, "flags=shared,anon"},  {&WorkloadShape::thp, "advice=hugepage"},
        {&WorkloadShape::reclaim, "  reclaim "},       {&WorkloadShape::smaps, "  smaps "},
        {&WorkloadShape::khugepaged, "kthread khugepaged"}, {&WorkloadShape::sysfs, "  sysfs_write "},
        {&WorkloadShape::cpu_hotplug, "  cpu_hotplug\n"},
    };
    for (const Case& c : cases) {
        WorkloadShape on;
        on.gup = on.peek_poke = on.sysfs = on.cpu_hotplug = true;
        WorkloadShape off = on;
        off.*c.feature = false;
        int with = 0;
        for (uint64_t seed = 0; seed < 200; ++seed) {
            with += random_workload(seed, on).find(c.text) != std::string::npos;
            std::string text = random_workload(seed, off);
            ASSERT_EQ(text.find(c.text), std::string::npos) << c.text << " seed " << seed << "\n" << text;
            ASSERT_NO_THROW(parse_mmr(text)) << text;
        }
        EXPECT_GT(with, 0) << c.text;
    }
}

// mutants= and vma_lock= go into the config line.
TEST(Generator, TheWorkloadsConfigLineCarriesItsMutantsAndVmaLock) {
    WorkloadShape s;
    s.strategy = "pervma";
    s.vma_lock = "swapin,uffd";
    s.mutants = "pervma_fork_no_vma_write_lock";
    Program p = parse_mmr(random_workload(3, s));
    EXPECT_TRUE(p.config.vma_lock_swapin && p.config.vma_lock_uffd && !p.config.vma_lock_file);
    const std::string head =
        "mmrace 1\nconfig strategy=pervma geometry=small vma_lock=swapin,uffd mutants=pervma_fork_no_vma_write_lock\n";
    EXPECT_EQ(random_workload(3, s).substr(0, head.size()), head);
}

// The patterns only add lines (each draws from a stream of its own and writes values of
// its own): a workload without one is the workload with it, less some lines.  (Bursts
// lengthen a thread's ops before uffd_wp ops are placed among them, so without uffd.)
TEST(Generator, APatternOnlyAddsLinesToTheWorkload) {
    auto lines = [](const std::string& text) {
        std::vector<std::string> out;
        std::istringstream in(text);
        for (std::string l; std::getline(in, l);) out.push_back(l);
        return out;
    };
    for (bool WorkloadShape::*pattern :
         {&WorkloadShape::debugger, &WorkloadShape::kvm, &WorkloadShape::purge, &WorkloadShape::bursts,
          &WorkloadShape::counters}) {
        WorkloadShape off;
        off.gup = off.peek_poke = true;
        off.uffd = pattern != &WorkloadShape::bursts;
        WorkloadShape on = off;
        on.*pattern = true;
        int added = 0;
        for (uint64_t seed = 0; seed < 100; ++seed) {
            auto less = lines(random_workload(seed, off)), more = lines(random_workload(seed, on));
            size_t i = 0;
            for (const auto& l : more) i += i < less.size() && less[i] == l;
            ASSERT_EQ(i, less.size()) << "seed " << seed << "\n" << random_workload(seed, on);
            added += more.size() > less.size();
            ASSERT_NO_THROW(parse_mmr(random_workload(seed, on)));
        }
        EXPECT_GT(added, 20);
    }
}

// Swarm testing: a feature that is on is in about half the programs (its own stream: the
// rest of the seed's draws are as without swarm until the feature's first choice).
TEST(Generator, SwarmKeepsEachFeatureInAboutHalfThePrograms) {
    WorkloadShape s;
    s.swarm = true;
    int forks = 0, files = 0;
    for (uint64_t seed = 0; seed < 400; ++seed) {
        std::string text = random_workload(seed, s);
        forks += text.find(" forked\n") != std::string::npos;
        files += text.find("file F0") != std::string::npos;
        ASSERT_NO_THROW(parse_mmr(text)) << text;
    }
    WorkloadShape all;
    int all_forks = 0;
    for (uint64_t seed = 0; seed < 400; ++seed) all_forks += random_workload(seed, all).find(" forked\n") != std::string::npos;
    EXPECT_NEAR(files, 200, 40);  // files draw no choice of their own: exactly the swarm's half
    EXPECT_LT(forks, all_forks * 3 / 4);
    EXPECT_GT(forks, all_forks / 4);
}
