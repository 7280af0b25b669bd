// The patterns a workload's shape may insert among its threads' ops (workload_draw.hpp):
// each draws from a stream of its own, so that switching one on leaves what the rest
// of a seed draws unchanged.
#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "program/generate/workload_draw.hpp"

namespace mmrace::gen::detail {

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

}  // namespace mmrace::gen::detail
