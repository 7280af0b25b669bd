// The op registry (DESIGN §9): every op of the .mmr format, one row each.
//
// The table is the one place an op is defined.  OpKind, op_name, the parser's op table
// and argument grammar, the printer, check_op_built, the executor's dispatch, the
// oracle's modelled() and _core.op_specs() are all derived from it.  Adding an op is a
// row here, its argument kinds (below) if new ones are needed, the model's function in
// the executor's dispatch, and the reference model's rule (check/refmodel.cpp) if it is
// modelled.
#pragma once

#include <cstdint>
#include <iterator>
#include <span>
#include <string_view>

namespace mmrace {

// Limits of the format (DESIGN §9): generous for real programs, small enough that a
// hostile file cannot make the model allocate without bound.  Python reads them
// through _core.limits().
inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kUserTop = 1ull << 47;   // the end of the user address space
inline constexpr uint64_t kMaxPages = 1ull << 20;  // pages=, counts and file page offsets
inline constexpr uint64_t kMaxPctDepth = 1024;     // schedule pct depth=

// The kinds of an op's arguments, each one word of the line (positional) or one
// key=value word.  A row: X(kind, key, optional, min, max, align)
//   key       "" for a positional word, else the key of its key=value word
//   optional  the key may be left out (printed only when not its default)
//   min, max  the range of a number (0, 0 for a word or a name); align: it is a
//             multiple of this (0 when not a number)
// Arguments fill the Op fields their comment names; the parser and printer
// (program/mmr_parse.cpp, mmr_print.cpp) read and write each kind the same way
// whichever op it belongs to.
#define MMRACE_OP_ARGS(X)                                                                        \
    X(page_addr, "", false, 0, kUserTop - kPageSize, kPageSize) /* ADDR, page aligned: addr */    \
    X(word_addr, "", false, 0, kUserTop - 8, 8)          /* ADDR of a 64-bit word: addr */        \
    X(pages, "pages", false, 1, kMaxPages, 1)            /* [ADDR, +N pages) in user space */     \
    X(file_pages, "pages", false, 0, kMaxPages, 1)       /* truncate's new size: pages */         \
    X(new_pages, "new_pages", false, 1, kMaxPages, 1)    /* mremap's new size: new_pages */       \
    X(prot, "prot", false, 0, 0, 0)                      /* none or letters of rwx: prot */       \
    X(mmap_flags, "flags", false, 0, 0, 0)               /* MapFlag, file:FNAME:PGOFF */          \
    X(advice, "advice", false, 0, 0, 0)                  /* advice */                             \
    X(mremap_flags, "flags", true, 0, 0, 0)              /* MremapFlag: flags */                  \
    X(mremap_to, "to", true, 0, kUserTop - kPageSize, kPageSize) /* with flags=maymove,fixed */   \
    X(pin_flags, "flags", true, 0, 0, 0)                 /* GupFlag; numbers the pin Hk */        \
    X(gup_flags, "flags", true, 0, 0, 0)                 /* GupFlag */                            \
    X(value, "", false, 0, UINT64_MAX, 1)                /* VALUE: value */                       \
    X(value_key, "value", false, 0, UINT64_MAX, 1)       /* uffd_serve's value=V: value */        \
    X(count, "", false, 0, kMaxPages, 1)                 /* COUNT: Op::count() */                 \
    X(process, "", false, 0, 0, 0)                       /* PNAME: process */                     \
    X(fork_child, "", false, 0, 0, 0)                    /* a `forked` PNAME: process */          \
    X(handle, "", false, 0, 0, 0)                        /* Hk of an earlier pin: handle */       \
    X(dma_offset, "", false, 0, UINT64_MAX, 8)           /* OFF, below the pin's size: offset */  \
    X(uffd_mode, "mode", false, 0, 0, 0)                 /* missing|wp: uffd_mode */              \
    X(on_off, "", false, 0, 0, 0)                        /* on|off: on */                         \
    X(file, "", false, 0, 0, 0)                          /* FNAME: file */                        \
    X(page_offset, "", false, 0, kMaxPages, 1)           /* PGOFF: Op::page_offset() */

enum class ArgKind : uint8_t {
#define X(kind, ...) kind,
    MMRACE_OP_ARGS(X)
#undef X
};

struct ArgSpec {
    ArgKind kind;
    std::string_view name;  // the kind's name, as in the table
    std::string_view key;   // "" for a positional word
    bool optional;
    uint64_t min, max, align;
};

inline constexpr ArgSpec kArgSpecs[] = {
#define X(kind, key, optional, min, max, align) {ArgKind::kind, #kind, key, optional, min, max, align},
    MMRACE_OP_ARGS(X)
#undef X
};

constexpr const ArgSpec& arg_spec(ArgKind k) { return kArgSpecs[static_cast<size_t>(k)]; }

// The words an argument of kind k takes (prot letters, advice names, flag names, ...),
// in canonical print order; empty for numbers and names.  program/ops.cpp.
std::span<const std::string_view> arg_words(ArgKind k);

// The ops.  A row: X(name, where, args, result, built, modelled)
//   where     user: an op of a process thread; kthread: of a kernel thread
//   args      its arguments in text order (MMRACE_OP_ARGS kinds): positional words in
//             order, key=value words in the printer's order
//   result    what it returns (DESIGN §9's table; docs/format.md)
//   built     the model runs it (else a program using it is NotBuilt)
//   modelled  the linearizability oracle's reference model covers it (else a history
//             with it is not checked)
// The order is OpKind's: keep new rows at the end of their group, kthread ops last.
#define MMRACE_OPS(X)                                                                          \
    X(mmap, user, (page_addr, pages, prot, mmap_flags), address, true, true)                   \
    X(munmap, user, (page_addr, pages), status, true, true)                                    \
    X(mprotect, user, (page_addr, pages, prot), status, true, true)                            \
    X(madvise, user, (page_addr, pages, advice), status, true, true)                           \
    X(mremap, user, (page_addr, pages, new_pages, mremap_flags, mremap_to), address, true, true) \
    X(read, user, (word_addr), word, true, true)                                               \
    X(write, user, (word_addr, value), ok, true, true)                                         \
    X(peek, user, (word_addr), word, true, true)                                               \
    X(poke, user, (word_addr, value), ok, true, true)                                          \
    X(fork, user, (fork_child), process_name, true, true)                                      \
    X(exit, user, (), status, true, true)                                                      \
    X(pin, user, (page_addr, pages, pin_flags), handle, true, true)                            \
    X(gup, user, (page_addr, pages, gup_flags), page_count, true, true)                        \
    X(unpin, user, (handle), status, true, true)                                               \
    X(dma_read, user, (handle, dma_offset), word, true, true)                                  \
    X(dma_write, user, (handle, dma_offset, value), ok, true, true)                            \
    X(uffd_register, user, (page_addr, pages, uffd_mode), status, true, true)                  \
    X(uffd_wp, user, (page_addr, pages, on_off), status, true, true)                           \
    X(uffd_serve, user, (count, value_key), status, true, true)                                \
    X(file_write, user, (file, page_offset, value), ok, true, true)                            \
    X(truncate, user, (file, file_pages), status, true, true)                                  \
    X(sysfs_write, user, (word_addr), ok, true, false)                                         \
    X(collapse, kthread, (process, page_addr), scan_result, true, true)                        \
    X(reclaim, kthread, (count), status, true, true)                                           \
    X(smaps, kthread, (process), smaps_line, true, true)                                       \
    X(cpu_hotplug, kthread, (), status, true, false)

enum class OpKind : uint8_t {
#define X(name, ...) name,
    MMRACE_OPS(X)
#undef X
};

struct OpSpec {
    std::string_view name;
    OpKind kind;
    bool kthread;                   // a kthread op (else a process thread's)
    std::span<const ArgKind> args;  // in text order
    std::string_view result;        // the result's kind: address, status, word, ok, ...
    bool built;
    bool modelled;
};

namespace op_registry {
// Each row's argument list, as an array ending in a sentinel (so that an op with no
// arguments still has an array).
#define MMRACE_OP_ARG_LIST(...) {__VA_ARGS__ __VA_OPT__(, ) sentinel}
using enum ArgKind;
inline constexpr ArgKind sentinel = page_addr;  // never read: spans stop before it
#define X(name, where, args, ...) inline constexpr ArgKind name##_args[] = MMRACE_OP_ARG_LIST args;
MMRACE_OPS(X)
#undef X
#undef MMRACE_OP_ARG_LIST
}  // namespace op_registry

inline constexpr OpSpec kOpSpecs[] = {
#define X(name, where, args, result, built, modelled)                                          \
    {#name, OpKind::name, std::string_view(#where) == "kthread",                              \
     std::span<const ArgKind>(op_registry::name##_args, std::size(op_registry::name##_args) - 1), \
     #result, built, modelled},
    MMRACE_OPS(X)
#undef X
};

constexpr const OpSpec& op_spec(OpKind k) { return kOpSpecs[static_cast<size_t>(k)]; }
constexpr const char* op_name(OpKind k) { return op_spec(k).name.data(); }

// The row named `name`, or nullptr.
constexpr const OpSpec* find_op(std::string_view name) {
    for (const auto& spec : kOpSpecs)
        if (spec.name == name) return &spec;
    return nullptr;
}

}  // namespace mmrace
