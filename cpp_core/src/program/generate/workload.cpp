// The workload shape (workload.hpp).  Every draw is in the order random_workload.cpp
// made it, on the stream it used, so SplitMix64Choices(seed) gives the soak the
// programs it always had (tests/test_generator.cpp pins a digest of seeds 0..99999).
#include "program/generate/workload.hpp"

#include <algorithm>
#include <iterator>
#include <sstream>
#include <vector>

namespace mmrace {

namespace gen {

namespace {

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

// The feature switches swarm testing draws, in the order it draws them.
constexpr bool WorkloadShape::*kFeatureSwitches[] = {
    &WorkloadShape::fork,     &WorkloadShape::gup,        &WorkloadShape::peek_poke, &WorkloadShape::mremap,
    &WorkloadShape::mprotect, &WorkloadShape::dontneed,   &WorkloadShape::pageout,   &WorkloadShape::collapse,
    &WorkloadShape::uffd,     &WorkloadShape::files,      &WorkloadShape::shmem,     &WorkloadShape::thp,
    &WorkloadShape::reclaim,  &WorkloadShape::smaps,      &WorkloadShape::khugepaged, &WorkloadShape::sysfs,
    &WorkloadShape::cpu_hotplug, &WorkloadShape::debugger, &WorkloadShape::kvm,      &WorkloadShape::purge,
    &WorkloadShape::bursts,   &WorkloadShape::counters,
};

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
uint64_t pmd_range_at(uint64_t i) { return kBase + kPmdRange * i; }

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

// A thread's ops, in the order of the choice that picks them (their weights are in op()).
const Workload::Draw Workload::kOps[] = {
    &Workload::anon_mmap, &Workload::munmap,    &Workload::mprotect,   &Workload::madvise,
    &Workload::read,      &Workload::write_or_gup, &Workload::mremap,  &Workload::file_mmap,
    &Workload::file_write, &Workload::truncate, &Workload::pageout_and_touch,
};

std::string Workload::program() {
    if (s_.swarm) {
        ChoiceSource& swarm = c_.stream(kSwarmStream);
        for (bool WorkloadShape::*f : kFeatureSwitches)
            if (s_.*f) s_.*f = swarm.choose(2) != 0;
    }
    std::ostringstream out;
    out << "mmrace 1\nconfig strategy=" << s_.strategy << " geometry=" << s_.geometry;
    if (!s_.vma_lock.empty()) out << " vma_lock=" << s_.vma_lock;
    if (!s_.mutants.empty()) out << " mutants=" << s_.mutants;
    out << "\n";
    if (s_.files) out << "file F0 pages=4\nfile F1 pages=2\n";
    int nprocs = s_.fork ? 1 + static_cast<int>(c_.choose(3)) : 1;  // P0 + forked
    for (int p = 0; p < nprocs; ++p) {
        out << "process P" << p << (p ? " forked" : "") << "\n";
        int nthreads = p ? 1 + static_cast<int>(c_.choose(2))
                         : s_.min_threads + static_cast<int>(c_.choose(s_.max_threads - s_.min_threads + 1));
        // Process p forks process p+1 from one of its threads.
        int forker = p + 1 < nprocs ? static_cast<int>(c_.choose(nthreads)) : -1;
        std::vector<std::string> threads;
        for (int t = 0; t < nthreads; ++t) {
            std::ostringstream ops;
            thread_ops(ops, p == 0 && t == 0, t == forker ? p + 1 : -1);
            threads.push_back(s_.uffd ? uffd_mix(ops.str()) : ops.str());
        }
        std::ostringstream handler;
        if (s_.uffd && uffd_handler(handler, p, nthreads)) uffd_lifetimes(threads, handler);
        patterns(threads);
        for (int t = 0; t < nthreads; ++t) out << "thread P" << p << ".T" << t << "\n" << threads[t];
        out << handler.str();
    }
    if (s_.khugepaged) khugepaged(out, nprocs);
    if (s_.reclaim || s_.smaps) kthread(out, nprocs);
    if (s_.cpu_hotplug) cpuhp(out);
    return out.str();
}

void Workload::thread_ops(std::ostringstream& out, bool first, int fork_child) {
    if (first) out << "  mmap 0x" << std::hex << kBase << std::dec << " pages=" << s_.pages
                   << " prot=rw flags=private,anon,fixed\n";
    if (first && s_.thp && one_in(c_, 3))
        out << "  madvise 0x" << std::hex << kBase << std::dec << " pages=" << s_.pages
            << " advice=hugepage\n";
    int n = s_.min_ops + static_cast<int>(c_.choose(s_.max_ops - s_.min_ops + 1));
    int fork_at = fork_child >= 0 ? static_cast<int>(c_.choose(n)) : -1;
    for (int i = 0; i < n; ++i) {
        if (i == fork_at) out << "  fork P" << fork_child << "\n";
        op(out);
    }
    if (one_in(c_, 8)) out << "  exit\n";
}

// One op at a page of the window, its kind drawn by weight (out of 28 with every
// feature on) among the kOps whose features are on.
void Workload::op(std::ostringstream& out) {
    uint64_t a = page();
    bool any_advice = s_.dontneed || s_.pageout || s_.thp || s_.collapse;
    const uint64_t weights[] = {2, 1, 2u * s_.mprotect, 1u * any_advice, 6, 8, 2u * s_.mremap,
                                2u * s_.files, 1u * s_.files, 1u * s_.files, 2u * s_.pageout};
    static_assert(std::size(weights) == std::size(kOps));
    (this->*kOps[choose_weighted(c_, weights)])(out, a);
}

void Workload::anon_mmap(std::ostringstream& out, uint64_t a) {
    static const char* const how[] = {"fixed", "fixed_noreplace", "fixed,populate", "",
                                      "fixed,growsdown"};
    const char* h = how[c_.choose(5)];
    bool shared = s_.shmem && one_in(c_, 4);
    bool shmem_pmd = shared && s_.collapse && c_.choose(2);
    uint64_t n = pages_from(a);
    if (shmem_pmd) {
        // shmem over a whole PMD range (8 pages in the small geometry), a page
        // written, then MADV_COLLAPSE: a file THP (collapse_file).
        a = pmd_range_at(c_.choose(2)), n = 8;
        h = how[c_.choose(3)];
    }
    out << "  mmap 0x" << std::hex << a << std::dec << " pages=" << n << " prot=" << prot()
        << " flags=" << (shared ? "shared" : "private") << ",anon" << (*h ? "," : "") << h << "\n";
    if (shmem_pmd) {
        out << "  write 0x" << std::hex << a + 4096 * c_.choose(8) << std::dec << " " << ++value_ << "\n";
        out << "  madvise 0x" << std::hex << a << std::dec << " pages=8 advice=collapse\n";
        after_file_collapse(out, a);
    }
}

void Workload::munmap(std::ostringstream& out, uint64_t a) {
    out << "  munmap 0x" << std::hex << a << std::dec << " pages=" << pages_from(a) << "\n";
}

void Workload::mprotect(std::ostringstream& out, uint64_t a) {
    uint64_t n = pages_from(a);
    const char* p = prot();
    // Half of them over a whole PMD range, half of those PROT_NONE: a huge PMD goes
    // PROT_NONE and back in place (change_huge_pmd).
    if (s_.thp && one_in(pmd_prot_, 2)) {
        static const char* const pmd_prot[] = {"none", "none", "rw", "r"};
        a = pmd_range_at(pmd_prot_.choose(2)), n = 8;
        p = pmd_prot[pmd_prot_.choose(4)];
    }
    out << "  mprotect 0x" << std::hex << a << std::dec << " pages=" << n << " prot=" << p << "\n";
}

void Workload::madvise(std::ostringstream& out, uint64_t a) {
    // pageout twice as often as the rest: swap-out and swap-in race with faults, fork,
    // munmap, mremap and mprotect.
    static const char* const adv[] = {"dontneed", "pageout", "pageout", "hugepage", "nohugepage", "collapse"};
    const uint64_t on[] = {s_.dontneed, s_.pageout, s_.pageout, s_.thp, s_.thp, s_.collapse};
    const char* advice = adv[choose_weighted(c_, on)];
    // MADV_COLLAPSE and MADV_HUGEPAGE of a whole PMD range (8 pages in the small
    // geometry), so that THP faults and collapses happen.
    bool pmd_range = advice == adv[5] || (advice == adv[3] && c_.choose(2));
    if (pmd_range) a = pmd_range_at(c_.choose(2));
    out << "  madvise 0x" << std::hex << a << std::dec << " pages=" << (pmd_range ? 8 : pages_from(a))
        << " advice=" << advice << "\n";
}

void Workload::read(std::ostringstream& out, uint64_t a) {
    out << "  read 0x" << std::hex << a + 8 * c_.choose(3) << std::dec << "\n";
}

void Workload::write_or_gup(std::ostringstream& out, uint64_t a) {
    if ((s_.gup || s_.peek_poke) && one_in(c_, 3)) return gup_op(out, a);
    uint64_t at = a + 8 * c_.choose(3), v = ++value_;
    out << "  write 0x" << std::hex << at << std::dec << " " << v << "\n";
    if (s_.bursts)  // the loop's next stores (a memset): the same value to the words after it
        for (uint64_t n = burst_.choose(8); n; --n) out << "  write 0x" << std::hex << (at += 8) << std::dec << " " << v << "\n";
}

void Workload::mremap(std::ostringstream& out, uint64_t a) {
    uint64_t n = pages_from(a), m = 1 + c_.choose(4);
    uint64_t to = page();
    // A quarter of them move one whole PMD range onto the other: a huge PMD there
    // moves as it is (move_huge_pmd).
    bool whole_pmd = s_.thp && one_in(pmd_move_, 4);
    if (whole_pmd) {
        uint64_t from = pmd_move_.choose(2);
        a = pmd_range_at(from), to = pmd_range_at(1 - from), n = m = 8;
    }
    out << "  mremap 0x" << std::hex << a << std::dec << " pages=" << n << " new_pages=" << m;
    if (c_.choose(2) && !whole_pmd) out << " flags=maymove";
    else if (to + m * 4096 <= kBase + s_.pages * 4096ull)
        out << " flags=maymove,fixed to=0x" << std::hex << to << std::dec;
    out << "\n";
}

void Workload::file_mmap(std::ostringstream& out, uint64_t a) {
    static const char* const share[] = {"private", "shared"};
    out << "  mmap 0x" << std::hex << a << std::dec << " pages=" << pages_from(a) << " prot=" << prot()
        << " flags=" << share[c_.choose(2)] << ",file:F" << c_.choose(2) << ":" << c_.choose(3) << ",fixed"
        << (one_in(c_, 4) ? ",populate" : "") << "\n";
}

void Workload::file_write(std::ostringstream& out, uint64_t) {
    out << "  file_write F" << c_.choose(2) << " " << c_.choose(5) << " " << ++value_ << "\n";
}

void Workload::truncate(std::ostringstream& out, uint64_t) {
    out << "  truncate F" << c_.choose(2) << " pages=" << c_.choose(5) << "\n";
}

// pageout, then touch the page again: a swap-in.
void Workload::pageout_and_touch(std::ostringstream& out, uint64_t a) {
    out << "  madvise 0x" << std::hex << a << std::dec << " pages=" << pages_from(a) << " advice=pageout\n";
    if (c_.choose(2)) out << "  read 0x" << std::hex << a << std::dec << "\n";
    else out << "  write 0x" << std::hex << a << std::dec << " " << ++value_ << "\n";
}

// After a shmem MADV_COLLAPSE at a (its THP PMD-mapped): ops over it that fault it in
// again (do_set_pmd, or PTEs once the VMA no longer covers the range), page it out
// (split_folio), zap it, or unmap part of it.
void Workload::after_file_collapse(std::ostringstream& out, uint64_t a) {
    for (uint64_t n = file_thp_.choose(3); n; --n) {
        uint64_t at = a + 4096 * file_thp_.choose(8), pages = 1 + file_thp_.choose(8);
        pages = std::min<uint64_t>(pages, (a + kPmdRange - at) / 4096);
        out << std::hex;
        const uint64_t on[] = {s_.dontneed, s_.pageout, 1, 1, 1, 1};
        switch (choose_weighted(file_thp_, on)) {
            case 0: out << "  madvise 0x" << a << " pages=8 advice=dontneed\n"; break;
            case 1: out << "  madvise 0x" << at << std::dec << " pages=" << pages << " advice=pageout\n"; break;
            case 2: out << "  munmap 0x" << at << std::dec << " pages=" << pages << "\n"; break;
            case 3: out << "  madvise 0x" << a << " pages=8 advice=nohugepage\n"; break;
            case 4: out << "  write 0x" << at << std::dec << " " << ++value_ << "\n"; break;
            default: break;
        }
        out << std::hex << "  read 0x" << at + 8 * file_thp_.choose(3) << std::dec << "\n";
    }
}

// The GUP ops: pins (handles are the pin ops in file order, which is the order they are
// written in), dma through a pin written earlier, gup (with `gup`), and /proc/pid/mem
// (with `peek_poke`).
void Workload::gup_op(std::ostringstream& out, uint64_t a) {
    uint64_t pick = s_.gup ? c_.choose(s_.peek_poke ? 8 : 7) : 7;
    if (pin_pages_.empty() && pick < 4) pick = 4;
    out << std::hex;
    if (pick < 4) {
        size_t h = c_.choose(pin_pages_.size());
        uint64_t off = 4096 * c_.choose(pin_pages_[h]) + 8 * c_.choose(3);
        if (pick == 0) out << "  unpin H" << std::dec << h << "\n";
        else if (pick == 1) out << "  dma_read H" << std::dec << h << " " << off << "\n";
        else out << "  dma_write H" << std::dec << h << " " << off << " " << ++value_ << "\n";
    } else if (pick < 6) {
        static const char* flags[] = {"", " flags=write", " flags=longterm", " flags=fast",
                                      " flags=write,fast", " flags=write,longterm", " flags=longterm,fast"};
        uint64_t n = pages_from(a);
        out << "  pin 0x" << a << std::dec << " pages=" << n << flags[c_.choose(7)] << "\n";
        pin_pages_.push_back(n);
    } else if (pick == 6) {
        static const char* flags[] = {"", " flags=write", " flags=force", " flags=write,force",
                                      " flags=unlocked", " flags=write,unlocked", " flags=fast_only",
                                      " flags=write,fast_only"};
        out << "  gup 0x" << a << std::dec << " pages=" << pages_from(a) << flags[c_.choose(8)] << "\n";
    } else if (c_.choose(2)) {
        out << "  peek 0x" << a + 8 * c_.choose(3) << std::dec << "\n";
    } else {
        out << "  poke 0x" << a + 8 * c_.choose(3) << std::dec << " " << ++value_ << "\n";
    }
    out << std::dec;
}

// userfaultfd.  Deadlock-free by construction: only a handler thread registers, and it
// serves right after (a process's faults wait only while a handler of it may still
// serve; the last one to return closes the uffd).
bool Workload::uffd_handler(std::ostringstream& out, int p, int nthreads) {
    if (uffd_.choose(3) == 0) return false;
    out << "thread P" << p << ".T" << nthreads << "\n";
    for (uint64_t n = p ? uffd_.choose(2) : 1 + uffd_.choose(2); n; --n) out << register_op(uffd_);
    out << "  uffd_serve " << uffd_.choose(8) << " value=" << 1000 + uffd_.choose(1000) << "\n";
    return true;
}

// `op` (a line with its newline) inserted into a thread's op lines at a place drawn
// from c, never after an exit.
std::string insert_op(const std::string& ops, ChoiceSource& c, const std::string& op) {
    std::vector<std::string> lines;
    std::istringstream in(ops);
    for (std::string l; std::getline(in, l);) lines.push_back(l + "\n");
    size_t end = lines.size() - (!lines.empty() && lines.back() == "  exit\n");
    lines.insert(lines.begin() + static_cast<long>(c.choose(end + 1)), op);
    std::string s;
    for (const auto& l : lines) s += l;
    return s;
}

// The uffd's lifetime against its registrations (issue 14), in a process that has a
// handler: the other threads register ranges too, so a registration outlives a handler
// that has returned (the close ends it) and a fork, mremap or fault comes after the
// close; the handler goes on after its serve with ops on the closed uffd (EBADF) and
// faults in what was registered.  Deadlock-free still: a process's faults wait only
// while one of its handlers serves, and the last one to return closes the uffd.
void Workload::uffd_lifetimes(std::vector<std::string>& threads, std::ostringstream& handler) {
    if (!one_in(uffd_life_, 2)) return;
    for (std::string& ops : threads)
        if (uffd_life_.choose(2)) ops = insert_op(ops, uffd_life_, register_op(uffd_life_));
    for (uint64_t n = uffd_life_.choose(3); n; --n) {
        uint64_t a = kBase + uffd_life_.choose(s_.pages) * 4096;
        switch (uffd_life_.choose(5)) {
            case 0: handler << register_op(uffd_life_); break;
            case 1: handler << "  uffd_wp 0x" << std::hex << a << std::dec << " pages=1 off\n"; break;
            case 2: handler << "  uffd_serve " << uffd_life_.choose(2) << " value=7\n"; break;
            case 3: handler << "  read 0x" << std::hex << a << std::dec << "\n"; break;
            default: handler << "  write 0x" << std::hex << a << std::dec << " " << ++value_ << "\n";
        }
    }
}

std::string Workload::register_op(ChoiceSource& c) {
    uint64_t a = kBase + c.choose(s_.pages) * 4096;
    uint64_t left = (kBase + s_.pages * 4096ull - a) / 4096;
    std::ostringstream op;
    op << "  uffd_register 0x" << std::hex << a << std::dec << " pages=" << 1 + c.choose(std::min<uint64_t>(left, 8))
       << (c.choose(2) ? " mode=missing\n" : " mode=wp\n");
    return op.str();
}

// uffd_wp on/off ops inserted into a thread's op lines (never after an exit).
std::string Workload::uffd_mix(std::string ops) {
    for (uint64_t n = uffd_.choose(4); n; --n) {
        uint64_t a = kBase + uffd_.choose(s_.pages) * 4096;
        std::ostringstream op;
        op << "  uffd_wp 0x" << std::hex << a << std::dec << " pages=" << 1 + uffd_.choose(4)
           << (uffd_.choose(3) ? " on\n" : " off\n");
        ops = insert_op(ops, uffd_, op.str());
    }
    return ops;
}

// khugepaged collapsing the window's PMD ranges (small geometry: 8 pages each).
void Workload::khugepaged(std::ostringstream& out, int nprocs) {
    if (!c_.choose(2)) return;
    out << "kthread khugepaged\n";
    for (uint64_t n = 1 + c_.choose(3); n; --n)
        out << "  collapse P" << c_.choose(static_cast<uint64_t>(nprocs)) << " 0x" << std::hex
            << pmd_range_at(c_.choose(2)) << std::dec << "\n";
}

// Half the workloads get a kthread K0: reclaim races faults, fork, munmap, mremap,
// madvise and exit; smaps holds mmap_lock against them.
void Workload::kthread(std::ostringstream& out, int nprocs) {
    if (!one_in(kthread_, 2)) return;
    out << "kthread K0\n";
    for (uint64_t n = 2 + kthread_.choose(5); n; --n) {
        bool reclaim = s_.reclaim && (!s_.smaps || kthread_.choose(3));
        if (reclaim) out << "  reclaim " << 1 + kthread_.choose(16) << "\n";
        else out << "  smaps P" << kthread_.choose(static_cast<uint64_t>(nprocs)) << "\n";
    }
}

// sysfs_write ops inserted into a thread's op lines (never after an exit): the thread
// writes a word of its window to a sysfs attribute (kernfs_fop_write copies it from
// user memory under the file's active reference, s_active).
std::string Workload::sysfs_mix(std::string ops) {
    for (uint64_t n = sysfs_.choose(3); n; --n) {
        std::ostringstream op;
        op << "  sysfs_write 0x" << std::hex << kBase + sysfs_.choose(s_.pages) * 4096 + 8 * sysfs_.choose(3)
           << std::dec << "\n";
        ops = insert_op(ops, sysfs_, op.str());
    }
    return ops;
}

// The patterns (WorkloadShape: sysfs, debugger, kvm, purge) inserted into a process's
// threads, after everything else is drawn.
void Workload::patterns(std::vector<std::string>& threads) {
    if (s_.sysfs)
        for (std::string& ops : threads) ops = sysfs_mix(ops);
    if (s_.debugger && s_.files && debugger_.choose(4)) debugger(threads);
    if (s_.kvm && kvm_.choose(2)) kvm(threads);
    if (s_.counters && counter_.choose(4)) counters(threads);
    if (s_.purge)
        for (std::string& ops : threads)
            for (uint64_t n = purge_.choose(3); n; --n) ops = insert_op(ops, purge_, purge_op());
}

// MADV_DONTNEED of a few pages, or of the whole window (an arena given back).
std::string Workload::purge_op() {
    std::ostringstream op;
    if (purge_.choose(2)) {
        op << "  madvise 0x" << std::hex << kBase << std::dec << " pages=" << s_.pages << " advice=dontneed\n";
        return op.str();
    }
    uint64_t a = kBase + purge_.choose(s_.pages) * 4096;
    uint64_t left = (kBase + s_.pages * 4096ull - a) / 4096;
    op << "  madvise 0x" << std::hex << a << std::dec << " pages=" << 1 + purge_.choose(std::min<uint64_t>(left, 4))
       << " advice=dontneed\n";
    return op.str();
}

// Per-thread counters in one page: each thread stores to its own word a few times and
// reads another thread's.
void Workload::counters(std::vector<std::string>& threads) {
    uint64_t page = kBase + counter_.choose(s_.pages) * 4096;
    for (size_t t = 0; t < threads.size(); ++t)
        for (uint64_t n = 1 + counter_.choose(4); n; --n) {
            std::ostringstream op;
            if (counter_.choose(3))
                op << "  write 0x" << std::hex << page + 8 * t << std::dec << " " << 1 + counter_.choose(1000) << "\n";
            else
                op << "  read 0x" << std::hex << page + 8 * counter_.choose(threads.size()) << std::dec << "\n";
            threads[t] = insert_op(threads[t], counter_, op.str());
        }
}

// A debugger pokes breakpoints into a text page (a private read-only file mapping;
// each poke breaks COW with FOLL_FORCE) and the tracee reads it; another thread maps
// the same file page shared and reads the page cache.
void Workload::debugger(std::vector<std::string>& threads) {
    uint64_t file = debugger_.choose(2), pgoff = debugger_.choose(2);
    std::ostringstream text, other;
    uint64_t a = kBase + debugger_.choose(s_.pages) * 4096;
    text << std::hex << "  mmap 0x" << a << std::dec << " pages=1 prot=r flags=private,file:F" << file << ":"
         << pgoff << ",fixed\n";
    for (uint64_t n = 1 + debugger_.choose(3); n; --n)
        text << std::hex << "  poke 0x" << a + 8 * debugger_.choose(3) << std::dec << " 204\n";  // int3
    text << std::hex << "  read 0x" << a << std::dec << "\n";
    size_t t = debugger_.choose(threads.size());
    threads[t] = insert_op(threads[t], debugger_, text.str());
    uint64_t b = kBase + debugger_.choose(s_.pages) * 4096;
    other << std::hex << "  mmap 0x" << b << std::dec << " pages=1 prot=r flags=shared,file:F" << file << ":"
          << pgoff << ",fixed\n";
    other << std::hex << "  read 0x" << b << std::dec << "\n";
    t = debugger_.choose(threads.size());
    threads[t] = insert_op(threads[t], debugger_, other.str());
}

// A VMM maps guest memory (shmem over a PMD range) and touches it; a vCPU thread
// translates guest pages through get_user_page_fast_only again and again; the VMM
// may collapse the range into a THP.
void Workload::kvm(std::vector<std::string>& threads) {
    uint64_t r = pmd_range_at(kvm_.choose(2));
    std::ostringstream vmm, vcpu;
    vmm << std::hex << "  mmap 0x" << r << " pages=8 prot=rw flags=shared,anon,fixed"
        << (kvm_.choose(2) ? ",populate" : "") << "\n";
    vmm << "  write 0x" << r + 4096 * kvm_.choose(8) << std::dec << " " << 1 + kvm_.choose(1000) << "\n";
    if (kvm_.choose(2)) vmm << std::hex << "  madvise 0x" << r << std::dec << " pages=8 advice=collapse\n";
    size_t t = kvm_.choose(threads.size());
    threads[t] = insert_op(threads[t], kvm_, vmm.str());
    for (uint64_t n = 2 + kvm_.choose(7); n; --n)
        vcpu << std::hex << "  gup 0x" << r + 4096 * kvm_.choose(8) << std::dec << " pages=1 flags="
             << (kvm_.choose(2) ? "write," : "") << "fast_only\n";
    t = kvm_.choose(threads.size());
    threads[t] = insert_op(threads[t], kvm_, vcpu.str());
}

// Half the workloads get a kthread cpuhp taking a CPU down and up again (under
// cpu_hotplug_lock; the CPU's sysfs files go away and come back), once or twice.
void Workload::cpuhp(std::ostringstream& out) {
    if (!hotplug_.choose(2)) return;
    out << "kthread cpuhp\n";
    for (uint64_t n = 1 + hotplug_.choose(2); n; --n) out << "  cpu_hotplug\n";
}

}  // namespace

std::string workload(ChoiceSource& choices, const WorkloadShape& shape) {
    return Workload(choices, shape).program();
}

}  // namespace gen

std::string random_workload(uint64_t seed, const WorkloadShape& shape) {
    gen::SplitMix64Choices choices(seed);
    return gen::workload(choices, shape);
}

}  // namespace mmrace
