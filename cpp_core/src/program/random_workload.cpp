#include "program/random_workload.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

#include "runtime/policy.hpp"

namespace mmrace {

namespace {

constexpr uint64_t kBase = 0x100000;
constexpr uint64_t kPmdRange = 0x8000;  // one PMD's range in the small geometry: 8 pages

// The start of the window's PMD range i (0 or 1).
uint64_t pmd_range_at(uint64_t i) { return kBase + kPmdRange * i; }

class Gen {
public:
    Gen(uint64_t seed, const WorkloadShape& s)
        : rng_(seed), krng_(seed ^ 0x6b74687265616473ull),
          uffd_rng_(seed ^ 0x75666664ull /* "uffd" */),
          pmd_prot_rng_(seed ^ 0x706d6470ull /* "pmdp" */),
          pmd_move_rng_(seed ^ 0x706d646dull /* "pmdm" */),
          file_thp_rng_(seed ^ 0x66746870ull /* "fthp" */),
          uffd_life_rng_(seed ^ 0x75666c66ull /* "uflf" */), s_(s) {}

    std::string program() {
        std::ostringstream out;
        out << "mmrace 1\nconfig strategy=" << s_.strategy << " geometry=" << s_.geometry << "\n";
        out << "file F0 pages=4\nfile F1 pages=2\n";
        int nprocs = s_.fork ? 1 + static_cast<int>(rng_.below(3)) : 1;  // P0 + forked
        for (int p = 0; p < nprocs; ++p) {
            out << "process P" << p << (p ? " forked" : "") << "\n";
            int nthreads = p ? 1 + static_cast<int>(rng_.below(2))
                             : s_.min_threads + static_cast<int>(rng_.below(s_.max_threads - s_.min_threads + 1));
            // Process p forks process p+1 from one of its threads.
            int forker = p + 1 < nprocs ? static_cast<int>(rng_.below(nthreads)) : -1;
            std::vector<std::string> threads;
            for (int t = 0; t < nthreads; ++t) {
                std::ostringstream ops;
                thread_ops(ops, p == 0 && t == 0, t == forker ? p + 1 : -1);
                threads.push_back(s_.uffd ? uffd_mix(ops.str()) : ops.str());
            }
            std::ostringstream handler;
            if (s_.uffd && uffd_handler(handler, p, nthreads)) uffd_lifetimes(threads, handler);
            for (int t = 0; t < nthreads; ++t) out << "thread P" << p << ".T" << t << "\n" << threads[t];
            out << handler.str();
        }
        // khugepaged collapsing the window's PMD ranges (small geometry: 8 pages each).
        if (rng_.below(2)) {
            out << "kthread khugepaged\n";
            for (uint64_t n = 1 + rng_.below(3); n; --n)
                out << "  collapse P" << rng_.below(static_cast<uint64_t>(nprocs)) << " 0x" << std::hex
                    << pmd_range_at(rng_.below(2)) << std::dec << "\n";
        }
        if (s_.kthreads) kthread(out, nprocs);
        return out.str();
    }

private:
    uint64_t page() { return kBase + rng_.below(s_.pages) * 4096; }
    uint64_t pages_from(uint64_t addr) {
        uint64_t left = (kBase + s_.pages * 4096ull - addr) / 4096;
        return 1 + rng_.below(std::min<uint64_t>(left, 4));
    }
    const char* prot() {
        static const char* const p[] = {"rw", "rw", "rw", "r", "none"};
        return p[rng_.below(5)];
    }

