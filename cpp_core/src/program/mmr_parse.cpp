// The .mmr parser (DESIGN §9).
//
// One pass over the lines builds the Program and checks everything that is local to a
// line; names that may be used before they are declared (fork targets, the processes of
// kthread ops, pin handles) are recorded and resolved after the last line.  Errors are
// thrown as soon as they are found, so the first problem in the file is the one reported.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmrace/mmr.hpp"
#include "mutants/catalogue.hpp"
#include "program/mmr_lexer.hpp"

namespace mmrace {

ParseError::ParseError(std::string file, int line, int col, std::string message)
    : std::runtime_error(file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " +
                         message),
      file_(std::move(file)),
      line_(line),
      col_(col),
      message_(std::move(message)) {}

namespace {

using namespace mmr;

// Thrown deep inside the parser; parse_mmr adds the file name and turns it into a
// ParseError, so the helpers below need no context to report a problem.
struct Failure {
    int line, col;
    std::string message;
};

[[noreturn]] void fail(const Token& at, std::string message) {
    throw Failure{at.line, at.col, std::move(message)};
}

// ---------------------------------------------------------------------------------------
// Messages

// A word of the input, quoted for a message: at most 40 bytes, and anything that is not
// printable ASCII as \xNN, so that a message is short, valid UTF-8 whatever the input.
std::string quote(std::string_view s) {
    constexpr size_t kMax = 40;
    std::string out = "'";
    for (size_t i = 0; i < std::min(s.size(), kMax); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char esc[5];
            std::snprintf(esc, sizeof esc, "\\x%02x", c);
            out += esc;
        }
    }
    if (s.size() > kMax) out += "...";
    return out + "'";
}

// Levenshtein distance between a and b, or limit + 1 as soon as it must exceed limit
// (so a megabyte-long word costs nothing).
size_t edit_distance(std::string_view a, std::string_view b, size_t limit) {
    if (a.size() > b.size() + limit || b.size() > a.size() + limit) return limit + 1;
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 0; i < a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i + 1;
        for (size_t j = 0; j < b.size(); ++j) {
            size_t next = std::min({row[j + 1] + 1, row[j] + 1, diag + (a[i] != b[j])});
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    return row[b.size()];
}

// " (did you mean 'x'?)" for the name closest to `word`, or "" when none is close.
// Close is 3 edits, or a quarter of the length for long names: DESIGN §9's own example
// drops the 6 letters "write_" from a 29-letter mutant name.
std::string suggest(std::string_view word, std::span<const std::string_view> names) {
    std::string_view best;
    size_t best_distance = SIZE_MAX;
    for (std::string_view name : names) {
        size_t limit = std::max<size_t>(3, std::max(word.size(), name.size()) / 4);
        size_t d = edit_distance(word, name, limit);
        if (d <= limit && d < name.size() && d < best_distance) {
            best = name;
            best_distance = d;
        }
    }
    return best.empty() ? "" : " (did you mean '" + std::string(best) + "'?)";
}

template <class V, size_t N>
std::vector<std::string_view> names_of(const std::array<Word<V>, N>& words) {
    std::vector<std::string_view> names;
    for (const auto& w : words) names.push_back(w.name);
    return names;
}

// "a, b or c"
std::string alternatives(std::span<const std::string_view> names) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) {
        if (i) out += i + 1 == names.size() ? " or " : ", ";
        out += names[i];
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Values

uint64_t number(const Token& t) {
    bool digits = !t.text.empty() && std::all_of(t.text.begin(), t.text.end(),
                                                 [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) fail(t, "expected a number, got " + quote(t.text));
    uint64_t v = 0;
    for (char c : t.text) {
        uint64_t d = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            fail(t, "number out of range: " + quote(t.text) + " (at most 18446744073709551615)");
        v = v * 10 + d;
    }
    return v;
}

// A number that sizes something the model allocates: at most `max`.
uint64_t bounded(const Token& t, uint64_t max, const char* what) {
    uint64_t v = number(t);
    if (v > max)
        fail(t, std::string(what) + " " + std::to_string(v) + " is too large (at most " +
                    std::to_string(max) + ")");
    return v;
}

// The size of one of the model's pools (config folios=, swap_slots=, pgtables=): at
// least `min` (swap_slots=0 is a machine without swap), at most `max`.
uint64_t pool_size(const Token& t, uint64_t max, const char* key, uint64_t min = 1) {
    const std::string k(key);
    const std::string range = " (" + std::to_string(min) + " to " + std::to_string(max) + ")";
    if (t.text.empty() || !std::all_of(t.text.begin(), t.text.end(),
                                       [](char c) { return c >= '0' && c <= '9'; }))
        fail(t, k + " expects a number" + range + ", got " + quote(t.text));
    uint64_t v = 0;
    for (char c : t.text) {
        v = v * 10 + static_cast<uint64_t>(c - '0');
        if (v > max) fail(t, k + " " + quote(t.text) + " is too large" + range);
    }
    if (v < min) fail(t, k + " must be at least " + std::to_string(min) + range);
    return v;
}

uint64_t page_count(const Token& t, bool zero_ok = false) {
    uint64_t v = bounded(t, kMaxPages, "pages");
    if (v == 0 && !zero_ok) fail(t, "pages must be at least 1");
    return v;
}

bool is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

uint64_t address(const Token& t) {
    std::string_view s = t.text;
    bool shaped = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
                  std::all_of(s.begin() + 2, s.end(), is_hex_digit);
    if (!shaped) fail(t, "expected an address like 0x1000, got " + quote(s));
    if (std::any_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
        fail(t, "addresses are lowercase hex, got " + quote(s));
    uint64_t v = 0;
    for (char c : s.substr(2)) {
        if (v >> 60) fail(t, "address out of range: " + quote(s));
        v = v << 4 | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (v >= kUserTop)
        fail(t, "address " + hex_address(v) + " is outside the user address space (below " +
                    hex_address(kUserTop) + ")");
    return v;
}

uint64_t page_address(const Token& t) {
    uint64_t v = address(t);
    if (v % kPageSize) fail(t, "address " + hex_address(v) + " is not page aligned (4096)");
    return v;
}

uint64_t word_address(const Token& t) {
    uint64_t v = address(t);
    if (v % 8) fail(t, "address " + hex_address(v) + " is not 8-byte aligned");
    return v;
}

// [addr, addr + pages pages) must lie in the user address space.
void check_range(const Token& at, uint64_t addr, uint64_t pages) {
    if (addr + pages * kPageSize > kUserTop)
        fail(at, "the range " + hex_address(addr) + " + " + std::to_string(pages) +
                     " pages ends past the user address space (" + hex_address(kUserTop) + ")");
}

void check_name(const Token& t, const char* what) {
    auto head = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    auto tail = [&](char c) { return head(c) || (c >= '0' && c <= '9'); };
    if (t.text.empty() || !head(t.text[0]) || !std::all_of(t.text.begin(), t.text.end(), tail))
        fail(t, std::string("bad ") + what + " name " + quote(t.text) +
                    " (letters, digits and _, not starting with a digit)");
}

// One of a fixed set of words.
template <class V, size_t N>
V choose(const Token& t, const std::array<Word<V>, N>& words, const char* what) {
    for (const auto& w : words)
        if (w.name == t.text) return w.value;
    auto names = names_of(words);
    fail(t, std::string("unknown ") + what + " " + quote(t.text) + " (expected " +
                alternatives(names) + ")" + suggest(t.text, names));
}

// Calls f(item) for each comma-separated item of t; items may not be empty.
template <class F>
void for_each_item(const Token& t, const char* what, F f) {
    size_t pos = 0;
    while (true) {
        size_t comma = std::min(t.text.find(',', pos), t.text.size());
        Token item = t.sub(pos, comma - pos);
        if (item.text.empty()) fail(item, std::string("empty item in ") + what);
        f(item);
        if (comma == t.text.size()) return;
        pos = comma + 1;
    }
}

// A comma list of flags from `words`, each at most once; "" is 0 when empty_ok.
// `what` names one flag ("pin flag").
template <size_t N>
uint32_t flag_list(const Token& t, const std::array<Word<uint32_t>, N>& words, const char* what,
                   bool empty_ok) {
    std::string list = std::string(what) + "s";
    if (t.text.empty()) {
        if (empty_ok) return 0;
        fail(t, "empty " + list);
    }
    uint32_t flags = 0;
    for_each_item(t, list.c_str(), [&](const Token& item) {
        uint32_t f = choose(item, words, what);
        if (flags & f) fail(item, "duplicate " + quote(item.text) + " in " + list);
        flags |= f;
    });
    return flags;
}

uint8_t prot(const Token& t) {
    if (t.text == "none") return PROT_NONE_;
    if (t.text.empty()) fail(t, "empty prot (expected none or letters of rwx)");
    uint8_t p = 0;
    for (size_t i = 0; i < t.text.size(); ++i) {
        char c = t.text[i];
        uint8_t bit = c == 'r' ? PROT_READ_ : c == 'w' ? PROT_WRITE_ : c == 'x' ? PROT_EXEC_ : 0;
        if (!bit) fail(t, "bad prot " + quote(t.text) + " (expected none or letters of rwx)");
        if (p & bit) fail(t.sub(i, 1), "duplicate " + quote(t.text.substr(i, 1)) + " in prot");
        p |= bit;
    }
    return p;
}

// "H3" -> 3
uint64_t handle(const Token& t) {
    if (t.text.size() < 2 || t.text[0] != 'H')
        fail(t, "expected a pin handle like H0, got " + quote(t.text));
    return number(t.sub(1));
}

// ---------------------------------------------------------------------------------------
// The words after a line's first word: positional words in order, and key=value words
// in any order.  Unknown or repeated keys and surplus words fail at once, in line order.
class Args {
public:
    Args(LineScanner& line, std::string what, size_t positionals,
         std::span<const std::string_view> keys)
        : what_(std::move(what)), keys_(keys) {
        Token t;
        while (line.next(t)) {
            size_t eq = t.text.find('=');
            if (eq == std::string_view::npos) {
                if (positional_.size() == positionals)
                    fail(t, "unexpected argument " + quote(t.text) + " for " + what_);
                positional_.push_back(t);
            } else {
                add_key(t, eq);
            }
        }
        end_ = line.end();
    }

    // The next positional word, or a failure naming what is missing.
    Token next(const char* missing) {
        if (next_ == positional_.size())
            fail(end_, std::string("missing ") + missing + " for " + what_);
        return positional_[next_++];
    }

    // The whole word key=value, or nullopt.
    std::optional<Token> word(std::string_view key) const {
        for (const auto& kv : keyed_)
            if (kv.key == key) return kv.word;
        return std::nullopt;
    }

    // The value part of key=value, or nullopt.
    std::optional<Token> get(std::string_view key) const {
        auto w = word(key);
        if (!w) return std::nullopt;
        return w->sub(key.size() + 1);
    }

    // The value part of key=value, or a failure naming the missing key.
    Token need(std::string_view key) const {
        auto v = get(key);
        if (!v) fail(end_, "missing " + std::string(key) + "= for " + what_);
        return *v;
    }

    const Token& end() const { return end_; }

private:
    struct Keyed {
        std::string_view key;
        Token word;
    };

    void add_key(const Token& t, size_t eq) {
        std::string_view key = t.text.substr(0, eq);
        if (std::find(keys_.begin(), keys_.end(), key) == keys_.end()) {
            std::string expected;
            for (auto k : keys_) expected += (expected.empty() ? "" : ", ") + std::string(k) + "=";
            fail(t, "unknown argument " + quote(std::string(key) + "=") + " for " + what_ +
                        (keys_.empty() ? "" : " (expected " + expected + ")") +
                        suggest(key, keys_));
        }
        if (word(key)) fail(t, "duplicate " + quote(std::string(key) + "=") + " for " + what_);
        keyed_.push_back({key, t});
    }

    std::string what_;
    std::span<const std::string_view> keys_;
    std::vector<Token> positional_;
    std::vector<Keyed> keyed_;
    size_t next_ = 0;
    Token end_;
};

// ---------------------------------------------------------------------------------------
// Ops: the registry's rows (mmrace/ops.hpp) say how many positional words each takes
// and which keys, in the order the "expected" list of an unknown key names them.

constexpr std::string_view kPagesKeys[] = {"pages"};  // `file FNAME pages=N`

struct OpGrammar {
    size_t positionals = 0;
    std::vector<std::string_view> keys;
};

const OpGrammar& grammar(OpKind kind) {
    static const std::vector<OpGrammar> table = [] {
        std::vector<OpGrammar> t;
        for (const OpSpec& spec : kOpSpecs) {
            OpGrammar g;
            for (ArgKind a : spec.args) {
                if (arg_spec(a).key.empty()) ++g.positionals;
                else g.keys.push_back(arg_spec(a).key);
            }
            t.push_back(std::move(g));
        }
        return t;
    }();
    return table[static_cast<size_t>(kind)];
}

constexpr std::string_view kKeywords[] = {"mmrace", "config",  "file",    "process",
                                          "thread", "kthread", "schedule"};

// Everything a first word may be, for "did you mean".
const std::vector<std::string_view>& first_words() {
    static const std::vector<std::string_view> words = [] {
        std::vector<std::string_view> w(std::begin(kKeywords), std::end(kKeywords));
        for (const auto& spec : kOpSpecs) w.push_back(spec.name);
        return w;
    }();
    return words;
}

const std::vector<std::string_view>& mutant_names() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> n;
        for (const auto& m : mutant_catalogue()) n.push_back(m.name);
        return n;
    }();
    return names;
}

// ---------------------------------------------------------------------------------------

// A thread of the program being built: processes[process].threads[index], or
// kthreads[index] when process is -1.  Indices stay valid while the vectors grow.
struct ThreadRef {
    int process;
    size_t index;
};

// A name in an op that is resolved after the last line.
struct PendingRef {
    enum class Kind { fork, process, handle } kind;
    ThreadRef thread;
    size_t op;
    Token word;    // the name or handle
    Token offset;  // dma ops: the offset word, checked against the pin's size
};

class Parser {
public:
    explicit Parser(std::string_view text) : text_(text), lexer_(text) {}

    // A schedule on its own (parse_schedule): one line, `schedule` optional in front.
    Schedule parse_schedule_only() {
        check_size();
        LineScanner line;
        if (!lexer_.next_line(line))
            fail(Token{{}, 1, 1}, "empty schedule (expected replay, random, pct or preempt)");
        LineScanner probe = line;
        Token head;
        probe.next(head);
        if (head.text == "schedule") line = probe;  // the word is optional
        schedule(line, head);
        LineScanner extra;
        if (lexer_.next_line(extra)) {
            Token t;
            extra.next(t);
            fail(t, "a schedule is one line; unexpected " + quote(t.text));
        }
        return *prog_.schedule;
    }

    Program parse() {
        check_size();
        version();
        LineScanner line;
        while (lexer_.next_line(line)) dispatch(line);
        close_process();
        resolve_refs();
        check_forks();
        return std::move(prog_);
    }

private:
    // --- structure ---------------------------------------------------------------------

    void check_size() {
        if (text_.size() <= kMaxInputBytes) return;
        std::string_view head = text_.substr(0, kMaxInputBytes);
        size_t lines = static_cast<size_t>(std::count(head.begin(), head.end(), '\n'));
        size_t line_start = head.rfind('\n') + 1;  // npos + 1 == 0
        fail(
            Token{
                {}, static_cast<int>(lines) + 1, static_cast<int>(kMaxInputBytes - line_start) + 1},
            "input too large: " + std::to_string(text_.size()) + " bytes (at most 16 MiB)");
    }

    void version() {
        LineScanner line;
        if (!lexer_.next_line(line)) fail(Token{{}, 1, 1}, "empty input: expected 'mmrace 1'");
        Token head, v, extra;
        line.next(head);
        if (head.text != "mmrace")
            fail(head, "expected 'mmrace 1' as the first line, got " + quote(head.text));
        if (line.indented()) fail(head, "'mmrace' must not be indented");
        if (!line.next(v)) fail(line.end(), "missing version after 'mmrace' (expected 'mmrace 1')");
        if (v.text != "1")
            fail(v, "unsupported version " + quote(v.text) + " (this mmrace reads version 1)");
        if (line.next(extra)) fail(extra, "unexpected " + quote(extra.text) + " after the version");
    }

    void dispatch(LineScanner& line) {
        Token head;
        line.next(head);
        if (schedule_line_)
            fail(head, "nothing may follow the schedule line (line " +
                           std::to_string(schedule_line_) + ")");
        if (const OpSpec* spec = find_op(head.text)) {
            if (!line.indented())
                fail(head,
                     "op " + quote(head.text) + " must be indented under a thread or kthread line");
            return op_line(line, head, *spec);
        }
        auto kw = std::find(std::begin(kKeywords), std::end(kKeywords), head.text);
        if (kw == std::end(kKeywords))
            fail(head, std::string(line.indented() ? "unknown op " : "unknown keyword ") +
                           quote(head.text) + suggest(head.text, first_words()));
        if (line.indented()) fail(head, quote(head.text) + " must not be indented (only ops are)");
        if (head.text == "mmrace")
            fail(head, "duplicate 'mmrace' line (the version goes first, once)");
        if (head.text == "config") return config(line, head);
        if (head.text == "file") return file(line, head);
        if (head.text == "process") return process(line, head);
        if (head.text == "thread") return thread(line, head);
        if (head.text == "kthread") return kthread(line, head);
        return schedule(line, head);
    }

    void config(LineScanner& line, const Token& head) {
        if (config_line_)
            fail(head,
                 "duplicate config line (the first is line " + std::to_string(config_line_) + ")");
        if (declared_) fail(head, "the config line must come before files, processes and kthreads");
        config_line_ = head.line;
        static constexpr std::string_view kKeys[] = {"strategy", "geometry", "folios", "swap_slots",
                                                     "pgtables", "vma_lock", "mutants", "budget"};
        std::vector<std::string_view> seen;
        Token w;
        while (line.next(w)) {
            size_t eq = w.text.find('=');
            if (eq == std::string_view::npos) fail(w, "expected key=value, got " + quote(w.text));
            std::string_view key = w.text.substr(0, eq);
            Token value = w.sub(eq + 1);
            if (std::find(seen.begin(), seen.end(), key) != seen.end())
                fail(w, "duplicate config key " + quote(key));
            seen.push_back(key);
            if (key == "strategy") {
                prog_.config.strategy = choose(value, kStrategies, "strategy");
            } else if (key == "geometry") {
                prog_.config.geometry = choose(value, kGeometries, "geometry");
            } else if (key == "folios") {
                prog_.config.folios = pool_size(value, kMaxFolios, "folios");
            } else if (key == "swap_slots") {
                prog_.config.swap_slots = pool_size(value, kMaxSwapSlots, "swap_slots", 0);
            } else if (key == "pgtables") {
                prog_.config.pgtables = pool_size(value, kMaxPgtables, "pgtables");
            } else if (key == "vma_lock") {
                vma_lock(value);
            } else if (key == "mutants") {
                mutants(value);
            } else if (key == "budget") {
                prog_.config.budget = number(value);
                if (prog_.config.budget == 0) fail(value, "budget must be at least 1 step");
            } else {
                fail(w, "unknown config key " + quote(key) + " (expected " + alternatives(kKeys) +
                            ")" + suggest(key, kKeys));
            }
        }
    }

    // vma_lock=CASE[,CASE]: fault cases pervma handles under the VMA lock.
    void vma_lock(const Token& value) {
        static constexpr std::string_view kCases[] = {"swapin", "file", "uffd"};
        if (value.text.empty()) fail(value, "empty vma_lock list (leave out vma_lock= for none)");
        for_each_item(value, "vma_lock list", [&](const Token& item) {
            if (item.text == "swapin") prog_.config.vma_lock_swapin = true;
            else if (item.text == "file") prog_.config.vma_lock_file = true;
            else if (item.text == "uffd") prog_.config.vma_lock_uffd = true;
            else
                fail(item, "unknown vma_lock case " + quote(item.text) + " (expected " +
                               alternatives(kCases) + ")" + suggest(item.text, kCases));
        });
    }

    void mutants(const Token& value) {
        if (value.text.empty()) fail(value, "empty mutants list (leave out mutants= for none)");
        auto& list = prog_.config.mutants;
        for_each_item(value, "mutants list", [&](const Token& item) {
            if (!find_mutant(item.text))
                fail(item,
                     "unknown mutant " + quote(item.text) + suggest(item.text, mutant_names()));
            if (std::find(list.begin(), list.end(), item.text) != list.end())
                fail(item, "mutant " + quote(item.text) + " is listed twice");
            list.emplace_back(item.text);
        });
    }

    void file(LineScanner& line, const Token& head) {
        if (proc_or_kthread_)
            fail(head, "files must be declared before the first process or kthread");
        declared_ = true;
        Args args(line, "file", 1, kPagesKeys);
        Token name = args.next("a file name");
        check_name(name, "file");
        check_unique(file_lines_, name, "file");
        file_index_[name.text] = static_cast<int>(prog_.files.size());
        prog_.files.push_back(
            File{std::string(name.text), loc(name), page_count(args.need("pages"))});
    }

    void process(LineScanner& line, const Token& head) {
        close_process();
        declared_ = proc_or_kthread_ = true;
        Token name, w;
        if (!line.next(name)) fail(line.end(), "missing process name");
        check_name(name, "process");
        check_unique(process_lines_, name, "process");
        bool forked = false;
        if (line.next(w)) {
            if (w.text != "forked")
                fail(w, "expected 'forked' or the end of the line, got " + quote(w.text));
            forked = true;
            if (line.next(w)) fail(w, "unexpected " + quote(w.text) + " after 'forked'");
        }
        open_process_ = static_cast<int>(prog_.processes.size());
        process_index_[name.text] = open_process_;
        prog_.processes.push_back(Process{std::string(name.text), loc(name), forked, {}});
        current_.reset();
    }

    void thread(LineScanner& line, const Token& head) {
        Token full, extra;
        if (!line.next(full)) fail(line.end(), "missing thread name (PNAME.TNAME)");
        size_t dot = full.text.find('.');
        if (dot == std::string_view::npos)
            fail(full, "expected PNAME.TNAME, got " + quote(full.text));
        Token pname = full.sub(0, dot);
        check_name(pname, "process");
        check_name(full.sub(dot + 1), "thread");
        auto it = process_index_.find(pname.text);
        if (it == process_index_.end())
            fail(pname, "unknown process " + quote(pname.text) +
                            " (declare it with a process line "
                            "before its threads)");
        if (it->second != open_process_)
            fail(full, "thread " + quote(full.text) + " must follow the other threads of process " +
                           quote(pname.text) + " (declared at line " +
                           std::to_string(process_lines_[pname.text]) + ")");
        check_unique(thread_lines_, full, "thread");
        check_thread_limit(full);
        if (line.next(extra))
            fail(extra, "unexpected " + quote(extra.text) + " after the thread name");
        auto& threads = prog_.processes[static_cast<size_t>(open_process_)].threads;
        threads.push_back(Thread{std::string(full.text), loc(full), {}});
        current_ = ThreadRef{open_process_, threads.size() - 1};
    }

    void kthread(LineScanner& line, const Token& head) {
        close_process();
        declared_ = proc_or_kthread_ = true;
        Token name, extra;
        if (!line.next(name)) fail(line.end(), "missing kthread name");
        check_name(name, "kthread");
        check_unique(kthread_lines_, name, "kthread");
        check_thread_limit(name);
        if (line.next(extra))
            fail(extra, "unexpected " + quote(extra.text) + " after the kthread name");
        prog_.kthreads.push_back(Thread{std::string(name.text), loc(name), {}});
        current_ = ThreadRef{-1, prog_.kthreads.size() - 1};
    }

    void schedule(LineScanner& line, const Token& head) {
        close_process();
        current_.reset();
        schedule_line_ = head.line;
        Token kind;
        if (!line.next(kind)) fail(line.end(), "missing schedule policy (replay, random, pct or preempt)");
        Schedule s;
        if (kind.text == "replay") {
            s.kind = Schedule::Kind::replay;
            for (Token w; line.next(w);) s.replay.push_back(number(w));
        } else if (kind.text == "random") {
            static constexpr std::string_view kKeys[] = {"seed"};
            Args args(line, "schedule random", 0, kKeys);
            s.kind = Schedule::Kind::random;
            s.seed = number(args.need("seed"));
        } else if (kind.text == "pct") {
            pct(line, s);
        } else if (kind.text == "preempt") {
            s.kind = Schedule::Kind::preempt;
            for (Token w; line.next(w);) s.preempt.push_back(preemption(w, s.preempt));
        } else {
            static constexpr std::string_view kPolicies[] = {"replay", "random", "pct", "preempt"};
            fail(kind, "unknown schedule policy " + quote(kind.text) +
                           " (expected replay, random, pct or preempt)" + suggest(kind.text, kPolicies));
        }
        prog_.schedule = std::move(s);
    }

    void pct(LineScanner& line, Schedule& s) {
        static constexpr std::string_view kKeys[] = {"seed", "depth", "steps"};
        Args args(line, "schedule pct", 0, kKeys);
        s.kind = Schedule::Kind::pct;
        s.seed = number(args.need("seed"));
        Token depth = args.need("depth");
        s.depth = static_cast<uint32_t>(bounded(depth, kMaxPctDepth, "depth"));
        if (s.depth == 0) fail(depth, "depth must be at least 1");
        if (auto steps = args.get("steps")) s.steps = number(*steps);
    }

    // One `D:K` entry of a preempt schedule; entries come sorted by decision, each once.
    static std::pair<uint64_t, uint64_t> preemption(
        const Token& w, const std::vector<std::pair<uint64_t, uint64_t>>& before) {
        size_t colon = w.text.find(':');
        if (colon == std::string_view::npos)
            fail(w, "expected DECISION:CHOICE (e.g. 12:1), got " + quote(w.text));
        uint64_t decision = number(w.sub(0, colon));
        uint64_t choice = number(w.sub(colon + 1));
        if (!before.empty() && decision <= before.back().first)
            fail(w, "decision " + std::to_string(decision) + " does not come after decision " +
                        std::to_string(before.back().first) +
                        " (entries are sorted by decision, each decision once)");
        return {decision, choice};
    }

    // A process's thread list ends at the next process, kthread or schedule line.
    void close_process() {
        if (open_process_ >= 0) {
            const Process& p = prog_.processes[static_cast<size_t>(open_process_)];
            if (p.threads.empty())
                fail(token_at(p.loc, p.name), "process " + quote(p.name) + " has no threads");
        }
        open_process_ = -1;
    }

    void check_unique(std::unordered_map<std::string_view, int>& lines, const Token& name,
                      const char* what) {
        auto [it, fresh] = lines.emplace(name.text, name.line);
        if (!fresh)
            fail(name, std::string("duplicate ") + what + " name " + quote(name.text) +
                           " (first declared at line " + std::to_string(it->second) + ")");
    }

    void check_thread_limit(const Token& name) {
        if (prog_.thread_count() >= kMaxThreads)
            fail(name, "too many threads: at most " + std::to_string(kMaxThreads) +
                           " (process threads and kthreads together)");
    }

    // --- ops ---------------------------------------------------------------------------

    Thread& thread_of(const ThreadRef& r) {
        if (r.process < 0) return prog_.kthreads[r.index];
        return prog_.processes[static_cast<size_t>(r.process)].threads[r.index];
    }

    void op_line(LineScanner& line, const Token& head, const OpSpec& spec) {
        if (!current_)
            fail(head,
                 "op " + quote(head.text) +
                     " is outside a thread (put it under 'thread PNAME.TNAME' or 'kthread NAME')");
        Thread& t = thread_of(*current_);
        bool in_kthread = current_->process < 0;
        if (spec.kthread && !in_kthread)
            fail(head, quote(head.text) + " is a kthread op; process thread " + quote(t.name) +
                           " cannot run it");
        if (!spec.kthread && in_kthread)
            fail(head, quote(head.text) + " is a process op; kthread " + quote(t.name) +
                           " cannot run it");
        if (t.ops.size() >= kMaxOpsPerThread)
            fail(head, "too many ops in thread " + quote(t.name) + " (at most " +
                           std::to_string(kMaxOpsPerThread) + ")");
        const OpGrammar& g = grammar(spec.kind);
        Args args(line, std::string(spec.name), g.positionals, g.keys);
        Op op;
        op.kind = spec.kind;
        op.loc = loc(head);
        fill(args, spec, op);
        t.ops.push_back(op);
    }

    // The words of one op, read argument by argument in its row's order, so that the
    // first problem on the line is the one reported.
    void fill(Args& a, const OpSpec& spec, Op& op) {
        ArgState st;
        for (ArgKind kind : spec.args) arg(a, kind, op, st);
        if (!st.handle.text.empty()) pending(PendingRef::Kind::handle, st.handle, st.offset);
    }

    // What the arguments read so far left for the later ones.
    struct ArgState {
        Token addr;    // ADDR: a range's pages= ends past the user address space here
        Token handle;  // Hk, resolved after the last line ...
        Token offset;  // ... and the dma OFF checked against the pin's size then
    };

    // One argument of kind `kind` into the field it fills (mmrace/ops.hpp).
    void arg(Args& a, ArgKind kind, Op& op, ArgState& st) {
        switch (kind) {
            case ArgKind::page_addr:
                st.addr = a.next("an address");
                op.addr = page_address(st.addr);
                return;
            case ArgKind::word_addr: op.addr = word_address(a.next("an address")); return;
            case ArgKind::pages:  // ADDR pages=N: a page-aligned range of the user address space
                op.pages = page_count(a.need("pages"));
                check_range(st.addr, op.addr, op.pages);
                return;
            case ArgKind::file_pages: op.pages = page_count(a.need("pages"), true); return;
            case ArgKind::new_pages: op.new_pages = page_count(a.need("new_pages")); return;
            case ArgKind::prot: op.prot = prot(a.need("prot")); return;
            case ArgKind::mmap_flags: return mmap_flags(a.need("flags"), op);
            case ArgKind::advice: op.advice = choose(a.need("advice"), kAdvice, "advice"); return;
            case ArgKind::mremap_flags: return mremap_flags(a, op);
            case ArgKind::mremap_to: return mremap_to(a, op);
            case ArgKind::pin_flags:
                if (auto flags = a.get("flags")) op.flags = flag_list(*flags, kPinFlags, "pin flag", true);
                pin_pages_.push_back(op.pages);
                return;
            case ArgKind::gup_flags:
                if (auto flags = a.get("flags")) op.flags = flag_list(*flags, kGupFlags, "gup flag", true);
                return;
            case ArgKind::value: op.value = number(a.next("a value")); return;
            case ArgKind::value_key: op.value = number(a.need("value")); return;
            case ArgKind::count: op.set_count(bounded(a.next("a count"), kMaxPages, "count")); return;
            case ArgKind::process: return pending(PendingRef::Kind::process, process_word(a));
            case ArgKind::fork_child: return pending(PendingRef::Kind::fork, process_word(a));
            case ArgKind::handle:
                st.handle = a.next("a handle");
                handle(st.handle);  // syntax now; the pin it names is looked up after the last line
                return;
            case ArgKind::dma_offset:
                st.offset = a.next("an offset");
                op.offset = number(st.offset);
                if (op.offset % 8)
                    fail(st.offset, "dma offset " + std::to_string(op.offset) + " is not 8-byte aligned");
                return;
            case ArgKind::uffd_mode: op.uffd_mode = choose(a.need("mode"), kUffdModes, "uffd mode"); return;
            case ArgKind::on_off: return on_off(a, op);
            case ArgKind::file: op.file = file_named(a.next("a file name")); return;
            case ArgKind::page_offset:
                op.set_page_offset(bounded(a.next("a page offset"), kMaxPages, "page offset"));
                return;
        }
    }

    // private|shared, anon|file:FNAME:PGOFF, then any of kMmapOptions.
    void mmap_flags(const Token& t, Op& op) {
        if (t.text.empty())
            fail(t, "empty mmap flags (expected private or shared, and anon or file:FNAME:PGOFF)");
        for_each_item(t, "mmap flags", [&](const Token& item) {
            uint32_t bit = item.text.starts_with("file:") ? 0 : mmap_flag(item);
            if (!bit) return mmap_file(item, op);
            if (op.flags & bit) fail(item, "duplicate " + quote(item.text) + " in mmap flags");
            if ((bit & (MAPF_PRIVATE | MAPF_SHARED)) && (op.flags & (MAPF_PRIVATE | MAPF_SHARED)))
                fail(item, "mmap flags cannot be both private and shared");
            if (bit == MAPF_ANON && op.file >= 0)
                fail(item, "mmap flags cannot be both anon and file");
            op.flags |= bit;
        });
        if (!(op.flags & (MAPF_PRIVATE | MAPF_SHARED)))
            fail(t, "mmap flags need private or shared");
        if (!(op.flags & MAPF_ANON) && op.file < 0)
            fail(t, "mmap flags need anon or file:FNAME:PGOFF");
    }

    static uint32_t mmap_flag(const Token& item) {
        if (item.text == "private") return MAPF_PRIVATE;
        if (item.text == "shared") return MAPF_SHARED;
        if (item.text == "anon") return MAPF_ANON;
        for (const auto& w : kMmapOptions)
            if (w.name == item.text) return w.value;
        static constexpr std::string_view kAll[] = {
            "private", "shared",          "anon",      "file:FNAME:PGOFF",
            "fixed",   "fixed_noreplace", "growsdown", "populate"};
        fail(item, "unknown mmap flag " + quote(item.text) + " (expected " + alternatives(kAll) +
                       ")" + suggest(item.text, kAll));
    }

    // file:FNAME:PGOFF
    void mmap_file(const Token& item, Op& op) {
        if (op.file >= 0) fail(item, "duplicate file: in mmap flags");
        if (op.flags & MAPF_ANON) fail(item, "mmap flags cannot be both anon and file");
        size_t colon = item.text.find(':', 5);
        if (colon == std::string_view::npos)
            fail(item, "expected file:FNAME:PGOFF, got " + quote(item.text));
        op.file = file_named(item.sub(5, colon - 5));
        op.pgoff = bounded(item.sub(colon + 1), kMaxPages, "page offset");
    }

    // flags=maymove[,fixed]: optional.
    void mremap_flags(Args& a, Op& op) {
        auto flags = a.get("flags");
        if (!flags) return;
        op.flags = flag_list(*flags, kMremapFlags, "mremap flag", false);
        if ((op.flags & MREMAPF_FIXED) && !(op.flags & MREMAPF_MAYMOVE))
            fail(*flags, "mremap flag fixed requires maymove");
    }

    // to=ADDR: exactly when flags has fixed; the new range must fit there.
    void mremap_to(Args& a, Op& op) {
        bool fixed = op.flags & MREMAPF_FIXED;
        auto to = a.get("to");
        if (fixed && !to) fail(a.end(), "missing to= for mremap with flags=maymove,fixed");
        if (!fixed && to) fail(*a.word("to"), "to= needs flags=maymove,fixed");
        if (!to) return;
        op.to = page_address(*to);
        check_range(*to, *op.to, op.new_pages);
    }

    void on_off(Args& a, Op& op) {
        Token w = a.next("on or off");
        if (w.text != "on" && w.text != "off") fail(w, "expected on or off, got " + quote(w.text));
        op.on = w.text == "on";
    }

    Token process_word(Args& a) {
        Token name = a.next("a process name");
        check_name(name, "process");
        return name;
    }

    int file_named(const Token& name) {
        auto it = file_index_.find(name.text);
        if (it == file_index_.end()) {
            std::vector<std::string_view> names;
            for (const auto& f : prog_.files) names.push_back(f.name);
            fail(name, "unknown file " + quote(name.text) + suggest(name.text, names));
        }
        return it->second;
    }

    // The op being parsed is the next one of the current thread.
    void pending(PendingRef::Kind kind, const Token& word, const Token& offset = {}) {
        refs_.push_back(PendingRef{kind, *current_, thread_of(*current_).ops.size(), word, offset});
    }

    // --- after the last line -----------------------------------------------------------

    void resolve_refs() {
        parent_.assign(prog_.processes.size(), -1);
        fork_line_.assign(prog_.processes.size(), 0);
        for (const auto& r : refs_) {
            Op& op = thread_of(r.thread).ops[r.op];
            switch (r.kind) {
                case PendingRef::Kind::process: op.process = process_named(r.word); break;
                case PendingRef::Kind::fork: op.process = fork_target(r); break;
                case PendingRef::Kind::handle: op.handle = pin_named(r, op); break;
            }
        }
    }

    int process_named(const Token& name) {
        auto it = process_index_.find(name.text);
        if (it == process_index_.end()) {
            std::vector<std::string_view> names;
            for (const auto& p : prog_.processes) names.push_back(p.name);
            fail(name, "unknown process " + quote(name.text) + suggest(name.text, names));
        }
        return it->second;
    }

    // Each forked process is started by exactly one fork.
    int fork_target(const PendingRef& r) {
        int child = process_named(r.word);
        auto c = static_cast<size_t>(child);
        if (!prog_.processes[c].forked)
            fail(r.word, "process " + quote(r.word.text) +
                             " is not declared forked (add 'forked' to its process line)");
        if (fork_line_[c])
            fail(r.word, "process " + quote(r.word.text) + " is already forked at line " +
                             std::to_string(fork_line_[c]));
        fork_line_[c] = r.word.line;
        parent_[c] = r.thread.process;
        return child;
    }

    int pin_named(const PendingRef& r, Op& op) {
        uint64_t h = handle(r.word);
        if (h >= pin_pages_.size())
            fail(r.word, "unknown handle " + quote(r.word.text) + " (" +
                             (pin_pages_.empty()
                                  ? std::string("the program has no pin ops")
                                  : "the pins are H0..H" + std::to_string(pin_pages_.size() - 1)) +
                             ")");
        uint64_t bytes = pin_pages_[h] * kPageSize;
        if (op.kind != OpKind::unpin && op.offset >= bytes)
            fail(r.offset, "dma offset " + std::to_string(op.offset) + " is past the end of H" +
                               std::to_string(h) + " (" + std::to_string(bytes) + " bytes)");
        return static_cast<int>(h);
    }

    // Every forked process is named by a fork (fork_target made it at most one), and
    // following the forks back from it reaches a process that starts with the run.
    void check_forks() {
        const auto& procs = prog_.processes;
        for (const Process& p : procs)
            if (p.forked && !fork_line_[static_cast<size_t>(&p - procs.data())])
                fail(token_at(p.loc, p.name),
                     "forked process " + quote(p.name) + " is never forked (no fork op names it)");
        for (size_t i = 0; i < procs.size(); ++i)
            if (procs[i].forked) check_fork_chain(i);
    }

    void check_fork_chain(size_t child) {
        const auto& procs = prog_.processes;
        std::vector<bool> seen(procs.size());
        seen[child] = true;
        std::string chain = quote(procs[child].name);
        for (auto j = static_cast<size_t>(parent_[child]); procs[j].forked;
             j = static_cast<size_t>(parent_[j])) {
            chain += " <- " + quote(procs[j].name);
            if (seen[j])
                fail(token_at(procs[child].loc, procs[child].name),
                     "forked process " + quote(procs[child].name) +
                         " can never start: its forks go round in a cycle (" + chain + ")");
            seen[j] = true;
        }
    }

    static SrcLoc loc(const Token& t) { return SrcLoc{t.line, t.col}; }
    static Token token_at(const SrcLoc& l, std::string_view text) {
        return Token{text, l.line, l.col};
    }

    std::string_view text_;
    Lexer lexer_;
    Program prog_;
    std::optional<ThreadRef> current_;  // the thread that ops go to
    int open_process_ = -1;             // the process that takes `thread` lines
    int config_line_ = 0, schedule_line_ = 0;
    bool declared_ = false;         // a file, process or kthread was declared
    bool proc_or_kthread_ = false;  // a process or kthread was declared
    std::unordered_map<std::string_view, int> process_lines_, thread_lines_, kthread_lines_,
        file_lines_;
    std::unordered_map<std::string_view, int> process_index_, file_index_;
    std::vector<uint64_t> pin_pages_;  // pages of pin Hk
    std::vector<PendingRef> refs_;
    std::vector<int> parent_;     // per process: the process whose thread forks it
    std::vector<int> fork_line_;  // per process: the line of its fork, 0 if none
};

}  // namespace

Program parse_mmr(std::string_view text, std::string_view filename) {
    // Some editors start UTF-8 files with a byte-order mark; it is not part of line 1.
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    try {
        return Parser(text).parse();
    } catch (Failure& f) {
        throw ParseError(std::string(filename), f.line, f.col, std::move(f.message));
    }
}

Schedule parse_schedule(std::string_view text, std::string_view source) {
    try {
        return Parser(text).parse_schedule_only();
    } catch (Failure& f) {
        throw ParseError(std::string(source), f.line, f.col, std::move(f.message));
    }
}

}  // namespace mmrace
