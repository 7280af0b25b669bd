// A WorkloadShape from the dict mmrace.workload.shape() returns (the `workload=` of
// _core.generate and _core.explore).
#pragma once

#include <pybind11/pybind11.h>

#include "program/generate/workload.hpp"

namespace mmrace {

// The shape `d` describes: keys strategy, geometry, mutants, vma_lock, threads, ops,
// pages, features, simplest_first; a key left out keeps WorkloadShape's default (and
// without `features`, the default features).  Throws ValueError naming a bad key or value.
WorkloadShape workload_shape(const pybind11::dict& d);

}  // namespace mmrace
