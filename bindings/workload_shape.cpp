// workload_shape.hpp: the dict's keys to WorkloadShape's fields, each value checked.
#include "workload_shape.hpp"

#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace mmrace {
namespace {

// The feature names of mmrace.workload.FEATURES, each with its switch.
const std::pair<const char*, bool WorkloadShape::*> kFeatures[] = {
    {"fork", &WorkloadShape::fork},         {"gup", &WorkloadShape::gup},
    {"peek_poke", &WorkloadShape::peek_poke}, {"mremap", &WorkloadShape::mremap},
    {"mprotect", &WorkloadShape::mprotect}, {"dontneed", &WorkloadShape::dontneed},
    {"pageout", &WorkloadShape::pageout},   {"collapse", &WorkloadShape::collapse},
    {"uffd", &WorkloadShape::uffd},         {"files", &WorkloadShape::files},
    {"shmem", &WorkloadShape::shmem},       {"thp", &WorkloadShape::thp},
    {"reclaim", &WorkloadShape::reclaim},   {"smaps", &WorkloadShape::smaps},
    {"khugepaged", &WorkloadShape::khugepaged}, {"sysfs", &WorkloadShape::sysfs},
    {"cpu_hotplug", &WorkloadShape::cpu_hotplug}, {"debugger", &WorkloadShape::debugger},
    {"kvm", &WorkloadShape::kvm},           {"purge", &WorkloadShape::purge},
    {"bursts", &WorkloadShape::bursts},     {"counters", &WorkloadShape::counters},
};

[[noreturn]] void bad(const std::string& key, const py::handle& v, const std::string& want) {
    throw py::value_error("workload: " + key + "=" + std::string(py::str(py::repr(v))) + ": expected " + want);
}

std::string one_of(const std::string& key, const py::handle& v, const std::vector<std::string>& names) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    if (py::isinstance<py::str>(v))
        for (const auto& n : names)
            if (v.cast<std::string>() == n) return n;
    bad(key, v, "one of " + list);
}

int int_in(const std::string& key, const py::handle& v, int lo, int hi) {
    if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v)) bad(key, v, "an int");
    long x = v.cast<long>();
    if (x < lo || x > hi) bad(key, v, "an int in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(x);
}

// (lo, hi) with lo <= hi, both in [least, most].
std::pair<int, int> range(const std::string& key, const py::handle& v, int least, int most) {
    std::string want = "(lo, hi) with " + std::to_string(least) + " <= lo <= hi <= " + std::to_string(most);
    if (!py::isinstance<py::sequence>(v) || py::isinstance<py::str>(v) || py::len(v) != 2) bad(key, v, want);
    auto seq = v.cast<py::sequence>();
    int lo = int_in(key, seq[0], least, most), hi = int_in(key, seq[1], least, most);
    if (lo > hi) bad(key, v, want);
    return {lo, hi};
}

std::vector<std::string> names(const std::string& key, const py::handle& v) {
    if (!py::isinstance<py::sequence>(v) || py::isinstance<py::str>(v)) bad(key, v, "a list of names");
    std::vector<std::string> out;
    for (const auto& item : v.cast<py::sequence>()) {
        if (!py::isinstance<py::str>(item)) bad(key, v, "a list of names");
        out.push_back(item.cast<std::string>());
    }
    return out;
}

// Comma text of `items`, each an identifier (the parser says whether it is a mutant).
std::string comma_list(const std::string& key, const py::handle& v) {
    std::string s;
    for (const auto& n : names(key, v)) {
        bool ident = !n.empty();
        for (char ch : n) ident &= (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
        if (!ident) bad(key, v, "names of [a-z0-9_]");
        s += (s.empty() ? "" : ",") + n;
    }
    return s;
}

void set_features(WorkloadShape& s, const py::handle& v) {
    for (const auto& [name, field] : kFeatures) s.*field = false;
    for (const auto& n : names("features", v)) {
        bool known = false;
        for (const auto& [name, field] : kFeatures)
            if (n == name) s.*field = known = true;
        if (!known) {
            std::string list;
            for (const auto& [name, field] : kFeatures) list += (list.empty() ? "" : ", ") + std::string(name);
            throw py::value_error("workload: unknown feature '" + n + "' (" + list + ")");
        }
    }
}

}  // namespace

WorkloadShape workload_shape(const py::dict& d) {
    WorkloadShape s;
    for (const auto& [k, v] : d) {
        if (!py::isinstance<py::str>(k)) bad("key", k, "a str");
        std::string key = k.cast<std::string>();
        if (key == "strategy") s.strategy = one_of(key, v, {"classic", "spf", "pervma"});
        else if (key == "geometry") s.geometry = one_of(key, v, {"small", "x86"});
        else if (key == "mutants") s.mutants = comma_list(key, v);
        else if (key == "vma_lock") s.vma_lock = comma_list(key, v);
        else if (key == "threads") std::tie(s.min_threads, s.max_threads) = range(key, v, 1, 8);
        else if (key == "ops") std::tie(s.min_ops, s.max_ops) = range(key, v, 1, 64);
        else if (key == "pages") s.pages = int_in(key, v, 1, 64);
        else if (key == "features") set_features(s, v);
        else if (key == "simplest_first" || key == "swarm") {
            if (!py::isinstance<py::bool_>(v)) bad(key, v, "a bool");
            (key == "swarm" ? s.swarm : s.simplest_first) = v.cast<bool>();
        } else {
            throw py::value_error("workload: unknown key '" + key +
                                  "' (strategy, geometry, mutants, vma_lock, threads, ops, pages, "
                                  "features, swarm, simplest_first)");
        }
    }
    for (const auto& c : names("vma_lock", d.contains("vma_lock") ? d["vma_lock"] : py::list()))
        if (c != "swapin" && c != "file" && c != "uffd") bad("vma_lock", d["vma_lock"], "swapin, file, uffd");
    if (!s.vma_lock.empty() && s.strategy != "pervma")
        throw py::value_error("workload: vma_lock=" + s.vma_lock + " is for strategy pervma, not " + s.strategy);
    return s;
}

}  // namespace mmrace
