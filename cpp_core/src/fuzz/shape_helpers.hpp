// Pieces the fixed shapes (window_shape.cpp, gup_shape.cpp) build their programs from.
#pragma once

#include <cstdint>
#include <string>

#include "fuzz/coder.hpp"
#include "mmrace/program.hpp"

namespace mmrace::fuzz {

inline Op make_mmap(uint64_t addr, uint64_t pages, uint8_t prot, uint32_t flags, int file = -1) {
    Op op;
    op.kind = OpKind::mmap;
    op.addr = addr;
    op.pages = pages;
    op.prot = prot;
    op.flags = flags;
    op.file = file;
    return op;
}

inline Op make_access(OpKind kind, uint64_t addr, uint64_t value = 0) {
    Op op;
    op.kind = kind;
    op.addr = addr;
    if (kind == OpKind::write || kind == OpKind::poke) op.value = value;
    return op;
}

// The value the n-th op of thread `tid` writes in a fixed shape: distinct per store, so
// the linearizability check can tell which store a load saw.
inline uint64_t store_value(size_t tid, size_t n) { return (uint64_t{tid} << 8) | (n + 1); }

// The fixed shapes keep the format's defaults except what they code: an encoder
// rejects any other config.
void expect_default_config(Coder& c, const Config& cfg, Geometry g);

// Encoding: `pages` pages from `addr` must be inside [base, base + span pages).
// Returns the first page's index there.
uint64_t page_index(Coder& c, uint64_t addr, uint64_t base, uint64_t span, const std::string& what);

// A thread's op count in [min, max].
void code_op_count(Coder& c, Thread& t, uint64_t min, uint64_t max);

// Names a process's threads PROC.T0, PROC.T1, ... (an encoder rejects other names).
void name_threads(Coder& c, Process& proc);

// The fixed shapes' child: P1, forked by P0.T0 and with one thread, exists exactly when
// `forks`.  Returns its thread for the shape to code, or nullptr.
Thread* forked_child(Coder& c, Program& p, bool forks);

}  // namespace mmrace::fuzz
