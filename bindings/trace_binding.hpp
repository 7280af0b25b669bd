// What traces need beyond the run's records (trace_binding.cpp): the lock names behind
// the records' args, and the history of a failed linearizability check.
#pragma once

#include <pybind11/pybind11.h>

#include "mmrace/run.hpp"

namespace mmrace {
// mmrace._core.lock_names().
void bind_trace(pybind11::module_& m);
// A RunResult's lin_history as a dict (pages, linearized, ops: thread, index, inv,
// resp, mark), or None when check linearizability did not fail.
pybind11::object lin_history_to_py(const RunResult& r);
}  // namespace mmrace
