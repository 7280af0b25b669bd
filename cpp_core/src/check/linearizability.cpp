// The semantic oracle (DESIGN §7, check 4): is the run's history of op invocations and
// responses linearizable against the sequential reference model (check/refmodel.hpp)?
//
// Checking the whole history at once is exponential, so it is cut into groups of
// pages whose contents can flow into each other (a file page and the process pages
// that map it, a page and the pages fork or mremap copy it to), and each group is
// checked on its own.  An op that touches several groups is checked in each: a
// linearization of the whole history projects onto one of every group, so a group
// with none proves the history has none (P-compositionality, Herlihy & Wing 1990).
//
// Only pages that some read or write observes are tracked, with the pages their
// content came from.  Each group is searched depth first over the orders that respect
// real time (Wing & Gong 1993), remembering the (progress, state) pairs already
// refuted (Lowe 2017).
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_set>

#include "check/history.hpp"
#include "check/refmodel.hpp"
#include "mmrace/mmr.hpp"

namespace mmrace::check {

using namespace ref;

namespace {

constexpr size_t kNodeBudget = 200'000;
// Past this many linked pages, or this many bytes of refuted states, a group is not
// searched (LinStats::gave_up): a state holds every page of its group, so the memo of
// a search over thousands of pages would take gigabytes before the node budget ran out.
// 256 MiB gives up no group the node budget alone did not (soak 20000 0 classic: 2, 0
// and 0 given up, as before; 64 MiB gave up 4, 0 and 1).
constexpr size_t kMaxTracked = 1u << 14;
constexpr size_t kMemoBytes = 256u << 20;

// The registry's row (mmrace/ops.hpp) says whether the reference model covers the op;
// its rule is in check/refmodel.cpp.
bool modelled(const Op& op) { return op_spec(op.kind).modelled; }

uint64_t proc(const HistOp& h) { return static_cast<uint64_t>(h.process); }

struct UnionFind {
    std::map<Key, Key> up;
    void add(Key k) { up.emplace(k, k); }
    Key find(Key k) {
        while (up.at(k) != k) k = up[k] = up.at(up.at(k));
        return k;
    }
    void unite(Key a, Key b) { up[find(a)] = find(b); }
};

// Where a page's content may have come from: a page of [first, first + len) in space
// `space` may hold what page src + min(page - first, last) of space `src_space` held
// (mremap moves a range, fork copies every page).
struct Inflow {
    uint64_t space, first, len, src_space, src, last;
    // The page whose content page k (a page of the range) may hold.
    Key source(Key k) const { return make_key(src_space, src + std::min(key_page(k) - first, last)); }
};

// Everything the grouping needs to know about the history as a whole.
class Partition {
public:
    explicit Partition(const History& h) : h_(h) {}
    // False when the program has something the reference model does not cover, or
    // when it links more pages than a search can hold (too_large()).
    bool build();
    bool too_large() const { return too_large_; }
    const Context& context() const { return ctx_; }
    // Group roots with their initial states and sub-op lists per thread.
    struct Group {
        State init;
        std::map<int, std::vector<SubOp>> threads;
        std::vector<Key> keys;
    };
    std::map<Key, Group>& groups() { return groups_; }

private:
    void process_facts();
    bool supported() const;
    std::optional<Inflow> inflow(const HistOp& o) const;
    std::vector<Inflow> inflows() const;
    bool track();
    void unite();
    void project();
    void init_states();
    std::vector<Key> op_pages(uint32_t i) const;
    // The process page a dma op reaches, or kNoKey if its pin never returned.
    Key dma_page(const HistOp& o) const;
    std::vector<Key> op_objs(uint32_t i) const;
    uint64_t object_pages(uint64_t obj) const;

