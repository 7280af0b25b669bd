// mmrace._core.explore (explore_binding.cpp).
#pragma once

#include <pybind11/pybind11.h>

namespace mmrace {
void bind_explore(pybind11::module_& m);
}
