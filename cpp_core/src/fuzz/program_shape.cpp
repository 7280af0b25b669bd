// The `program` target: any program of the format's ops.  The structure is coded
// first (files, processes with their threads, kthreads), then each thread's ops in
// file order, so that the choices an op may make are known where it is coded:
//   - fork names a later process declared `forked` that no fork named yet (the forks
//     form a tree rooted at processes that start with the run);
//   - unpin, dma_read, dma_write name a pin earlier in file order, and dma offsets lie
//     inside it;
//   - file_write, truncate and file mappings exist only when there are files.
// A decoded process declared forked that no fork names is made an ordinary one.
#include <algorithm>
#include <string>

#include "fuzz/args.hpp"
#include "fuzz/shapes.hpp"
#include "mmrace/ops.hpp"

namespace mmrace::fuzz {

namespace {

using namespace mmr;

// The decoder's bounds: the largest catalogue reproducer (pervma_fork_no_vma_write_lock)
// has 4 threads in a process and 369 ops in one thread.  Ranges, counts and file sizes
// stop at 64 pages, and a program at 1024 ops: without a mutant a run must end ok, and
// a program that populates a million pages per op runs into the step budget instead.
struct ProgramBounds {
    uint64_t files = 3, processes = 3, threads = 4, kthreads = 2;
    uint64_t ops = 512, kthread_ops = 64, total_ops = 1024;
    uint64_t pages = 64;  // ranges, COUNTs, file sizes and page offsets
};
constexpr ProgramBounds kBounds;

// Names of kthreads besides K0, K1, ...: those of the kernel threads the ops stand for.
constexpr const char* kKthreadNames[] = {"khugepaged", "kswapd", "cpuhp", "kcompactd"};

class ProgramShape {
public:
    ProgramShape(Coder& c, Program& p, const Options& o) : c_(c), p_(p), o_(o) {}

    void code() {
        config();
        files();
        processes();
        kthreads();
        for (size_t pi = 0; pi < p_.processes.size(); ++pi)
            for (auto& t : p_.processes[pi].threads) thread_ops(t, pi);
        for (auto& t : p_.kthreads) kthread_ops(t);
        if (c_.decoding())
            for (size_t i = 0; i < p_.processes.size(); ++i)
                if (p_.processes[i].forked && !claimed(i)) p_.processes[i].forked = false;
    }

private:
    void config() {
        Config& cfg = p_.config;
        if (!c_.decoding() && cfg.budget != kDefaultBudget)
            c_.reject("config budget=" + std::to_string(cfg.budget) + ": the program target runs the default budget");
        code_strategy(c_, cfg, kAllStrategies, o_);
        c_.pick(cfg.geometry, 2, "config geometry=");
        pool(cfg.folios, kDefaultFolios, kMaxFolios, "config folios=");
        pool(cfg.swap_slots, kDefaultSwapSlots, kMaxSwapSlots, "config swap_slots=");
        pool(cfg.pgtables, kDefaultPgtables, kMaxPgtables, "config pgtables=");
        if (cfg.strategy == Strategy::pervma) {
            c_.coin(cfg.vma_lock_swapin, "config vma_lock=swapin");
            c_.coin(cfg.vma_lock_file, "config vma_lock=file");
            c_.coin(cfg.vma_lock_uffd, "config vma_lock=uffd");
        } else if (!c_.decoding() && (cfg.vma_lock_swapin || cfg.vma_lock_file || cfg.vma_lock_uffd)) {
            c_.reject("config vma_lock= without strategy pervma");
        }
    }

    // A pool's size: the default, or anything in [1, max].
    void pool(uint64_t& size, uint64_t dflt, uint64_t max, const char* what) {
        bool custom = size != dflt;
        if (!c_.coin(custom, what)) {
            size = dflt;
            return;
        }
        uint64_t n = size - 1;
        c_.num(n, max, what);
        size = n + 1;
    }

    void files() {
        uint64_t n = p_.files.size();
        c_.num(n, kBounds.files + 1, "files");
        p_.files.resize(n);
        for (size_t i = 0; i < n; ++i) {
            File& f = p_.files[i];
            // F0, F1, ...; the first may be plain F (as the catalogue's reproducers name it).
            bool bare = i == 0 && f.name == "F";
            if (!c_.decoding() && !bare && f.name != "F" + std::to_string(i))
                c_.reject("file " + f.name + ": the program target names files F0, F1, ... (or the first F)");
            c_.pick(bare, i == 0 ? 2 : 1, "file name");
            f.name = bare ? "F" : "F" + std::to_string(i);
            code_pages(c_, f.pages, kBounds.pages, "file pages=");
        }
    }

