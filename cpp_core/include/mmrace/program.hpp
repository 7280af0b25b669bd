// A Program: the in-memory form of a .mmr file (DESIGN §9).
//
// The parser (program/mmr_parse.cpp) builds it, the printer (program/mmr_print.cpp)
// writes it back in canonical form, and the executor (program/executor.cpp) runs it.
// Every field that the printer writes is one the parser reads, so
// parse(print(p)) == p for every valid Program.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mmrace/ops.hpp"

namespace mmrace {

// Where an element came from in the source text (1-based); {0,0} when built in code.
struct SrcLoc {
    int line = 0;
    int col = 0;
    bool operator==(const SrcLoc&) const = default;
};


// mmap prot bits, as PROT_* in the kernel.
enum Prot : uint8_t { PROT_NONE_ = 0, PROT_READ_ = 1, PROT_WRITE_ = 2, PROT_EXEC_ = 4 };

// mmap flags as written in .mmr.  `anon` and a file mapping are mutually exclusive;
// exactly one of private/shared is set.
enum MapFlag : uint32_t {
    MAPF_PRIVATE = 1u << 0,
    MAPF_SHARED = 1u << 1,
    MAPF_ANON = 1u << 2,
    MAPF_FIXED = 1u << 3,
    MAPF_FIXED_NOREPLACE = 1u << 4,
    MAPF_GROWSDOWN = 1u << 5,
    MAPF_POPULATE = 1u << 6,
};

enum class Advice : uint8_t { dontneed, pageout, hugepage, nohugepage, collapse, cold };

enum MremapFlag : uint32_t { MREMAPF_MAYMOVE = 1u << 0, MREMAPF_FIXED = 1u << 1 };

// pin / gup flags, named after FOLL_*.
enum GupFlag : uint32_t {
    GUPF_WRITE = 1u << 0,     // FOLL_WRITE
    GUPF_LONGTERM = 1u << 1,  // FOLL_LONGTERM
    GUPF_FAST = 1u << 2,      // pin_user_pages_fast
    GUPF_FORCE = 1u << 3,     // FOLL_FORCE
    GUPF_UNLOCKED = 1u << 4,  // get_user_pages_unlocked
    GUPF_FAST_ONLY = 1u << 5, // get_user_pages_fast_only: the lockless walk, no fallback
};

enum class UffdMode : uint8_t { missing, wp };

// One op. Which fields are meaningful depends on `kind`: its row of MMRACE_OPS
// (mmrace/ops.hpp) lists its arguments, and each argument kind names the field it
// fills.  Unused fields keep their defaults so that == compares programs structurally.
struct Op {
    OpKind kind = OpKind::read;
    SrcLoc loc;
    uint64_t addr = 0;        // ADDR
    uint64_t pages = 0;       // pages=N (also truncate's pages=N); COUNT is read as count()
    uint64_t new_pages = 0;   // mremap new_pages=M
    uint64_t value = 0;       // VALUE (write, poke, dma_write, file_write, uffd_serve value=V)
    uint64_t offset = 0;      // dma OFF; file_write's PGOFF is read as page_offset()
    uint8_t prot = 0;         // prot=P
    uint32_t flags = 0;       // MapFlag / MremapFlag / GupFlag
    int file = -1;            // mmap file:FNAME:PGOFF, file_write, truncate: index into Program::files
    uint64_t pgoff = 0;       // mmap file:FNAME:PGOFF
    Advice advice = Advice::dontneed;
    UffdMode uffd_mode = UffdMode::missing;
    bool on = false;          // uffd_wp on|off
    std::optional<uint64_t> to;  // mremap to=ADDR
    int process = -1;         // fork PNAME, collapse PNAME, smaps PNAME: index into Program::processes
    int handle = -1;          // unpin/dma_read/dma_write H: the handle number (H3 -> 3)

    // reclaim's and uffd_serve's COUNT (stored in `pages`, which neither op has).
    uint64_t count() const { return pages; }
    void set_count(uint64_t n) { pages = n; }
    // file_write's PGOFF, the page of the file it writes (stored in `offset`).
    uint64_t page_offset() const { return offset; }
    void set_page_offset(uint64_t pgoff) { offset = pgoff; }

