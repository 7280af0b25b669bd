// The valid shape (valid_program.hpp).  The generator draws each piece on its own,
// feature by feature, then fixes up the cross references the format constrains: every
// forked process gets exactly one fork in an earlier process (so the forks form a tree
// rooted at a process that starts with the run), and every unpin/dma op names an
// existing pin with an offset inside it.
#include "program/generate/valid_program.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "mutants/catalogue.hpp"
#include "program/mmr_lexer.hpp"

namespace mmrace::gen {

namespace {

using namespace mmr;

class Valid {
public:
    Valid(ChoiceSource& c, const ValidShape& s) : c_(c), s_(s) {}

    Program build() {
        config();
        files();
        processes();
        kthreads();
        add_forks();
        fix_handles();
        schedule();
        return std::move(p_);
    }

private:
    bool coin() { return c_.choose(2); }

    // --- numbers at and inside the format's limits: small ones first ------------------

    uint64_t value() {
        switch (c_.choose(3)) {
            case 0: return c_.choose(101);
            case 1: return UINT64_MAX;
            default: return c_.choose(UINT64_MAX);
        }
    }

    uint64_t page_count() {
        switch (c_.choose(3)) {
            case 0: return 1 + c_.choose(8);
            case 1: return kMaxPages;
            default: return 1 + c_.choose(kMaxPages);
        }
    }

    uint64_t count() { return coin() ? c_.choose(kMaxPages + 1) : c_.choose(21); }

    // A page-aligned start of a range of `n` pages inside the user address space: near
    // 0x100000 first, then the top, then anywhere.
    uint64_t page_addr(uint64_t n) {
        uint64_t last_page = kUserTop / kPageSize - n;
        switch (c_.choose(3)) {
            case 0: return (0x100 + c_.choose(0x41)) * kPageSize;
            case 1: return last_page * kPageSize;
            default: return c_.choose(last_page + 1) * kPageSize;
        }
    }

    uint64_t word_addr() { return page_addr(1) + 8 * c_.choose(kPageSize / 8); }

    void range(Op& op) {
        op.pages = page_count();
        op.addr = page_addr(op.pages);
    }

    // Any subset of `words`.
    template <size_t N>
    uint32_t flags(const std::array<Word<uint32_t>, N>& words) {
        uint32_t f = 0;
        for (const auto& w : words)
            if (coin()) f |= w.value;
        return f;
    }

    // --- names: mostly the usual F0/P0/T0, sometimes odd but valid identifiers ---------

    std::string name(const char* prefix, size_t index) {
        if (c_.choose(4) != 3) return prefix + std::to_string(index);
        static constexpr char kHead[] = "abcxyzABCXYZ_";
        static constexpr char kTail[] = "abcxyzABCXYZ_0123456789";
        std::string s(1, kHead[c_.choose(sizeof kHead - 1)]);
        for (uint64_t n = c_.choose(8); n; --n) s += kTail[c_.choose(sizeof kTail - 1)];
        // The index after the last '_' keeps names unique: it is the only text there.
        return s + "_" + std::to_string(index);
    }

    // --- the pieces --------------------------------------------------------------------

    void config() {
        p_.config.strategy = static_cast<Strategy>(c_.choose(3));
        p_.config.geometry = static_cast<Geometry>(c_.choose(2));
        pool(p_.config.folios, kMaxFolios);
        pool(p_.config.swap_slots, kMaxSwapSlots);
        pool(p_.config.pgtables, kMaxPgtables);
        std::vector<const char*> names = mutant_names();
        for (uint64_t n = c_.choose(4); n && !names.empty(); --n) {
            auto at = names.begin() + static_cast<long>(c_.choose(names.size()));
            p_.config.mutants.emplace_back(*at);
            names.erase(at);
        }
    }

    // A pool's size: the default, a handful, the maximum, or anything.
    void pool(uint64_t& size, uint64_t max) {
        switch (c_.choose(4)) {
            case 0: return;
            case 1: size = 1 + c_.choose(8); return;
            case 2: size = max; return;
            default: size = 1 + c_.choose(max);
        }
    }

    // The catalogue's names the program may switch on (ValidShape::runnable).
    std::vector<const char*> mutant_names() const {
        std::vector<const char*> names;
        const std::string strategy = strategy_name(p_.config.strategy);
        for (const MutantInfo& m : mutant_catalogue()) {
            std::string list = std::string(",") + m.strategies + ",";
            bool applies = list == ",all," || list.find("," + strategy + ",") != std::string::npos;
            if (!s_.runnable || (m.built && applies)) names.push_back(m.name);
        }
        return names;
    }

