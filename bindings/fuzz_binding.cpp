// mmrace._core.fuzz_*: the fuzz targets' decoder and encoder (mmrace/fuzz.hpp), for
// `mmrace fuzz convert` and the round-trip property tests.  Conversion only.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "mmrace/fuzz.hpp"
#include "mmrace/mmr.hpp"

namespace py = pybind11;
using namespace mmrace;

void bind_fuzz(py::module_& m) {
    m.def("fuzz_targets", [] { return fuzz::target_names(); },
          "The fuzz targets, each built as fuzz/fuzz_<target>.");
    m.def(
        "fuzz_decode",
        [](const std::string& target, const py::bytes& data, const std::vector<std::string>& mutants) {
            fuzz::Target t = fuzz::parse_target(target);
            fuzz::Options o{mutants};
            fuzz::check_options(t, o);
            std::string in = data;
            py::gil_scoped_release unlocked;
            return fuzz::to_mmr(t, in, o);
        },
        py::arg("target"), py::arg("data"), py::arg("mutants") = std::vector<std::string>{},
        "The .mmr reproducer of a fuzz input: decoded, run once, with a `schedule replay` line of the picks it "
        "made (same verdict, check and trace hash).  ValueError for an unknown target or mutant, or (mmr_parser) "
        "text that does not parse.");
    m.def(
        "fuzz_encode",
        [](const std::string& target, const std::string& mmr) {
            fuzz::Target t = fuzz::parse_target(target);
            Program p = parse_mmr(mmr);
            std::string out;
            {
                py::gil_scoped_release unlocked;
                out = fuzz::encode(t, p);
            }
            return py::bytes(out);
        },
        py::arg("target"), py::arg("mmr"),
        "A fuzz input that decodes to the program of `mmr` (its config's mutants are the ones to decode with) and "
        "makes the decisions of its schedule line.  ValueError naming what the target cannot express.");
}
