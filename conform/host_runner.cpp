// mmrace-host: runs a .mmr program on the host Linux kernel (issue 3, item 5).
//
//     mmrace-host FILE.mmr        (or - for standard input)
//
// prints one JSON object per op, in file order:
//     {"thread": "P0.T0", "index": 0, "op": "mmap ...", "result": "0x300000000000"}
// with the result spellings of DESIGN §9, so that `mmrace conform` can compare them
// with the model's.  Exit status 0 when the program ran, 2 on any error (message on
// stderr).
//
// How a program runs here:
//  - Every .mmr process is a real process with one thread.  Root processes are forked
//    from this driver; a `fork` op is a real fork(2), and the child runs the forked
//    process's ops.
//  - Only one process runs at a time, in the order the model's default schedule gives
//    (`schedule replay` with an empty list: the current thread runs on until it ends,
//    then the lowest-numbered runnable one).  So a parent runs all its ops before its
//    child starts.  Each process waits for a byte on its own "go" pipe from the driver
//    and reports its results (and the forks it makes) on one shared "report" pipe.
//  - Files are memfds (memfd_create + ftruncate, zero-filled), created here and
//    inherited by every process, so the page cache is shared as in the model.
//  - read/write are real 8-byte loads and stores; SIGSEGV and SIGBUS are caught
//    (sigsetjmp/siglongjmp, on an alternate signal stack) and become the result.
//  - peek/poke go through /proc/self/mem, which uses get_user_pages with FOLL_FORCE
//    (mm/memory.c access_remote_vm), like ptrace.
//  - Ops with no host equivalent here (pins, GUP, DMA, userfaultfd, sysfs, kthreads)
//    report "unsupported"; `mmrace conform` skips such programs.
//  - MADV_COLLAPSE (Linux 6.1) is probed once, before any program process starts (see
//    probe_collapse): where the host cannot collapse an aligned anonymous 2 MiB range,
//    or faults THPs under another policy than the model's (enabled=madvise), collapse
//    ops report "unsupported: WHY" instead of an errno that only reflects the host.
//
// Safety: a program may name only addresses in the arena [0x300000000000, +1 GiB),
// which is checked to be empty first, or ranges that are free in this process at the
// start (probed with MAP_FIXED_NOREPLACE), so no op can touch the runner's own memory.
// A watchdog (alarm(2)) ends everything after a timeout: the runner never hangs.
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "mmrace/mmr.hpp"
#include "mmrace/program.hpp"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)  // Linux 6.18
#endif

