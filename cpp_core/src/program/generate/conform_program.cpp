// The conform shape (conform_program.hpp).
//
// Order independence.  Private anonymous memory is copy-on-write, so a parent and its
// child never see each other's stores to it.  What they can share is a file (its page
// cache and its size) and a shared anonymous mapping.  Each such object has one owner
// process at a time; at a fork the owner either keeps it (and the child never touches
// it) or hands it to the child (and never touches it again).  Only the owner writes or
// truncates a file, maps it, or loads and stores pages that may be backed by it.  Then
// every access to an object is ordered by fork, whatever the schedule.  The generator
// does not predict results; it tracks, per process and page, the set of shared objects
// that may back the page (a superset: mremap and MAP_FIXED_NOREPLACE outcomes are not
// predicted, so they only ever add to it).
//
// Pages are numbered from the arena's start (vpn).  Zones: main [0, 48); the stack zone
// 512 MiB up, where MAP_GROWSDOWN mappings live far (more than stack_guard_gap) from
// the main zone; the THP zone 256 MiB up (feature thp, geometry x86): four PMD-aligned
// slots of 512 pages, for private anonymous memory and shmem (collapse_file).
#include "program/generate/conform_program.hpp"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

namespace mmrace::gen {

namespace {

constexpr int64_t kPage = 4096;
constexpr int64_t kMain = 0, kMainPages = 48;
constexpr int64_t kStack = 0x20000, kStackPages = 32;
constexpr int64_t kThp = 0x10000, kThpSlots = 4, kPmdPages = 512;
constexpr size_t kMaxProcesses = 4;
constexpr uint64_t kU64Max = UINT64_MAX;

// Features beyond private anonymous memory and fork, each on or off per program.
enum Feature : unsigned {
    files, shared_anon, munmap, mprotect, madvise, mremap, growsdown, peek, exit_op, thp, kFeatures
};

using Objects = std::set<std::string>;  // shared objects: files "F0", shmem "S0"
using Range = std::pair<int64_t, int64_t>;  // (start vpn, pages)

std::string addr(int64_t vpn, int64_t word = 0) {
    std::ostringstream s;
    s << "0x" << std::hex << kArenaBase + static_cast<uint64_t>(vpn * kPage + word * 8);
    return s.str();
}

struct Proc {
    std::string name;
    bool forked = false;
    std::map<int64_t, Objects> backing;  // page -> the shared objects that may back it
    Objects owned;
    std::set<int64_t> mapped;            // pages probably mapped, to aim accesses at
    std::vector<std::pair<int64_t, int64_t>> written;  // (page, word) stored to, to read back
    std::vector<std::string> ops;
    std::set<int64_t> thp_mapped;        // THP slots probably mapped

    bool may_touch(int64_t vpn) const {
        auto it = backing.find(vpn);
        if (it == backing.end()) return true;
        return std::includes(owned.begin(), owned.end(), it->second.begin(), it->second.end());
    }
    // The child a fork makes: what the parent maps, owning nothing yet.
    Proc child(std::string child_name) const {
        Proc c{std::move(child_name), true, backing, {}, mapped, written, {}, thp_mapped};
        return c;
    }
};

class Conform {
public:
    explicit Conform(ChoiceSource& c) : c_(c) {}
    std::string program();

private:
    using Draw = void (Conform::*)(Proc&);

    // --- choices: 0 is the feature off, the first item, the smallest number ---------------
    bool chance(unsigned percent) { return c_.choose(100) >= 100 - percent; }
    int64_t randint(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(c_.choose(hi - lo + 1)); }
    template <typename T>
    T pick(const std::vector<T>& items) { return items[c_.choose(items.size())]; }
    template <typename T>
    T weighted(std::initializer_list<std::pair<T, unsigned>> items) {
        unsigned total = 0;
        for (const auto& [item, w] : items) total += w;
        uint64_t at = c_.choose(total);
        for (const auto& [item, w] : items) {
            if (at < w) return item;
            at -= w;
        }
        return items.begin()->first;
    }
    bool on(Feature f) const { return features_[f]; }