    void op(std::ostringstream& out) {
        uint64_t a = page();
        switch (rng_.below(28)) {
            case 26: case 27:  // pageout, then touch the page again: a swap-in
                out << "  madvise 0x" << std::hex << a << std::dec << " pages=" << pages_from(a)
                    << " advice=pageout\n";
                if (rng_.below(2)) out << "  read 0x" << std::hex << a << std::dec << "\n";
                else out << "  write 0x" << std::hex << a << std::dec << " " << ++value_ << "\n";
                break;
            case 22: case 23: {
                static const char* const share[] = {"private", "shared"};
                out << "  mmap 0x" << std::hex << a << std::dec << " pages=" << pages_from(a)
                    << " prot=" << prot() << " flags=" << share[rng_.below(2)] << ",file:F"
                    << rng_.below(2) << ":" << rng_.below(3) << ",fixed"
                    << (rng_.below(4) ? "" : ",populate") << "\n";
                break;
            }
            case 24: out << "  file_write F" << rng_.below(2) << " " << rng_.below(5) << " " << ++value_ << "\n"; break;
            case 25: out << "  truncate F" << rng_.below(2) << " pages=" << rng_.below(5) << "\n"; break;
            case 20: case 21: {
                uint64_t n = pages_from(a), m = 1 + rng_.below(4);
                uint64_t to = page();
                // A quarter of them move one whole PMD range onto the other: a huge PMD
                // there moves as it is (move_huge_pmd).  A stream of its own, as above.
                bool whole_pmd = pmd_move_rng_.below(4) == 0;
                if (whole_pmd) {
                    uint64_t from = pmd_move_rng_.below(2);
                    a = pmd_range_at(from), to = pmd_range_at(1 - from), n = m = 8;
                }
                out << "  mremap 0x" << std::hex << a << std::dec << " pages=" << n << " new_pages=" << m;
                if (rng_.below(2) && !whole_pmd) out << " flags=maymove";
                else if (to + m * 4096 <= kBase + s_.pages * 4096ull)
                    out << " flags=maymove,fixed to=0x" << std::hex << to << std::dec;
                out << "\n";
                break;
            }
            case 0: case 1: {
                static const char* const how[] = {"fixed", "fixed_noreplace", "fixed,populate", "",
                                                  "fixed,growsdown"};
                const char* h = how[rng_.below(5)];
                bool shared = !rng_.below(4);
                bool shmem_pmd = shared && rng_.below(2);
                uint64_t n = pages_from(a);
                if (shmem_pmd) {
                    // shmem over a whole PMD range (8 pages in the small geometry), a
                    // page written, then MADV_COLLAPSE: a file THP (collapse_file).
                    a = pmd_range_at(rng_.below(2)), n = 8;
                    h = how[rng_.below(3)];
                }
                out << "  mmap 0x" << std::hex << a << std::dec << " pages=" << n
                    << " prot=" << prot() << " flags=" << (shared ? "shared" : "private")
                    << ",anon" << (*h ? "," : "") << h << "\n";
                if (shmem_pmd) {
                    out << "  write 0x" << std::hex << a + 4096 * rng_.below(8) << std::dec << " "
                        << ++value_ << "\n";
                    out << "  madvise 0x" << std::hex << a << std::dec << " pages=8 advice=collapse\n";
                    after_file_collapse(out, a);
                }
                break;
            }
            case 2: out << "  munmap 0x" << std::hex << a << std::dec << " pages=" << pages_from(a) << "\n"; break;
            case 3: case 4: {
                uint64_t n = pages_from(a);
                const char* p = prot();
                // Half of them over a whole PMD range, half of those PROT_NONE: a
                // huge PMD goes PROT_NONE and back in place (change_huge_pmd).  Drawn
                // from a generator of its own, so that the rest of a workload stays.
                if (pmd_prot_rng_.below(2) == 0) {
                    static const char* const pmd_prot[] = {"none", "none", "rw", "r"};
                    a = pmd_range_at(pmd_prot_rng_.below(2)), n = 8;
                    p = pmd_prot[pmd_prot_rng_.below(4)];
                }
                out << "  mprotect 0x" << std::hex << a << std::dec << " pages=" << n << " prot=" << p << "\n";
                break;
            }
            case 5: {
                // pageout twice as often as the rest: swap-out and swap-in race with
                // faults, fork, munmap, mremap and mprotect.
                static const char* const adv[] = {"dontneed", "pageout", "pageout", "hugepage",
                                                  "nohugepage", "collapse"};
                const char* advice = adv[rng_.below(6)];
                // MADV_COLLAPSE and MADV_HUGEPAGE of a whole PMD range (8 pages in the small
                // geometry), so that THP faults and collapses happen.
                bool pmd_range = advice == adv[5] || (advice == adv[3] && rng_.below(2));
                if (pmd_range) a = pmd_range_at(rng_.below(2));
                out << "  madvise 0x" << std::hex << a << std::dec << " pages="
                    << (pmd_range ? 8 : pages_from(a)) << " advice=" << advice << "\n";
                break;
            }
            case 6: case 7: case 8: case 9: case 10: case 11:
                out << "  read 0x" << std::hex << a + 8 * rng_.below(3) << std::dec << "\n";
                break;
            default:
                if (s_.gup && rng_.below(3) == 0) return gup_op(out, a);
                out << "  write 0x" << std::hex << a + 8 * rng_.below(3) << std::dec << " "
                    << ++value_ << "\n";
        }
    }

