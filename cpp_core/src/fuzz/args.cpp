#include "fuzz/args.hpp"

#include <algorithm>

#include "mmrace/ops.hpp"

namespace mmrace::fuzz {

namespace {
constexpr uint64_t kLowPages = 0x8000;  // the first 128 MiB, in pages
}

void code_value(Coder& c, uint64_t& v, const char* what) {
    bool wide = v >= 256;
    if (!c.coin(wide, what)) return c.num(v, 256, what);
    uint64_t hi = v >> 32, lo = v & 0xffffffffu;
    c.num(hi, 1ull << 32, what);
    c.num(lo, 1ull << 32, what);
    v = hi << 32 | lo;
}

void code_count(Coder& c, uint64_t& v, uint64_t max, const char* what) {
    const uint64_t small = std::min<uint64_t>(16, max);
    bool large = v > small;
    if (c.coin(large, what)) c.num(v, max + 1, what);
    else c.num(v, small + 1, what);
}

void code_pages(Coder& c, uint64_t& pages, uint64_t max, const char* what) {
    if (!c.decoding() && pages == 0) c.reject(std::string(what) + ": pages=0");
    uint64_t n = pages - 1;
    code_count(c, n, max - 1, what);
    pages = n + 1;
}

void code_page_addr(Coder& c, uint64_t& addr, uint64_t pages, const char* what) {
    if (!c.decoding() && addr % kPageSize)
        c.reject(std::string(what) + ": address " + std::to_string(addr) + " is not page aligned");
    const uint64_t slots = kUserTop / kPageSize - pages + 1;  // starts that keep the range below kUserTop
    uint64_t page = addr / kPageSize;
    bool high = page >= kLowPages;
    if (c.coin(high, what)) c.num(page, slots, what);
    else c.num(page, std::min(kLowPages, slots), what);
    addr = page * kPageSize;
}

void code_word_addr(Coder& c, uint64_t& addr, const char* what) {
    if (!c.decoding() && addr % 8)
        c.reject(std::string(what) + ": address " + std::to_string(addr) + " is not 8-byte aligned");
    uint64_t page = addr & ~(kPageSize - 1), word = (addr % kPageSize) / 8;
    code_page_addr(c, page, 1, what);
    c.num(word, kPageSize / 8, what);
    addr = page + word * 8;
}

void code_range(Coder& c, Op& op, uint64_t max_pages, const char* what) {
    code_pages(c, op.pages, max_pages, what);
    code_page_addr(c, op.addr, op.pages, what);
}

}  // namespace mmrace::fuzz
