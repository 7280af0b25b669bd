// Random valid Programs.  The generator draws each piece on its own, then fixes up the
// cross references the format constrains: every forked process gets exactly one fork
// in an earlier process (so the forks form a tree rooted at a process that starts with
// the run), and every unpin/dma op names an existing pin with an offset inside it.
#include "program/random_program.hpp"

#include "runtime/policy.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "mutants/catalogue.hpp"
#include "program/mmr_lexer.hpp"

namespace mmrace {

namespace {

using namespace mmr;

// The project's one PRNG (identical everywhere, unlike the std:: distributions), with
// the two helpers the generator uses.
class Rng {
public:
    explicit Rng(uint64_t seed) : r_(seed) {}
    uint64_t next() { return r_.next(); }
    // Uniform enough in [0, n) for tests; 0 when n is 0.
    uint64_t below(uint64_t n) { return n ? r_.next() % n : 0; }
    bool percent(unsigned p) { return below(100) < p; }

private:
    rt::SplitMix64 r_;
};

// The kinds a thread draws directly; fork is placed by add_forks.
constexpr OpKind kProcessKinds[] = {
    OpKind::mmap,        OpKind::munmap,     OpKind::mprotect,   OpKind::madvise,
    OpKind::mremap,      OpKind::read,       OpKind::write,      OpKind::peek,
    OpKind::poke,        OpKind::exit,       OpKind::pin,        OpKind::gup,
    OpKind::unpin,       OpKind::dma_read,   OpKind::dma_write,  OpKind::uffd_register,
    OpKind::uffd_wp,     OpKind::uffd_serve, OpKind::file_write, OpKind::truncate,
    OpKind::sysfs_write,
};
constexpr OpKind kKthreadKinds[] = {OpKind::collapse, OpKind::reclaim, OpKind::smaps,
                                    OpKind::cpu_hotplug};

class Generator {
public:
    explicit Generator(uint64_t seed) : rng_(seed) {}

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
    // --- numbers at and inside the format's limits -------------------------------------

    uint64_t value() {
        switch (rng_.below(4)) {
            case 0: return rng_.below(100);
            case 1: return UINT64_MAX;
            default: return rng_.next();
        }
    }

    uint64_t pages() {
        switch (rng_.below(8)) {
            case 0: return kMaxPages;
            case 1: return 1 + rng_.below(kMaxPages);
            default: return 1 + rng_.below(8);
        }
    }

    uint64_t count() { return rng_.percent(10) ? kMaxPages : rng_.below(20); }

    // A page-aligned start of a range of `n` pages inside the user address space.
    uint64_t page_addr(uint64_t n) {
        uint64_t last_page = kUserTop / kPageSize - n;
        switch (rng_.below(6)) {
            case 0: return 0;
            case 1: return last_page * kPageSize;
            case 2: return rng_.below(last_page + 1) * kPageSize;
            default: return (0x100 + rng_.below(64)) * kPageSize;
        }
    }

    uint64_t word_addr() { return page_addr(1) + 8 * rng_.below(kPageSize / 8); }

    // Any subset of `words`.
    template <size_t N>
    uint32_t flags(const std::array<Word<uint32_t>, N>& words) {
        uint32_t f = 0;
        for (const auto& w : words)
            if (rng_.percent(40)) f |= w.value;
        return f;
    }

    // --- names: mostly the usual F0/P0/T0, sometimes odd but valid identifiers ---------

    std::string name(const char* prefix, size_t index) {
        if (!rng_.percent(20)) return prefix + std::to_string(index);
        static constexpr char kHead[] = "abcxyzABCXYZ_";
        static constexpr char kTail[] = "abcxyzABCXYZ_0123456789";
        std::string s(1, kHead[rng_.below(sizeof kHead - 1)]);
        for (uint64_t n = rng_.below(8); n; --n) s += kTail[rng_.below(sizeof kTail - 1)];
        // The index after the last '_' keeps names unique: it is the only text there.
        return s + "_" + std::to_string(index);
    }

    // --- the pieces --------------------------------------------------------------------

