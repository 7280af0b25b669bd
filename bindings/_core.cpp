// mmrace._core: the thin binding over the C++ core.  Conversion, GIL release and
// Ctrl-C only; the logic lives in cpp_core/ and in the pure-Python package.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "explore/pct_bound.hpp"
#include "explore_binding.hpp"
#include "interrupt.hpp"
#include "mmrace/mmr.hpp"
#include "mmrace/ops.hpp"
#include "mmrace/run.hpp"
#include "mutants/catalogue.hpp"
#include "program/generate/workload.hpp"
#include "trace_binding.hpp"

namespace py = pybind11;
using namespace mmrace;

void bind_generate(py::module_& m);  // generate.cpp
void bind_fuzz(py::module_& m);      // fuzz_binding.cpp

namespace {

py::dict result_to_dict(const RunResult& r, bool with_trace) {
    py::dict d;
    d["verdict"] = verdict_name(r.verdict);
    d["check"] = r.check == Check::none ? py::object(py::none()) : py::object(py::str(check_name(r.check)));
    d["message"] = r.message;
    d["user_wait"] = r.user_wait;
    d["step"] = r.step;
    py::list ops;
    for (const auto& o : r.ops) {
        py::dict od;
        od["thread"] = o.thread;
        od["index"] = o.index;
        od["op"] = o.op;
        od["result"] = o.result ? py::object(py::str(*o.result)) : py::object(py::none());
        ops.append(od);
    }
    d["ops"] = ops;
    py::dict counters;
    for (const auto& [k, v] : r.counters) counters[py::str(k)] = v;
    d["counters"] = counters;
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r.trace_hash));
    d["trace_hash"] = std::string(hash);
    py::list trace;
    if (with_trace)
        for (const auto& t : r.trace) trace.append(py::make_tuple(t.step, t.who, t.site, t.event, t.arg));
    d["trace"] = trace;
    d["schedule"] = r.schedule;
    d["budget"] = r.budget;
    d["reproducer"] = r.reproducer();
    d["lin_history"] = lin_history_to_py(r);
    return d;
}

// mmrace._core.ModelError with what replays the run up to the error: `schedule` (the
// `schedule replay ...` line) and `reproducer` (the .mmr text with the run's budget and
// that schedule line; also `program`, its older name).
[[noreturn]] void raise_model_error(const Program& p, uint64_t budget, const ModelError& e) {
    py::object cls = py::module_::import("mmrace._core").attr("ModelError");
    py::object err = cls(e.what());
    Program with_budget = p;
    with_budget.config.budget = budget;
    std::string reproducer = e.schedule().empty() ? std::string() : replay_mmr(with_budget, e.schedule());
    err.attr("schedule") = e.schedule();
    err.attr("reproducer") = reproducer;
    err.attr("program") = reproducer;
    PyErr_SetObject(cls.ptr(), err.ptr());
    throw py::error_already_set();
}

// Runs with the GIL released; every few thousand steps the run takes the GIL back
// briefly to let Python handle signals, so Ctrl-C stops it with KeyboardInterrupt.
py::dict run(const Program& p, std::optional<std::string> schedule, std::optional<uint64_t> budget,
             bool trace) {
    RunOptions opt;
    if (schedule) opt.schedule = parse_schedule(*schedule);
    opt.budget = budget;
    opt.trace = trace;
    bool interrupted = false;
    opt.interrupted = python_interrupt_poll(interrupted);
    RunResult r;
    try {
        py::gil_scoped_release nogil;
        r = run_program(p, opt);
    } catch (const ModelError& e) {
        raise_model_error(p, opt.budget.value_or(p.config.budget), e);
    }
    if (interrupted) throw py::error_already_set();
    return result_to_dict(r, trace);
}

