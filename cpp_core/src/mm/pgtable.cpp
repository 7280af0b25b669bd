#include "mm/pgtable.hpp"

#include "check/report.hpp"

namespace mmrace::mm {

TableId PageTablePool::alloc(int level) {
    TableId id;
    if (size_t lowest = free_.find_first_free(); lowest != FreeIdTree::npos) {
        // Lowest free id first, independent of the order tables were freed in.
        id = static_cast<TableId>(lowest);
        free_.set_used(id);
    } else if (nr_ < limit_) {  // freed ids are reused first, so nr_ == used_ here
        id = static_cast<TableId>(nr_++);
        if (id == tables_.size()) tables_.push_back(std::make_unique<PageTable>());
    } else {
        return kNoTable;
    }
    PageTable& t = *tables_[id];
    t.level = level;
    t.in_use = true;
    t.entries.assign(geo_.entries(), 0);
    t.deposited.assign(level == PMD_LEVEL ? geo_.entries() : 0, kNoTable);
    ++used_;
    return id;
}

void PageTablePool::free(TableId id) {
    if (id >= nr_) check::violation(Check::double_free, "page table " + std::to_string(id) + " was never allocated");
    PageTable& t = *tables_[id];
    if (!t.in_use) check::violation(Check::double_free, "page table " + std::to_string(id) + " freed twice");
    t.in_use = false;
    free_.set_free(id);
    --used_;
}

void PageTablePool::reset(size_t limit) {
    limit_ = limit;
    // Only the tables the last run handed out were touched.
    for (size_t id = 0; id < nr_; ++id) tables_[id]->in_use = false;
    nr_ = 0;
    free_.clear();
    used_ = 0;
}

}  // namespace mmrace::mm
