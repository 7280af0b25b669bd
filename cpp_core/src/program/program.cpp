// Names of the Program enums and structural equality (DESIGN §9).  Op names come from
// the op registry (mmrace/ops.hpp).
#include "mmrace/program.hpp"

namespace mmrace {

const char* strategy_name(Strategy s) {
    switch (s) {
        case Strategy::classic: return "classic";
        case Strategy::spf: return "spf";
        case Strategy::pervma: return "pervma";
    }
    return "?";
}

const char* geometry_name(Geometry g) {
    switch (g) {
        case Geometry::small: return "small";
        case Geometry::x86: return "x86";
    }
    return "?";
}

bool Op::operator==(const Op& o) const {
    // Every field but loc: two ops are the same op wherever they were written.
    return kind == o.kind && addr == o.addr && pages == o.pages && new_pages == o.new_pages &&
           value == o.value && offset == o.offset && prot == o.prot && flags == o.flags &&
           file == o.file && pgoff == o.pgoff && advice == o.advice && uffd_mode == o.uffd_mode &&
           on == o.on && to == o.to && process == o.process && handle == o.handle;
}

namespace {

// The element types keep their loc for error messages, so they have no operator==
// of their own; these compare everything but the loc.
template <class T, class Eq>
bool same_list(const std::vector<T>& a, const std::vector<T>& b, Eq eq) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!eq(a[i], b[i])) return false;
    return true;
}

bool same_thread(const Thread& a, const Thread& b) { return a.name == b.name && a.ops == b.ops; }

bool same_process(const Process& a, const Process& b) {
    return a.name == b.name && a.forked == b.forked && same_list(a.threads, b.threads, same_thread);
}

bool same_file(const File& a, const File& b) { return a.name == b.name && a.pages == b.pages; }

}  // namespace

bool Program::operator==(const Program& o) const {
    return config == o.config && schedule == o.schedule && same_list(files, o.files, same_file) &&
           same_list(processes, o.processes, same_process) &&
           same_list(kthreads, o.kthreads, same_thread);
}

size_t Program::thread_count() const {
    size_t n = kthreads.size();
    for (const auto& p : processes) n += p.threads.size();
    return n;
}

}  // namespace mmrace
