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

void name_threads(Coder& c, Process& proc) {
    for (size_t t = 0; t < proc.threads.size(); ++t) {
        std::string name = proc.name + ".T" + std::to_string(t);
        if (!c.decoding() && proc.threads[t].name != name)
            c.reject("thread " + proc.threads[t].name + ": this target names it " + name);
        proc.threads[t].name = name;
    }
}

Thread* forked_child(Coder& c, Program& p, bool forks) {
    if (!c.decoding() && forks != (p.processes.size() == 2)) c.reject("P1 exists exactly when T0 forks it");
    if (!forks) return nullptr;
    p.processes.resize(2);
    Process& p1 = p.processes[1];
    p1.name = "P1";
    p1.forked = true;
    if (!c.decoding() && p1.threads.size() != 1) c.reject("P1 has one thread in this target");
    p1.threads.resize(1);
    name_threads(c, p1);
    return &p1.threads[0];
}

}  // namespace mmrace::fuzz
