// The sequential reference model of the semantic oracle (DESIGN §7, check 4): what a
// process sees in its memory if every op took effect at one instant, in some order.
//
// It knows nothing of VMAs, page tables or folios.  A process page is a View: unmapped,
// or mapped with a protection, backed by an object page (a file page or a shmem page)
// and, when private, by its own copy once written (COW).  Object pages and private
// copies are Cells of words.  fork copies the private cells; shared views share them.
//
// The model is exact where it can be and says "anything" (Unknown views, tainted
// cells) where it cannot, so that a correct kernel never fails it.  Two kernel facts
// shape it:
//  - A change that revokes access is not atomic for other CPUs: until its TLB flush,
//    a CPU may still reach the old page through a stale TLB entry, even after another
//    CPU already saw the new state (munmap drops to a read lock before it zaps).  Such
//    ops are windowed: `begin` makes the new view current and keeps the old one as a
//    stale view that accesses may still use until the op's `end`.
//  - Results of the op itself are taken as the run gave them (the address mmap chose,
//    an errno); the model applies their effect.  An error whose effect is partial
//    gives every partial outcome the kernel can leave.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "check/history.hpp"

namespace mmrace::check::ref {

// A process page (process << 40 | page number) or an object page (object << 40 |
// pgoff).  Objects are the program's files, then one shmem object per shared anonymous
// mmap (numbered after the files by the history index of the mmap that made it).
using Key = uint64_t;
constexpr Key kNoKey = UINT64_MAX;
inline Key make_key(uint64_t space, uint64_t page) { return (space << 40) | page; }
inline uint64_t key_space(Key k) { return k >> 40; }
inline uint64_t key_page(Key k) { return k & ((1ull << 40) - 1); }

enum Taint : uint8_t {
    kClean = 0,
    kBaseUnknown = 1,  // words not written since are unknown (a copy of unknown content)
    kVolatile = 2,     // every word may change at any time (written through views the
                       // oracle cannot follow)
};

struct Cell {
    std::vector<std::pair<uint32_t, uint64_t>> words;  // sorted by word
    uint8_t taint = kClean;
    // The value of word w, or false when it may be anything.
    bool read(uint32_t w, uint64_t* v) const;
    void write(uint32_t w, uint64_t v);
};

struct View {
    enum Kind : uint8_t { unmapped, mapped, unknown };
    Kind kind = unmapped;
    uint8_t prot = 0;         // PROT_* bits
    bool prot_known = true;   // false for a stack page the oracle saw grow
    bool shared = false;
    Key obj = kNoKey;         // the object page behind it, or none (anonymous)
    int32_t backing = -1;     // that object page's cell
    int32_t anon = -1;        // the private copy, once written
};

// A view that a stale TLB entry may still reach until op `until` ends.
struct Stale {
    View v;
    bool in_eof;  // whether the object page was inside its file then
    uint32_t until;
};

struct Page {
    View cur;
    std::vector<Stale> stale;
};

struct ObjPage {
    int32_t cell = -1;
    bool in_eof = true;
    bool is_volatile = false;
};

// What a device reaches through one page of a held pin (DESIGN §7: a pin aliases the
// pinning process's memory while its mapping stands, and keeps the page after that).
struct DevPage {
    int32_t cell = -1;       // the pinned page's cell; -1: the zero page
    bool unknown = false;    // the oracle cannot tell which page was pinned
    bool write = false;      // pinned with FOLL_WRITE
    int32_t process = -1;    // the pinning process (its exit releases the pin)
};
inline uint64_t dev_key(int handle, uint64_t index) { return (static_cast<uint64_t>(handle) << 24) | index; }

struct State {
    std::map<Key, Page> pages;
    std::map<Key, ObjPage> objs;
    std::vector<Cell> cells;
    std::map<uint64_t, DevPage> dev;  // held pins' pages in this group, by dev_key

    int32_t new_cell(uint8_t taint);
    // A canonical byte string: equal for states that behave alike (cells renumbered
    // in the order they are reached; unreachable cells left out).
    void serialize(std::string& out) const;
};

// One step of a group's linearization: a whole op, or the begin or end of a windowed
// op, or, between them, the population of a MAP_POPULATE mapping.  `pages` and `objs`
// are the keys of the op inside this group, ascending.
struct SubOp {
    const HistOp* h = nullptr;
    uint32_t id = 0;  // the op's history index: names its window
    enum class Phase : uint8_t { atomic, begin, populate, end } phase = Phase::atomic;
    std::vector<Key> pages;
    std::vector<Key> objs;
};

// What the oracle knows of the whole program.
struct Context {
    size_t nfiles = 0;
    std::vector<bool> stacky;  // per process: may have grown a stack (MAP_GROWSDOWN)
    // per process: one of those stacks is a file or shmem mapping, which grows over
    // object pages (vm_pgoff goes down) that the oracle does not follow
    std::vector<bool> stack_backed;
    std::vector<int> parent;   // per process: who forked it, -1
    // The config bounds folios or page tables: a populate may leave any page unfaulted
    // (VM_FAULT_OOM; __mm_populate ignores errors).
    bool populate_may_stop = false;
    // Some MISSING uffd_register succeeded: a word of private anonymous memory may read
    // the value of any uffd_serve of the program (a page its UFFDIO_COPY filled), as
    // well as what the model says.  The oracle does not follow which pages a handler
    // filled.
    bool uffd_missing = false;
    // Some WP uffd_register succeeded: a private anonymous page may be uffd-wp protected.
    bool uffd_wp = false;
    std::vector<uint64_t> uffd_values;
    // The pin op of each handle that returned (its history entry), or null.
    std::vector<const HistOp*> pin_ops;
};

// The address an mmap or mremap returned, or false for an errno.
bool result_addr(const HistOp& h, uint64_t* a);
// The object behind a mapping made by mmap `op` (history index `id`): its file, or
// the shmem object it made; kNoKey for private anonymous memory.
uint64_t mmap_object(const Context& ctx, const Op& op, uint32_t id);

// The keys of `set` in space `p`'s pages [first, first + n).
std::vector<Key> in_range(const std::set<Key>& set, uint64_t p, uint64_t first, uint64_t n);
// The process page a dma op reaches, or kNoKey if its pin never returned.
Key dma_page(const Context& ctx, const HistOp& o);
// The pages of `tracked` (the process pages the oracle follows) whose content op `o`
// may read or change: the op's footprint, which joins them into one group.
std::vector<Key> op_pages(const Context& ctx, const std::set<Key>& tracked, const HistOp& o);

// Whether an op of this kind and advice is windowed (see the header comment), and
// whether it populates between begin and end.
bool windowed(const Op& op);
bool populates(const Op& op);

// The states `s` may be in after `x`, given the result the run recorded.  Empty when
// that result is impossible from `s`.
void apply(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out);

}  // namespace mmrace::check::ref