    void processes() {
        uint64_t n = p_.processes.size();
        c_.num(n, kBounds.processes + 1, "processes");
        p_.processes.resize(n);
        for (size_t i = 0; i < n; ++i) {
            Process& proc = p_.processes[i];
            std::string name = "P" + std::to_string(i);
            if (!c_.decoding() && proc.name != name)
                c_.reject("process " + proc.name + ": the program target names processes P0, P1, ...");
            proc.name = name;
            if (!c_.decoding() && i == 0 && proc.forked) c_.reject("process P0 is forked: nothing can fork it");
            c_.pick(proc.forked, i > 0 ? 2 : 1, "process forked");
            if (!c_.decoding() && proc.threads.empty()) c_.reject("process " + name + " has no thread");
            uint64_t nt = c_.decoding() ? 0 : proc.threads.size() - 1;  // at least one thread
            c_.num(nt, kBounds.threads, "threads of a process");
            proc.threads.resize(nt + 1);
            for (size_t t = 0; t < proc.threads.size(); ++t) {
                std::string tname = name + ".T" + std::to_string(t);
                if (!c_.decoding() && proc.threads[t].name != tname)
                    c_.reject("thread " + proc.threads[t].name + ": the program target names threads " + tname);
                proc.threads[t].name = tname;
            }
        }
    }

    void kthreads() {
        uint64_t n = p_.kthreads.size();
        c_.num(n, kBounds.kthreads + 1, "kthreads");
        p_.kthreads.resize(n);
        for (size_t i = 0; i < n; ++i) {
            Thread& t = p_.kthreads[i];
            std::string plain = "K" + std::to_string(i);
            uint64_t which = 0;
            if (!c_.decoding() && t.name != plain) {
                auto at = std::find(std::begin(kKthreadNames), std::end(kKthreadNames), t.name);
                if (at == std::end(kKthreadNames))
                    c_.reject("kthread " + t.name + ": the program target names kthreads K0, K1, ... or khugepaged, "
                              "kswapd, cpuhp, kcompactd");
                which = 1 + static_cast<uint64_t>(at - std::begin(kKthreadNames));
            }
            c_.num(which, std::size(kKthreadNames) + 1, "kthread name");
            std::string name = which ? kKthreadNames[which - 1] : plain;
            // A name an earlier kthread took falls back to K<i>: names stay unique.
            for (size_t j = 0; j < i; ++j)
                if (p_.kthreads[j].name == name) name = plain;
            t.name = name;
        }
    }

    bool claimed(size_t process) const {
        return std::find(claimed_.begin(), claimed_.end(), process) != claimed_.end();
    }

    // The processes a fork in process `pi` may name.
    std::vector<int> fork_children(size_t pi) const {
        std::vector<int> out;
        for (size_t j = pi + 1; j < p_.processes.size(); ++j)
            if (p_.processes[j].forked && !claimed(j)) out.push_back(static_cast<int>(j));
        return out;
    }

    std::vector<OpKind> user_kinds(size_t pi) const {
        std::vector<OpKind> k = {OpKind::read,    OpKind::write,    OpKind::peek,    OpKind::poke,
                                 OpKind::sysfs_write, OpKind::mmap, OpKind::munmap,  OpKind::mprotect,
                                 OpKind::madvise, OpKind::mremap,   OpKind::exit,    OpKind::pin,
                                 OpKind::gup,     OpKind::uffd_register, OpKind::uffd_wp, OpKind::uffd_serve};
        if (!pin_pages_.empty()) k.insert(k.end(), {OpKind::unpin, OpKind::dma_read, OpKind::dma_write});
        if (!p_.files.empty()) k.insert(k.end(), {OpKind::file_write, OpKind::truncate});
        if (!fork_children(pi).empty()) k.push_back(OpKind::fork);
        return k;
    }