    const History& h_;
    Context ctx_;
    std::set<Key> tracked_;  // process pages
    std::set<Key> objs_;     // object pages that a tracked page maps
    std::set<uint64_t> volatile_objs_;
    std::map<uint64_t, uint64_t> shmem_size_;  // shmem object -> pages
    UnionFind uf_;
    std::map<Key, Group> groups_;
    bool too_large_ = false;
};

bool Partition::supported() const {
    for (const auto& o : h_.ops) {
        if (!modelled(*o.op)) return false;
        const Op& op = *o.op;
        if (op.kind == OpKind::mremap && op.pages == 0) return false;  // duplicates a shared mapping
    }
    return true;
}

void Partition::process_facts() {
    size_t np = h_.program->processes.size();
    ctx_.nfiles = h_.program->files.size();
    const Config& cfg = h_.program->config;
    ctx_.populate_may_stop = cfg.folios != kDefaultFolios || cfg.pgtables != kDefaultPgtables;
    ctx_.stacky.assign(np, false);
    ctx_.stack_backed.assign(np, false);
    ctx_.parent.assign(np, -1);
    std::vector<std::set<uint64_t>> objs_of(np);
    for (const auto& proc : h_.program->processes)
        for (const auto& t : proc.threads)
            for (const auto& op : t.ops)
                if (op.kind == OpKind::uffd_serve) ctx_.uffd_values.push_back(op.value);
    // Handles: the k-th pin op in file order.
    std::map<const Op*, size_t> handle_of;
    for (const auto& proc : h_.program->processes)
        for (const auto& t : proc.threads)
            for (const auto& op : t.ops)
                if (op.kind == OpKind::pin) handle_of.emplace(&op, handle_of.size());
    ctx_.pin_ops.assign(handle_of.size(), nullptr);
    for (const auto& o : h_.ops)
        if (o.op->kind == OpKind::pin) ctx_.pin_ops.at(handle_of.at(o.op)) = &o;
    uint64_t a;
    for (uint32_t i = 0; i < h_.ops.size(); ++i) {
        const HistOp& o = h_.ops[i];
        const Op& op = *o.op;
        if (op.kind == OpKind::fork) ctx_.parent[op.process] = o.process;
        if (op.kind == OpKind::uffd_register && op.uffd_mode == UffdMode::missing && o.result == "0")
            ctx_.uffd_missing = true;
        if (op.kind == OpKind::uffd_register && op.uffd_mode == UffdMode::wp && o.result == "0")
            ctx_.uffd_wp = true;
        if (op.kind != OpKind::mmap || !result_addr(o, &a)) continue;
        uint64_t obj = mmap_object(ctx_, op, i);
        if (obj != kNoKey) objs_of[o.process].insert(obj);
        if (op.file < 0 && obj != kNoKey) shmem_size_[obj] = op.pages;
        if (op.flags & MAPF_GROWSDOWN) {
            ctx_.stacky[o.process] = true;
            // Its stack grows over object pages that no mmap named: writes are untracked.
            if (obj != kNoKey) {
                ctx_.stack_backed[o.process] = true;
                volatile_objs_.insert(obj);
            }
        }
    }
    // A child inherits what its parent could have mapped (parents fork before children
    // run, but not always in declaration order: iterate to a fixpoint).
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t p = 0; p < np; ++p) {
            int par = ctx_.parent[p];
            if (par < 0) continue;
            if (ctx_.stacky[par] && !ctx_.stacky[p]) ctx_.stacky[p] = changed = true;
            if (ctx_.stack_backed[par] && !ctx_.stack_backed[p]) ctx_.stack_backed[p] = changed = true;
            for (uint64_t ob : objs_of[par]) changed |= objs_of[p].insert(ob).second;
        }
    }
    // A mapping grown by mremap reaches object pages that no mmap named: writes through
    // it are untracked, so every object the process may map becomes volatile.
    for (const auto& o : h_.ops)
        if (o.op->kind == OpKind::mremap && o.op->new_pages > o.op->pages && result_addr(o, &a))
            volatile_objs_.insert(objs_of[o.process].begin(), objs_of[o.process].end());
}

// The inflow of op o: an mremap's (a failed MREMAP_FIXED may have unmapped its target)
// or a fork's; none for other ops.
std::optional<Inflow> Partition::inflow(const HistOp& o) const {
    const Op& op = *o.op;
    uint64_t a;
    if (op.kind == OpKind::mremap) {
        bool ok = result_addr(o, &a);
        if (!ok && !((op.flags & MREMAPF_FIXED) && op.to)) return std::nullopt;
        uint64_t na = (ok ? a : *op.to) >> 12;
        return Inflow{proc(o), na, ok ? op.new_pages : op.pages, proc(o), op.addr >> 12, op.pages - 1};
    }
    if (op.kind == OpKind::fork)
        return Inflow{static_cast<uint64_t>(op.process), 0, 1ull << 40, proc(o), 0, 1ull << 40};
    return std::nullopt;
}

std::vector<Inflow> Partition::inflows() const {
    std::vector<Inflow> in;
    for (const auto& o : h_.ops)
        if (auto f = inflow(o)) in.push_back(*f);
    return in;
}

