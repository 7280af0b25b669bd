// The `gup` target: pins, get_user_pages, /proc/pid/mem, fork and COW over a few pages.
//
//   F0         optional: a one-page file, mapped private read-only and shared by P0.T0
//              (the dirty COW layout)
//   P0.T0      mmap 4 anonymous pages, the file's two mappings, then 1-8 ops
//   P0.T1      1-8 ops
//   P1.T0      when T0 forks: 1-4 ops of the child
// The ops: loads, stores, peek, poke, pin, gup (every flag), unpin, dma_read,
// dma_write, MADV_DONTNEED, mprotect, and T0's one fork, each on one page.  The races
// of gup_pin_no_early_cow, fork_shares_pinned_page, dirty_cow and gup_vmas_after_retry
// need no more.
#include <algorithm>

#include "fuzz/args.hpp"
#include "fuzz/shape_helpers.hpp"
#include "fuzz/shapes.hpp"
#include "program/mmr_lexer.hpp"

namespace mmrace::fuzz {

namespace {

using namespace mmr;

constexpr uint64_t kBase = 0x100000;
constexpr uint64_t kAnonPages = 4;
constexpr uint64_t kPrivateFile = kBase + 16 * kPageSize;
constexpr uint64_t kSharedFile = kBase + 32 * kPageSize;

enum Kind : uint64_t { write_, read_, poke_, peek_, pin_, gup_, dontneed_, mprotect_, unpin_, dma_read_, dma_write_, fork_ };

class GupShape {
public:
    GupShape(Coder& c, Program& p, const Options& o) : c_(c), p_(p), o_(o) {}

    void code() {
        expect_default_config(c_, p_.config, Geometry::small);
        code_strategy(c_, p_.config, kAllStrategies, o_);
        p_.config.geometry = Geometry::small;
        if (!c_.decoding() && (p_.files.size() > 1 || (p_.files.size() == 1 && (p_.files[0].name != "F0" || p_.files[0].pages != 1))))
            c_.reject("the gup shape's only file is F0 pages=1");
        if (!c_.decoding() && (p_.processes.empty() || p_.processes.size() > 2 || !p_.kthreads.empty()))
            c_.reject("the gup shape has processes P0 and, after a fork, P1, and no kthreads");
        bool file = !p_.files.empty();
        c_.coin(file, "file F0");
        if (file) p_.files = {File{"F0", {}, 1}};
        pages_ = kAnonPages + (file ? 2 : 0);
        p_.processes.resize(std::max<size_t>(p_.processes.size(), 1));
        Process& p0 = p_.processes[0];
        p0.name = "P0";
        if (!c_.decoding() && p0.threads.size() != 2) c_.reject("P0 has threads T0 and T1 in this target");
        p0.threads.resize(2);
        name_threads(c_, p0);
        Thread& t0 = p0.threads[0];
        size_t first = 0;
        fixed_op(c_, p_, t0.ops, first++, make_mmap(kBase, kAnonPages, PROT_READ_ | PROT_WRITE_, MAPF_PRIVATE | MAPF_ANON | MAPF_FIXED), t0.name);
        if (file) {
            Op priv = make_mmap(kPrivateFile, 1, PROT_READ_, MAPF_PRIVATE | MAPF_FIXED, 0);
            Op shared = make_mmap(kSharedFile, 1, PROT_READ_, MAPF_SHARED | MAPF_FIXED, 0);
            fixed_op(c_, p_, t0.ops, first++, priv, t0.name);
            fixed_op(c_, p_, t0.ops, first++, shared, t0.name);
        }
        ops(t0, 0, first, 8, true);
        ops(p0.threads[1], 1, 0, 8, false);
        if (Thread* child = forked_child(c_, p_, forks_)) ops(*child, 8, 0, 4, false);
    }

private:
    uint64_t page_addr(uint64_t i) const {
        return i < kAnonPages ? kBase + i * kPageSize : i == kAnonPages ? kPrivateFile : kSharedFile;
    }

    // The page of `addr` (encoding), then coded.
    uint64_t page(uint64_t addr, const std::string& where) {
        uint64_t i = 0;
        if (!c_.decoding()) {
            while (i < pages_ && page_addr(i) != (addr & ~(kPageSize - 1))) ++i;
            if (i == pages_) c_.reject(where + ": address " + std::to_string(addr) + " is not one of the target's pages");
        }
        c_.num(i, pages_, "page");
        return page_addr(i);
    }

    // Ops [first, first + 1..max) of thread number `tid`.
    void ops(Thread& t, size_t tid, size_t first, uint64_t max, bool may_fork) {
        if (!c_.decoding() && (t.ops.size() < first + 1 || t.ops.size() > first + max))
            c_.reject("thread " + t.name + ": 1 to " + std::to_string(max) + " ops after its mappings in this target");
        uint64_t n = c_.decoding() ? 0 : t.ops.size() - first - 1;
        c_.num(n, max, ("ops of " + t.name).c_str());
        t.ops.resize(first + n + 1);
        for (size_t i = first; i < t.ops.size(); ++i) op(t.ops[i], tid, i, may_fork, t.name + " op " + std::to_string(i));
    }

