#include "mm/folio.hpp"

#include <algorithm>

#include "check/report.hpp"

namespace mmrace::mm {

FolioPool::FolioPool(size_t capacity) : limit_(capacity) { reset(); }

void FolioPool::reset() {
    free_.clear();
    folios_.resize(1);
    // The zero page: permanently referenced, so it is never freed or reused.
    folios_[kZeroPfn] = Folio{};
    folios_[kZeroPfn].in_use = true;
    folios_[kZeroPfn].refcount = 1;
    folios_[kZeroPfn].flags = PG_uptodate;
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
    } else if (folios_.size() < limit_) {
        p = static_cast<Pfn>(folios_.size());
        folios_.emplace_back();
    } else {
        return kNoPfn;
    }
    Folio& f = folios_[p];
    f = Folio{};
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