// The observed pages, then the pages their content can come from: each page once
// through every inflow (a worklist; a fixpoint over the ops would take one pass per
// page of a chain, and an mremap onto an overlapping range makes chains as long as the
// range).  False past kMaxTracked pages: too large to search.
bool Partition::track() {
    std::vector<Key> work;
    auto add = [&](Key k) {
        if (tracked_.insert(k).second) work.push_back(k);
    };
    for (const auto& o : h_.ops) {
        OpKind kind = o.op->kind;
        if (kind == OpKind::read || kind == OpKind::write || kind == OpKind::peek || kind == OpKind::poke)
            add(make_key(proc(o), o.op->addr >> 12));
        if ((kind == OpKind::dma_read || kind == OpKind::dma_write) && dma_page(o) != kNoKey)
            add(dma_page(o));
    }
    const std::vector<Inflow> in = inflows();
    while (!work.empty()) {
        if (tracked_.size() > kMaxTracked) return false;
        Key k = work.back();
        work.pop_back();
        for (const Inflow& f : in) {
            uint64_t page = key_page(k);
            if (key_space(k) != f.space || page < f.first || page - f.first >= f.len) continue;
            add(f.source(k));
        }
    }
    return true;
}

void Partition::unite() {
    for (Key k : tracked_) uf_.add(k);
    uint64_t a;
    for (uint32_t i = 0; i < h_.ops.size(); ++i) {
        const HistOp& o = h_.ops[i];
        const Op& op = *o.op;
        uint64_t obj = op.kind == OpKind::mmap ? mmap_object(ctx_, op, i) : kNoKey;
        if (obj != kNoKey && result_addr(o, &a)) {
            uint64_t base = op.file >= 0 ? op.pgoff : 0;
            for (Key k : in_range(tracked_, proc(o), a >> 12, op.pages)) {
                Key ok = make_key(obj, base + key_page(k) - (a >> 12));
                if (objs_.insert(ok).second) uf_.add(ok);
                uf_.unite(k, ok);
            }
        } else if (auto f = inflow(o)) {
            for (Key k : in_range(tracked_, f->space, f->first, f->len)) uf_.unite(k, f->source(k));
        }
    }
}

Key Partition::dma_page(const HistOp& o) const { return ref::dma_page(ctx_, o); }

std::vector<Key> Partition::op_pages(uint32_t i) const { return ref::op_pages(ctx_, tracked_, h_.ops[i]); }

std::vector<Key> Partition::op_objs(uint32_t i) const {
    const Op& op = *h_.ops[i].op;
    if (op.kind != OpKind::file_write && op.kind != OpKind::truncate) return {};
    uint64_t f = static_cast<uint64_t>(op.file);
    uint64_t last = op.kind == OpKind::file_write ? op.page_offset() + 1 : (1ull << 40);
    std::vector<Key> v;
    return in_range(objs_, f, 0, last);
}

uint64_t Partition::object_pages(uint64_t obj) const {
    if (obj < ctx_.nfiles) return h_.program->files[obj].pages;
    return shmem_size_.at(obj);
}

void Partition::project() {
    for (uint32_t i = 0; i < h_.ops.size(); ++i) {
        std::map<Key, SubOp> per_group;
        for (Key k : op_pages(i)) per_group[uf_.find(k)].pages.push_back(k);
        for (Key k : op_objs(i)) per_group[uf_.find(k)].objs.push_back(k);
        const HistOp& o = h_.ops[i];
        for (auto& [root, x] : per_group) {
            x.h = &o;
            x.id = i;
            auto& list = groups_[root].threads[o.thread];
            if (windowed(*o.op)) {
                x.phase = SubOp::Phase::begin;
                list.push_back(x);
                if (populates(*o.op)) {
                    x.phase = SubOp::Phase::populate;
                    list.push_back(x);
                }
                x.phase = SubOp::Phase::end;
            }
            list.push_back(std::move(x));
        }
    }
}

void Partition::init_states() {
    for (Key k : tracked_) {
        auto it = groups_.find(uf_.find(k));
        if (it == groups_.end()) continue;
        it->second.init.pages[k] = Page{};
        it->second.keys.push_back(k);
    }
    for (Key k : objs_) {
        auto it = groups_.find(uf_.find(k));
        if (it == groups_.end()) continue;
        State& s = it->second.init;
        bool vol = volatile_objs_.count(key_space(k)) != 0;
        s.objs[k] = ObjPage{s.new_cell(vol ? kVolatile : kClean), key_page(k) < object_pages(key_space(k)), vol};
    }
}