// The `schedule preempt ...` line of one run (trace off); GIL released.
std::string preempt_schedule(const Program& p, std::optional<std::string> schedule,
                             std::optional<uint64_t> budget) {
    RunOptions opt;
    if (schedule) opt.schedule = parse_schedule(*schedule);
    opt.budget = budget;
    opt.trace = false;
    try {
        py::gil_scoped_release nogil;
        return run_program(p, opt).preempt_schedule;
    } catch (const ModelError& e) {
        raise_model_error(p, opt.budget.value_or(p.config.budget), e);
    }
}

// PCT's step bound for p, measured as explore measures it (explore/pct_bound.hpp).
uint64_t pct_steps(const Program& p, std::optional<uint64_t> budget) {
    RunOptions opt;
    opt.budget = budget;
    try {
        py::gil_scoped_release nogil;
        return explore_detail::PctBound(0).get(p, opt);
    } catch (const ModelError& e) {
        raise_model_error(p, opt.budget.value_or(p.config.budget), e);
    }
}

// One MMRACE_OP_ARGS kind as a dict: kind, key (None for a positional word),
// optional, min/max/align (numbers; None otherwise), words (enumerated values).
py::dict arg_to_dict(ArgKind a) {
    const ArgSpec& spec = arg_spec(a);
    py::dict d;
    d["kind"] = std::string(spec.name);
    d["key"] = spec.key.empty() ? py::object(py::none()) : py::object(py::str(std::string(spec.key)));
    d["optional"] = spec.optional;
    bool number = spec.align != 0;
    d["min"] = number ? py::object(py::int_(spec.min)) : py::object(py::none());
    d["max"] = number ? py::object(py::int_(spec.max)) : py::object(py::none());
    d["align"] = number ? py::object(py::int_(spec.align)) : py::object(py::none());
    py::list words;
    for (std::string_view w : arg_words(a)) words.append(std::string(w));
    d["words"] = words;
    return d;
}

// The op registry's rows (mmrace/ops.hpp), in OpKind order.
py::list op_specs() {
    py::list rows;
    for (const OpSpec& spec : kOpSpecs) {
        py::dict d;
        d["name"] = std::string(spec.name);
        d["kthread"] = spec.kthread;
        py::list args;
        for (ArgKind a : spec.args) args.append(arg_to_dict(a));
        d["args"] = args;
        d["result"] = std::string(spec.result);
        d["built"] = spec.built;
        d["modelled"] = spec.modelled;
        rows.append(d);
    }
    return rows;
}

