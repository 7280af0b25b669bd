// mmrace._core.explore: the explore loop (include/mmrace/explore.hpp) with the GIL
// released.  The program generator, the progress callback and the Ctrl-C poll take
// the GIL back for as long as they need Python.
#include "explore_binding.hpp"
#include "interrupt.hpp"
#include "workload_shape.hpp"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>

#include "check/history.hpp"
#include "mmrace/explore.hpp"
#include "mmrace/mmr.hpp"

namespace py = pybind11;

namespace mmrace {
namespace {

Schedule::Kind policy_kind(const std::string& name) {
    if (name == "random") return Schedule::Kind::random;
    if (name == "pct") return Schedule::Kind::pct;
    throw py::value_error("explore: unknown policy '" + name +
                          "' (random or pct; replay lists go in `replays`)");
}

// A Program, or .mmr text to parse (`what` names it in errors, and as the file name).
Program as_program(const py::handle& h, const std::string& what) {
    if (py::isinstance<py::str>(h)) return parse_mmr(h.cast<std::string>(), "<" + what + ">");
    if (py::isinstance<Program>(h)) return h.cast<Program>();
    throw py::type_error("explore: " + what + " must be a Program or .mmr text, not " +
                         std::string(py::str(py::type::handle_of(h).attr("__name__"))));
}

py::dict failure_to_dict(const ExploreFailure& f) {
    py::dict d;
    d["seed"] = f.seed;
    d["schedule"] = schedule_text(f.schedule);
    d["verdict"] = f.model_error ? "model_error" : verdict_name(f.result.verdict);
    bool checked = !f.model_error && f.result.check != Check::none;
    d["check"] = checked ? py::object(py::str(check_name(f.result.check))) : py::object(py::none());
    d["message"] = f.result.message;
    d["replay"] = f.result.schedule;
    d["program"] = f.reproducer();
    return d;
}

py::dict result_to_dict(const ExploreResult& r) {
    py::dict d;
    d["runs"] = r.runs;
    py::dict verdicts;
    for (const auto& [k, v] : r.verdicts) verdicts[py::str(verdict_name(k))] = v;
    if (r.model_errors) verdicts["model_error"] = r.model_errors;
    d["verdicts"] = verdicts;
    py::list failures;
    for (const auto& f : r.failures) failures.append(failure_to_dict(f));
    d["failures"] = failures;
    d["seconds"] = r.seconds;
    d["runs_per_second"] = r.runs_per_second();
    d["pct_steps"] = r.pct_steps;
    d["stopped"] = stop_name(r.stopped);
    return d;
}

py::dict explore_py(const py::object& source, const std::vector<std::string>& policies,
                    uint64_t first_seed, uint64_t max_runs, double max_seconds, uint32_t pct_depth,
                    uint64_t pct_steps, std::vector<std::vector<uint64_t>> replays,
                    bool stop_at_first_failure, size_t keep_failures, uint64_t budget,
                    bool check_quiescent, bool check_semantics, const py::object& progress,
                    double progress_seconds, const py::object& workload) {
    ExploreOptions o;
    o.policies.clear();
    for (const auto& name : policies) o.policies.push_back(policy_kind(name));
    o.replays = std::move(replays);
    o.first_seed = first_seed;
    o.max_runs = max_runs;
    o.max_seconds = max_seconds;
    o.pct_depth = pct_depth;
    o.pct_steps = pct_steps;
    o.stop_at_first_failure = stop_at_first_failure;
    o.keep_failures = keep_failures;
    o.run.budget = budget;
    o.run.check_quiescent = check_quiescent;
    o.run.check_semantics = check_semantics;
    o.progress_seconds = progress_seconds;
    if (!progress.is_none())
        o.progress = [&progress](const ExploreResult& r) {
            py::gil_scoped_acquire gil;
            progress(result_to_dict(r));
        };
    bool interrupted = false;
    o.interrupted = python_interrupt_poll(interrupted);
    check::LinStats lin;  // summed over the runs: a give-up must not pass silently
    o.run.lin_stats = &lin;
    ExploreResult r;
    if (!workload.is_none()) {
        // The program of seed s is generated in C++ from SplitMix64Choices(s).
        if (!source.is_none()) throw py::value_error("explore: give a source or workload=, not both");
        if (!py::isinstance<py::dict>(workload))
            throw py::type_error("explore: workload= is a dict (mmrace.workload.shape())");
        WorkloadShape shape = workload_shape(workload.cast<py::dict>());
        ProgramSource gen = [shape](uint64_t seed) { return parse_mmr(random_workload(seed, shape)); };
        py::gil_scoped_release nogil;
        r = explore(gen, o);
    } else if (!py::isinstance<py::str>(source) && !py::isinstance<Program>(source)) {
        if (!PyCallable_Check(source.ptr()))
            throw py::type_error("explore: source must be a Program, .mmr text or a callable seed -> Program");
        ProgramSource gen = [&source](uint64_t seed) {
            py::gil_scoped_acquire gil;
            return as_program(source(seed), "the program of seed " + std::to_string(seed));
        };
        py::gil_scoped_release nogil;
        r = explore(gen, o);
    } else {
        Program p = as_program(source, "source");
        py::gil_scoped_release nogil;
        r = explore(p, o);
    }
    if (interrupted) throw py::error_already_set();
    py::dict d = result_to_dict(r);
    d["lin_gave_up"] = lin.gave_up;
    return d;
}

}  // namespace

void bind_explore(py::module_& m) {
    m.def("explore", &explore_py, py::arg("source"), py::kw_only(),
          py::arg("policies") = std::vector<std::string>{"random"}, py::arg("first_seed") = 0,
          py::arg("max_runs") = 1000, py::arg("max_seconds") = 0.0, py::arg("pct_depth") = 3,
          py::arg("pct_steps") = 0, py::arg("replays") = std::vector<std::vector<uint64_t>>{},
          py::arg("stop_at_first_failure") = false, py::arg("keep_failures") = 1,
          py::arg("budget") = 1'000'000, py::arg("check_quiescent") = true,
          py::arg("check_semantics") = true, py::arg("progress") = py::none(),
          py::arg("progress_seconds") = 1.0, py::arg("workload") = py::none(),
          "Run the programs of seeds first_seed, first_seed+1, ... under each policy "
          "('random', 'pct') until max_runs, max_seconds, the first failure (if asked) or "
          "Ctrl-C (KeyboardInterrupt).  source: a Program, .mmr text, or a callable "
          "seed -> Program or text; or None with workload= a dict of mmrace.workload.shape() "
          "(the program of seed s generated in C++).  pct_steps=0 learns PCT's step bound from a first run.  "
          "Returns runs, verdicts (runs per verdict), failures (seed, schedule, verdict, "
          "check, message, replay, program: the reproducer), seconds, runs_per_second, "
          "pct_steps, stopped ('done', 'time', 'failure', 'interrupted') and lin_gave_up "
          "(linearizability groups given up, not checked).  The loop "
          "releases the GIL.");
}

}  // namespace mmrace
