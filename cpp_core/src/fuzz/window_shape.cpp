// The `spf` and `pervma` targets: one strategy's speculative path under attack.
//
//   P0.T0      mmap a 16-page window (two PMD ranges of the small geometry), prefault a
//              chosen set of its pages, then 1-4 changes: mprotect, munmap, mremap,
//              MADV_COLLAPSE, MADV_DONTNEED, a fresh mmap over part of it, or fork
//   P0.T1..T3  1-12 loads and stores each, in the window and the 8 pages after it
//              (where mremap moves to), or on the counters page: one page of the
//              window that all of them share, as the hunt's `counters` feature does
//   P1.T0      when T0 forks: 1-4 loads and stores of the child
//   khugepaged optional: collapses of the window's PMD ranges
//
// T0 may also map and write 0-3 one-page VMAs far above the window before its changes.
// The program takes some 20-60 bytes; every byte after it is a scheduling decision, so
// most of an input is the interleaving of the faults with the change.  fuzz_spf finds
// spf_no_seqcount_check (a fault against mprotect) and spf_no_pmd_recheck (against a
// collapse) in this shape.  pervma_fork_no_vma_write_lock needs three threads on one
// page around a fork (fuzz/seeds/pervma/fork_counters.mmr): the counters page makes
// that common; spread over 24 pages, two threads seldom meet.
#include <algorithm>
#include <optional>

#include "fuzz/shape_helpers.hpp"
#include "fuzz/shapes.hpp"
#include "program/mmr_lexer.hpp"

namespace mmrace::fuzz {

namespace {

constexpr uint64_t kWindow = 0x200000;
constexpr uint64_t kPages = 16;        // the window
constexpr uint64_t kReach = 24;        // pages a load or store may touch: the window and mremap's target
constexpr uint64_t kPmdPages = 8;      // a PMD range of the small geometry
constexpr uint64_t kMoveTo = kWindow + kPages * kPageSize;
constexpr uint8_t kProts[] = {PROT_NONE_, PROT_READ_, PROT_READ_ | PROT_WRITE_};
constexpr uint32_t kAnonFixed = MAPF_PRIVATE | MAPF_ANON | MAPF_FIXED;
constexpr uint64_t kFar = 0x2000000;       // the far VMAs, one page each, kFarStride apart
constexpr uint64_t kFarStride = 0x1000000;

enum Change : uint64_t { mprotect_, munmap_, mremap_, collapse_, dontneed_, mmap_, fork_ };

class WindowShape {
public:
    WindowShape(Coder& c, Program& p, const Options& o, Strategy s) : c_(c), p_(p), o_(o), s_(s) {}

    void code() {
        config();
        if (!c_.decoding() && (p_.processes.empty() || p_.processes.size() > 2 || !p_.files.empty()))
            c_.reject("the window shape has processes P0 and, after a fork, P1, and no files");
        p_.processes.resize(std::max<size_t>(p_.processes.size(), 1));
        Process& p0 = p_.processes[0];
        p0.name = "P0";
        uint64_t faulters = c_.decoding() ? 0 : p0.threads.size() - 2;
        if (!c_.decoding() && p0.threads.size() < 2) c_.reject("P0 needs a thread that changes the window and one that faults");
        c_.num(faulters, 3, "faulting threads");
        p0.threads.resize(faulters + 2);
        name_threads(c_, p0);
        changer(p0.threads[0]);
        counters_page(p0);
        for (size_t t = 1; t < p0.threads.size(); ++t) accesses(p0.threads[t], t, 1, 12, counters_);
        if (Thread* child = forked_child(c_, p_, forks_)) accesses(*child, 8, 1, 4, std::nullopt);
        khugepaged();
    }

private:
    void config() {
        expect_default_config(c_, p_.config, Geometry::small);
        code_strategy(c_, p_.config, {s_}, o_);
        p_.config.geometry = Geometry::small;
        if (s_ == Strategy::pervma) {
            c_.coin(p_.config.vma_lock_swapin, "config vma_lock=swapin");
            c_.coin(p_.config.vma_lock_file, "config vma_lock=file");
            c_.coin(p_.config.vma_lock_uffd, "config vma_lock=uffd");
        }
    }

    // T0: the window, its prefaulted pages, then the changes.
    void changer(Thread& t) {
        fixed_op(c_, p_, t.ops, 0, make_mmap(kWindow, kPages, PROT_READ_ | PROT_WRITE_, kAnonFixed), t.name);
        uint64_t mask = 0;
        size_t i = 1;
        if (!c_.decoding())
            for (uint64_t page = 0; page < kPages && i < t.ops.size(); ++page)
                if (t.ops[i] == prefault(page)) mask |= 1ull << page, ++i;
        c_.num(mask, 1ull << kPages, "prefaulted pages");
        if (c_.decoding())
            for (uint64_t page = 0; page < kPages; ++page)
                if (mask >> page & 1) t.ops.push_back(prefault(page));
        if (c_.decoding()) i = t.ops.size();
        far_vmas(t, i);
        uint64_t n = c_.decoding() ? 0 : t.ops.size() - i;
        if (!c_.decoding() && (n < 1 || n > 4)) c_.reject("P0.T0 makes 1 to 4 changes in this target");
        n -= c_.decoding() ? 0 : 1;
        c_.num(n, 4, "changes");
        t.ops.resize(i + n + 1);
        for (; i < t.ops.size(); ++i) change(t.ops[i], t.name + " op " + std::to_string(i));
    }