    void kind(Op& op, const std::vector<OpKind>& kinds, const std::string& where) {
        auto at = std::find(kinds.begin(), kinds.end(), op.kind);
        if (!c_.decoding() && at == kinds.end())
            c_.reject(where + ": op '" + std::string(op_spec(op.kind).name) +
                      "' cannot go here in this target (a fork names a later process declared forked; a handle an "
                      "earlier pin; a file op needs a file)");
        uint64_t i = static_cast<uint64_t>(at - kinds.begin());
        c_.num(i, kinds.size(), "op");
        op.kind = kinds[i];
    }

    void ops_count(Thread& t, uint64_t max) {
        uint64_t n = t.ops.size();
        code_count(c_, n, std::min(max, kBounds.total_ops - total_ops_), ("ops of thread " + t.name).c_str());
        t.ops.resize(n);
        total_ops_ += n;
    }

    void thread_ops(Thread& t, size_t pi) {
        ops_count(t, kBounds.ops);
        for (size_t i = 0; i < t.ops.size(); ++i) {
            std::string where = t.name + " op " + std::to_string(i);
            kind(t.ops[i], user_kinds(pi), where);
            user_op(t.ops[i], pi);
        }
    }

    void user_op(Op& op, size_t pi) {
        switch (op.kind) {
            case OpKind::read: case OpKind::peek: case OpKind::sysfs_write:
                return code_word_addr(c_, op.addr, "address");
            case OpKind::write: case OpKind::poke:
                code_word_addr(c_, op.addr, "address");
                return code_value(c_, op.value, "value");
            case OpKind::mmap: return mmap(op);
            case OpKind::munmap: return code_range(c_, op, kBounds.pages, "munmap");
            case OpKind::mprotect:
                code_range(c_, op, kBounds.pages, "mprotect");
                return c_.pick(op.prot, 8, "prot=");
            case OpKind::madvise: return madvise(op);
            case OpKind::mremap: return mremap(op);
            case OpKind::exit: return;
            case OpKind::fork: return fork(op, pi);
            case OpKind::pin:
                code_range(c_, op, kBounds.pages, "pin");
                code_flags(c_, op.flags, kPinFlags, "pin flags=");
                pin_pages_.push_back(op.pages);
                return;
            case OpKind::gup:
                code_range(c_, op, kBounds.pages, "gup");
                return code_flags(c_, op.flags, kGupFlags, "gup flags=");
            case OpKind::unpin: return handle(op);
            case OpKind::dma_read: handle(op); return dma_offset(op);
            case OpKind::dma_write:
                handle(op);
                dma_offset(op);
                return code_value(c_, op.value, "value");
            case OpKind::uffd_register:
                code_range(c_, op, kBounds.pages, "uffd_register");
                return c_.pick(op.uffd_mode, 2, "mode=");
            case OpKind::uffd_wp:
                code_range(c_, op, kBounds.pages, "uffd_wp");
                c_.coin(op.on, "on|off");
                return;
            case OpKind::uffd_serve:
                code_count(c_, op.pages, kBounds.pages, "uffd_serve COUNT");
                return code_value(c_, op.value, "value=");
            case OpKind::file_write:
                file(op);
                code_count(c_, op.offset, kBounds.pages, "file_write PGOFF");
                return code_value(c_, op.value, "value");
            case OpKind::truncate:
                file(op);
                return code_count(c_, op.pages, kBounds.pages, "truncate pages=");
            default: c_.reject(std::string("op '") + std::string(op_spec(op.kind).name) + "' in a process thread");
        }
    }

    void mmap(Op& op) {
        code_range(c_, op, kBounds.pages, "mmap");
        c_.pick(op.prot, 8, "prot=");
        uint32_t base = op.flags & (MAPF_PRIVATE | MAPF_SHARED | MAPF_ANON);
        bool shared = op.flags & MAPF_SHARED;
        c_.coin(shared, "mmap shared");
        uint32_t options = op.flags & ~(MAPF_PRIVATE | MAPF_SHARED | MAPF_ANON);
        code_flags(c_, options, kMmapOptions, "mmap flags=");
        bool file_backed = !(base & MAPF_ANON);
        if (!c_.decoding() && file_backed && p_.files.empty()) c_.reject("mmap of a file without files");
        c_.pick(file_backed, p_.files.empty() ? 1 : 2, "mmap file");
        op.flags = (shared ? MAPF_SHARED : MAPF_PRIVATE) | options | (file_backed ? 0u : uint32_t{MAPF_ANON});
        if (file_backed) {
            file(op);
            code_count(c_, op.pgoff, kBounds.pages, "mmap PGOFF");
        }
    }

