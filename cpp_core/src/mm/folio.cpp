#include "mm/folio.hpp"

#include <algorithm>

#include "check/report.hpp"
#include "mm/lru.hpp"

namespace mmrace::mm {

namespace {

// A folio as the page allocator hands it out (prep_new_page): no mapping, no flags but
// those the caller sets.  Containers are cleared, not replaced, so their memory is
// reused run after run.
void folio_reinit(Folio& f) {
    f.refcount = 0;
    f.mapcount = 0;
    f.pincount = 0;
    f.flags = 0;
    f.in_use = false;
    f.serial = 0;
    f.mapping = -1;
    f.anon_vma = 0;
    f.index = 0;
    f.swap = 0;
    f.isolated = false;
    f.lru = kNoLru;
    f.lru_prev = f.lru_next = UINT32_MAX;
    f.writeback_waiters.clear();
    f.locked = false;
    f.lock_owner = UINT32_MAX;
    f.lock_waiters.clear();
    f.words.clear();
    f.order = 0;
    f.entire_mapcount = 0;
    f.page_mapcount = 0;
    f.mm_id[0] = f.mm_id[1] = 0;
    f.mm_id_mapcount[0] = f.mm_id_mapcount[1] = 0;
    f.maybe_mapped_shared = false;
    f.head = 0;
    f.tail = false;
}

}  // namespace

void FolioPool::reset(size_t limit) {
    limit_ = limit;
    free_.clear();  // costs what the last run freed, not the limit
    nr_ = 1;
    if (folios_.empty()) folios_.emplace_back();
    // The zero page: permanently referenced, so it is never freed or reused.
    Folio& zero = folios_[kZeroPfn];
    folio_reinit(zero);
    zero.in_use = true;
    zero.refcount = 1;
    zero.flags = PG_uptodate;
    used_ = 0;
    serial_ = 0;
}

Pfn FolioPool::alloc() {
    Pfn p;
    if (size_t lowest = free_.find_first_free(); lowest != FreeIdTree::npos) {
        // The lowest freed pfn, whatever order they were freed in.
        p = static_cast<Pfn>(lowest);
        free_.set_used(p);
    } else if (nr_ <= limit_) {  // pfns 1..limit: freed ones are reused first
        p = static_cast<Pfn>(nr_++);
        if (p == folios_.size()) folios_.emplace_back();
    } else {
        return kNoPfn;
    }
    Folio& f = folios_[p];
    folio_reinit(f);
    f.in_use = true;
    f.refcount = 1;
    f.flags = PG_uptodate;
    f.serial = ++serial_;
    ++used_;
    return p;
}

size_t FolioPool::lowest_free_block(unsigned order) const {
    size_t nr = size_t{1} << order;
    // Only pfns below nr_ are ever free in the tree, so a block it finds lies below
    // nr_ and below every block that reaches nr_.  Pfn 0 (the zero page) is never
    // free, so no block starts at 0.
    if (size_t h = free_.find_free_block(order); h != FreeIdTree::npos) return h;
    // Else the block holding nr_ if its pages below nr_ are all free, else the next.
    size_t h = std::max(nr, nr_ & ~(nr - 1));
    for (size_t p = h; p < nr_; ++p)
        if (!free_.test_free(p)) return h + nr;
    return h;
}

Pfn FolioPool::alloc_order(unsigned order) {
    if (order == 0) return alloc();
    size_t nr = size_t{1} << order;
    // The lowest aligned block whose pages are all free or never handed out.
    size_t h = lowest_free_block(order);
    if (h + nr - 1 > limit_) return kNoPfn;
    while (folios_.size() < h + nr) folios_.emplace_back();
    // Pfns skipped on the way up become free pfns below nr_ (storage kept from an
    // earlier run is reinitialised: only pfns below nr_ are looked at).
    for (size_t p = nr_; p < h; ++p) {
        folio_reinit(folios_[p]);
        free_.set_free(p);
    }
    for (size_t p = h; p < h + nr; ++p) {
        if (p < nr_) free_.set_used(p);
        Folio& f = folios_[p];
        folio_reinit(f);
        f.in_use = true;
        f.head = static_cast<Pfn>(h);
        f.tail = p != h;
    }
    nr_ = std::max(nr_, h + nr);
    used_ += nr;
    Folio& head = folios_[h];
    head.refcount = 1;
    head.flags = PG_uptodate;
    head.order = order;
    head.serial = ++serial_;
    for (size_t p = h + 1; p < h + nr; ++p) folios_[p].serial = head.serial;
    return static_cast<Pfn>(h);
}

void FolioPool::split_to_order0(Pfn h) {
    Folio& head = folios_[h];
    size_t nr = size_t{1} << head.order;
    uint32_t flags = head.flags & ~(PG_swapcache | PG_writeback | PG_anon_exclusive);
    for (size_t i = 0; i < nr; ++i) {
        Folio& f = folios_[h + i];
        f.order = 0;
        f.tail = false;
        f.head = static_cast<Pfn>(h + i);
        f.entire_mapcount = 0;
        f.refcount = 0;
        f.pincount = 0;
        f.mapcount = f.page_mapcount;
        f.page_mapcount = 0;
        f.mm_id[0] = f.mm_id[1] = 0;
        f.mm_id_mapcount[0] = f.mm_id_mapcount[1] = 0;
        f.maybe_mapped_shared = false;
        f.flags = flags | (f.flags & PG_anon_exclusive);
        f.anon_vma = head.anon_vma;
        f.mapping = head.mapping;
        f.index = head.index + i;
        f.serial = head.serial;
    }
}

void FolioPool::get(Pfn p) {
    if (p == kZeroPfn) return;
    Folio& f = folios_[p];
    if (!f.in_use || f.refcount <= 0)
        check::violation(Check::refcount, "folio_get on free folio pfn " + std::to_string(p));
    ++f.refcount;
}

void FolioPool::put(Pfn p) {
    if (p == kZeroPfn) return;
    Folio& f = folios_[p];
    if (!f.in_use || f.refcount <= 0)
        check::violation(Check::refcount, "folio_put on free folio pfn " + std::to_string(p) +
                                         " (refcount underflow)");
    if (f.tail) check::violation(Check::refcount, "folio_put on tail page pfn " + std::to_string(p));
    if (--f.refcount == 0) {
        size_t nr = size_t{1} << f.order;
        for (size_t i = 0; i < nr; ++i) {
            Folio& page = folios_[p + i];
            // __page_cache_release: a folio freed while on the LRU leaves it.
            if (page.lru != kNoLru && lruvec_) lruvec_del_folio(*lruvec_, *this, static_cast<Pfn>(p + i));
            page.in_use = false;
            page.tail = false;
            page.words.clear();
            free_.set_free(p + i);
        }
        f.order = 0;
        used_ -= nr;
    }
}

}  // namespace mmrace::mm
