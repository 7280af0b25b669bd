// What traces need beyond the run's records: lock names and the linearizability history.
#include "trace_binding.hpp"

#include <pybind11/stl.h>

#include "runtime/site.hpp"

namespace py = pybind11;

namespace mmrace {

namespace {

// The lockdep classes of the model's locks (the names their LockdepMap is built with).
// A lock's trace records carry fnv1a(name) as their arg (sync/lockdep.hpp); a lock whose
// class is missing here shows as its hash.  pytests/test_trace.py checks that every lock
// in the examples' traces is named.
constexpr const char* kLockClasses[] = {
    "&mm->mmap_lock",          "&mm->page_table_lock",       "&mm->mm_rb_lock",
    "&mm->write_protect_seq",  "&vma->vm_lock->lock",        "&vma->vm_sequence",
    "ptlock",                  "&anon_vma->rwsem",           "&mapping->i_mmap_rwsem",
    "&mapping->invalidate_lock", "&sb->s_type->i_mutex_key", "cpu_hotplug_lock",
    "s_active",
};

const char* mark_name(LinOp::Mark m) {
    switch (m) {
        case LinOp::Mark::linearized: return "linearized";
        case LinOp::Mark::stuck: return "stuck";
        case LinOp::Mark::unreached: return "unreached";
    }
    return "unreached";
}

}  // namespace

py::object lin_history_to_py(const RunResult& r) {
    if (!r.lin_history) return py::none();
    py::dict d;
    d["pages"] = r.lin_history->pages;
    d["linearized"] = r.lin_history->linearized;
    py::list ops;
    for (const LinOp& o : r.lin_history->ops) {
        py::dict od;
        od["thread"] = o.thread;
        od["index"] = o.index;
        od["inv"] = o.inv;
        od["resp"] = o.resp;
        od["mark"] = mark_name(o.mark);
        ops.append(od);
    }
    d["ops"] = ops;
    return d;
}

void bind_trace(py::module_& m) {
    m.def("lock_names", [] {
        py::dict d;
        for (const char* name : kLockClasses) d[py::int_(rt::fnv1a(name))] = name;
        return d;
    }, "The lock classes by the arg of their trace records (fnv1a of the lockdep class "
       "name): {arg: name}.");
}

}  // namespace mmrace