    // After a shmem MADV_COLLAPSE at a (its THP PMD-mapped): ops over it that fault it
    // in again (do_set_pmd, or PTEs once the VMA no longer covers the range), page it
    // out (split_folio), zap it, or unmap part of it.  Drawn from a generator of their
    // own, so that the rest of a workload stays.
    void after_file_collapse(std::ostringstream& out, uint64_t a) {
        for (uint64_t n = file_thp_rng_.below(3); n; --n) {
            uint64_t at = a + 4096 * file_thp_rng_.below(8), pages = 1 + file_thp_rng_.below(8);
            pages = std::min<uint64_t>(pages, (a + kPmdRange - at) / 4096);
            out << std::hex;
            switch (file_thp_rng_.below(6)) {
                case 0: out << "  madvise 0x" << a << " pages=8 advice=dontneed\n"; break;
                case 1: out << "  madvise 0x" << at << std::dec << " pages=" << pages << " advice=pageout\n"; break;
                case 2: out << "  munmap 0x" << at << std::dec << " pages=" << pages << "\n"; break;
                case 3: out << "  madvise 0x" << a << " pages=8 advice=nohugepage\n"; break;
                case 4: out << "  write 0x" << at << std::dec << " " << ++value_ << "\n"; break;
                default: break;
            }
            out << std::hex << "  read 0x" << at + 8 * file_thp_rng_.below(3) << std::dec << "\n";
        }
    }

    // The GUP ops: pins (handles are the pin ops in file order, which is the order they
    // are written in), dma through a pin written earlier, gup, and /proc/pid/mem.
    void gup_op(std::ostringstream& out, uint64_t a) {
        unsigned pick = rng_.below(8);
        if (pin_pages_.empty() && pick < 4) pick = 4;
        out << std::hex;
        if (pick < 4) {
            size_t h = rng_.below(pin_pages_.size());
            uint64_t off = 4096 * rng_.below(pin_pages_[h]) + 8 * rng_.below(3);
            if (pick == 0) out << "  unpin H" << std::dec << h << "\n";
            else if (pick == 1) out << "  dma_read H" << std::dec << h << " " << off << "\n";
            else out << "  dma_write H" << std::dec << h << " " << off << " " << ++value_ << "\n";
        } else if (pick < 6) {
            static const char* flags[] = {"", " flags=write", " flags=longterm", " flags=fast",
                                          " flags=write,fast", " flags=write,longterm", " flags=longterm,fast"};
            uint64_t n = pages_from(a);
            out << "  pin 0x" << a << std::dec << " pages=" << n << flags[rng_.below(7)] << "\n";
            pin_pages_.push_back(n);
        } else if (pick == 6) {
            static const char* flags[] = {"", " flags=write", " flags=force", " flags=write,force",
                                          " flags=unlocked", " flags=write,unlocked", " flags=fast_only",
                                          " flags=write,fast_only"};
            out << "  gup 0x" << a << std::dec << " pages=" << pages_from(a) << flags[rng_.below(8)] << "\n";
        } else if (rng_.below(2)) {
            out << "  peek 0x" << a + 8 * rng_.below(3) << std::dec << "\n";
        } else {
            out << "  poke 0x" << a + 8 * rng_.below(3) << std::dec << " " << ++value_ << "\n";
        }
        out << std::dec;
    }

    void thread_ops(std::ostringstream& out, bool first, int fork_child) {
        if (first) out << "  mmap 0x" << std::hex << kBase << std::dec << " pages=" << s_.pages
                       << " prot=rw flags=private,anon,fixed\n";
        if (first && rng_.below(3) == 0)
            out << "  madvise 0x" << std::hex << kBase << std::dec << " pages=" << s_.pages
                << " advice=hugepage\n";
        int n = s_.min_ops + static_cast<int>(rng_.below(s_.max_ops - s_.min_ops + 1));
        int fork_at = fork_child >= 0 ? static_cast<int>(rng_.below(n)) : -1;
        for (int i = 0; i < n; ++i) {
            if (i == fork_at) out << "  fork P" << fork_child << "\n";
            op(out);
        }
        if (rng_.below(8) == 0) out << "  exit\n";
    }

    // userfaultfd, drawn from a generator of its own so that the rest of a workload is
    // the same with and without it.  Deadlock-free by construction: only a handler
    // thread registers, and it serves right after (a process's faults wait only while a
    // handler of it may still serve; the last one to return closes the uffd).
    bool uffd_handler(std::ostringstream& out, int p, int nthreads) {
        if (uffd_rng_.below(3) == 0) return false;
        out << "thread P" << p << ".T" << nthreads << "\n";
        for (uint64_t n = p ? uffd_rng_.below(2) : 1 + uffd_rng_.below(2); n; --n)
            out << register_op(uffd_rng_);
        out << "  uffd_serve " << uffd_rng_.below(8) << " value=" << 1000 + uffd_rng_.below(1000) << "\n";
        return true;
    }

