#include "mm/pgtable.hpp"

#include <algorithm>

#include "check/report.hpp"

namespace mmrace::mm {

TableId PageTablePool::alloc(int level) {
    TableId id;
    if (!free_.empty()) {
        // Lowest free id first, independent of the order tables were freed in.
        auto it = std::min_element(free_.begin(), free_.end());
        id = *it;
        *it = free_.back();
        free_.pop_back();
    } else {
        id = static_cast<TableId>(tables_.size());
        tables_.push_back(std::make_unique<PageTable>());
    }
    PageTable& t = *tables_[id];
    t.level = level;
    t.in_use = true;
    t.entries.assign(geo_.entries(), 0);
    ++used_;
    return id;
}

void PageTablePool::free(TableId id) {
    PageTable& t = *tables_.at(id);
    if (!t.in_use) check::violation("double_free", "page table " + std::to_string(id) + " freed twice");
    t.in_use = false;
    free_.push_back(id);
    --used_;
}

void PageTablePool::reset() {
    free_.clear();
    for (TableId id = 0; id < tables_.size(); ++id) {
        tables_[id]->in_use = false;
        free_.push_back(id);
    }
    used_ = 0;
}

}  // namespace mmrace::mm
