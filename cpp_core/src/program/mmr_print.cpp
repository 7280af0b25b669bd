// The canonical .mmr text of a Program (DESIGN §9).
//
// Canonical means: one spelling per program.  Every optional field is printed only when
// it differs from its default, keys and flags come in a fixed order (the order of the
// vocabulary in mmr_lexer.hpp), numbers have no leading zeros, and the config line is
// always present.  The parser accepts more spellings (any key order, any flag order), so
// print(parse(text)) == text only for canonical text, but parse(print(p)) == p always.
#include <string>

#include "mmrace/mmr.hpp"
#include "program/mmr_lexer.hpp"

namespace mmrace {

namespace {

using namespace mmr;

std::string num(uint64_t v) { return std::to_string(v); }

// The name at `index`, or a visible placeholder for a Program built in code with a bad
// index: printing must not crash on what the parser would reject.
template <class T>
std::string name_at(const std::vector<T>& items, int index) {
    if (index < 0 || static_cast<size_t>(index) >= items.size()) return "?" + std::to_string(index);
    return items[static_cast<size_t>(index)].name;
}

std::string prot_text(uint8_t prot) {
    if (prot == PROT_NONE_) return "none";
    std::string s;
    if (prot & PROT_READ_) s += 'r';
    if (prot & PROT_WRITE_) s += 'w';
    if (prot & PROT_EXEC_) s += 'x';
    return s;
}

template <size_t N>
std::string flag_text(uint32_t flags, const std::array<Word<uint32_t>, N>& words) {
    std::string s;
    for (const auto& w : words)
        if (flags & w.value) s += (s.empty() ? "" : ",") + std::string(w.name);
    return s;
}

std::string mmap_flags_text(const Program& p, const Op& op) {
    std::string s = op.flags & MAPF_SHARED ? "shared" : "private";
    if (op.flags & MAPF_ANON)
        s += ",anon";
    else
        s += ",file:" + name_at(p.files, op.file) + ":" + num(op.pgoff);
    std::string options = flag_text(op.flags, kMmapOptions);
    return options.empty() ? s : s + "," + options;
}

// One argument of kind `kind` as it follows the op's name (" 0x1000", " pages=4"), or
// "" for an optional one at its default.  The parser reads each kind back (mmr_parse.cpp).
std::string arg_text(const Program& p, const Op& op, ArgKind kind) {
    switch (kind) {
        case ArgKind::page_addr:
        case ArgKind::word_addr: return " " + hex_address(op.addr);
        case ArgKind::pages:
        case ArgKind::file_pages: return " pages=" + num(op.pages);
        case ArgKind::new_pages: return " new_pages=" + num(op.new_pages);
        case ArgKind::prot: return " prot=" + prot_text(op.prot);
        case ArgKind::mmap_flags: return " flags=" + mmap_flags_text(p, op);
        case ArgKind::advice: return " advice=" + std::string(word_for(kAdvice, op.advice));
        case ArgKind::mremap_flags: return op.flags ? " flags=" + flag_text(op.flags, kMremapFlags) : "";
        case ArgKind::mremap_to: return op.to ? " to=" + hex_address(*op.to) : "";
        case ArgKind::pin_flags: return op.flags ? " flags=" + flag_text(op.flags, kPinFlags) : "";
        case ArgKind::gup_flags: return op.flags ? " flags=" + flag_text(op.flags, kGupFlags) : "";
        case ArgKind::value: return " " + num(op.value);
        case ArgKind::value_key: return " value=" + num(op.value);
        case ArgKind::count: return " " + num(op.count());
        case ArgKind::process:
        case ArgKind::fork_child: return " " + name_at(p.processes, op.process);
        case ArgKind::handle: return " H" + std::to_string(op.handle);
        case ArgKind::dma_offset: return " " + num(op.offset);
        case ArgKind::uffd_mode: return " mode=" + std::string(word_for(kUffdModes, op.uffd_mode));
        case ArgKind::on_off: return op.on ? " on" : " off";
        case ArgKind::file: return " " + name_at(p.files, op.file);
        case ArgKind::page_offset: return " " + num(op.page_offset());
    }
    return "";
}

// Everything after the op's name: its arguments in its row's order (mmrace/ops.hpp).
std::string op_args(const Program& p, const Op& op) {
    std::string s;
    for (ArgKind kind : op_spec(op.kind).args) s += arg_text(p, op, kind);
    return s;
}

void print_thread(std::string& out, const char* keyword, const Program& p, const Thread& t) {
    out += std::string(keyword) + " " + t.name + "\n";
    for (const auto& op : t.ops) out += "  " + print_op(p, op) + "\n";
}

std::string config_text(const Config& c) {
    std::string s = "config strategy=" + std::string(strategy_name(c.strategy)) +
                    " geometry=" + geometry_name(c.geometry);
    if (c.folios != kDefaultFolios) s += " folios=" + num(c.folios);
    if (c.swap_slots != kDefaultSwapSlots) s += " swap_slots=" + num(c.swap_slots);
    if (c.pgtables != kDefaultPgtables) s += " pgtables=" + num(c.pgtables);
    if (c.vma_lock_swapin || c.vma_lock_file || c.vma_lock_uffd) {
        std::string cases;
        for (auto [on, name] : {std::pair{c.vma_lock_swapin, "swapin"}, std::pair{c.vma_lock_file, "file"},
                                std::pair{c.vma_lock_uffd, "uffd"}})
            if (on) cases += (cases.empty() ? "" : ",") + std::string(name);
        s += " vma_lock=" + cases;
    }
    for (size_t i = 0; i < c.mutants.size(); ++i) s += (i ? "," : " mutants=") + c.mutants[i];
    if (c.budget != kDefaultBudget) s += " budget=" + num(c.budget);
    return s;
}


}  // namespace

std::string schedule_text(const Schedule& s) {
    switch (s.kind) {
        case Schedule::Kind::replay: {
            std::string out = "schedule replay";
            for (uint64_t d : s.replay) out += " " + num(d);
            return out;
        }
        case Schedule::Kind::random: return "schedule random seed=" + num(s.seed);
        case Schedule::Kind::pct: {
            std::string out = "schedule pct seed=" + num(s.seed) + " depth=" + num(s.depth);
            return s.steps ? out + " steps=" + num(s.steps) : out;
        }
        case Schedule::Kind::preempt: {
            std::string out = "schedule preempt";
            for (auto [decision, choice] : s.preempt) out += " " + num(decision) + ":" + num(choice);
            return out;
        }
    }
    return "schedule ?";
}

std::string print_op(const Program& p, const Op& op) { return op_name(op.kind) + op_args(p, op); }

std::string print_mmr(const Program& p) {
    std::string out = "mmrace 1\n" + config_text(p.config) + "\n";
    for (const auto& f : p.files) out += "file " + f.name + " pages=" + num(f.pages) + "\n";
    for (const auto& proc : p.processes) {
        out += "process " + proc.name + (proc.forked ? " forked\n" : "\n");
        for (const auto& t : proc.threads) print_thread(out, "thread", p, t);
    }
    for (const auto& t : p.kthreads) print_thread(out, "kthread", p, t);
    if (p.schedule) out += schedule_text(*p.schedule) + "\n";
    return out;
}

}  // namespace mmrace