    Kind classify(const Op& op, const std::string& where) const {
        switch (op.kind) {
            case OpKind::write: return write_;
            case OpKind::read: return read_;
            case OpKind::poke: return poke_;
            case OpKind::peek: return peek_;
            case OpKind::pin: return pin_;
            case OpKind::gup: return gup_;
            case OpKind::madvise: if (op.advice == Advice::dontneed) return dontneed_; break;
            case OpKind::mprotect: return mprotect_;
            case OpKind::unpin: return unpin_;
            case OpKind::dma_read: return dma_read_;
            case OpKind::dma_write: return dma_write_;
            case OpKind::fork: return fork_;
            default: break;
        }
        c_.reject(where + ": op '" + std::string(op_spec(op.kind).name) + "' is not one of the gup target's");
    }

    void op(Op& op, size_t tid, size_t index, bool may_fork, const std::string& where) {
        // The kinds that may come here, in Kind's order: handles once a pin exists, fork once.
        std::vector<Kind> kinds = {write_, read_, poke_, peek_, pin_, gup_, dontneed_, mprotect_};
        if (pins_) kinds.insert(kinds.end(), {unpin_, dma_read_, dma_write_});
        if (may_fork && !forks_) kinds.push_back(fork_);
        uint64_t k = 0;
        if (!c_.decoding()) {
            auto at = std::find(kinds.begin(), kinds.end(), classify(op, where));
            if (at == kinds.end()) c_.reject(where + ": a handle op before any pin, or a second fork, or a fork outside P0.T0");
            k = static_cast<uint64_t>(at - kinds.begin());
        }
        c_.num(k, kinds.size(), "op");
        Op want;
        switch (kinds[k]) {
            case write_: case poke_: case read_: case peek_: {
                OpKind kind = kinds[k] == write_ ? OpKind::write : kinds[k] == poke_ ? OpKind::poke
                            : kinds[k] == read_ ? OpKind::read : OpKind::peek;
                uint64_t base = page(op.addr, where);
                uint64_t word = (op.addr % kPageSize) / 8;
                c_.num(word, 4, "word");
                want = make_access(kind, base + word * 8, store_value(tid, index));
                break;
            }
            case pin_: case gup_: {
                want.kind = kinds[k] == pin_ ? OpKind::pin : OpKind::gup;
                want.addr = page(op.addr, where);
                want.pages = 1;
                want.flags = op.flags;
                if (kinds[k] == pin_) code_flags(c_, want.flags, kPinFlags, "pin flags=");
                else code_flags(c_, want.flags, kGupFlags, "gup flags=");
                if (kinds[k] == pin_) ++pins_;
                break;
            }
            case dontneed_: case mprotect_: {
                want.kind = kinds[k] == dontneed_ ? OpKind::madvise : OpKind::mprotect;
                want.addr = page(op.addr, where);
                want.pages = 1;
                if (kinds[k] == dontneed_) {
                    want.advice = Advice::dontneed;
                } else {
                    bool writable = op.prot & PROT_WRITE_;
                    c_.coin(writable, "mprotect prot= (r, rw)");
                    want.prot = writable ? PROT_READ_ | PROT_WRITE_ : PROT_READ_;
                }
                break;
            }
            case unpin_: case dma_read_: case dma_write_: {
                want.kind = kinds[k] == unpin_ ? OpKind::unpin : kinds[k] == dma_read_ ? OpKind::dma_read : OpKind::dma_write;
                uint64_t h = static_cast<uint64_t>(op.handle);
                c_.num(h, pins_, "handle");
                want.handle = static_cast<int>(h);
                if (want.kind != OpKind::unpin) {
                    uint64_t word = op.offset / 8;
                    c_.num(word, 4, "dma offset");
                    want.offset = word * 8;
                }
                if (want.kind == OpKind::dma_write) want.value = store_value(tid, index);
                break;
            }
            case fork_:
                want.kind = OpKind::fork;
                want.process = 1;
                forks_ = true;
                break;
        }
        if (!c_.decoding() && !(op == want)) {
            c_.reject(where + ": not in the gup target's form (values are (thread << 8) | (op + 1), one page, "
                              "the first 4 words)");
        }
        op = want;
    }

    Coder& c_;
    Program& p_;
    const Options& o_;
    uint64_t pages_ = kAnonPages;
    uint64_t pins_ = 0;
    bool forks_ = false;
};

}  // namespace

void code_gup(Coder& c, Program& p, const Options& o) { GupShape(c, p, o).code(); }

}  // namespace mmrace::fuzz