bool Partition::build() {
    if (!supported()) return false;
    process_facts();
    if (!track()) {
        too_large_ = true;
        return false;
    }
    unite();
    project();
    init_states();
    return true;
}

// Depth-first search for a linearization of one group, with an explicit stack: a
// group of a long run has tens of thousands of ops.
class Search {
public:
    Search(const Context& ctx, Partition::Group& g, const std::function<bool()>& interrupted)
        : ctx_(ctx), interrupted_(interrupted) {
        for (auto& [t, list] : g.threads) {
            threads_.push_back(&list);
            total_ += list.size();
        }
        pos_.assign(threads_.size(), 0);
        budget_ = kNodeBudget + 8 * total_;
    }
    struct GiveUp {};
    struct Interrupted {};
    // True if some order works.  Throws GiveUp past the node budget.
    bool run(const State& init);
    size_t nodes() const { return nodes_; }
    size_t total() const { return total_; }
    // After a failed run: the sub-ops of the longest order found (each thread's first
    // `placed(t)`), and those that could go next after it, none of which fit.
    size_t placed(size_t t) const { return best_pos_.at(t); }
    std::vector<const SubOp*> stuck() const;
    const std::vector<SubOp>& thread_ops(size_t t) const { return *threads_[t]; }
    size_t thread_count() const { return threads_.size(); }

private:
    // A node: its state, the threads whose next op may go next, the successor states
    // of the one being tried.
    struct Frame {
        State s;
        std::vector<size_t> order;
        size_t oi = 0;
        std::vector<State> next;
        size_t ni = 0;
        size_t tried = SIZE_MAX;  // the thread whose op `next` came from
    };
    bool enter(State s);
    void note_progress(const Frame& f);
    const SubOp& next_op(size_t t) const { return (*threads_[t])[pos_[t]]; }

    const Context& ctx_;
    const std::function<bool()>& interrupted_;
    std::vector<const std::vector<SubOp>*> threads_;
    std::vector<uint32_t> pos_;
    size_t total_ = 0, done_ = 0, nodes_ = 0, budget_ = 0, memo_bytes_ = 0;
    std::vector<Frame> stack_;
    std::unordered_set<std::string> seen_;
    size_t best_done_ = 0;
    std::vector<uint32_t> best_pos_;
    std::vector<size_t> best_order_;
};

// Remembers the first node of the greatest progress.  If the search fails, no op of
// such a node's `order` had a successor state: one would have entered a deeper node
// (a refuted key at that depth would mean a deeper node was visited before).
void Search::note_progress(const Frame& f) {
    if (!best_pos_.empty() && done_ <= best_done_) return;
    best_done_ = done_;
    best_pos_ = pos_;
    best_order_ = f.order;
}

std::vector<const SubOp*> Search::stuck() const {
    std::vector<const SubOp*> v;
    for (size_t t : best_order_) v.push_back(&(*threads_[t])[best_pos_[t]]);
    return v;
}

// Pushes a node for state s at the current progress, unless it was refuted before.
bool Search::enter(State s) {
    if (++nodes_ > budget_) throw GiveUp{};
    if (interrupted_ && (nodes_ & 4095) == 0 && interrupted_()) throw Interrupted{};
    std::string key(reinterpret_cast<const char*>(pos_.data()), pos_.size() * sizeof(pos_[0]));
    s.serialize(key);
    memo_bytes_ += key.size();
    if (memo_bytes_ > kMemoBytes) throw GiveUp{};
    if (!seen_.insert(std::move(key)).second) return false;
    // Nothing invoked after the earliest pending response may go before it.
    uint64_t min_resp = UINT64_MAX;
    for (size_t t = 0; t < threads_.size(); ++t)
        if (pos_[t] < threads_[t]->size()) min_resp = std::min(min_resp, next_op(t).h->resp);
    Frame f{std::move(s), {}, 0, {}, 0, SIZE_MAX};
    for (size_t t = 0; t < threads_.size(); ++t)
        if (pos_[t] < threads_[t]->size() && next_op(t).h->inv <= min_resp) f.order.push_back(t);
    // Earliest response first: the order in which the ops returned usually works (a
    // window's begin too: until its end, accesses may still take the old view).
    std::sort(f.order.begin(), f.order.end(),
              [this](size_t a, size_t b) { return next_op(a).h->resp < next_op(b).h->resp; });
    note_progress(f);
    stack_.push_back(std::move(f));
    return true;
}

