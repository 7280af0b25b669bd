// The workload shape (workload.hpp).  Every draw is in the order random_workload.cpp
// made it, on the stream it used, so SplitMix64Choices(seed) gives the soak the
// programs it always had (tests/test_generator.cpp pins a digest of seeds 0..99999).
#include "program/generate/workload.hpp"

#include <algorithm>
#include <iterator>
#include <sstream>
#include <vector>

#include "program/generate/workload_draw.hpp"

namespace mmrace {

namespace gen {

namespace detail {

// The feature switches swarm testing draws, in the order it draws them.
constexpr bool WorkloadShape::*kFeatureSwitches[] = {
    &WorkloadShape::fork,     &WorkloadShape::gup,        &WorkloadShape::peek_poke, &WorkloadShape::mremap,
    &WorkloadShape::mprotect, &WorkloadShape::dontneed,   &WorkloadShape::pageout,   &WorkloadShape::collapse,
    &WorkloadShape::uffd,     &WorkloadShape::files,      &WorkloadShape::shmem,     &WorkloadShape::thp,
    &WorkloadShape::reclaim,  &WorkloadShape::smaps,      &WorkloadShape::khugepaged, &WorkloadShape::sysfs,
    &WorkloadShape::cpu_hotplug, &WorkloadShape::debugger, &WorkloadShape::kvm,      &WorkloadShape::purge,
    &WorkloadShape::bursts,   &WorkloadShape::counters,
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

}  // namespace detail

std::string workload(ChoiceSource& choices, const WorkloadShape& shape) {
    return detail::Workload(choices, shape).program();
}

}  // namespace gen

std::string random_workload(uint64_t seed, const WorkloadShape& shape) {
    gen::SplitMix64Choices choices(seed);
    return gen::workload(choices, shape);
}

}  // namespace mmrace
