// The workload generator's insides, shared by its two files: workload.cpp draws each
// thread's ops and the kthreads, workload_patterns.cpp the patterns inserted among the
// ops (userfaultfd, sysfs, a debugger, KVM, counters, purges, CPU hotplug).
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "program/generate/workload.hpp"

namespace mmrace::gen::detail {

constexpr uint64_t kBase = 0x100000;
constexpr uint64_t kPmdRange = 0x8000;  // one PMD's range in the small geometry: 8 pages

// The streams of the features that came after the first soak (their seeds' salts).
constexpr Stream kKthreadStream{0x6b74687265616473ull /* "kthreads" */, true};
constexpr Stream kUffdStream{0x75666664ull /* "uffd" */};
constexpr Stream kPmdProtStream{0x706d6470ull /* "pmdp" */};
constexpr Stream kPmdMoveStream{0x706d646dull /* "pmdm" */};
constexpr Stream kFileThpStream{0x66746870ull /* "fthp" */};
constexpr Stream kUffdLifeStream{0x75666c66ull /* "uflf" */};
constexpr Stream kSysfsStream{0x73797366ull /* "sysf" */};
constexpr Stream kHotplugStream{0x63707568ull /* "cpuh" */};
constexpr Stream kDebuggerStream{0x64627567ull /* "dbug" */};
constexpr Stream kKvmStream{0x6b766d00ull /* "kvm" */};
constexpr Stream kPurgeStream{0x70726765ull /* "prge" */};
constexpr Stream kBurstStream{0x62727374ull /* "brst" */};
constexpr Stream kCounterStream{0x636e7472ull /* "cntr" */};
constexpr Stream kSwarmStream{0x7377726dull /* "swrm" */};


// One of `weights`' entries (0: that one is off), by one choice of their total.  With
// every entry on it is the choice the soak always drew; with one on, no choice at all.
template <size_t N>
size_t choose_weighted(ChoiceSource& c, const uint64_t (&weights)[N]) {
    uint64_t total = 0;
    for (uint64_t w : weights) total += w;
    uint64_t v = c.choose(total);
    for (size_t i = 0; i < N; ++i) {
        if (v < weights[i]) return i;
        v -= weights[i];
    }
    return N;  // every entry off: callers draw only when one is on
}

// The start of the window's PMD range i (0 or 1).
inline uint64_t pmd_range_at(uint64_t i) { return kBase + kPmdRange * i; }

// `op` (a line with its newline) inserted into a thread's op lines at a place drawn
// from c, never after an exit.
std::string insert_op(const std::string& ops, ChoiceSource& c, const std::string& op);

// One program of the shape, drawn from c: its threads' ops (workload.cpp), then the
// patterns inserted among them and the kthreads (workload_patterns.cpp).
class Workload {
public:
    Workload(ChoiceSource& c, const WorkloadShape& s)
        : c_(c), kthread_(c.stream(kKthreadStream)), uffd_(c.stream(kUffdStream)),
          pmd_prot_(c.stream(kPmdProtStream)), pmd_move_(c.stream(kPmdMoveStream)),
          file_thp_(c.stream(kFileThpStream)), uffd_life_(c.stream(kUffdLifeStream)),
          sysfs_(c.stream(kSysfsStream)), hotplug_(c.stream(kHotplugStream)),
          debugger_(c.stream(kDebuggerStream)), kvm_(c.stream(kKvmStream)), purge_(c.stream(kPurgeStream)),
          burst_(c.stream(kBurstStream)), counter_(c.stream(kCounterStream)), s_(s) {}

    std::string program();

private:
    using Draw = void (Workload::*)(std::ostringstream&, uint64_t);
    static const Draw kOps[];

    uint64_t page() { return kBase + c_.choose(s_.pages) * 4096; }
    uint64_t pages_from(uint64_t addr) {
        uint64_t left = (kBase + s_.pages * 4096ull - addr) / 4096;
        return 1 + c_.choose(std::min<uint64_t>(left, 4));
    }
    // A feature that is on 1 time in n: today at choice 0; with simplest_first at n - 1,
    // so that 0 is off.
    bool one_in(ChoiceSource& c, uint64_t n) {
        uint64_t v = c.choose(n);
        return s_.simplest_first ? v == n - 1 : v == 0;
    }
    const char* prot() {
        static const char* const p[] = {"rw", "rw", "rw", "r", "none"};
        return p[c_.choose(5)];
    }

    void thread_ops(std::ostringstream& out, bool first, int fork_child);
    void op(std::ostringstream& out);
    void anon_mmap(std::ostringstream& out, uint64_t a);
    void munmap(std::ostringstream& out, uint64_t a);
    void mprotect(std::ostringstream& out, uint64_t a);
    void madvise(std::ostringstream& out, uint64_t a);
    void read(std::ostringstream& out, uint64_t a);
    void write_or_gup(std::ostringstream& out, uint64_t a);
    void mremap(std::ostringstream& out, uint64_t a);
    void file_mmap(std::ostringstream& out, uint64_t a);
    void file_write(std::ostringstream& out, uint64_t a);
    void truncate(std::ostringstream& out, uint64_t a);
    void pageout_and_touch(std::ostringstream& out, uint64_t a);
    void after_file_collapse(std::ostringstream& out, uint64_t a);
    void gup_op(std::ostringstream& out, uint64_t a);
    bool uffd_handler(std::ostringstream& out, int p, int nthreads);
    void uffd_lifetimes(std::vector<std::string>& threads, std::ostringstream& handler);
    std::string register_op(ChoiceSource& c);
    std::string uffd_mix(std::string ops);
    std::string sysfs_mix(std::string ops);
    void patterns(std::vector<std::string>& threads);
    void debugger(std::vector<std::string>& threads);
    void kvm(std::vector<std::string>& threads);
    void counters(std::vector<std::string>& threads);
    std::string purge_op();
    void khugepaged(std::ostringstream& out, int nprocs);
    void kthread(std::ostringstream& out, int nprocs);
    void cpuhp(std::ostringstream& out);

    ChoiceSource& c_;
    ChoiceSource& kthread_;
    ChoiceSource& uffd_;
    ChoiceSource& pmd_prot_;
    ChoiceSource& pmd_move_;
    ChoiceSource& file_thp_;
    ChoiceSource& uffd_life_;
    ChoiceSource& sysfs_;
    ChoiceSource& hotplug_;
    ChoiceSource& debugger_;
    ChoiceSource& kvm_;
    ChoiceSource& purge_;
    ChoiceSource& burst_;
    ChoiceSource& counter_;
    WorkloadShape s_;
    uint64_t value_ = 0;
    std::vector<uint64_t> pin_pages_;  // the size of each pin written so far, by handle
};

}  // namespace mmrace::gen::detail