    bool operator==(const Op& o) const;  // ignores loc
};

struct Thread {
    std::string name;  // "P0.T0", or a kthread's NAME
    SrcLoc loc;
    std::vector<Op> ops;
};

struct Process {
    std::string name;  // "P0"
    SrcLoc loc;
    bool forked = false;  // starts when the fork naming it returns
    std::vector<Thread> threads;
};

struct File {
    std::string name;
    SrcLoc loc;
    uint64_t pages = 0;
};

enum class Strategy : uint8_t { classic, spf, pervma };
enum class Geometry : uint8_t { small, x86 };
const char* strategy_name(Strategy s);
const char* geometry_name(Geometry g);

// The sizes of the simulated machine's pools (`config folios=N swap_slots=N
// pgtables=N`).  A run that needs more than a pool holds sees the allocation fail, as
// a kernel out of memory (or out of swap) does.  The defaults are large enough that
// ordinary programs never notice them; the maxima bound what one program can make the
// model allocate (storage grows on use, up to the limit).
inline constexpr uint64_t kDefaultFolios = 1u << 16;    // allocatable folios (the zero page is extra)
inline constexpr uint64_t kDefaultSwapSlots = 1024;     // usable swap slots (si->max - 1); 0: no swap
inline constexpr uint64_t kDefaultPgtables = 1u << 18;  // PUD, PMD and PTE table pages
inline constexpr uint64_t kMaxFolios = 1u << 20;
inline constexpr uint64_t kMaxSwapSlots = 1u << 20;
inline constexpr uint64_t kMaxPgtables = 1u << 18;
// The step budget of a run (`config budget=N`): past it the verdict is `budget`.
inline constexpr uint64_t kDefaultBudget = 1'000'000;

struct Config {
    Strategy strategy = Strategy::classic;
    Geometry geometry = Geometry::small;
    uint64_t folios = kDefaultFolios;
    uint64_t swap_slots = kDefaultSwapSlots;
    uint64_t pgtables = kDefaultPgtables;
    // pervma: the fault cases upstream later moved under the VMA lock, as they are
    // switched on (config vma_lock=swapin).  Off by default: 6.4's behaviour.
    //   swapin: do_swap_page under the VMA lock (6.6, "mm: handle swap page faults
    //   under per-VMA lock").
    bool vma_lock_swapin = false;
    //   file: faults on file-backed VMAs, which complete under the VMA lock when the
    //   page is in the page cache and drop it to wait for I/O (6.7: "mm: allow per-VMA
    //   locks on file-backed VMAs", "mm: handle read faults under the VMA lock", and
    //   the shared and COW fault patches of that series).
    bool vma_lock_file = false;
    //   uffd: handle_userfault under the VMA lock (6.6, "mm: handle userfaults under
    //   VMA lock"): lock_vma_under_rcu no longer falls back for userfaultfd-armed VMAs.
    bool vma_lock_uffd = false;
    std::vector<std::string> mutants;  // in the order written
    uint64_t budget = kDefaultBudget;  // steps; RunOptions::budget overrides it
    bool operator==(const Config&) const = default;
};

// `schedule replay 0 1 2`, `schedule random seed=S`, `schedule pct seed=S depth=D [steps=K]`,
// `schedule preempt D:K ...`.
struct Schedule {
    enum class Kind : uint8_t { replay, random, pct, preempt } kind = Kind::replay;
    std::vector<uint64_t> replay;
    // preempt: (decision, choice) pairs, sorted by decision, each decision once.
    std::vector<std::pair<uint64_t, uint64_t>> preempt;
    uint64_t seed = 0;
    uint32_t depth = 3;
    uint64_t steps = 0;  // pct's estimate of the run length k; 0 = the policy's default
    bool operator==(const Schedule&) const = default;
};

struct Program {
    Config config;
    std::vector<File> files;
    std::vector<Process> processes;
    std::vector<Thread> kthreads;
    std::optional<Schedule> schedule;

    bool operator==(const Program& o) const;  // structural; ignores SrcLoc

    // Handles are numbered statically: the k-th `pin` op in file order returns "Hk".
    // Thread ids are assigned in file order: process threads first, in the order
    // declared, then kthreads.
    size_t thread_count() const;
};

}  // namespace mmrace