    // 0-3 one-page VMAs far above the window, each written: fork copies them after the
    // window, so its write-protected PTEs wait longer for the TLB flush (the window of
    // pervma_fork_no_vma_write_lock's race).
    void far_vmas(Thread& t, size_t& i) {
        uint64_t n = 0;
        if (!c_.decoding())
            while (n < 3 && i + 1 < t.ops.size() && t.ops[i] == far_mmap(n) && t.ops[i + 1] == far_write(n)) ++n, i += 2;
        c_.num(n, 4, "far VMAs");
        if (c_.decoding()) {
            for (uint64_t k = 0; k < n; ++k) t.ops.insert(t.ops.end(), {far_mmap(k), far_write(k)});
            i = t.ops.size();
        }
    }

    static uint64_t far_addr(uint64_t k) { return kFar + k * kFarStride; }
    static Op far_mmap(uint64_t k) { return make_mmap(far_addr(k), 1, PROT_READ_ | PROT_WRITE_, kAnonFixed); }
    static Op far_write(uint64_t k) { return make_access(OpKind::write, far_addr(k), 1); }

    static Op prefault(uint64_t page) {
        return make_access(OpKind::write, kWindow + page * kPageSize, page + 1);
    }

    Change classify(const Op& op, const std::string& where) const {
        switch (op.kind) {
            case OpKind::mprotect: return mprotect_;
            case OpKind::munmap: return munmap_;
            case OpKind::mremap: return mremap_;
            case OpKind::madvise:
                if (op.advice == Advice::collapse) return collapse_;
                if (op.advice == Advice::dontneed) return dontneed_;
                break;
            case OpKind::mmap: return mmap_;
            case OpKind::fork: return fork_;
            default: break;
        }
        c_.reject(where + ": P0.T0's changes are mprotect, munmap, mremap, madvise collapse|dontneed, mmap, fork");
    }

    void change(Op& op, const std::string& where) {
        if (c_.decoding()) op = Op{};
        uint64_t kind = c_.decoding() ? 0 : static_cast<uint64_t>(classify(op, where));
        if (!c_.decoding() && kind == fork_ && forks_) c_.reject(where + ": T0 forks once in this target");
        c_.num(kind, forks_ ? fork_ : fork_ + 1, "change");
        switch (static_cast<Change>(kind)) {
            case mprotect_: {
                op.kind = OpKind::mprotect;
                range(op, where);
                uint64_t prot = static_cast<uint64_t>(std::find(std::begin(kProts), std::end(kProts), op.prot) - std::begin(kProts));
                c_.num(prot, std::size(kProts), "mprotect prot= (none, r, rw)");
                op.prot = kProts[prot];
                return;
            }
            case munmap_: op.kind = OpKind::munmap; return range(op, where);
            case mremap_: return mremap(op, where);
            case collapse_: {
                op.kind = OpKind::madvise;
                op.advice = Advice::collapse;
                uint64_t pmd = page_index(c_, op.addr, kWindow, kPages, where) / kPmdPages;
                if (!c_.decoding() && (op.addr != kWindow + pmd * kPmdPages * kPageSize || op.pages != kPmdPages))
                    c_.reject(where + ": MADV_COLLAPSE of a whole PMD range of the window");
                c_.num(pmd, kPages / kPmdPages, "collapse PMD");
                op.addr = kWindow + pmd * kPmdPages * kPageSize;
                op.pages = kPmdPages;
                return;
            }
            case dontneed_: op.kind = OpKind::madvise; op.advice = Advice::dontneed; return range(op, where);
            case mmap_: {
                if (!c_.decoding() && (op.prot != (PROT_READ_ | PROT_WRITE_) || op.flags != kAnonFixed))
                    c_.reject(where + ": mmap prot=rw flags=private,anon,fixed in this target");
                op = make_mmap(op.addr, op.pages, PROT_READ_ | PROT_WRITE_, kAnonFixed);
                return range(op, where);
            }
            case fork_:
                op.kind = OpKind::fork;
                op.process = 1;
                forks_ = true;
                return;
        }
    }

    // [addr, +pages) inside the window.
    void range(Op& op, const std::string& where) {
        uint64_t start = page_index(c_, op.addr, kWindow, kPages, where);
        if (!c_.decoding() && (op.pages < 1 || start + op.pages > kPages))
            c_.reject(where + ": the range leaves the window");
        c_.num(start, kPages, "range start");
        uint64_t len = c_.decoding() ? 0 : op.pages - 1;
        c_.num(len, kPages - start, "range pages");
        op.addr = kWindow + start * kPageSize;
        op.pages = len + 1;
    }