    // The uffd's lifetime against its registrations (issue 14), in a process that has a
    // handler, from a stream of its own: the other threads register ranges too, so a
    // registration outlives a handler that has returned (the close ends it) and a fork,
    // mremap or fault comes after the close; the handler goes on after its serve with
    // ops on the closed uffd (EBADF) and faults in what was registered.  Deadlock-free
    // still: a process's faults wait only while one of its handlers serves, and the
    // last one to return closes the uffd.
    void uffd_lifetimes(std::vector<std::string>& threads, std::ostringstream& handler) {
        if (uffd_life_rng_.below(2)) return;
        for (std::string& ops : threads)
            if (uffd_life_rng_.below(2)) ops = insert_op(ops, uffd_life_rng_, register_op(uffd_life_rng_));
        for (uint64_t n = uffd_life_rng_.below(3); n; --n) {
            uint64_t a = kBase + uffd_life_rng_.below(s_.pages) * 4096;
            switch (uffd_life_rng_.below(5)) {
                case 0: handler << register_op(uffd_life_rng_); break;
                case 1: handler << "  uffd_wp 0x" << std::hex << a << std::dec << " pages=1 off\n"; break;
                case 2: handler << "  uffd_serve " << uffd_life_rng_.below(2) << " value=7\n"; break;
                case 3: handler << "  read 0x" << std::hex << a << std::dec << "\n"; break;
                default: handler << "  write 0x" << std::hex << a << std::dec << " " << ++value_ << "\n";
            }
        }
    }
    std::string register_op(rt::SplitMix64& rng) {
        uint64_t a = kBase + rng.below(s_.pages) * 4096;
        uint64_t left = (kBase + s_.pages * 4096ull - a) / 4096;
        std::ostringstream op;
        op << "  uffd_register 0x" << std::hex << a << std::dec << " pages="
           << 1 + rng.below(std::min<uint64_t>(left, 8))
           << (rng.below(2) ? " mode=missing\n" : " mode=wp\n");
        return op.str();
    }
    // `op` (a line with its newline) inserted into a thread's op lines at a place drawn
    // from rng, never after an exit.
    static std::string insert_op(const std::string& ops, rt::SplitMix64& rng, const std::string& op) {
        std::vector<std::string> lines;
        std::istringstream in(ops);
        for (std::string l; std::getline(in, l);) lines.push_back(l + "\n");
        size_t end = lines.size() - (!lines.empty() && lines.back() == "  exit\n");
        lines.insert(lines.begin() + static_cast<long>(rng.below(end + 1)), op);
        std::string s;
        for (const auto& l : lines) s += l;
        return s;
    }
    // Inserts uffd_wp on/off ops into a thread's op lines (never after an exit).
    std::string uffd_mix(std::string ops) {
        for (uint64_t n = uffd_rng_.below(4); n; --n) {
            uint64_t a = kBase + uffd_rng_.below(s_.pages) * 4096;
            std::ostringstream op;
            op << "  uffd_wp 0x" << std::hex << a << std::dec << " pages=" << 1 + uffd_rng_.below(4)
               << (uffd_rng_.below(3) ? " on\n" : " off\n");
            ops = insert_op(ops, uffd_rng_, op.str());
        }
        return ops;
    }

    // Half the workloads get a kthread K0: reclaim races faults, fork, munmap, mremap,
    // madvise and exit; smaps holds mmap_lock against them.
    void kthread(std::ostringstream& out, int nprocs) {
        if (krng_.next() % 2) return;
        out << "kthread K0\n";
        for (uint64_t n = 2 + krng_.next() % 5; n; --n) {
            if (krng_.next() % 3) out << "  reclaim " << 1 + krng_.next() % 16 << "\n";
            else out << "  smaps P" << krng_.next() % static_cast<uint64_t>(nprocs) << "\n";
        }
    }

    rt::SplitMix64 rng_;
    rt::SplitMix64 krng_;
    rt::SplitMix64 uffd_rng_;
    rt::SplitMix64 pmd_prot_rng_;
    rt::SplitMix64 pmd_move_rng_;
    rt::SplitMix64 file_thp_rng_;
    rt::SplitMix64 uffd_life_rng_;
    WorkloadShape s_;
    uint64_t value_ = 0;
    std::vector<uint64_t> pin_pages_;  // the size of each pin written so far, by handle
};

}  // namespace

std::string random_workload(uint64_t seed, const WorkloadShape& shape) {
    return Gen(seed, shape).program();
}

}  // namespace mmrace
