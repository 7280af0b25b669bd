// mmrace._core.generate: the generator (cpp_core/src/program/generate/) driven from
// Python by a seed, a byte string, or a callback that makes each choice (a Hypothesis
// strategy draws them itself, so it shrinks along the program's structure).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "program/generate/generate.hpp"
#include "workload_shape.hpp"

namespace py = pybind11;
using namespace mmrace;

namespace {

// Choices from a Python callable choose(n) -> int in [0, n).  A choice of one costs
// no call.  What the callable raises propagates (Hypothesis stops a test that way).
class CallbackChoices final : public gen::ChoiceSource {
public:
    explicit CallbackChoices(py::function f) : f_(std::move(f)) {}
    uint64_t choose(uint64_t n) override {
        if (n <= 1) return 0;
        py::object got = f_(n);
        if (!py::isinstance<py::int_>(got))
            throw py::type_error("choose(" + std::to_string(n) + ") returned " +
                                 std::string(py::str(py::repr(got))) + ", not an int");
        auto v = got.cast<py::int_>();
        if (v < py::int_(0) || v >= py::int_(n))
            throw py::value_error("choose(" + std::to_string(n) + ") returned " + std::string(py::str(v)) +
                                  ", not in [0, " + std::to_string(n) + ")");
        return v.cast<uint64_t>();
    }

private:
    py::function f_;
};

gen::ShapeKind shape_kind(const std::string& name) {
    if (name == "workload") return gen::ShapeKind::workload;
    if (name == "conform") return gen::ShapeKind::conform;
    if (name == "valid") return gen::ShapeKind::valid;
    throw py::value_error("unknown shape '" + name + "' (workload, conform or valid)");
}

size_t bound(const char* what, long v) {
    if (v < 0 || v > 64) throw py::value_error(std::string(what) + "=" + std::to_string(v) + ", not in [0, 64]");
    return static_cast<size_t>(v);
}

}  // namespace

void bind_generate(py::module_& m) {
    m.def(
        "generate",
        [](py::object source, const std::string& shape, long max_processes, long max_threads,
           long max_kthreads, long max_files, long max_ops, bool runnable, const py::object& workload) {
            gen::Shape s;
            s.kind = shape_kind(shape);
            if (!workload.is_none()) {
                if (s.kind != gen::ShapeKind::workload || !py::isinstance<py::dict>(workload))
                    throw py::value_error("workload= is a dict (mmrace.workload.shape()), for shape 'workload'");
                s.workload = workload_shape(workload.cast<py::dict>());
            }
            s.valid.max_processes = bound("max_processes", max_processes);
            s.valid.max_threads = std::max<size_t>(1, bound("max_threads", max_threads));
            s.valid.max_kthreads = bound("max_kthreads", max_kthreads);
            s.valid.max_files = bound("max_files", max_files);
            s.valid.max_ops = bound("max_ops", max_ops);
            s.valid.runnable = runnable;
            if (py::isinstance<py::bytes>(source)) {
                std::string bytes = source.cast<std::string>();
                gen::ByteChoices choices(bytes);
                return gen::generate(choices, s);
            }
            if (py::isinstance<py::int_>(source)) {
                gen::SplitMix64Choices choices(source.cast<uint64_t>());
                return gen::generate(choices, s);
            }
            if (!py::isinstance<py::function>(source))
                throw py::type_error("source must be a seed (int), bytes, or a callable choose(n)");
            CallbackChoices choices(source.cast<py::function>());
            return gen::generate(choices, s);
        },
        py::arg("source"), py::arg("shape") = "valid", py::kw_only(), py::arg("max_processes") = 4,
        py::arg("max_threads") = 3, py::arg("max_kthreads") = 2, py::arg("max_files") = 3,
        py::arg("max_ops") = 8, py::arg("runnable") = true, py::arg("workload") = py::none(),
        "The .mmr text of a generated program.  source: a seed (SplitMix64), bytes (the\n"
        "fuzzers' total decoder) or a callable choose(n) -> int in [0, n), where 0 is the\n"
        "simplest choice.  shape: 'valid' (any program the format accepts; max_* bound it,\n"
        "runnable keeps to mutants that are built for its strategy), 'conform' (programs\n"
        "the host kernel runs too) or 'workload' (racing workloads; workload= a dict of\n"
        "mmrace.workload.shape(), else the soak's default shape).");
}
