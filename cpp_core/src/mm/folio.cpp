#include "mm/folio.hpp"

#include <algorithm>

#include "check/report.hpp"

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
    f.writeback_waiters.clear();
    f.locked = false;
    f.lock_owner = UINT32_MAX;
    f.lock_waiters.clear();
    f.words.clear();
}

}  // namespace

void FolioPool::reset(size_t limit) {
    limit_ = limit;
    free_.clear();
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
    if (!free_.empty()) {
        // The lowest freed pfn, whatever order they were freed in.
        auto it = std::min_element(free_.begin(), free_.end());
        p = *it;
        *it = free_.back();
        free_.pop_back();
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

void FolioPool::get(Pfn p) {
    if (p == kZeroPfn) return;
    Folio& f = folios_[p];
    if (!f.in_use || f.refcount <= 0)
        check::violation("refcount", "folio_get on free folio pfn " + std::to_string(p));
    ++f.refcount;
}

void FolioPool::put(Pfn p) {
    if (p == kZeroPfn) return;
    Folio& f = folios_[p];
    if (!f.in_use || f.refcount <= 0)
        check::violation("refcount", "folio_put on free folio pfn " + std::to_string(p) +
                                         " (refcount underflow)");
    if (--f.refcount == 0) {
        f.in_use = false;
        f.words.clear();
        free_.push_back(p);
        --used_;
    }
}

}  // namespace mmrace::mm