    void mremap(Op& op, const std::string& where) {
        op.kind = OpKind::mremap;
        range(op, where);
        uint64_t grow = c_.decoding() ? 0 : op.new_pages - 1;
        c_.num(grow, kPages, "mremap new_pages=");
        op.new_pages = grow + 1;
        uint64_t how = op.flags == 0 ? 0 : op.flags == MREMAPF_MAYMOVE ? 1 : 2;
        if (!c_.decoding() && how == 2 && (op.flags != (MREMAPF_MAYMOVE | MREMAPF_FIXED) || op.to != kMoveTo))
            c_.reject(where + ": mremap moves to " + std::to_string(kMoveTo) + " with flags=maymove,fixed");
        if (!c_.decoding() && how != 2 && op.to) c_.reject(where + ": mremap to= without fixed");
        c_.num(how, 3, "mremap flags=");
        op.flags = how == 0 ? 0 : how == 1 ? MREMAPF_MAYMOVE : MREMAPF_MAYMOVE | MREMAPF_FIXED;
        op.to = how == 2 ? std::optional<uint64_t>(kMoveTo) : std::nullopt;
    }

    // A counters page (the hunt's `counters` feature): a page of the window that each of
    // P0's faulting threads may load and store in, as in the reproducer hunt finds for
    // pervma_fork_no_vma_write_lock.  There fork's write-protect meets a wp fault of one
    // thread and a store through another's stale TLB entry; spread over 24 pages, two
    // threads seldom meet.  Encoding: the page of the first access in the window.
    void counters_page(const Process& p0) {
        bool any = false;
        uint64_t page = 0;
        for (size_t t = 1; !c_.decoding() && !any && t < p0.threads.size(); ++t)
            for (const Op& op : p0.threads[t].ops)
                if (op.addr >= kWindow && op.addr < kWindow + kPages * kPageSize) {
                    any = true;
                    page = (op.addr - kWindow) / kPageSize;
                    break;
                }
        c_.coin(any, "counters page");
        if (any) c_.num(page, kPages, "counters page index");
        counters_ = any ? std::optional<uint64_t>(page) : std::nullopt;
    }

    // Loads and stores of thread number `tid` in the window and the pages after it; each
    // says first whether it is on the counters page `counter`, if there is one.
    void accesses(Thread& t, size_t tid, uint64_t min, uint64_t max, std::optional<uint64_t> counter) {
        code_op_count(c_, t, min, max);
        for (size_t i = 0; i < t.ops.size(); ++i) {
            Op& op = t.ops[i];
            std::string where = t.name + " op " + std::to_string(i);
            bool store = op.kind == OpKind::write;
            if (!c_.decoding() && !store && op.kind != OpKind::read) c_.reject(where + ": loads and stores only");
            c_.coin(store, "store");
            uint64_t page = c_.decoding() ? 0 : page_index(c_, op.addr & ~(kPageSize - 1), kWindow, kReach, where);
            uint64_t word = (op.addr % kPageSize) / 8;
            if (!c_.decoding() && (op.addr % 8 || word >= 4)) c_.reject(where + ": one of the first 4 words of a page");
            bool on_counter = counter && page == *counter;
            if (counter) c_.coin(on_counter, "on the counters page");
            if (on_counter) page = *counter;
            else c_.num(page, kReach, "page");
            c_.num(word, 4, "word");
            Op want = make_access(store ? OpKind::write : OpKind::read, kWindow + page * kPageSize + word * 8,
                                  store_value(tid, i));
            if (!c_.decoding() && !(op == want)) c_.reject(where + ": this target stores " + std::to_string(want.value));
            op = want;
        }
    }

    void khugepaged() {
        bool present = !p_.kthreads.empty();
        if (!c_.decoding() && (p_.kthreads.size() > 1 || (present && p_.kthreads[0].name != "khugepaged")))
            c_.reject("the window shape's only kthread is khugepaged");
        c_.coin(present, "khugepaged");
        if (!present) return;
        p_.kthreads.resize(1);
        Thread& k = p_.kthreads[0];
        k.name = "khugepaged";
        code_op_count(c_, k, 1, 2);
        for (Op& op : k.ops) {
            Op want;
            want.kind = OpKind::collapse;
            want.process = 0;
            uint64_t pmd = page_index(c_, op.addr, kWindow, kPages, "khugepaged") / kPmdPages;
            c_.num(pmd, kPages / kPmdPages, "khugepaged PMD");
            want.addr = kWindow + pmd * kPmdPages * kPageSize;
            if (!c_.decoding() && !(op == want)) c_.reject("khugepaged collapses a PMD range of P0's window");
            op = want;
        }
    }

    Coder& c_;
    Program& p_;
    const Options& o_;
    Strategy s_;
    bool forks_ = false;
    std::optional<uint64_t> counters_;  // the counters page, if any
};

}  // namespace

void code_window(Coder& c, Program& p, const Options& o, Strategy s) { WindowShape(c, p, o, s).code(); }

}  // namespace mmrace::fuzz