    void config() {
        p_.config.strategy = static_cast<Strategy>(rng_.below(3));
        p_.config.geometry = static_cast<Geometry>(rng_.below(2));
        auto pool = [&](uint64_t& size, uint64_t max) {
            if (!rng_.percent(30)) return;
            switch (rng_.below(3)) {
                case 0: size = 1; break;
                case 1: size = max; break;
                default: size = 1 + rng_.below(max);
            }
        };
        pool(p_.config.folios, kMaxFolios);
        pool(p_.config.swap_slots, kMaxSwapSlots);
        pool(p_.config.pgtables, kMaxPgtables);
        const auto& rows = mutant_catalogue();
        for (uint64_t n = rng_.below(4); n; --n) {
            std::string m = rows[rng_.below(rows.size())].name;
            if (std::find(p_.config.mutants.begin(), p_.config.mutants.end(), m) ==
                p_.config.mutants.end())
                p_.config.mutants.push_back(m);
        }
    }

    void files() {
        for (size_t i = 0, n = rng_.below(4); i < n; ++i)
            p_.files.push_back(File{name("F", i), {}, pages()});
    }

    void processes() {
        for (size_t i = 0, n = rng_.below(5); i < n; ++i) {
            // Process 0 starts with the run, so every fork chain has a root.
            Process proc{name("P", i), {}, i > 0 && rng_.percent(50), {}};
            for (size_t t = 0, nt = 1 + rng_.below(3); t < nt; ++t)
                proc.threads.push_back(
                    Thread{proc.name + "." + name("T", t), {}, ops(kProcessKinds)});
            p_.processes.push_back(std::move(proc));
        }
    }

    void kthreads() {
        for (size_t i = 0, n = rng_.below(3); i < n; ++i)
            p_.kthreads.push_back(Thread{name("K", i), {}, ops(kKthreadKinds)});
    }

    template <size_t N>
    std::vector<Op> ops(const OpKind (&kinds)[N]) {
        std::vector<Op> list;
        for (uint64_t n = rng_.below(12); n; --n) list.push_back(op(kinds[rng_.below(N)]));
        return list;
    }

    void schedule() {
        if (rng_.percent(25)) return;
        Schedule s;
        s.kind = static_cast<Schedule::Kind>(rng_.below(3));
        if (s.kind == Schedule::Kind::replay)
            for (uint64_t n = rng_.below(10); n; --n)
                s.replay.push_back(rng_.percent(80) ? rng_.below(4) : value());
        else
            s.seed = value();
        if (s.kind == Schedule::Kind::pct) {
            s.depth = static_cast<uint32_t>(rng_.percent(10) ? kMaxPctDepth : 1 + rng_.below(5));
            s.steps = rng_.percent(50) ? 0 : value();
        }
        p_.schedule = std::move(s);
    }

    // --- ops ---------------------------------------------------------------------------

    Op op(OpKind kind) {
        // Ops that name a file or a process need one; otherwise draw a substitute.
        if ((kind == OpKind::file_write || kind == OpKind::truncate) && p_.files.empty())
            kind = OpKind::read;
        if ((kind == OpKind::collapse || kind == OpKind::smaps) && p_.processes.empty())
            kind = OpKind::reclaim;
        Op op;
        op.kind = kind;
        fill(op);
        return op;
    }

    void range(Op& op) {
        op.pages = pages();
        op.addr = page_addr(op.pages);
    }

    int any_file() { return static_cast<int>(rng_.below(p_.files.size())); }
    int any_process() { return static_cast<int>(rng_.below(p_.processes.size())); }