namespace {

using namespace mmrace;

constexpr uint64_t kArenaBase = 0x300000000000ull;
constexpr uint64_t kArenaSize = 1ull << 30;
constexpr uint64_t kPage = 4096;
constexpr unsigned kMfdNoexecSeal = 0x0008U;  // MFD_NOEXEC_SEAL, Linux 6.3
unsigned g_timeout = 20;  // seconds, the watchdog
// --child-first: a fork runs the child (and all it forks) to its end before the parent
// goes on.  Not the model's order: it exists to check that a program's results do not
// depend on the order of parent and child (the random generator promises that).
bool g_child_first = false;
// --maps: after every op, print the op, its result and the arena's VMAs (from
// /proc/self/maps) to stderr, to see where a difference with the model starts.
bool g_maps = false;

// ---------------------------------------------------------------------------------
// Small helpers.

std::string hex(uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

// An errno by name, as DESIGN §9 spells it (ENOMEM, EINVAL, ...).
std::string errno_name(int e) {
    if (const char* n = strerrorname_np(e)) return n;
    return "errno " + std::to_string(e);
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

bool write_all(int fd, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
        ssize_t n = write(fd, s.data() + done, s.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

bool in_arena(uint64_t addr, uint64_t len) {
    return addr >= kArenaBase && len <= kArenaSize && addr - kArenaBase <= kArenaSize - len;
}

// ---------------------------------------------------------------------------------
// The program, checked before anything runs.

struct Plan {
    Program prog;
    std::vector<size_t> slot_base;  // per process: the slot of its op 0
    size_t kthread_base = 0;
    size_t slots = 0;
};

[[noreturn]] void fail(const std::string& msg) {
    std::fprintf(stderr, "mmrace-host: %s\n", msg.c_str());
    std::exit(2);
}

// The address ranges an op names (start, length), for the safety check.
std::vector<std::pair<uint64_t, uint64_t>> op_ranges(const Op& op) {
    switch (op.kind) {
        case OpKind::mmap:
            // A non-fixed mmap with hint 0 lets the kernel choose: nothing named.
            if (!op.addr && !(op.flags & (MAPF_FIXED | MAPF_FIXED_NOREPLACE))) return {};
            return {{op.addr, op.pages * kPage}};
        case OpKind::munmap:
        case OpKind::mprotect:
        case OpKind::madvise: return {{op.addr, op.pages * kPage}};
        case OpKind::mremap: {
            std::vector<std::pair<uint64_t, uint64_t>> r{
                {op.addr, std::max(op.pages, op.new_pages) * kPage}};
            if (op.to) r.emplace_back(*op.to, op.new_pages * kPage);
            return r;
        }
        case OpKind::read:
        case OpKind::write:
        case OpKind::peek:
        case OpKind::poke: return {{op.addr & ~(kPage - 1), kPage}};
        default: return {};
    }
}

// A range outside the arena is allowed if nothing is mapped there now: probe it with
// MAP_FIXED_NOREPLACE (EEXIST if anything overlaps).  EPERM means below
// vm.mmap_min_addr, where nothing can ever be mapped, so ops there are harmless too.
bool range_is_safe(uint64_t addr, uint64_t len) {
    if (in_arena(addr, len)) return true;
    void* want = reinterpret_cast<void*>(addr);
    void* p = mmap(want, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                   MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) return errno == EPERM;
    munmap(p, len);
    return p == want;
}

Plan make_plan(const std::string& text, const std::string& filename) {
    Plan plan;
    try {
        plan.prog = parse_mmr(text, filename);
    } catch (const ParseError& e) {
        fail(e.what());
    }
    for (const auto& proc : plan.prog.processes) {
        if (proc.threads.size() != 1)
            fail("process " + proc.name + " has " + std::to_string(proc.threads.size()) +
                 " threads; the host runner runs programs with exactly one thread per process");
        plan.slot_base.push_back(plan.slots);
        plan.slots += proc.threads[0].ops.size();
    }
    plan.kthread_base = plan.slots;
    for (const auto& t : plan.prog.kthreads) plan.slots += t.ops.size();
    for (const auto& proc : plan.prog.processes)
        for (const auto& op : proc.threads[0].ops)
            for (auto [addr, len] : op_ranges(op))
                if (!range_is_safe(addr, len))
                    fail(filename + ":" + std::to_string(op.loc.line) + ": " +
                         print_op(plan.prog, op) + ": the range " + hex(addr) + "-" +
                         hex(addr + len) + " is outside the arena " + hex(kArenaBase) + "-" +
                         hex(kArenaBase + kArenaSize) +
                         " and in use by the runner itself; refusing to run it");
    return plan;
}

// The arena must be empty in this process: a MAP_FIXED_NOREPLACE PROT_NONE mapping over
// all of it succeeds only then.  It is unmapped again at once; nothing else in this
// process maps memory there (non-fixed mappings go top-down from mmap_base, far above).
void check_arena() {
    void* want = reinterpret_cast<void*>(kArenaBase);
    void* p = mmap(want, kArenaSize, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        fail("the arena " + hex(kArenaBase) + "-" + hex(kArenaBase + kArenaSize) +
             " is not free in this process: mmap(MAP_FIXED_NOREPLACE) failed with " +
             errno_name(errno));
    munmap(p, kArenaSize);
    if (p != want)
        fail("this kernel ignores MAP_FIXED_NOREPLACE (Linux 4.17 or later is needed)");
}

// ---------------------------------------------------------------------------------
// MADV_COLLAPSE on this host.  The model follows the host's rules only where both agree
// on three things, checked once in the driver (program processes inherit the result):
//  - the PMD size: the model's x86 geometry has 2 MiB PMDs;
//  - the THP fault policy, which decides whether a range is PMD-mapped before a
//    collapse (SCAN_PMD_MAPPED) or mapped by PTEs the collapse scans: the model follows
//    enabled=madvise (THPs at fault only in MADV_HUGEPAGE VMAs).  `always` is turned
//    into madvise for the program's processes with PR_THP_DISABLE_EXCEPT_ADVISED (Linux
//    6.18; inherited across fork); `never` cannot be;
//  - MADV_COLLAPSE itself (Linux 6.1; EINVAL before), as of 6.18 (collapse_probe):
//    madvise_collapse ignores the sysfs policy (thp_vma_allowable_order without
//    TVA_ENFORCE_SYSFS), so an aligned 2 MiB anonymous range must collapse.
// Empty when collapse ops can run; otherwise why not, the result they report.
std::string g_collapse_unsupported;

std::string read_sysfs_word(const char* path) {
    std::ifstream f(path);
    std::string all, word;
    std::getline(f, all);
    // "always [madvise] never": the bracketed word is the one in force.
    size_t open = all.find('['), close = all.find(']');
    if (open != std::string::npos && close != std::string::npos && close > open)
        return all.substr(open + 1, close - open - 1);
    std::istringstream(all) >> word;
    return word;
}

// The policy THP faults follow for PMD-sized anonymous folios: the per-size control
// (Linux 6.8), whose `inherit` defers to the global one.
std::string pmd_thp_policy() {
    const std::string thp = "/sys/kernel/mm/transparent_hugepage/";
    std::string per_size = read_sysfs_word((thp + "hugepages-2048kB/enabled").c_str());
    if (!per_size.empty() && per_size != "inherit") return per_size;
    return read_sysfs_word((thp + "enabled").c_str());
}

// MADV_COLLAPSE of [addr, addr + len): 0 or the errno.  EAGAIN (a page held for a
// moment elsewhere) is retried.
int collapse(uintptr_t addr, size_t len) {
    int err = 0;
    for (int tries = 0; tries < 3; ++tries) {
        err = madvise(reinterpret_cast<void*>(addr), len, MADV_COLLAPSE) == 0 ? 0 : errno;
        if (err != EAGAIN) break;
    }
    return err;
}

// Two fresh aligned 2 MiB PMDs of one anonymous VMA, one page written in the first, one
// only read (the zero page) in the second; each is collapsed.  Returns why the host
// does not collapse as the model does, or "".  The second collapse needs Linux 6.18
// ("mm: Enable khugepaged to operate on non-writable VMAs"): before, a PMD with no
// writable PTE was SCAN_PAGE_RO (EINVAL), and the model follows 6.18.
std::string collapse_probe() {
    constexpr size_t kPmd = 2u << 20;
    void* raw = mmap(nullptr, 3 * kPmd, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return "mmap: " + errno_name(errno);
    auto base = (reinterpret_cast<uintptr_t>(raw) + kPmd - 1) & ~(uintptr_t)(kPmd - 1);
    auto* p = reinterpret_cast<volatile char*>(base);
    p[0] = 1;
    char c = p[kPmd];
    (void)c;
    std::string why;
    if (int err = collapse(base, kPmd))
        why = "MADV_COLLAPSE of an aligned 2 MiB range failed with " + errno_name(err) +
              (err == EINVAL ? " (Linux 6.1 or later needed)" : "");
    else if (int err2 = collapse(base + kPmd, kPmd))
        why = "MADV_COLLAPSE refuses a PMD with no writable PTE (" + errno_name(err2) +
              ": SCAN_PAGE_RO, before Linux 6.18; the model follows 6.18)";
    munmap(raw, 3 * kPmd);
    return why;
}

void probe_collapse() {
    std::string pmd_size = read_sysfs_word("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
    if (pmd_size.empty()) {
        g_collapse_unsupported = "no transparent hugepages on this host";
        return;
    }
    if (pmd_size != "2097152") {
        g_collapse_unsupported = "the host's PMD size is " + pmd_size + " bytes, the model's 2 MiB";
        return;
    }
    std::string policy = pmd_thp_policy();
    if (policy == "always" &&
        prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0) != 0) {
        g_collapse_unsupported = "THP enabled=always (the model follows madvise) and no "
                                 "PR_THP_DISABLE_EXCEPT_ADVISED (Linux 6.18) to narrow it";
        return;
    }
    if (policy != "always" && policy != "madvise") {
        g_collapse_unsupported = "THP enabled=" + policy + " (the model follows madvise)";
        return;
    }
    g_collapse_unsupported = collapse_probe();
}

// ---------------------------------------------------------------------------------
// Process-wide state: the driver sets it up before forking, every process inherits it.

struct Shared {
    const Plan* plan = nullptr;
    std::vector<int> memfds;   // one per `file`
    std::vector<int> go_read;  // one per process: a byte here means "run now"
    std::vector<int> go_write;  // the driver's ends
    int report_read = -1;      // the driver's end
    int report_write = -1;     // every program process's end
};
Shared g;

// The pids the driver knows of, for the watchdog; written before it is armed to fire
// on them, read from the SIGALRM handler.
constexpr size_t kMaxPids = 256;
volatile pid_t g_pids[kMaxPids];
volatile sig_atomic_t g_npids = 0;

void remember_pid(pid_t pid) {
    sig_atomic_t n = g_npids;
    if (n < static_cast<sig_atomic_t>(kMaxPids)) {
        g_pids[n] = pid;
        g_npids = n + 1;  // published after the pid, for the SIGALRM handler
    }
}

void kill_known() {
    for (sig_atomic_t i = 0; i < g_npids; ++i) kill(g_pids[i], SIGKILL);
}

void on_driver_alarm(int) {
    static const char msg[] = "mmrace-host: timed out (the watchdog fired); killed the program's processes\n";
    kill_known();
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(2);
}

// ---------------------------------------------------------------------------------
// In a program process: user accesses guarded against SIGSEGV and SIGBUS.

sigjmp_buf g_jmp;
volatile sig_atomic_t g_armed = 0;
volatile sig_atomic_t g_signal = 0;
alignas(16) char g_altstack[1 << 16];

// A fault during a guarded access jumps back with the signal; any other fault is a
// bug of the runner: restore the default action so that the retried instruction kills
// the process (the driver then reports that it died).
void on_fault(int sig) {
    if (!g_armed) {
        signal(sig, SIG_DFL);
        return;
    }
    g_armed = 0;
    g_signal = sig;
    siglongjmp(g_jmp, 1);
}

void install_fault_handlers() {
    stack_t ss{};
    ss.ss_sp = g_altstack;
    ss.ss_size = sizeof g_altstack;
    if (sigaltstack(&ss, nullptr) != 0) std::_Exit(2);
    struct sigaction sa {};
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

// One 8-byte load or store at addr, as the program's thread would do it.
std::string user_access(uint64_t addr, bool is_write, uint64_t value) {
    volatile uint64_t* p = reinterpret_cast<volatile uint64_t*>(addr);
    volatile uint64_t got = 0;
    g_signal = 0;
    if (sigsetjmp(g_jmp, 1) == 0) {  // 1: siglongjmp restores the signal mask too
        g_armed = 1;
        if (is_write)
            *p = value;
        else
            got = *p;
        g_armed = 0;
        return is_write ? "ok" : std::to_string(got);
    }
    return g_signal == SIGBUS ? "SIGBUS" : "SIGSEGV";
}

// /proc/self/mem names the mm of the process that opened it, so a forked child must
// open its own: remember which process the descriptor belongs to.
int g_mem_fd = -1;
pid_t g_mem_pid = 0;

int proc_self_mem() {
    if (g_mem_pid != getpid()) {
        if (g_mem_fd >= 0) close(g_mem_fd);
        g_mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
        g_mem_pid = getpid();
    }
    return g_mem_fd;
}

// peek/poke: pread/pwrite on /proc/self/mem, i.e. access_remote_vm() with FOLL_FORCE.
std::string remote_access(uint64_t addr, bool is_write, uint64_t value) {
    int fd = proc_self_mem();
    if (fd < 0) return errno_name(errno);
    ssize_t n = is_write ? pwrite(fd, &value, 8, static_cast<off_t>(addr))
                         : pread(fd, &value, 8, static_cast<off_t>(addr));
    if (n < 0) return errno_name(errno);
    if (n != 8) return errno_name(EIO);  // a short transfer: mem_rw copied part of the word
    return is_write ? "ok" : std::to_string(value);
}

// ---------------------------------------------------------------------------------
// The syscalls.

int host_prot(uint8_t prot) {
    return ((prot & PROT_READ_) ? PROT_READ : 0) | ((prot & PROT_WRITE_) ? PROT_WRITE : 0) |
           ((prot & PROT_EXEC_) ? PROT_EXEC : 0);
}

std::string sys_result(long ret) { return ret < 0 ? errno_name(errno) : "0"; }

std::string addr_result(void* p) {
    return p == MAP_FAILED ? errno_name(errno) : hex(reinterpret_cast<uint64_t>(p));
}

std::string host_mmap(const Op& op) {
    int flags = (op.flags & MAPF_SHARED) ? MAP_SHARED : MAP_PRIVATE;
    if (op.flags & MAPF_FIXED) flags |= MAP_FIXED;
    if (op.flags & MAPF_FIXED_NOREPLACE) flags |= MAP_FIXED_NOREPLACE;
    if (op.flags & MAPF_GROWSDOWN) flags |= MAP_GROWSDOWN;
    if (op.flags & MAPF_POPULATE) flags |= MAP_POPULATE;
    int fd = -1;
    off_t off = 0;
    if (op.flags & MAPF_ANON) {
        flags |= MAP_ANONYMOUS;
    } else {
        fd = g.memfds.at(static_cast<size_t>(op.file));
        off = static_cast<off_t>(op.pgoff * kPage);
    }
    return addr_result(mmap(reinterpret_cast<void*>(op.addr), op.pages * kPage,
                            host_prot(op.prot), flags, fd, off));
}

int host_advice(Advice a) {
    switch (a) {
        case Advice::dontneed: return MADV_DONTNEED;
        case Advice::pageout: return MADV_PAGEOUT;
        case Advice::cold: return MADV_COLD;
        case Advice::hugepage: return MADV_HUGEPAGE;
        case Advice::nohugepage: return MADV_NOHUGEPAGE;
        case Advice::collapse: return MADV_COLLAPSE;  // EINVAL before Linux 6.1
    }
    return -1;
}

std::string host_mremap(const Op& op) {
    int flags = 0;
    if (op.flags & MREMAPF_MAYMOVE) flags |= MREMAP_MAYMOVE;
    if (op.flags & MREMAPF_FIXED) flags |= MREMAP_FIXED;
    void* to = op.to ? reinterpret_cast<void*>(*op.to) : nullptr;
    return addr_result(mremap(reinterpret_cast<void*>(op.addr), op.pages * kPage,
                              op.new_pages * kPage, flags, to));
}

// file_write FNAME PGOFF VALUE: write(2) of the 8-byte VALUE at the start of page
// PGOFF (pwrite extends the file if that is past its end, as write(2) does).
std::string host_file_write(const Op& op) {
    uint64_t v = op.value;
    ssize_t n = pwrite(g.memfds.at(static_cast<size_t>(op.file)), &v, 8,
                       static_cast<off_t>(op.page_offset() * kPage));
    if (n < 0) return errno_name(errno);
    return n == 8 ? "ok" : errno_name(EIO);
}

// ---------------------------------------------------------------------------------
// A program process: waits for its turn, runs its ops, reports, exits.

void report(const std::string& line) {
    if (!write_all(g.report_write, line + "\n")) std::_Exit(3);  // the driver is gone
}

[[noreturn]] void run_process(size_t pi);
void wait_for_turn(size_t pi);
size_t g_self = 0;  // the .mmr process this host process runs

// fork PNAME: a real fork(2).  The child waits for its turn; the parent goes on (or,
// with --child-first, waits until the driver has run the child).
std::string host_fork(const Op& op) {
    auto child = static_cast<size_t>(op.process);
    pid_t pid = fork();
    if (pid < 0) return errno_name(errno);
    if (pid == 0) run_process(child);
    report("F " + std::to_string(child) + " " + std::to_string(pid));
    if (g_child_first) wait_for_turn(g_self);
    return g.plan->prog.processes[child].name;
}

bool is_collapse(const Op& op) { return op.kind == OpKind::madvise && op.advice == Advice::collapse; }

std::string exec_op(const Op& op) {
    void* a = reinterpret_cast<void*>(op.addr);
    size_t len = op.pages * kPage;
    if (is_collapse(op) && !g_collapse_unsupported.empty())
        return "unsupported: " + g_collapse_unsupported;
    switch (op.kind) {
        case OpKind::mmap: return host_mmap(op);
        case OpKind::munmap: return sys_result(munmap(a, len));
        case OpKind::mprotect: return sys_result(mprotect(a, len, host_prot(op.prot)));
        case OpKind::madvise: return sys_result(madvise(a, len, host_advice(op.advice)));
        case OpKind::mremap: return host_mremap(op);
        case OpKind::read: return user_access(op.addr, false, 0);
        case OpKind::write: return user_access(op.addr, true, op.value);
        case OpKind::peek: return remote_access(op.addr, false, 0);
        case OpKind::poke: return remote_access(op.addr, true, op.value);
        case OpKind::fork: return host_fork(op);
        case OpKind::file_write: return host_file_write(op);
        case OpKind::truncate:
            return sys_result(ftruncate(g.memfds.at(static_cast<size_t>(op.file)),
                                        static_cast<off_t>(op.pages * kPage)));
        default: return "unsupported";  // pins, GUP, DMA, uffd, sysfs: no host equivalent here
    }
}

// The arena part of /proc/self/maps, one VMA a line: "  start-end perms".
void print_arena_maps() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        uint64_t start = std::strtoull(line.c_str(), nullptr, 16);
        if (start < kArenaBase || start >= kArenaBase + kArenaSize) continue;
        std::fprintf(stderr, "    %s\n", line.substr(0, line.find(' ', line.find(' ') + 1)).c_str());
    }
}

void trace_op(const Thread& t, size_t i, const std::string& result) {
    std::fprintf(stderr, "%s #%zu %s -> %s\n", t.name.c_str(), i,
                 print_op(g.plan->prog, t.ops[i]).c_str(), result.c_str());
    print_arena_maps();
    std::fflush(stderr);
}

void wait_for_turn(size_t pi) {
    char c;
    ssize_t n;
    while ((n = read(g.go_read[pi], &c, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) std::_Exit(3);  // EOF: the driver died, so nobody wants our results
}

[[noreturn]] void run_process(size_t pi) {
    g_self = pi;
    wait_for_turn(pi);
    alarm(g_timeout);  // not inherited across fork(2): every process arms its own
    const Thread& t = g.plan->prog.processes[pi].threads[0];
    size_t base = g.plan->slot_base[pi];
    for (size_t i = 0; i < t.ops.size(); ++i) {
        const Op& op = t.ops[i];
        if (op.kind == OpKind::exit) {  // exit(2): the remaining ops never run
            report("R " + std::to_string(base + i) + " 0");
            break;
        }
        std::string result = exec_op(op);
        if (g_maps) trace_op(t, i, result);
        report("R " + std::to_string(base + i) + " " + result);
    }
    report("D " + std::to_string(pi));
    std::_Exit(0);
}

// ---------------------------------------------------------------------------------
// The driver.

// Whether any process of the program uses MADV_COLLAPSE (only those pay for the probe).
bool program_collapses(const Program& p) {
    for (const auto& proc : p.processes)
        for (const auto& op : proc.threads[0].ops)
            if (is_collapse(op)) return true;
    return false;
}

void make_files(const Program& p) {
    for (const auto& f : p.files) {
        int fd = static_cast<int>(syscall(SYS_memfd_create, f.name.c_str(), MFD_CLOEXEC));
        if (fd < 0 && errno == EACCES)  // vm.memfd_noexec=2 demands MFD_NOEXEC_SEAL
            fd = static_cast<int>(syscall(SYS_memfd_create, f.name.c_str(),
                                          MFD_CLOEXEC | kMfdNoexecSeal));
        if (fd < 0) fail("memfd_create(" + f.name + "): " + errno_name(errno));
        if (ftruncate(fd, static_cast<off_t>(f.pages * kPage)) != 0)
            fail("ftruncate(" + f.name + "): " + errno_name(errno));
        g.memfds.push_back(fd);
    }
}

void make_pipes(size_t nproc) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) fail(std::string("pipe2: ") + errno_name(errno));
    g.report_read = fds[0];
    g.report_write = fds[1];
    for (size_t i = 0; i < nproc; ++i) {
        if (pipe2(fds, O_CLOEXEC) != 0) fail(std::string("pipe2: ") + errno_name(errno));
        g.go_read.push_back(fds[0]);
        g.go_write.push_back(fds[1]);
    }
}

// A root process: forked from the driver, it keeps only what program processes need
// (every go read end, for the children it may fork, and the report write end).  With
// no go write end left anywhere but in the driver, a process waiting for its turn sees
// EOF if the driver dies.
pid_t start_root(size_t pi) {
    pid_t pid = fork();
    if (pid < 0) fail(std::string("fork: ") + errno_name(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGALRM, SIG_DFL);  // a program process's watchdog just kills it
        for (int fd : g.go_write) close(fd);
        close(g.report_read);
        install_fault_handlers();
        run_process(pi);
    }
    remember_pid(pid);
    return pid;
}

// Reads the report pipe line by line; notices a process that died before "D".
class Reports {
public:
    // The next line; fails if `pidfd` (the running process) exits first or on timeout.
    std::string next(int pidfd, const std::string& who) {
        for (;;) {
            size_t nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            pollfd fds[2] = {{g.report_read, POLLIN, 0}, {pidfd, POLLIN, 0}};
            int n = poll(fds, pidfd >= 0 ? 2 : 1, -1);  // the watchdog bounds the wait
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fail(std::string("poll: ") + errno_name(errno));
            if (fds[0].revents & (POLLIN | POLLHUP)) {
                char chunk[4096];
                ssize_t r = read(g.report_read, chunk, sizeof chunk);
                if (r > 0) {
                    buf_.append(chunk, static_cast<size_t>(r));
                    continue;
                }
                if (r == 0) died(who);
            }
            if (pidfd >= 0 && (fds[1].revents & POLLIN)) {
                // It exited: anything it wrote is already in the pipe, so drain first.
                pollfd again{g.report_read, POLLIN, 0};
                if (poll(&again, 1, 0) > 0 && (again.revents & POLLIN)) continue;
                died(who);
            }
        }
    }

private:
    [[noreturn]] static void died(const std::string& who) {
        kill_known();
        fail("the host process running " + who +
             " died before finishing its ops (its watchdog, a crash of the runner, or the OOM killer)");
    }
    std::string buf_;
};

int pidfd_open_or_none(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // -1 before Linux 5.3
#else
    (void)pid;
    return -1;
#endif
}

struct Driver {
    const Plan& plan;
    std::vector<std::optional<std::string>> results;
    std::vector<pid_t> pid;     // per process, 0 until started
    std::vector<bool> started, finished;
    Reports reports;

    explicit Driver(const Plan& p)
        : plan(p), results(p.slots), pid(p.prog.processes.size(), 0),
          started(p.prog.processes.size()), finished(p.prog.processes.size()) {}

    // The model's default schedule: the lowest-numbered started process not finished.
    std::optional<size_t> next_process() const {
        for (size_t i = 0; i < started.size(); ++i)
            if (started[i] && !finished[i]) return i;
        return std::nullopt;
    }

    void handle(size_t running, const std::string& line, const std::string& who) {
        std::istringstream in(line);
        char kind = 0;
        in >> kind;
        size_t a = 0;
        if (kind == 'R') {
            in >> a;
            std::string rest;
            std::getline(in >> std::ws, rest);
            if (a < results.size()) results[a] = rest;
        } else if (kind == 'F') {
            long child_pid = 0;
            in >> a >> child_pid;
            if (a < started.size()) {
                started[a] = true;
                pid[a] = static_cast<pid_t>(child_pid);
                remember_pid(pid[a]);
                if (g_child_first) {  // the parent waits on its go pipe meanwhile
                    run_one(a);
                    resume(running);
                }
            }
        } else if (kind == 'D') {
            in >> a;
            if (a < finished.size()) finished[a] = true;
        } else {
            kill_known();
            fail("unexpected report from " + who + ": " + line);
        }
    }

    // Lets process pi run and collects its reports until it is done, then waits for it
    // to exit: the model's process has torn its mm down before the next one runs, and
    // a parent whose exit_mmap still holds pages (its mmu_gather, its mappings) would
    // make a child's MADV_COLLAPSE fail where the model's succeeds.
    void run_one(size_t pi) {
        const std::string& who = plan.prog.processes[pi].name;
        int pidfd = pidfd_open_or_none(pid[pi]);
        resume(pi);
        while (!finished[pi]) handle(pi, reports.next(pidfd, who), who);
        if (pidfd >= 0) {
            wait_exited(pidfd);
            close(pidfd);
        }
    }

    // A pidfd polls readable once its process has exited (after exit_mm); the watchdog
    // bounds the wait.
    static void wait_exited(int pidfd) {
        pollfd fd{pidfd, POLLIN, 0};
        while (poll(&fd, 1, -1) < 0)
            if (errno != EINTR) fail(std::string("poll(pidfd): ") + errno_name(errno));
    }

    void resume(size_t pi) {
        if (!write_all(g.go_write[pi], "g"))
            fail("cannot start " + plan.prog.processes[pi].name + ": " + errno_name(errno));
    }

    void run() {
        for (size_t i = 0; i < plan.prog.processes.size(); ++i)
            if (!plan.prog.processes[i].forked) {
                pid[i] = start_root(i);
                started[i] = true;
            }
        close(g.report_write);  // only program processes write reports now
        while (auto pi = next_process()) run_one(*pi);
        for (size_t i = 0; i < plan.prog.kthreads.size(); ++i)
            for (size_t j = 0; j < plan.prog.kthreads[i].ops.size(); ++j)
                results[plan.kthread_base + j] = "unsupported";  // no kernel threads on the host
    }

    void print() const {
        size_t s = 0;
        auto line = [&](const Thread& t) {
            for (size_t i = 0; i < t.ops.size(); ++i, ++s) {
                const auto& r = results[s];
                std::cout << "{\"thread\": " << json_string(t.name) << ", \"index\": " << i
                          << ", \"op\": " << json_string(print_op(plan.prog, t.ops[i]))
                          << ", \"result\": " << (r ? json_string(*r) : "null") << "}\n";
            }
        };
        for (const auto& proc : plan.prog.processes) line(proc.threads[0]);
        for (const auto& t : plan.prog.kthreads) line(t);
        std::cout.flush();
    }
};

// Every program process has exited or is about to (each one exits right after its "D"
// line); as the child subreaper the driver collects the orphans too.
void reap_all() {
    while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
}

std::string read_input(const std::string& path) {
    std::ostringstream s;
    if (path == "-") {
        s << std::cin.rdbuf();
    } else {
        std::ifstream f(path, std::ios::binary);
        if (!f) fail("cannot open " + path + ": " + std::strerror(errno));
        s << f.rdbuf();
    }
    return s.str();
}

void usage() {
    std::fprintf(stderr,
                 "usage: mmrace-host [--timeout SECONDS] [--child-first] [--maps] FILE.mmr|-\n"
                 "Runs a single-threaded-per-process .mmr program on the host kernel and prints\n"
                 "one JSON object per op: {\"thread\", \"index\", \"op\", \"result\"}.\n"
                 "  --child-first  run each forked child to its end before its parent goes on\n"
                 "  --maps         after each op, print it and the arena's VMAs to stderr\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::string path;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--timeout" && i + 1 < argc) {
            g_timeout = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
            if (!g_timeout) usage();
        } else if (a == "--maps") {
            g_maps = true;
        } else if (a == "--child-first") {
            g_child_first = true;
        } else if (a == "-h" || a == "--help" || !path.empty()) {
            usage();
        } else {
            path = a;
        }
    }
    if (path.empty()) usage();

    signal(SIGALRM, on_driver_alarm);
    alarm(g_timeout);
    signal(SIGPIPE, SIG_IGN);  // a dead reader is an error we report, not a silent death
    check_arena();
    Plan plan = make_plan(read_input(path), path == "-" ? "<stdin>" : path);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (program_collapses(plan.prog)) probe_collapse();
    g.plan = &plan;
    make_files(plan.prog);
    make_pipes(plan.prog.processes.size());
    std::cout.flush();  // nothing buffered may be duplicated into the children
    std::fflush(nullptr);

    Driver d(plan);
    d.run();
    for (int fd : g.go_write) close(fd);
    reap_all();
    alarm(0);
    d.print();
    return 0;
}
