#include "fuzz/shape_helpers.hpp"

#include "mmrace/ops.hpp"

namespace mmrace::fuzz {

void expect_default_config(Coder& c, const Config& cfg, Geometry g) {
    if (c.decoding()) return;
    if (cfg.geometry != g) c.reject(std::string("config geometry=") + geometry_name(cfg.geometry) + ": this target runs " + geometry_name(g));
    if (cfg.folios != kDefaultFolios || cfg.swap_slots != kDefaultSwapSlots || cfg.pgtables != kDefaultPgtables)
        c.reject("config folios=/swap_slots=/pgtables=: this target runs the default pools");
    if (cfg.budget != kDefaultBudget) c.reject("config budget=: this target runs the default budget");
}

uint64_t page_index(Coder& c, uint64_t addr, uint64_t base, uint64_t span, const std::string& what) {
    if (c.decoding()) return 0;
    if (addr < base || addr % kPageSize || (addr - base) / kPageSize >= span)
        c.reject(what + ": address " + std::to_string(addr) + " is outside the target's window");
    return (addr - base) / kPageSize;
}

void code_op_count(Coder& c, Thread& t, uint64_t min, uint64_t max) {
    if (!c.decoding() && (t.ops.size() < min || t.ops.size() > max))
        c.reject("thread " + t.name + ": " + std::to_string(t.ops.size()) + " ops, this target has " +
                 std::to_string(min) + " to " + std::to_string(max));
    uint64_t n = c.decoding() ? 0 : t.ops.size() - min;
    c.num(n, max - min + 1, ("ops of " + t.name).c_str());
    t.ops.resize(n + min);
}

}  // namespace mmrace::fuzz