    uint64_t value();
    const char* prot();
    Range range_in_zone(bool stack);
    Range any_range(Proc& p);
    std::optional<int64_t> access_page(Proc& p);
    std::optional<int64_t> free_start(const Proc& p, int64_t pages);
    void set_backing(Proc& p, int64_t start, int64_t pages, const std::string& obj, bool certain);
    std::vector<std::pair<std::string, int64_t>> owned_files(const Proc& p) const;
    void emit_access(Proc& p, bool load, int64_t vpn, int64_t word, unsigned peek_percent);

    void op_mmap(Proc& p);
    void op_munmap(Proc& p);
    void op_mprotect(Proc& p);
    void op_madvise(Proc& p);
    void op_mremap(Proc& p);
    void op_access(Proc& p);
    void op_file(Proc& p);
    void op_fork(Proc& p);

    Range thp_slot_range(bool aligned, const std::vector<int64_t>& slots);
    std::vector<int64_t> thp_slots_of(Proc& p, unsigned percent);
    static std::vector<int64_t> thp_slots(int64_t start, int64_t pages);
    void op_thp_mmap(Proc& p);
    void op_thp_access(Proc& p);
    std::optional<Range> collapse_range(Proc& p);
    void op_thp_madvise(Proc& p);
    void op_thp_munmap_or_mprotect(Proc& p);

    void pick_op(Proc& p);
    void fill(Proc& p);