// The format's limits that front ends need when they draw programs.
py::dict limits() {
    py::dict d;
    d["page_size"] = kPageSize;
    d["user_top"] = kUserTop;
    d["max_pages"] = kMaxPages;
    d["max_pct_depth"] = kMaxPctDepth;
    py::list pools;  // (key, default, maximum), in the order the config line prints them
    pools.append(py::make_tuple("folios", kDefaultFolios, kMaxFolios));
    pools.append(py::make_tuple("swap_slots", kDefaultSwapSlots, kMaxSwapSlots));
    pools.append(py::make_tuple("pgtables", kDefaultPgtables, kMaxPgtables));
    d["pools"] = pools;
    return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "mmrace core: the deterministic model of Linux page-fault paths";

    py::register_exception<NotBuilt>(m, "NotBuilt", PyExc_NotImplementedError);
    // ModelError is an mmrace.MmraceError too (bindings/mmrace/errors.py).
    py::object root = py::module_::import("mmrace.errors").attr("MmraceError");
    py::register_exception<ModelError>(m, "ModelError", py::make_tuple(root, py::handle(PyExc_RuntimeError)));
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ParseError& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });

    py::class_<Program>(m, "Program")
        .def("to_mmr", &print_mmr, "The canonical .mmr text of this program.")
        .def("__eq__", [](const Program& a, const Program& b) { return a == b; })
        .def_property_readonly("thread_count", &Program::thread_count)
        .def_property_readonly(
            "pool_limits",
            [](const Program& p) {
                // Only the sizes the config line names: the ones that differ from the defaults.
                py::dict d;
                if (p.config.folios != kDefaultFolios) d["folios"] = p.config.folios;
                if (p.config.swap_slots != kDefaultSwapSlots) d["swap_slots"] = p.config.swap_slots;
                if (p.config.pgtables != kDefaultPgtables) d["pgtables"] = p.config.pgtables;
                return d;
            },
            "The pool sizes the config line sets (folios, swap_slots, pgtables), if any.")
        .def_property_readonly("thread_names", [](const Program& p) {
            std::vector<std::string> names;
            for (const auto& proc : p.processes)
                for (const auto& t : proc.threads) names.push_back(t.name);
            for (const auto& t : p.kthreads) names.push_back(t.name);
            return names;
        });

    m.def("parse", &parse_mmr, py::arg("text"), py::arg("filename") = "<string>",
          "Parse .mmr text into a Program; raises ValueError('FILE:LINE:COL: message').");
    m.def("run", &run, py::arg("program"), py::arg("schedule") = py::none(),
          py::arg("budget") = py::none(), py::arg("trace") = true);
    m.def("checks", [] {
        py::list rows;
        for (const CheckInfo& c : kChecks) {
            py::dict d;
            d["name"] = c.name;
            d["verdict"] = verdict_name(c.verdict);
            d["description"] = c.description;
            rows.append(d);
        }
        return rows;
    }, "Every check (docs/checks.md), in MMRACE_CHECKS order: name, verdict, description.");
    m.def("verdict_names", [] {
        std::vector<std::string> names;
        for (Verdict v : kVerdicts)
            names.emplace_back(verdict_name(v));
        return names;
    }, "The verdicts, ok first.");
    m.def("parse_schedule",
          [](std::string_view text, std::string_view source) {
              return schedule_text(parse_schedule(text, source));
          },
          py::arg("text"), py::arg("source") = "<schedule>",
          "The canonical `schedule ...` line of a schedule in the file's grammar (`schedule` "
          "optional); raises ValueError('SOURCE:1:COL: message').");
    m.def("replay_mmr", &replay_mmr, py::arg("program"), py::arg("schedule"),
          "The .mmr text of program with its schedule line set to `schedule`.");
    m.def("check_built", &check_built, py::arg("program"));
    m.def("preempt_schedule", &preempt_schedule, py::arg("program"), py::arg("schedule") = py::none(),
          py::arg("budget") = py::none(),
          "The `schedule preempt D:K ...` line of one run: the same run as its context switches.");
    m.def("pct_steps", &pct_steps, py::arg("program"), py::arg("budget") = py::none(),
          "PCT's step bound: the decisions of a run under an empty replay list, at least 1.");
    m.def("mutant_names", [] {
        std::vector<std::string> names;
        for (const auto& m : mutant_catalogue()) names.emplace_back(m.name);
        return names;
    }, "The names of the mutant catalogue (docs/mutants.md), in its order.");
    m.def("mutant_catalogue", [] {
        py::list rows;
        for (const auto& m : mutant_catalogue()) {
            py::dict d;
            d["name"] = m.name;
            d["reference"] = m.reference;
            d["strategies"] = m.strategies;
            d["check"] = check_name(m.check);
            d["summary"] = m.summary;
            d["built"] = m.built;
            rows.append(d);
        }
        return rows;
    }, "The mutant catalogue's rows (docs/mutants.md): name, reference, strategies ('all' "
       "or a comma list), check, summary, built.");
    m.def("op_specs", &op_specs,
          "The op registry (cpp_core/include/mmrace/ops.hpp): one dict per op with name, "
          "kthread, args (kind, key, optional, min, max, align, words), result, built, "
          "modelled.");
    m.def("limits", &limits,
          "The format's limits: page_size, user_top, max_pages, max_pct_depth, and pools "
          "as (key, default, maximum) in config-line order.");
    m.def("random_workload", [](uint64_t seed) { return random_workload(seed); }, py::arg("seed"),
          "The .mmr text of a random multi-threaded workload over the ops the model has built.");
    bind_generate(m);
    bind_fuzz(m);
    bind_explore(m);
    bind_trace(m);
}
