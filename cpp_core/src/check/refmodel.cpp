#include "check/refmodel.hpp"

#include <algorithm>
#include <charconv>

namespace mmrace::check::ref {

namespace {

constexpr uint64_t kPageShift = 12;

bool parse_u64(const std::string& s, uint64_t* v, int base) {
    const char* b = s.data();
    const char* e = b + s.size();
    if (base == 16) {
        if (s.size() < 3 || s[0] != '0' || s[1] != 'x') return false;
        b += 2;
    }
    auto r = std::from_chars(b, e, *v, base);
    return r.ec == std::errc() && r.ptr == e && b != e;
}

uint64_t page_of(uint64_t addr) { return addr >> kPageShift; }

void set_unknown(State& t, Page& p);

// Makes `nv` the page's current view.  For a windowed op's begin the old view stays
// reachable through stale TLB entries until the op's end.
void change(State& t, Key k, const View& nv, const SubOp& x) {
    Page& p = t.pages.at(k);
    if (x.phase == SubOp::Phase::begin) {
        bool eof = p.cur.obj == kNoKey || t.objs.at(p.cur.obj).in_eof;
        p.stale.push_back(Stale{p.cur, eof, x.id});
    }
    p.cur = nv;
    if (nv.kind == View::unknown) set_unknown(t, p);
}

// An Unknown view may be backed by any object page of the group and write it: every
// object page here becomes volatile, and the page's stale views unknown too.
void set_unknown(State& t, Page& p) {
    for (auto& s : p.stale) s.v = View{View::unknown};
    for (auto& [key, o] : t.objs) {
        o.is_volatile = true;
        t.cells[o.cell].taint = kVolatile;
    }
    for (auto& [key, pg] : t.pages) {
        for (auto& s : pg.stale)
            if (s.v.obj != kNoKey && s.v.backing >= 0) t.cells[s.v.backing].taint = kVolatile;
    }
}

int32_t copy_cell(State& t, int32_t from) {
    int32_t c = t.new_cell(kClean);
    if (from >= 0) {
        t.cells[c].words = t.cells[from].words;
        t.cells[c].taint = t.cells[from].taint == kClean ? kClean : kBaseUnknown;
    }
    return c;
}

// The view a new mapping gives page `page` of [start, start + n) made by mmap op x.
View mmap_view(const Context& ctx, const State& t, const Op& op, uint32_t id, uint64_t start,
               uint64_t page) {
    View v{View::mapped, op.prot, true, (op.flags & MAPF_SHARED) != 0};
    uint64_t obj = mmap_object(ctx, op, id);
    if (obj == kNoKey) return v;
    uint64_t base = op.file >= 0 ? op.pgoff : 0;
    v.obj = make_key(obj, base + (page - start));
    auto it = t.objs.find(v.obj);
    if (it == t.objs.end()) return View{View::unknown};
    v.backing = it->second.cell;
    return v;
}

// --- user accesses -------------------------------------------------------------------

bool read_view(const State& t, const View& v, uint32_t w, uint64_t* val) {
    int32_t c = v.shared ? v.backing : (v.anon >= 0 ? v.anon : v.backing);
    if (c < 0) {
        *val = 0;
        return true;
    }
    return t.cells[c].read(w, val);
}

void write_view(State& t, View& v, uint32_t w, uint64_t val) {
    if (v.shared) {
        t.cells[v.backing].write(w, val);
        return;
    }
    if (v.anon < 0) v.anon = copy_cell(t, v.obj == kNoKey ? -1 : v.backing);  // COW
    t.cells[v.anon].write(w, val);
}

// Whether an access through view v (inside EOF or not) may have given result r;
// applies its effect to t.  `may_grow`: the process may have grown a stack over it.
enum class Grow : uint8_t { no, anon, backed };

// An access to a hole: false if the process may not have grown a stack over it;
// otherwise v becomes what the stack made of it.
bool stack_grew_over(View& v, Grow grow) {
    if (grow == Grow::no) return false;
    if (grow == Grow::backed) {  // a file or shmem stack grew here: anything
        v = View{View::unknown};
        return true;
    }
    // expand_downwards covered this page: zero-filled anonymous memory with the
    // stack's protection, which the oracle does not know.
    v = View{View::mapped, 0, false};
    return true;
}

// The word an access that succeeded moved: a write stores op.value (result "ok"), a
// read must return what the view holds (when it is known).
bool access_word(State& t, View& v, const Op& op, bool write, const std::string& r) {
    uint32_t w = static_cast<uint32_t>((op.addr & 4095) >> 3);
    if (write) {
        if (r != "ok") return false;
        write_view(t, v, w, op.value);
        return true;
    }
    uint64_t got = 0, want = 0;
    if (!parse_u64(r, &got, 10)) return false;
    return !read_view(t, v, w, &want) || want == got;
}

bool access_view(State& t, View& v, bool in_eof, Grow grow, const Op& op, const std::string& r) {
    bool write = op.kind == OpKind::write;
    if (v.kind == View::unknown) return true;
    if (v.kind == View::unmapped) {
        if (r == "SIGSEGV") return true;
        if (!stack_grew_over(v, grow)) return false;
        if (v.kind == View::unknown) return true;
    }
    bool allowed = write ? (v.prot & PROT_WRITE_) : (v.prot & (PROT_READ_ | PROT_WRITE_ | PROT_EXEC_));
    // VM_FAULT_OOM (a pool bounded by config ran out): the VMA allowed the access and
    // nothing changed.  Even past EOF: do_cow_fault allocates before it looks.
    if (r == "OOM") return allowed || !v.prot_known;
    if (r == "SIGSEGV") return !allowed || !v.prot_known;
    if (v.prot_known && !allowed) return false;
    if (v.obj != kNoKey && !in_eof) return r == "SIGBUS";
    if (r == "SIGBUS") return false;
    return access_word(t, v, op, write, r);
}

// Private anonymous memory: what userfaultfd registers in the model.
bool private_anon(const View& v) { return v.kind == View::mapped && !v.shared && v.obj == kNoKey; }

// Private anonymous memory in a program with a MISSING registration: a fault on it may
// be a userfault (the oracle does not follow which pages are registered or filled).
bool uffd_may_miss(const Context& ctx, const View& v) { return ctx.uffd_missing && private_anon(v); }

// A read (or peek) of such memory that returned the value a uffd handler copies in.
bool uffd_filled(const Context& ctx, const View& v, const Op& op, const std::string& r) {
    uint64_t got = 0;
    bool forced = op.kind == OpKind::peek;  // FOLL_FORCE reads any mapping
    if ((op.kind != OpKind::read && !forced) || !parse_u64(r, &got, 10) || !uffd_may_miss(ctx, v))
        return false;
    if (!forced && v.prot_known && !(v.prot & (PROT_READ_ | PROT_WRITE_ | PROT_EXEC_))) return false;
    return std::find(ctx.uffd_values.begin(), ctx.uffd_values.end(), got) != ctx.uffd_values.end();
}

// peek / poke (access_remote_vm with FOLL_FORCE): like a read or write, but any mapping
// may be read (VM_MAYREAD) and a private one written without PROT_WRITE (COW); every
// failure is EIO.  A hole below a stack may grow it (expand_stack).  EIO also when a
// bounded pool ran out (-ENOMEM from the fault).
bool force_access_view(const Context& ctx, State& t, View& v, bool in_eof, Grow grow, const Op& op,
                       const std::string& r) {
    bool write = op.kind == OpKind::poke;
    if (v.kind == View::unknown) return true;
    if (v.kind == View::unmapped) {
        if (r == "EIO") return true;
        if (!stack_grew_over(v, grow)) return false;
        if (v.kind == View::unknown) return true;
    }
    bool allowed = !write || (v.prot & PROT_WRITE_) || !v.shared;
    // __access_remote_vm passes no `locked`: a userfault there cannot drop mmap_lock and
    // handle_userfault returns VM_FAULT_SIGBUS, so the access fails.
    // A poke into a uffd-wp protected page fails for the same reason.
    bool uffd_wp = write && ctx.uffd_wp && private_anon(v);
    if (r == "EIO")
        return !allowed || !v.prot_known || (v.obj != kNoKey && !in_eof) || ctx.populate_may_stop ||
               uffd_may_miss(ctx, v) || uffd_wp;
    if (v.prot_known && !allowed) return false;
    if (v.obj != kNoKey && !in_eof) return false;
    return access_word(t, v, op, write, r);
}

void do_access(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out) {
    Key k = x.pages.at(0);
    const Page& pg = s.pages.at(k);
    size_t p = static_cast<size_t>(x.h->process);
    Grow grow = ctx.stack_backed[p] ? Grow::backed : ctx.stacky[p] ? Grow::anon : Grow::no;
    bool forced = x.h->op->kind == OpKind::peek || x.h->op->kind == OpKind::poke;
    for (int vi = -1; vi < static_cast<int>(pg.stale.size()); ++vi) {
        State t = s;
        Page& tp = t.pages.at(k);
        bool ok;
        if (vi < 0) {
            View& v = tp.cur;
            bool was_unknown = v.kind == View::unknown;
            bool eof = v.obj == kNoKey || t.objs.at(v.obj).in_eof;
            ok = (forced ? force_access_view(ctx, t, v, eof, grow, *x.h->op, x.h->result)
                         : access_view(t, v, eof, grow, *x.h->op, x.h->result)) ||
                 uffd_filled(ctx, v, *x.h->op, x.h->result);
            if (ok && !was_unknown && v.kind == View::unknown) set_unknown(t, tp);
        } else {
            Stale& st = tp.stale[vi];
            ok = (forced ? force_access_view(ctx, t, st.v, st.in_eof, Grow::no, *x.h->op, x.h->result)
                         : access_view(t, st.v, st.in_eof, Grow::no, *x.h->op, x.h->result)) ||
                 uffd_filled(ctx, st.v, *x.h->op, x.h->result);
        }
        if (ok) out.push_back(std::move(t));
    }
}

// --- mapping changes -------------------------------------------------------------------

// For an error whose effect may stop part way (mprotect, madvise walk the range in
// address order): every prefix of the pages may have been changed.
template <class F>
void prefixes(const State& s, const SubOp& x, F change_one, std::vector<State>& out) {
    for (size_t j = 0; j <= x.pages.size(); ++j) {
        State t = s;
        bool ok = true;
        for (size_t i = 0; i < j && ok; ++i) ok = change_one(t, x.pages[i]);
        if (ok) out.push_back(std::move(t));
    }
}

void do_mmap(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out) {
    const Op& op = *x.h->op;
    uint64_t a = 0;
    if (!result_addr(*x.h, &a)) {
        out.push_back(s);
        // A failed MAP_FIXED may have unmapped the old range first.
        if ((op.flags & MAPF_FIXED) && !x.pages.empty()) {
            State t = s;
            for (Key k : x.pages) change(t, k, View{}, x);
            out.push_back(std::move(t));
        }
        return;
    }
    State t = s;
    for (Key k : x.pages) change(t, k, mmap_view(ctx, t, op, x.id, page_of(a), key_page(k)), x);
    out.push_back(std::move(t));
}

// __mm_populate, after mmap dropped its write lock: a write fault on every page of a
// private writable mapping (populate_vma_page_range), which copies a file page now.
// It faults whatever is mapped there by then, so it is a step of its own.  When the
// pools are bounded a fault may fail (and populate skip the rest of the VMA, or, with
// concurrent changes, go on in the next one), so each page is copied or not: every
// combination, or, past kMaxChoices pages in one group, an unknown page.
void do_populate(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out) {
    constexpr size_t kMaxChoices = 8;
    uint64_t a;
    if (!result_addr(*x.h, &a)) return out.push_back(s);  // nothing mapped, nothing populated
    auto copies = [&](const State& t, Key k) {
        const View& v = t.pages.at(k).cur;
        if (v.kind != View::mapped || v.shared || !(v.prot & PROT_WRITE_) || !v.prot_known) return false;
        return v.obj != kNoKey && v.anon < 0 && t.objs.at(v.obj).in_eof;
    };
    std::vector<Key> copied;
    for (Key k : x.pages)
        if (copies(s, k)) copied.push_back(k);
    std::vector<State> states{s};
    for (Key k : copied) {
        if (!ctx.populate_may_stop) {
            View& v = states[0].pages.at(k).cur;
            v.anon = copy_cell(states[0], v.backing);
            continue;
        }
        if (copied.size() > kMaxChoices) {
            for (State& t : states) change(t, k, View{View::unknown}, x);
            continue;
        }
        for (size_t i = 0, n = states.size(); i < n; ++i) {
            State t = states[i];  // this one keeps the page unfaulted
            View& v = t.pages.at(k).cur;
            v.anon = copy_cell(t, v.backing);
            states.push_back(std::move(t));
        }
    }
    for (State& t : states) out.push_back(std::move(t));
}

void do_munmap(const State& s, const SubOp& x, std::vector<State>& out) {
    State t = s;
    if (x.h->result == "0")
        for (Key k : x.pages) change(t, k, View{}, x);
    out.push_back(std::move(t));
}

void do_mprotect(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out) {
    const Op& op = *x.h->op;
    bool stacky = ctx.stacky[x.h->process];
    bool success = x.h->result == "0";
    auto one = [&](State& t, Key k) {
        View v = t.pages.at(k).cur;
        if (v.kind == View::unknown) return true;
        if (v.kind == View::unmapped) {
            if (!success) return true;
            if (!stacky) return false;  // success means the page was mapped
            v = View{View::mapped};     // a stack page that grew without an access here
        }
        v.prot = op.prot;
        v.prot_known = true;
        change(t, k, v, x);
        return true;
    };
    if (success) {
        State t = s;
        for (Key k : x.pages)
            if (!one(t, k)) return;
        out.push_back(std::move(t));
    } else if (x.h->result == "EINVAL") {
        out.push_back(s);
    } else {
        prefixes(s, x, one, out);
    }
}

// MADV_DONTNEED (zap_page_range_single): private pages lose their copy; shared pages
// keep their content in the object.
void do_madvise(const State& s, const SubOp& x, std::vector<State>& out) {
    const std::string& r = x.h->result;
    auto one = [&](State& t, Key k) {
        View v = t.pages.at(k).cur;
        if (v.kind != View::mapped || v.shared) return true;
        v.anon = -1;
        change(t, k, v, x);
        return true;
    };
    if (r == "EINVAL") {
        out.push_back(s);
    } else if (r == "0" || r == "ENOMEM") {  // a hole does not stop the walk
        State t = s;
        for (Key k : x.pages) one(t, k);
        out.push_back(std::move(t));
    } else {
        prefixes(s, x, one, out);
    }
}

// The view of page k (k >= n) of a mapping grown from [old, old + n): the last page's
// mapping, extended.
View grown_view(const State& t, const View& last, uint64_t delta) {
    if (last.kind != View::mapped) return View{View::unknown};
    View v = last;
    v.anon = -1;
    if (last.obj == kNoKey) return v;
    v.obj = last.obj + delta;
    auto it = t.objs.find(v.obj);
    if (it == t.objs.end()) return View{View::unknown};
    v.backing = it->second.cell;
    return v;
}

bool has(const std::vector<Key>& v, Key k) { return std::binary_search(v.begin(), v.end(), k); }

void do_mremap(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out) {
    const Op& op = *x.h->op;
    bool stacky = ctx.stacky[x.h->process];
    uint64_t proc = static_cast<uint64_t>(x.h->process);
    uint64_t old = page_of(op.addr), n = op.pages, m = op.new_pages, a = 0;
    if (!result_addr(*x.h, &a)) {
        out.push_back(s);
        if (!(op.flags & MREMAPF_FIXED)) return;
        // A fixed move may have stopped after some of its VMAs moved.
        State t = s;
        for (Key k : x.pages) change(t, k, View{View::unknown}, x);
        out.push_back(std::move(t));
        return;
    }
    uint64_t na = page_of(a);
    State t = s;
    std::vector<std::pair<Key, View>> moved;  // computed before anything changes
    for (uint64_t k = 0; k < m; ++k) {
        Key dst = make_key(proc, na + k);
        if (!has(x.pages, dst)) continue;
        Key src = make_key(proc, old + std::min(k, n - 1));
        auto it = t.pages.find(src);
        View v = it == t.pages.end() ? View{View::unknown} : it->second.cur;
        if (k >= n) v = grown_view(t, v, k - n + 1);
        else if (v.kind == View::unmapped && na != old) {
            // A gap keeps the old mapping there, unless it was a stack that grew
            // without the oracle seeing it (a failed access grows it too): either.
            if (!stacky) continue;
            v = View{View::unknown};
        }
        moved.emplace_back(dst, v);
    }
    for (uint64_t k = 0; k < n; ++k) {
        Key src = make_key(proc, old + k);
        if (has(x.pages, src) && (na != old || k >= m)) change(t, src, View{}, x);
    }
    for (auto& [dst, v] : moved) change(t, dst, v, x);
    out.push_back(std::move(t));
}

// dup_mmap: the child's pages start as the parent's, private copies duplicated.
void do_fork(const State& s, const SubOp& x, std::vector<State>& out) {
    State t = s;
    uint64_t child = static_cast<uint64_t>(x.h->op->process);
    uint64_t parent = static_cast<uint64_t>(x.h->process);
    for (Key k : x.pages) {
        if (key_space(k) != child) continue;
        auto it = t.pages.find(make_key(parent, key_page(k)));
        View v = it == t.pages.end() ? View{View::unknown} : it->second.cur;
        if (v.kind == View::mapped && !v.shared && v.anon >= 0) v.anon = copy_cell(t, v.anon);
        Page& p = t.pages.at(k);
        p.stale.clear();
        p.cur = v;
        if (v.kind == View::unknown) set_unknown(t, p);
    }
    out.push_back(std::move(t));
}

// write(2) of word 0 of page `page_offset()`: the page cache changes, i_size grows.  One
// that got no page-cache folio (ENOMEM: write_begin failed) changed nothing.
void do_file_write(const State& s, const SubOp& x, std::vector<State>& out) {
    const Op& op = *x.h->op;
    State t = s;
    if (x.h->result != "ok") {
        out.push_back(std::move(t));
        return;
    }
    for (Key k : x.objs) {
        ObjPage& o = t.objs.at(k);
        if (key_page(k) <= op.page_offset()) o.in_eof = true;
        if (key_page(k) == op.page_offset()) t.cells[o.cell].write(0, op.value);
    }
    out.push_back(std::move(t));
}

// truncate: pages past the new end leave the page cache (their content is gone) and
// every mapping of them, private copies too (unmap_mapping_range with even_cows).
void do_truncate(const State& s, const SubOp& x, std::vector<State>& out) {
    const Op& op = *x.h->op;
    State t = s;
    for (Key k : x.objs) {
        ObjPage& o = t.objs.at(k);
        bool inside = key_page(k) < op.pages;
        if (!inside) {
            int32_t fresh = t.new_cell(o.is_volatile ? kVolatile : kClean);
            for (auto& [pk, pg] : t.pages) {
                if (pg.cur.kind != View::mapped || pg.cur.obj != k) continue;
                View v = pg.cur;
                v.backing = fresh;
                v.anon = -1;
                change(t, pk, v, x);
            }
            t.objs.at(k).cell = fresh;
        }
        t.objs.at(k).in_eof = inside;
    }
    out.push_back(std::move(t));
}

// --- GUP and pins ------------------------------------------------------------------

// The COW a FOLL_WRITE GUP (or a R/O long-term pin's unshare) does on a private page:
// the process gets its own copy of what it saw.  True if the page was mapped.
bool gup_cow(State& t, Key k) {
    View& v = t.pages.at(k).cur;
    if (v.kind != View::mapped || v.shared) return v.kind == View::mapped;
    if (v.obj != kNoKey && !t.objs.at(v.obj).in_eof) return true;
    if (v.anon < 0) v.anon = copy_cell(t, v.obj == kNoKey ? -1 : v.backing);
    return true;
}

// `gup`: with FOLL_WRITE the pages it got were COWed; the references are dropped.
void do_gup(const State& s, const SubOp& x, std::vector<State>& out) {
    const Op& op = *x.h->op;
    uint64_t got = 0;
    State t = s;
    if ((op.flags & GUPF_WRITE) && parse_u64(x.h->result, &got, 10))
        for (Key k : x.pages)
            if (key_page(k) < (op.addr >> 12) + got) gup_cow(t, k);
    out.push_back(std::move(t));
}

// What the device reaches through pinned page k once the pin's faults are done.
DevPage pin_target(State& t, Key k, const Op& op, int process) {
    DevPage d{-1, false, (op.flags & GUPF_WRITE) != 0, process};
    View& v = t.pages.at(k).cur;
    bool eof = v.obj == kNoKey || t.objs.at(v.obj).in_eof;
    if (v.kind != View::mapped || !eof) {
        d.unknown = true;

    } else if (v.shared) {
        d.cell = v.backing;
    } else if ((op.flags & (GUPF_WRITE | GUPF_LONGTERM)) || v.anon >= 0) {
        gup_cow(t, k);  // write fault, or unshare: an exclusive anonymous page
        d.cell = v.anon;
    } else {
        // A R/O short-term pin of a page the process never wrote pins whatever is
        // mapped: the zero page, the page-cache page, or an anonymous page a populate
        // or write GUP allocated.  The oracle does not know which.
        d.unknown = true;
    }
    return d;
}

void do_pin(const State& s, const SubOp& x, std::vector<State>& out) {
    const Op& op = *x.h->op;
    bool cows = op.flags & (GUPF_WRITE | GUPF_LONGTERM);
    if (x.h->result.empty() || x.h->result[0] != 'H') {
        // Released at once; the faults of the pages it walked (in address order) stay.
        if (!cows) return out.push_back(s);
        return prefixes(s, x, [](State& t, Key k) { return gup_cow(t, k), true; }, out);
    }
    int handle = std::stoi(x.h->result.substr(1));
    State t = s;
    for (Key k : x.pages) t.dev[dev_key(handle, key_page(k) - (op.addr >> 12))] = pin_target(t, k, op, x.h->process);
    out.push_back(std::move(t));
}

// The pinned start's offset in its page: dma offsets count from there.
uint64_t pin_addr_offset(const Context& ctx, const SubOp& x) {
    return ctx.pin_ops.at(static_cast<size_t>(x.h->op->handle))->op->addr & 4095;
}

// The pinned page a dma op reaches (x.pages[0]), as a dev_key.
uint64_t dma_key(const Context& ctx, const SubOp& x) {
    const HistOp* pin = ctx.pin_ops.at(static_cast<size_t>(x.h->op->handle));
    return dev_key(x.h->op->handle, key_page(x.pages.at(0)) - (pin->op->addr >> 12));
}

void do_dma(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out) {
    const Op& op = *x.h->op;
    const std::string& r = x.h->result;
    const HistOp* pin = ctx.pin_ops.at(static_cast<size_t>(op.handle));
    if (!pin) {  // the pin op never ran
        if (r == "EINVAL") out.push_back(s);
        return;
    }
    // As for unpin: before the pin op returned, the device has no handle yet.
    if (r == "EINVAL" && x.h->inv < pin->resp) return out.push_back(s);
    auto it = s.dev.find(dma_key(ctx, x));
    if (it == s.dev.end()) {
        if (r == "EINVAL") out.push_back(s);
        return;
    }
    const DevPage& d = it->second;
    if (r == "EINVAL") {  // the pinning process exited and its pins went with it
        if (d.process != x.h->process) out.push_back(s);
        return;
    }
    uint32_t w = static_cast<uint32_t>(((pin_addr_offset(ctx, x) + op.offset) & 4095) >> 3);
    if (op.kind == OpKind::dma_write) {
        if (!d.write) {
            if (r == "EACCES") out.push_back(s);
            return;
        }
        if (r != "ok") return;
        State t = s;
        if (d.unknown) {
            for (auto& [key, o] : t.objs) {  // it may be any page-cache page here
                o.is_volatile = true;
                t.cells[o.cell].taint = kVolatile;
            }
        } else if (d.cell >= 0) {
            t.cells[d.cell].write(w, op.value);
        }
        return out.push_back(std::move(t));
    }
    uint64_t got = 0, want = 0;
    if (!parse_u64(r, &got, 10)) return;
    // A pin's fault may have been a userfault: the page then holds the handler's value
    // where the oracle has zero (a read of the process's own view is uffd_filled).
    bool uffd = d.cell >= 0 && ctx.uffd_missing &&
                std::find(ctx.uffd_values.begin(), ctx.uffd_values.end(), got) != ctx.uffd_values.end();
    if (d.unknown || (d.cell >= 0 && !s.cells[d.cell].read(w, &want)) || want == got || uffd)
        out.push_back(s);
}

void do_unpin(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out) {
    int handle = x.h->op->handle;
    const HistOp* pin = ctx.pin_ops.at(static_cast<size_t>(handle));
    // The handle exists once the pin op returns, though its pages were chosen earlier:
    // an unpin invoked before that may find no handle, wherever the pin linearizes.
    // A pin op that never ran (its thread exited first) never made the handle.
    if (!pin) {
        if (x.h->result == "EINVAL") out.push_back(s);
        return;
    }
    if (x.h->result == "EINVAL" && x.h->inv < pin->resp) out.push_back(s);
    State t = s;
    bool held = false, foreign = false;
    for (Key k : x.pages) {
        auto it = t.dev.find(dev_key(handle, key_page(k) - (pin->op->addr >> 12)));
        if (it == t.dev.end()) continue;
        held = true;
        foreign = it->second.process != x.h->process;
        t.dev.erase(it);
    }
    if (x.h->result == "0" ? held : (!held || foreign)) out.push_back(std::move(t));
}

void end_window(const State& s, const SubOp& x, std::vector<State>& out) {
    State t = s;
    for (auto& [k, p] : t.pages)
        std::erase_if(p.stale, [&](const Stale& st) { return st.until == x.id; });
    out.push_back(std::move(t));
}

}  // namespace

bool result_addr(const HistOp& h, uint64_t* a) { return parse_u64(h.result, a, 16); }

uint64_t mmap_object(const Context& ctx, const Op& op, uint32_t id) {
    if (op.file >= 0) return static_cast<uint64_t>(op.file);
    if (op.flags & MAPF_SHARED) return ctx.nfiles + id;
    return kNoKey;
}

bool Cell::read(uint32_t w, uint64_t* v) const {
    if (taint == kVolatile) return false;
    auto it = std::lower_bound(words.begin(), words.end(), std::make_pair(w, uint64_t{0}));
    if (it != words.end() && it->first == w) {
        *v = it->second;
        return true;
    }
    *v = 0;
    return taint == kClean;
}

void Cell::write(uint32_t w, uint64_t v) {
    if (taint == kVolatile) return;
    auto it = std::lower_bound(words.begin(), words.end(), std::make_pair(w, uint64_t{0}));
    bool present = it != words.end() && it->first == w;
    if (v == 0 && taint == kClean) {  // clean cells keep only nonzero words: canonical
        if (present) words.erase(it);
    } else if (present) {
        it->second = v;
    } else {
        words.insert(it, {w, v});
    }
}

int32_t State::new_cell(uint8_t taint) {
    cells.push_back(Cell{{}, taint});
    return static_cast<int32_t>(cells.size() - 1);
}

void State::serialize(std::string& out) const {
    std::vector<int32_t> renum(cells.size(), -1);
    int32_t next = 0;
    auto put = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
    auto cell = [&](int32_t c) {
        if (c < 0) {
            put(&c, sizeof c);
            return;
        }
        if (renum[c] >= 0) {
            put(&renum[c], sizeof renum[c]);
            return;
        }
        renum[c] = next++;
        int32_t fresh = -2;
        put(&fresh, sizeof fresh);
        put(&cells[c].taint, 1);
        uint32_t n = static_cast<uint32_t>(cells[c].words.size());
        put(&n, sizeof n);
        put(cells[c].words.data(), n * sizeof cells[c].words[0]);
    };
    auto view = [&](const View& v) {
        uint8_t b[4] = {v.kind, v.prot, v.prot_known, v.shared};
        put(b, sizeof b);
        put(&v.obj, sizeof v.obj);
        cell(v.backing);
        cell(v.anon);
    };
    for (const auto& [k, o] : objs) {
        put(&k, sizeof k);
        uint8_t b[2] = {o.in_eof, o.is_volatile};
        put(b, sizeof b);
        cell(o.cell);
    }
    for (const auto& [k, d] : dev) {
        put(&k, sizeof k);
        uint8_t b[2] = {d.unknown, d.write};
        put(b, sizeof b);
        put(&d.process, sizeof d.process);
        cell(d.cell);
    }
    for (const auto& [k, p] : pages) {
        put(&k, sizeof k);
        view(p.cur);
        uint32_t n = static_cast<uint32_t>(p.stale.size());
        put(&n, sizeof n);
        for (const auto& st : p.stale) {
            view(st.v);
            put(&st.in_eof, 1);
            put(&st.until, sizeof st.until);
        }
    }
}

std::vector<Key> in_range(const std::set<Key>& set, uint64_t p, uint64_t first, uint64_t n) {
    constexpr uint64_t kSpace = 1ull << 40;
    uint64_t end = std::min(first + std::min(n, kSpace), kSpace);
    std::vector<Key> out;
    for (auto it = set.lower_bound(make_key(p, first)); it != set.end() && *it < (p << 40) + end; ++it)
        out.push_back(*it);
    return out;
}

namespace {

uint64_t proc(const HistOp& h) { return static_cast<uint64_t>(h.process); }

// Whether madvise with this advice can change what a process reads.  Only DONTNEED
// does (a private page reads zero, or the file again).  PAGEOUT and COLD move folios
// between the LRU lists, swap and the page cache without changing their content
// (MADV_COLD: madvise_cold_or_pageout_pte_range deactivates them, nothing more);
// HUGEPAGE and NOHUGEPAGE change VMA flags; COLLAPSE copies pages into a THP.
bool advice_changes_content(Advice a) {
    switch (a) {
        case Advice::dontneed: return true;
        case Advice::pageout:
        case Advice::cold:
        case Advice::hugepage:
        case Advice::nohugepage:
        case Advice::collapse: return false;
    }
    return true;
}

}  // namespace

Key dma_page(const Context& ctx, const HistOp& o) {
    const HistOp* pin = ctx.pin_ops.at(static_cast<size_t>(o.op->handle));
    if (!pin) return kNoKey;
    return make_key(proc(*pin), (pin->op->addr + o.op->offset) >> 12);
}

std::vector<Key> op_pages(const Context& ctx, const std::set<Key>& tracked, const HistOp& o) {
    const Op& op = *o.op;
    uint64_t a;
    switch (op.kind) {
        case OpKind::read:
        case OpKind::write:
        case OpKind::peek:
        case OpKind::poke: return {make_key(proc(o), op.addr >> 12)};
        case OpKind::gup:
        case OpKind::pin: return in_range(tracked, proc(o), op.addr >> 12, op.pages);
        case OpKind::unpin: {
            const HistOp* pin = ctx.pin_ops.at(static_cast<size_t>(op.handle));
            if (!pin) return {};
            return in_range(tracked, proc(*pin), pin->op->addr >> 12, pin->op->pages);
        }
        case OpKind::dma_read:
        case OpKind::dma_write: {
            Key k = dma_page(ctx, o);
            if (k == kNoKey) return {};
            return {k};
        }
        case OpKind::mmap:
            if (result_addr(o, &a)) return in_range(tracked, proc(o), a >> 12, op.pages);
            if (op.flags & MAPF_FIXED) return in_range(tracked, proc(o), op.addr >> 12, op.pages);
            return {};
        case OpKind::munmap:
        case OpKind::mprotect: return in_range(tracked, proc(o), op.addr >> 12, op.pages);
        case OpKind::madvise:
            if (!advice_changes_content(op.advice)) return {};
            return in_range(tracked, proc(o), op.addr >> 12, op.pages);
        case OpKind::mremap: {
            std::vector<Key> v = in_range(tracked, proc(o), op.addr >> 12, op.pages);
            std::vector<Key> dst;
            if (result_addr(o, &a)) dst = in_range(tracked, proc(o), a >> 12, op.new_pages);
            else if ((op.flags & MREMAPF_FIXED) && op.to)
                dst = in_range(tracked, proc(o), *op.to >> 12, op.new_pages);
            v.insert(v.end(), dst.begin(), dst.end());
            std::sort(v.begin(), v.end());
            v.erase(std::unique(v.begin(), v.end()), v.end());
            return v;
        }
        case OpKind::fork: {
            std::vector<Key> v;
            for (Key k : in_range(tracked, static_cast<uint64_t>(op.process), 0, 1ull << 40)) {
                v.push_back(k);
                v.push_back(make_key(proc(o), key_page(k)));
            }
            std::sort(v.begin(), v.end());
            return v;
        }
        default: return {};
    }
}

bool populates(const Op& op) { return op.kind == OpKind::mmap && (op.flags & MAPF_POPULATE); }

bool windowed(const Op& op) {
    switch (op.kind) {
        case OpKind::mmap: return (op.flags & (MAPF_FIXED | MAPF_POPULATE)) != 0;
        case OpKind::munmap:
        case OpKind::mprotect:
        case OpKind::madvise:
        case OpKind::mremap:
        case OpKind::truncate: return true;
        default: return false;
    }
}

void apply(const Context& ctx, const State& s, const SubOp& x, std::vector<State>& out) {
    if (x.phase == SubOp::Phase::end) return end_window(s, x, out);
    if (x.phase == SubOp::Phase::populate) return do_populate(ctx, s, x, out);
    switch (x.h->op->kind) {
        case OpKind::read:
        case OpKind::write:
        case OpKind::peek:
        case OpKind::poke: return do_access(ctx, s, x, out);
        case OpKind::gup: return do_gup(s, x, out);
        case OpKind::pin: return do_pin(s, x, out);
        case OpKind::unpin: return do_unpin(ctx, s, x, out);
        case OpKind::dma_read:
        case OpKind::dma_write: return do_dma(ctx, s, x, out);
        case OpKind::mmap: return do_mmap(ctx, s, x, out);
        case OpKind::munmap: return do_munmap(s, x, out);
        case OpKind::mprotect: return do_mprotect(ctx, s, x, out);
        case OpKind::madvise: return do_madvise(s, x, out);
        case OpKind::mremap: return do_mremap(ctx, s, x, out);
        case OpKind::fork: return do_fork(s, x, out);
        case OpKind::file_write: return do_file_write(s, x, out);
        case OpKind::truncate: return do_truncate(s, x, out);
        // Reclaim moves content between folios, swap and files without changing it,
        // and smaps reads nothing the model follows: neither touches a page's content.
        // userfaultfd changes no content or protection a user access can tell, except
        // that a MISSING userfault fills a page with the handler's value
        // (Context::uffd_values).  khugepaged's collapse has no effect on content.
        // exit leaves the other processes' pages as they are.  The ops the registry
        // marks not modelled (mmrace/ops.hpp) never reach the model.
        default: out.push_back(s); return;
    }
}

}  // namespace mmrace::check::ref