    ChoiceSource& c_;
    bool features_[kFeatures] = {};
    std::vector<std::pair<std::string, int64_t>> files_;  // (name, pages)
    std::vector<Proc> procs_;
    int next_shared_ = 0;
    uint64_t next_value_ = 100;
};

uint64_t Conform::value() {
    if (chance(5)) return kU64Max;  // the top of the unsigned decimal range
    return ++next_value_;
}

// No exec-only: with protection keys, x86 makes PROT_EXEC alone unreadable.
const char* Conform::prot() {
    return weighted<const char*>({{"rw", 10}, {"r", 4}, {"none", 2}, {"w", 1}, {"rx", 2}, {"rwx", 1}});
}

Range Conform::range_in_zone(bool stack) {
    int64_t pages = randint(1, 6);
    if (stack) return {kStack + randint(8, kStackPages - pages), pages};
    return {kMain + randint(0, kMainPages - 8), pages};
}

Range Conform::any_range(Proc& p) {
    bool stack = on(growsdown) && chance(20);
    if (!p.mapped.empty() && chance(70)) {  // aim at what is mapped, to hit something
        int64_t start = pick(std::vector<int64_t>(p.mapped.begin(), p.mapped.end()));
        return {start, randint(1, 4)};
    }
    return range_in_zone(stack);
}

std::optional<int64_t> Conform::access_page(Proc& p) {
    std::vector<int64_t> candidates;
    for (int64_t v : p.mapped)
        if (p.may_touch(v)) candidates.push_back(v);
    for (int i = 0; i < 10; ++i) {
        int64_t vpn;
        if (!candidates.empty() && chance(80)) {
            vpn = pick(candidates);
            if (chance(15)) vpn -= 1;  // just below: a hole, or a stack that grows down
        } else if (on(growsdown) && chance(30)) {
            vpn = kStack + randint(4, kStackPages - 1);
        } else {
            vpn = kMain + randint(0, kMainPages - 1);
        }
        if (vpn >= 0 && p.may_touch(vpn)) return vpn;
    }
    return std::nullopt;
}

// A start in the main zone with none of `pages` pages mapped, if there is one.
std::optional<int64_t> Conform::free_start(const Proc& p, int64_t pages) {
    std::vector<int64_t> free;
    for (int64_t s = kMain; s < kMain + kMainPages - pages; ++s) {
        bool clear = true;
        for (int64_t v = s; v < s + pages && clear; ++v) clear = !p.mapped.count(v);
        if (clear) free.push_back(s);
    }
    if (free.empty()) return std::nullopt;
    return pick(free);
}

// `obj` (empty: none) backs the range now, or (not certain) may back it too.
void Conform::set_backing(Proc& p, int64_t start, int64_t pages, const std::string& obj, bool certain) {
    for (int64_t v = start; v < start + pages; ++v) {
        Objects& b = p.backing[v];
        if (certain) b.clear();
        if (!obj.empty()) b.insert(obj);
        p.mapped.insert(v);
    }
}

std::vector<std::pair<std::string, int64_t>> Conform::owned_files(const Proc& p) const {
    std::vector<std::pair<std::string, int64_t>> owned;
    for (const auto& f : files_)
        if (p.owned.count(f.first)) owned.push_back(f);
    return owned;
}

void Conform::op_mmap(Proc& p) {
    std::vector<std::string> kinds(4, "anon");
    if (on(shared_anon)) kinds.push_back("shared_anon");
    auto owned = owned_files(p);
    if (!owned.empty()) kinds.insert(kinds.end(), 3, "file");
    std::string kind = pick(kinds);
    bool grows = kind == "anon" && on(growsdown) && chance(30);
    auto [start, pages] = range_in_zone(grows || (on(growsdown) && chance(10)));
    std::string mode = weighted<const char*>({{"fixed", 4}, {"hint", 4}, {"fixed_noreplace", 2}});
    if (std::none_of(features_, features_ + kFeatures, [](bool f) { return f; }) && mode == "fixed") {
        // The basic programs stay within what the first model ran: no MAP_FIXED over a
        // mapping (`mapped` is exact here: nothing is ever unmapped or moved).
        if (auto s = free_start(p, pages)) start = *s;
        else start = range_in_zone(false).first, mode = "fixed_noreplace";
    }
    std::string obj, flags = "private,anon";
    if (kind == "shared_anon") {
        obj = "S" + std::to_string(next_shared_++);
        flags = "shared,anon";
        p.owned.insert(obj);
    } else if (kind == "file") {
        auto [name, size] = pick(owned);
        obj = name;
        flags = std::string(chance(50) ? "shared" : "private") + ",file:" + name + ":" +
                std::to_string(randint(0, size));
    }
    if (mode != "hint") flags += "," + mode;
    if (grows) flags += ",growsdown";
    if (chance(15)) flags += ",populate";
    p.ops.push_back("mmap " + addr(start) + " pages=" + std::to_string(pages) + " prot=" + prot() +
                    " flags=" + flags);
    set_backing(p, start, pages, obj, mode == "fixed");
}

void Conform::op_munmap(Proc& p) {
    auto [start, pages] = any_range(p);
    p.ops.push_back("munmap " + addr(start) + " pages=" + std::to_string(pages));
    for (int64_t v = start; v < start + pages; ++v) {
        p.backing.erase(v);
        p.mapped.erase(v);
    }
}

void Conform::op_mprotect(Proc& p) {
    auto [start, pages] = any_range(p);
    p.ops.push_back("mprotect " + addr(start) + " pages=" + std::to_string(pages) + " prot=" + prot());
}

// No collapse here: MADV_COLLAPSE depends on the host's THP configuration and on the PMD
// size, which the `small` geometry changes on purpose (the THP zone has its own).
void Conform::op_madvise(Proc& p) {
    auto [start, pages] = any_range(p);
    const char* advice =
        weighted<const char*>({{"dontneed", 5}, {"pageout", 2}, {"hugepage", 1}, {"nohugepage", 1}});
    p.ops.push_back("madvise " + addr(start) + " pages=" + std::to_string(pages) + " advice=" + advice);
}

// Whatever mremap does, the destination pages may now be backed by what backed the source.
void Conform::op_mremap(Proc& p) {
    auto [start, pages] = any_range(p);
    int64_t new_pages = randint(1, 8);
    std::string how = weighted<const char*>({{"", 3}, {"maymove", 3}, {"fixed", 3}});
    std::string text = "mremap " + addr(start) + " pages=" + std::to_string(pages) +
                       " new_pages=" + std::to_string(new_pages);
    Objects objs;
    for (int64_t v = start; v < start + pages; ++v)
        if (auto it = p.backing.find(v); it != p.backing.end()) objs.insert(it->second.begin(), it->second.end());
    int64_t from = start, to = start + std::max(pages, new_pages);  // grown in place, maybe
    if (how == "fixed") {
        from = kMain + randint(0, kMainPages - 8);
        to = from + new_pages;
        text += " flags=maymove,fixed to=" + addr(from);
    } else if (!how.empty()) {
        text += " flags=maymove";
    }
    p.ops.push_back(text);
    for (int64_t v = from; v < to; ++v) {
        p.backing[v].insert(objs.begin(), objs.end());
        p.mapped.insert(v);
    }
}

// A load or store of (vpn, word), through /proc/pid/mem now and then.
void Conform::emit_access(Proc& p, bool load, int64_t vpn, int64_t word, unsigned peek_percent) {
    bool through_mem = on(peek) && chance(peek_percent);
    if (load) {
        p.ops.push_back(std::string(through_mem ? "peek " : "read ") + addr(vpn, word));
    } else {
        p.ops.push_back(std::string(through_mem ? "poke " : "write ") + addr(vpn, word) + " " +
                        std::to_string(value()));
        p.written.emplace_back(vpn, word);
    }
}

void Conform::op_access(Proc& p) {
    bool load = chance(50);
    std::vector<std::pair<int64_t, int64_t>> back;
    for (const auto& w : p.written)
        if (p.may_touch(w.first)) back.push_back(w);
    if (load && !back.empty() && chance(60)) {  // read back a store (or what replaced it)
        auto [vpn, word] = pick(back);
        return emit_access(p, load, vpn, word, 25);
    }
    auto vpn = access_page(p);
    int64_t word = pick(std::vector<int64_t>{0, 1, 511});
    if (vpn) emit_access(p, load, *vpn, word, 25);
}

// write(2) or truncate of a file the process owns; truncate to fewer pages too, so that
// mapped pages end up past EOF: SIGBUS.
void Conform::op_file(Proc& p) {
    auto owned = owned_files(p);
    if (owned.empty()) return;
    auto [name, size] = pick(owned);
    if (!chance(50)) {
        int64_t pgoff = randint(0, size);
        p.ops.push_back("file_write " + name + " " + std::to_string(pgoff) + " " + std::to_string(value()));
    } else {
        p.ops.push_back("truncate " + name + " pages=" + std::to_string(randint(0, size + 1)));
    }
}

// The child takes over each object the parent owns, or not (ownership rule, above).
void Conform::op_fork(Proc& p) {
    Proc c = p.child("P" + std::to_string(procs_.size()));
    for (const std::string& obj : Objects(p.owned))
        if (chance(50)) {
            p.owned.erase(obj);
            c.owned.insert(obj);
        }
    p.ops.push_back("fork " + c.name);
    procs_.push_back(std::move(c));
}

// --- the THP zone (feature thp) -------------------------------------------------------
//
// 2 MiB-aligned private anonymous mappings of one or two PMDs, MADV_HUGEPAGE /
// NOHUGEPAGE / COLLAPSE / DONTNEED over aligned and unaligned ranges, a few words
// written and read back around the collapses (content must survive them), and
// munmap/mprotect of parts, which leave PMD ranges a collapse must refuse (EINVAL).

// A range of the THP zone from one of `slots`: whole slots, or anywhere (across slot ends too).
Range Conform::thp_slot_range(bool aligned, const std::vector<int64_t>& slots) {
    int64_t slot = pick(slots);
    if (aligned) {
        int64_t n = slot + 1 < kThpSlots && chance(30) ? 2 : 1;
        return {kThp + slot * kPmdPages, n * kPmdPages};
    }
    int64_t start, pages;
    if (chance(30)) {  // a few pages anywhere: no whole PMD inside
        start = kThp + slot * kPmdPages + randint(0, kPmdPages - 1);
        pages = randint(1, 16);
    } else {  // ends near PMD boundaries, on either side: one PMD inside, or none
        start = std::max(kThp, kThp + slot * kPmdPages + randint(-32, 32));
        pages = randint(1, 2) * kPmdPages + randint(-64, 64);
    }
    return {start, std::min(pages, kThp + kThpSlots * kPmdPages - start)};
}

// The slots p has mapped (mostly: `percent` of the time when it has some), else all.
std::vector<int64_t> Conform::thp_slots_of(Proc& p, unsigned percent) {
    if (!p.thp_mapped.empty() && !chance(100 - percent))
        return std::vector<int64_t>(p.thp_mapped.begin(), p.thp_mapped.end());
    return {0, 1, 2, 3};
}

std::vector<int64_t> Conform::thp_slots(int64_t start, int64_t pages) {
    std::vector<int64_t> slots;
    for (int64_t s = (start - kThp) / kPmdPages; s <= (start + pages - 1 - kThp) / kPmdPages; ++s)
        slots.push_back(s);
    return slots;
}

void Conform::op_thp_mmap(Proc& p) {
    auto [start, pages] = thp_slot_range(true, {0, 1, 2, 3});
    if (chance(15)) {  // no whole PMD inside the VMA: nothing it may collapse
        start += randint(1, 64);
        pages = std::min(pages, kThp + kThpSlots * kPmdPages - start);
    }
    std::string mode = weighted<const char*>({{"fixed", 6}, {"fixed_noreplace", 2}, {"hint", 1}});
    const char* prot = weighted<const char*>({{"rw", 9}, {"r", 1}});
    std::string extra = mode == "hint" ? "" : "," + mode;
    if (chance(10)) extra += ",populate";
    std::string kind = "private,anon";
    if (chance(25)) {  // shmem: a collapse makes a file THP (collapse_file)
        std::string obj = "S" + std::to_string(next_shared_++);
        p.owned.insert(obj);
        kind = "shared,anon";
        set_backing(p, start, pages, obj, mode == "fixed");
    }
    p.ops.push_back("mmap " + addr(start) + " pages=" + std::to_string(pages) + " prot=" + prot +
                    " flags=" + kind + extra);
    for (int64_t s : thp_slots(start, pages)) p.thp_mapped.insert(s);
}

void Conform::op_thp_access(Proc& p) {
    std::vector<std::pair<int64_t, int64_t>> back;
    for (const auto& w : p.written)
        if (w.first >= kThp && p.may_touch(w.first)) back.push_back(w);
    bool load = chance(50);
    if (load && !back.empty() && chance(60)) {
        auto [vpn, word] = pick(back);
        return emit_access(p, load, vpn, word, 20);
    }
    auto slots = thp_slots_of(p, 90);
    int64_t vpn = kThp + pick(slots) * kPmdPages + randint(0, kPmdPages - 1);
    int64_t word = pick(std::vector<int64_t>{0, 1, 511});
    if (p.may_touch(vpn)) emit_access(p, load, vpn, word, 20);  // not another process's shmem
}

// A range to MADV_COLLAPSE, or none.  Slots mapped before a fork are fair game: the huge
// PMD a fork shares (copy_huge_pmd) and the PTE-mapped THP a COW leaves behind are
// modelled as Linux has them.  Only the owner collapses shmem: whether pages exist yet
// (SCAN_TRUNCATED) depends on the owner's stores.
std::optional<Range> Conform::collapse_range(Proc& p) {
    for (int i = 0; i < 5; ++i) {
        auto slots = thp_slots_of(p, 85);
        auto [start, pages] = thp_slot_range(chance(60), slots);
        bool mine = true;
        for (int64_t v = start; v < start + pages && mine; ++v) mine = p.may_touch(v);
        if (mine) return Range{start, pages};
    }
    return std::nullopt;
}

void Conform::op_thp_madvise(Proc& p) {
    std::string advice =
        weighted<const char*>({{"collapse", 6}, {"hugepage", 3}, {"nohugepage", 1}, {"dontneed", 2}});
    int64_t start, pages;
    if (advice == "collapse") {
        auto r = collapse_range(p);
        if (!r) return;
        std::tie(start, pages) = *r;
    } else {
        auto slots = thp_slots_of(p, 80);
        std::tie(start, pages) = thp_slot_range(chance(70), slots);
        // Cut to hold no whole PMD of page table.  Linux 6.14's CONFIG_PT_RECLAIM frees a
        // PTE table that MADV_DONTNEED empties over a whole PMD (zap_pte_range,
        // reclaim_pt), so a collapse there finds no table (SCAN_PMD_NONE, EINVAL); the
        // model keeps the empty table and collapses it.
        if (advice == "dontneed") {
            int64_t offset = (start - kThp) % kPmdPages;
            pages = std::min(pages, offset == 0 ? kPmdPages - 1 : kPmdPages - offset);
        }
    }
    p.ops.push_back("madvise " + addr(start) + " pages=" + std::to_string(pages) + " advice=" + advice);
}

// PROT_NONE too: a huge PMD stays huge (change_huge_pmd), as in Linux.
void Conform::op_thp_munmap_or_mprotect(Proc& p) {
    auto slots = thp_slots_of(p, 80);
    auto [start, pages] = thp_slot_range(chance(20), slots);
    if (chance(40)) {
        p.ops.push_back("munmap " + addr(start) + " pages=" + std::to_string(pages));
        if (pages >= kPmdPages && (start - kThp) % kPmdPages == 0)
            for (int64_t s : thp_slots(start, pages)) p.thp_mapped.erase(s);
    } else {
        const char* prot = pick(std::vector<const char*>{"rw", "r", "none"});
        p.ops.push_back("mprotect " + addr(start) + " pages=" + std::to_string(pages) + " prot=" + prot);
    }
}

// --- programs ---------------------------------------------------------------------------

// One op, by weight among those the program's features allow.
void Conform::pick_op(Proc& p) {
    std::vector<std::pair<Draw, unsigned>> table = {{&Conform::op_access, 10}, {&Conform::op_mmap, 4}};
    if (procs_.size() < kMaxProcesses) table.emplace_back(&Conform::op_fork, 1);
    const std::pair<Feature, Draw> optional[] = {{munmap, &Conform::op_munmap},
                                                 {mprotect, &Conform::op_mprotect},
                                                 {madvise, &Conform::op_madvise},
                                                 {mremap, &Conform::op_mremap}};
    for (const auto& [f, draw] : optional)
        if (on(f)) table.emplace_back(draw, 2);
    if (!files_.empty()) table.emplace_back(&Conform::op_file, 2);
    if (on(thp)) {
        table.emplace_back(&Conform::op_thp_mmap, 2);
        table.emplace_back(&Conform::op_thp_access, 8);
        table.emplace_back(&Conform::op_thp_madvise, 4);
        table.emplace_back(&Conform::op_thp_munmap_or_mprotect, 2);
    }
    unsigned total = 0;
    for (const auto& [draw, w] : table) total += w;
    uint64_t at = c_.choose(total);
    for (const auto& [draw, w] : table) {
        if (at < w) return (this->*draw)(p);
        at -= w;
    }
}

// THP programs run longer: a collapse needs a mapping, stores, maybe advice first.
void Conform::fill(Proc& p) {
    if (!p.forked) {
        op_mmap(p);  // something to access from the start
        if (on(thp)) op_thp_mmap(p);
    }
    for (int64_t n = randint(3, 16) * (on(thp) ? 2 : 1); n; --n) pick_op(p);
    if (on(exit_op) && chance(30)) p.ops.push_back("exit");
}

std::string Conform::program() {
    // A third of the programs stick to what every model version runs (private anonymous
    // mmap, read, write, fork); the others add features at random.
    if (!(c_.choose(10) < 3))
        for (bool& f : features_) f = c_.choose(2);
    if (on(files))
        for (int64_t i = 0, n = randint(1, 2); i < n; ++i)
            files_.emplace_back("F" + std::to_string(i), randint(1, 4));
    Proc root{"P0", false, {}, {}, {}, {}, {}, {}};
    for (const auto& f : files_) root.owned.insert(f.first);
    procs_.push_back(std::move(root));
    for (size_t i = 0; i < procs_.size(); ++i) {  // a fork appends the child; it is filled in turn
        Proc p = std::move(procs_[i]);
        fill(p);
        procs_[i] = std::move(p);
    }
    std::ostringstream out;
    out << "mmrace 1\n";
    if (on(thp)) out << "config geometry=x86\n";  // real 2 MiB PMDs, as the host's
    for (const auto& [name, size] : files_) out << "file " << name << " pages=" << size << "\n";
    for (const Proc& p : procs_) {
        out << "process " << p.name << (p.forked ? " forked" : "") << "\nthread " << p.name << ".T0\n";
        for (const std::string& op : p.ops) out << "  " << op << "\n";
    }
    return out.str();
}

}  // namespace

std::string conform_program(ChoiceSource& choices) { return Conform(choices).program(); }

}  // namespace mmrace::gen