    void files() {
        for (size_t i = 0, n = c_.choose(s_.max_files + 1); i < n; ++i)
            p_.files.push_back(File{name("F", i), {}, page_count()});
    }

    void processes() {
        for (size_t i = 0, n = c_.choose(s_.max_processes + 1); i < n; ++i) {
            // Process 0 starts with the run, so every fork chain has a root.
            Process proc{name("P", i), {}, i > 0 && coin(), {}};
            for (size_t t = 0, nt = 1 + c_.choose(s_.max_threads); t < nt; ++t) {
                Thread thread{proc.name + "." + name("T", t), {}, {}};
                for (uint64_t k = c_.choose(s_.max_ops + 1); k; --k) thread.ops.push_back(process_op());
                proc.threads.push_back(std::move(thread));
            }
            p_.processes.push_back(std::move(proc));
        }
    }

    void kthreads() {
        for (size_t i = 0, n = c_.choose(s_.max_kthreads + 1); i < n; ++i) {
            Thread thread{name("K", i), {}, {}};
            for (uint64_t k = c_.choose(s_.max_ops + 1); k; --k) thread.ops.push_back(kthread_op());
            p_.kthreads.push_back(std::move(thread));
        }
    }

    void schedule() {
        uint64_t kind = c_.choose(4);
        if (kind == 0) return;  // none: the default
        Schedule s;
        s.kind = static_cast<Schedule::Kind>(kind - 1);
        if (s.kind == Schedule::Kind::replay)
            for (uint64_t n = c_.choose(11); n; --n) s.replay.push_back(coin() ? value() : c_.choose(4));
        else
            s.seed = value();
        if (s.kind == Schedule::Kind::pct) {
            s.depth = static_cast<uint32_t>(coin() ? kMaxPctDepth : 1 + c_.choose(5));
            s.steps = coin() ? value() : 0;
        }
        p_.schedule = std::move(s);
    }

    // --- ops, by feature ----------------------------------------------------------------

    // A process thread's op: an access, a mapping change, exit, GUP, userfaultfd, or
    // (when there are files) a write(2) or truncate.  fork is placed by add_forks.
    Op process_op() {
        Op op;
        switch (c_.choose(p_.files.empty() ? 5 : 6)) {
            case 0: access(op); break;
            case 1: mapping(op); break;
            case 2: op.kind = OpKind::exit; break;
            case 3: pins(op); break;
            case 4: userfaultfd(op); break;
            default: file_op(op);
        }
        return op;
    }

    // A load or store of a word: read, write, peek, poke, sysfs_write.
    void access(Op& op) {
        static constexpr OpKind kKinds[] = {OpKind::read, OpKind::write, OpKind::peek, OpKind::poke,
                                            OpKind::sysfs_write};
        op.kind = kKinds[c_.choose(std::size(kKinds))];
        op.addr = word_addr();
        if (op.kind == OpKind::write || op.kind == OpKind::poke) op.value = value();
    }

    // mmap, munmap, mprotect, madvise, mremap.
    void mapping(Op& op) {
        switch (c_.choose(5)) {
            case 0: return mmap(op);
            case 1: op.kind = OpKind::munmap; return range(op);
            case 2:
                op.kind = OpKind::mprotect;
                range(op);
                op.prot = static_cast<uint8_t>(c_.choose(8));
                return;
            case 3:
                op.kind = OpKind::madvise;
                range(op);
                op.advice = kAdvice[c_.choose(kAdvice.size())].value;
                return;
            default: return mremap(op);
        }
    }

    void mmap(Op& op) {
        op.kind = OpKind::mmap;
        range(op);
        op.prot = static_cast<uint8_t>(c_.choose(8));
        op.flags = (coin() ? MAPF_SHARED : MAPF_PRIVATE) | flags(kMmapOptions);
        if (p_.files.empty() || !coin()) {
            op.flags |= MAPF_ANON;
        } else {
            op.file = any_file();
            op.pgoff = c_.choose(kMaxPages + 1);
        }
    }

    void mremap(Op& op) {
        op.kind = OpKind::mremap;
        range(op);
        op.new_pages = page_count();
        switch (c_.choose(3)) {
            case 0: return;
            case 1: op.flags = MREMAPF_MAYMOVE; return;
            default: op.flags = MREMAPF_MAYMOVE | MREMAPF_FIXED; op.to = page_addr(op.new_pages);
        }
    }

