// Ctrl-C during a long C++ loop that runs with the GIL released (run, explore).
#pragma once

#include <pybind11/pybind11.h>

#include <functional>

namespace mmrace {

// A poll for RunOptions/ExploreOptions::interrupted: takes the GIL briefly so Python
// handles pending signals, and from the first KeyboardInterrupt on says true (and sets
// `interrupted`, so the caller rethrows with py::error_already_set once it holds the GIL).
inline std::function<bool()> python_interrupt_poll(bool& interrupted) {
    return [&interrupted] {
        pybind11::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) interrupted = true;
        return interrupted;
    };
}

}  // namespace mmrace