    void fill(Op& op) {
        switch (op.kind) {
            case OpKind::mmap: return mmap(op);
            case OpKind::munmap: return range(op);
            case OpKind::mprotect:
                range(op);
                op.prot = static_cast<uint8_t>(rng_.below(8));
                return;
            case OpKind::madvise:
                range(op);
                op.advice = kAdvice[rng_.below(kAdvice.size())].value;
                return;
            case OpKind::mremap: return mremap(op);
            case OpKind::read:
            case OpKind::peek:
            case OpKind::sysfs_write: op.addr = word_addr(); return;
            case OpKind::write:
            case OpKind::poke:
                op.addr = word_addr();
                op.value = value();
                return;
            case OpKind::pin:
                range(op);
                op.flags = flags(kPinFlags);
                return;
            case OpKind::gup:
                range(op);
                op.flags = flags(kGupFlags);
                return;
            case OpKind::dma_write: op.value = value(); return;  // handle and offset: fix_handles
            case OpKind::uffd_register:
                range(op);
                op.uffd_mode = rng_.percent(50) ? UffdMode::missing : UffdMode::wp;
                return;
            case OpKind::uffd_wp:
                range(op);
                op.on = rng_.percent(50);
                return;
            case OpKind::uffd_serve:
                op.pages = count();
                op.value = value();
                return;
            case OpKind::file_write:
                op.file = any_file();
                op.offset = rng_.below(kMaxPages + 1);
                op.value = value();
                return;
            case OpKind::truncate:
                op.file = any_file();
                op.pages = rng_.percent(20) ? 0 : pages();
                return;
            case OpKind::collapse:
                op.process = any_process();
                op.addr = page_addr(1);
                return;
            case OpKind::reclaim: op.pages = count(); return;
            case OpKind::smaps: op.process = any_process(); return;
            case OpKind::fork:
            case OpKind::exit:
            case OpKind::unpin:
            case OpKind::dma_read:
            case OpKind::cpu_hotplug: return;
        }
    }

    void mmap(Op& op) {
        range(op);
        op.prot = static_cast<uint8_t>(rng_.below(8));
        op.flags = (rng_.percent(50) ? MAPF_PRIVATE : MAPF_SHARED) | flags(kMmapOptions);
        if (p_.files.empty() || rng_.percent(50)) {
            op.flags |= MAPF_ANON;
        } else {
            op.file = any_file();
            op.pgoff = rng_.below(kMaxPages + 1);
        }
    }

    void mremap(Op& op) {
        range(op);
        op.new_pages = pages();
        switch (rng_.below(3)) {
            case 0: return;
            case 1: op.flags = MREMAPF_MAYMOVE; return;
            default: op.flags = MREMAPF_MAYMOVE | MREMAPF_FIXED; op.to = page_addr(op.new_pages);
        }
    }

    // --- cross references --------------------------------------------------------------

    // Each forked process i is forked by a thread of a process j < i: by induction every
    // chain of forks ends at process 0, which starts with the run.
    void add_forks() {
        for (size_t i = 1; i < p_.processes.size(); ++i) {
            if (!p_.processes[i].forked) continue;
            auto& threads = p_.processes[rng_.below(i)].threads;
            auto& ops = threads[rng_.below(threads.size())].ops;
            Op fork;
            fork.kind = OpKind::fork;
            fork.process = static_cast<int>(i);
            ops.insert(ops.begin() + static_cast<long>(rng_.below(ops.size() + 1)), fork);
        }
    }

    std::vector<Op*> ops_of_kinds(std::initializer_list<OpKind> kinds) {
        std::vector<Op*> found;
        for (auto& proc : p_.processes)
            for (auto& t : proc.threads)
                for (auto& op : t.ops)
                    if (std::find(kinds.begin(), kinds.end(), op.kind) != kinds.end())
                        found.push_back(&op);
        return found;
    }

    // Handles count pins in file order; a handle op with no pin to name becomes a pin.
    void fix_handles() {
        auto users = ops_of_kinds({OpKind::unpin, OpKind::dma_read, OpKind::dma_write});
        if (users.empty()) return;
        if (ops_of_kinds({OpKind::pin}).empty()) {
            *users.front() = Op{};
            users.front()->kind = OpKind::pin;
            fill(*users.front());
            users.erase(users.begin());
        }
        auto pins = ops_of_kinds({OpKind::pin});
        for (Op* op : users) {
            op->handle = static_cast<int>(rng_.below(pins.size()));
            if (op->kind != OpKind::unpin)
                op->offset =
                    8 * rng_.below(pins[static_cast<size_t>(op->handle)]->pages * kPageSize / 8);
        }
    }

    Rng rng_;
    Program p_;
};

}  // namespace

Program random_program(uint64_t seed) { return Generator(seed).build(); }

}  // namespace mmrace