    // pin, gup, and the ops on a pin's handle (unpin, dma_read, dma_write), whose handle
    // and offset fix_handles draws once every pin is placed.
    void pins(Op& op) {
        switch (c_.choose(5)) {
            case 0: op.kind = OpKind::pin; range(op); op.flags = flags(kPinFlags); return;
            case 1: op.kind = OpKind::gup; range(op); op.flags = flags(kGupFlags); return;
            case 2: op.kind = OpKind::unpin; return;
            case 3: op.kind = OpKind::dma_read; return;
            default: op.kind = OpKind::dma_write; op.value = value();
        }
    }

    void userfaultfd(Op& op) {
        switch (c_.choose(3)) {
            case 0:
                op.kind = OpKind::uffd_register;
                range(op);
                op.uffd_mode = coin() ? UffdMode::wp : UffdMode::missing;
                return;
            case 1: op.kind = OpKind::uffd_wp; range(op); op.on = coin(); return;
            default: op.kind = OpKind::uffd_serve; op.pages = count(); op.value = value();
        }
    }

    // write(2) into a file's page cache, or truncate (to 0 pages too).
    void file_op(Op& op) {
        op.file = any_file();
        if (coin()) {
            op.kind = OpKind::truncate;
            op.pages = coin() ? page_count() : 0;
        } else {
            op.kind = OpKind::file_write;
            op.offset = c_.choose(kMaxPages + 1);
            op.value = value();
        }
    }

    // reclaim, cpu_hotplug, and (when there are processes) collapse and smaps.
    Op kthread_op() {
        Op op;
        switch (c_.choose(p_.processes.empty() ? 2 : 4)) {
            case 0: op.kind = OpKind::reclaim; op.pages = count(); break;
            case 1: op.kind = OpKind::cpu_hotplug; break;
            case 2: op.kind = OpKind::smaps; op.process = any_process(); break;
            default: op.kind = OpKind::collapse; op.process = any_process(); op.addr = page_addr(1);
        }
        return op;
    }

    int any_file() { return static_cast<int>(c_.choose(p_.files.size())); }
    int any_process() { return static_cast<int>(c_.choose(p_.processes.size())); }

    // --- cross references --------------------------------------------------------------

    // Each forked process i is forked by a thread of a process j < i: by induction every
    // chain of forks ends at process 0, which starts with the run.
    void add_forks() {
        for (size_t i = 1; i < p_.processes.size(); ++i) {
            if (!p_.processes[i].forked) continue;
            auto& threads = p_.processes[c_.choose(i)].threads;
            auto& ops = threads[c_.choose(threads.size())].ops;
            Op fork;
            fork.kind = OpKind::fork;
            fork.process = static_cast<int>(i);
            ops.insert(ops.begin() + static_cast<long>(c_.choose(ops.size() + 1)), fork);
        }
    }

    static bool uses_handle(const Op& op) {
        return op.kind == OpKind::unpin || op.kind == OpKind::dma_read || op.kind == OpKind::dma_write;
    }

    // The ops of every process thread in file order that `pred` selects.
    template <typename Pred>
    std::vector<Op*> ops_where(Pred pred) {
        std::vector<Op*> found;
        for (auto& proc : p_.processes)
            for (auto& t : proc.threads)
                for (auto& op : t.ops)
                    if (pred(op)) found.push_back(&op);
        return found;
    }

    // Handles count pins in file order; with no pin to name, the first handle op becomes
    // a pin.
    void fix_handles() {
        auto users = ops_where(uses_handle);
        if (users.empty()) return;
        auto is_pin = [](const Op& op) { return op.kind == OpKind::pin; };
        if (ops_where(is_pin).empty()) {
            Op pin;
            pin.kind = OpKind::pin;
            range(pin);
            pin.flags = flags(kPinFlags);
            *users.front() = pin;
            users.erase(users.begin());
        }
        auto pins = ops_where(is_pin);
        for (Op* op : users) {
            op->handle = static_cast<int>(c_.choose(pins.size()));
            if (op->kind != OpKind::unpin)
                op->offset = 8 * c_.choose(pins[static_cast<size_t>(op->handle)]->pages * kPageSize / 8);
        }
    }

    ChoiceSource& c_;
    ValidShape s_;
    Program p_;
};

}  // namespace

Program valid_program(ChoiceSource& choices, const ValidShape& shape) { return Valid(choices, shape).build(); }

}  // namespace mmrace::gen

namespace mmrace {

Program random_program(uint64_t seed) {
    gen::SplitMix64Choices choices(seed);
    gen::ValidShape shape;
    shape.runnable = false;
    return gen::valid_program(choices, shape);
}

}  // namespace mmrace