bool Search::run(const State& init) {
    if (total_ == 0) return true;
    enter(init);
    while (!stack_.empty()) {
        Frame& f = stack_.back();
        if (f.ni < f.next.size()) {
            State child = std::move(f.next[f.ni++]);
            if (done_ == total_) return true;
            enter(std::move(child));
            continue;
        }
        if (f.tried != SIZE_MAX) {  // every successor of that op failed
            --pos_[f.tried];
            --done_;
            f.tried = SIZE_MAX;
        }
        if (f.oi < f.order.size()) {
            size_t t = f.order[f.oi++];
            f.next.clear();
            f.ni = 0;
            apply(ctx_, f.s, next_op(t), f.next);
            ++pos_[t];
            ++done_;
            f.tried = t;
            continue;
        }
        stack_.pop_back();
    }
    return false;
}

std::string page_name(const History& h, Key k) {
    std::ostringstream s;
    s << h.program->processes.at(key_space(k)).name << " page 0x" << std::hex << (key_page(k) << 12);
    return s.str();
}

std::string group_pages(const History& h, const Partition::Group& g) {
    std::string s = page_name(h, g.keys.front());
    if (g.keys.size() > 1) s += " and " + std::to_string(g.keys.size() - 1) + " related page(s)";
    return s;
}

// The failing group's ops in invocation order, each marked by the longest order the
// search found: linearized (all its sub-ops placed), stuck (one of them could go next
// after that order and did not fit) or unreached.
LinHistory lin_history(const History& h, const Partition::Group& g, const Search& search) {
    std::map<const HistOp*, LinOp::Mark> mark;
    for (size_t t = 0; t < search.thread_count(); ++t) {
        const auto& list = search.thread_ops(t);
        for (size_t i = 0; i < list.size(); ++i) {
            auto it = mark.emplace(list[i].h, LinOp::Mark::linearized).first;
            if (i >= search.placed(t)) it->second = LinOp::Mark::unreached;
        }
    }
    for (const SubOp* x : search.stuck()) mark[x->h] = LinOp::Mark::stuck;
    LinHistory out;
    out.pages = group_pages(h, g);
    for (const auto& [o, m] : mark) {
        out.ops.push_back(LinOp{h.thread_names.at(o->thread), o->index, o->inv, o->resp, m});
        out.linearized += m == LinOp::Mark::linearized;
    }
    std::sort(out.ops.begin(), out.ops.end(), [](const LinOp& a, const LinOp& b) { return a.inv < b.inv; });
    return out;
}

std::string report(const History& h, const Partition::Group& g) {
    std::ostringstream s;
    s << "no order of these ops agrees with the sequential reference model, on "
      << group_pages(h, g) << ":";
    std::set<const HistOp*> ops;
    for (const auto& [t, list] : g.threads)
        for (const auto& x : list) ops.insert(x.h);
    std::vector<const HistOp*> sorted(ops.begin(), ops.end());
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->inv < b->inv; });
    size_t shown = 0;
    for (const HistOp* o : sorted) {
        if (++shown > 40) {
            s << "\n  ... " << sorted.size() - 40 << " more";
            break;
        }
        s << "\n  [" << o->inv << "," << o->resp << "] " << h.thread_names.at(o->thread) << "["
          << o->index << "] " << print_op(*h.program, *o->op) << " -> " << o->result;
    }
    return s.str();
}

}  // namespace


std::string check_linearizable(const History& h, LinStats* stats,
                               const std::function<bool()>& interrupted, LinHistory* failing) {
    LinStats local;
    LinStats& st = stats ? *stats : local;
    Partition part(h);
    if (!part.build()) {
        if (part.too_large()) ++st.gave_up;
        else st.skipped = true;
        return "";
    }
    for (auto& [root, g] : part.groups()) {
        if (g.keys.empty()) continue;  // only object pages: nothing observes them
        Search search(part.context(), g, interrupted);
        ++st.groups;
        st.subops += search.total();
        try {
            bool ok = search.run(g.init);
            st.nodes += search.nodes();
            if (!ok) {
                if (failing) *failing = lin_history(h, g, search);
                return report(h, g);
            }
        } catch (const Search::GiveUp&) {
            st.nodes += search.nodes();
            ++st.gave_up;
        } catch (const Search::Interrupted&) {
            st.interrupted = true;
            return "";
        }
    }
    return "";
}

}  // namespace mmrace::check