    void madvise(Op& op) {
        code_range(c_, op, kBounds.pages, "madvise");
        uint64_t i = 0;
        while (i < kAdvice.size() && kAdvice[i].value != op.advice) ++i;
        c_.num(i, kAdvice.size(), "advice=");
        op.advice = kAdvice[i].value;
    }

    void mremap(Op& op) {
        code_range(c_, op, kBounds.pages, "mremap");
        code_pages(c_, op.new_pages, kBounds.pages, "mremap new_pages=");
        uint64_t flags = op.flags == 0 ? 0 : op.flags == MREMAPF_MAYMOVE ? 1 : 2;
        if (!c_.decoding() && (op.flags & ~(MREMAPF_MAYMOVE | MREMAPF_FIXED)))
            c_.reject("mremap flags=" + std::to_string(op.flags));
        c_.num(flags, 3, "mremap flags=");
        op.flags = flags == 0 ? 0 : flags == 1 ? MREMAPF_MAYMOVE : MREMAPF_MAYMOVE | MREMAPF_FIXED;
        if (flags == 2) {
            uint64_t to = op.to.value_or(0);
            code_page_addr(c_, to, op.new_pages, "mremap to=");
            op.to = to;
        } else if (!c_.decoding() && op.to) {
            c_.reject("mremap to= without flags=maymove,fixed");
        }
    }

    void fork(Op& op, size_t pi) {
        std::vector<int> children = fork_children(pi);
        auto at = std::find(children.begin(), children.end(), op.process);
        uint64_t i = static_cast<uint64_t>(at - children.begin());
        c_.num(i, children.size(), "fork child");
        op.process = children[i];
        claimed_.push_back(static_cast<size_t>(op.process));
    }

    void handle(Op& op) {
        uint64_t h = static_cast<uint64_t>(op.handle);
        c_.num(h, pin_pages_.size(), "handle (pins earlier in file order)");
        op.handle = static_cast<int>(h);
    }

    void dma_offset(Op& op) {
        uint64_t words = pin_pages_[static_cast<size_t>(op.handle)] * kPageSize / 8;
        if (!c_.decoding() && op.offset % 8) c_.reject("dma offset " + std::to_string(op.offset) + " is not 8-byte aligned");
        uint64_t w = op.offset / 8;
        c_.num(w, words, "dma offset (words of the pin)");
        op.offset = w * 8;
    }

    void file(Op& op) {
        uint64_t f = static_cast<uint64_t>(op.file);
        c_.num(f, p_.files.size(), "file");
        op.file = static_cast<int>(f);
    }

    void kthread_ops(Thread& t) {
        ops_count(t, kBounds.kthread_ops);
        std::vector<OpKind> kinds = {OpKind::reclaim, OpKind::cpu_hotplug};
        if (!p_.processes.empty()) kinds.insert(kinds.end(), {OpKind::smaps, OpKind::collapse});
        for (size_t i = 0; i < t.ops.size(); ++i) {
            Op& op = t.ops[i];
            kind(op, kinds, t.name + " op " + std::to_string(i));
            if (op.kind == OpKind::reclaim) code_count(c_, op.pages, kBounds.pages, "reclaim COUNT");
            if (op.kind == OpKind::smaps || op.kind == OpKind::collapse) {
                uint64_t pi = static_cast<uint64_t>(op.process);
                c_.num(pi, p_.processes.size(), "process");
                op.process = static_cast<int>(pi);
            }
            if (op.kind == OpKind::collapse) code_page_addr(c_, op.addr, 1, "collapse address");
        }
    }

    Coder& c_;
    Program& p_;
    const Options& o_;
    std::vector<size_t> claimed_;     // processes a fork names, so far
    uint64_t total_ops_ = 0;          // ops coded so far
    std::vector<uint64_t> pin_pages_;  // the pins so far, in file order: their sizes
};

}  // namespace

void code_program(Coder& c, Program& p, const Options& o) { ProgramShape(c, p, o).code(); }

}  // namespace mmrace::fuzz
