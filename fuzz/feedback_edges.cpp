// AFL++ sees the interleaving counters as edges (harness.cpp): kEdges functions, each
// its own instrumented block, and a counter set to c calls edge (i % kEdges) c times
// (up to 16), so AFL++'s hit-count buckets apply.  Under libFuzzer the counters are
// read from __libfuzzer_extra_counters instead and this is a no-op.
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace mmrace::fuzz::harness {

#if defined(MMRACE_FUZZ_AFL)
namespace {

constexpr size_t kEdges = 4096;
volatile uint32_t g_sink;

template <size_t I>
__attribute__((noinline)) void edge() {
    g_sink = static_cast<uint32_t>(I);  // distinct bodies: no folding into one function
}

template <size_t... I>
constexpr std::array<void (*)(), sizeof...(I)> make_edges(std::index_sequence<I...>) {
    return {&edge<I>...};
}

constexpr auto kEdgeTable = make_edges(std::make_index_sequence<kEdges>{});

}  // namespace

void report_edges(const uint8_t* counters, size_t n) {
    for (size_t i = 0; i < n; ++i)
        for (uint8_t c = counters[i] < 16 ? counters[i] : 16; c; --c) kEdgeTable[i % kEdges]();
}
#else
void report_edges(const uint8_t*, size_t) {}
#endif

}  // namespace mmrace::fuzz::harness
