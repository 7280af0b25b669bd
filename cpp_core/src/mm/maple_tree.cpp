#include "mm/maple_tree.hpp"

#include <algorithm>
#include <string>

#include "check/report.hpp"
#include "mm/kernel.hpp"
#include "mm/vma.hpp"
#include "sync/rcu.hpp"

namespace mmrace::mm {

MapleTree::MapleTree() { root_ = alloc_node(); }

MapleTree::Node* MapleTree::alloc_node() {
    Node* n;
    if (!free_.empty()) {
        n = free_.back();
        free_.pop_back();
    } else {
        nodes_.push_back(std::make_unique<Node>());
        n = nodes_.back().get();
    }
    n->slots.clear();  // keeps its capacity: no allocation once warm
    n->serial = ++serial_;
    n->live = true;
    ++live_;
    return n;
}

void MapleTree::free_node(Node* n) {
    n->live = false;
    --live_;
    free_.push_back(n);
}

MapleTree::const_iterator MapleTree::upper_bound(uint64_t addr) const {
    return std::upper_bound(root_->slots.begin(), root_->slots.end(), addr,
                            [](uint64_t a, const Slot& s) { return a < s.first; });
}

MapleTree::Node* MapleTree::begin_write() {
    if (!rcu_) return root_;
    Node* n = alloc_node();
    n->slots = root_->slots;
    return n;
}

// rcu_assign_pointer of the root, then ma_free_rcu of the node it replaced: walkers that
// loaded the old root keep reading it until their grace period ends.
void MapleTree::publish(Node* n) {
    if (n == root_) return;
    Node* old = root_;
    root_ = n;
    sync::call_rcu(MMR_SITE("ma_free_rcu"), [this, old] { free_node(old); });
}

void MapleTree::store(vm_area_struct* vma) {
    Node* n = begin_write();
    Slot s{vma->vm_end, vma};
    n->slots.insert(std::upper_bound(n->slots.begin(), n->slots.end(), s,
                                     [](const Slot& a, const Slot& b) { return a.first < b.first; }),
                    s);
    publish(n);
}

void MapleTree::erase(vm_area_struct* vma) {
    Node* n = begin_write();
    auto it = std::find_if(n->slots.begin(), n->slots.end(),
                           [vma](const Slot& s) { return s.second == vma; });
    if (it != n->slots.end()) n->slots.erase(it);
    publish(n);
}

vm_area_struct* MapleTree::mas_walk_rcu(uint64_t addr) {
    Node* n = root_;  // rcu_dereference(mt->ma_root)
    uint64_t serial = n->serial;
    Kernel::current().rt.yield(MMR_SITE("mas_walk"), rt::Ev::access, serial);
    if (!n->live || n->serial != serial)
        check::violation(Check::use_after_free, "mas_walk reads a maple tree node (serial " +
                                               std::to_string(serial) +
                                               ") that was freed while it walked under RCU");
    auto it = std::upper_bound(n->slots.begin(), n->slots.end(), addr,
                               [](uint64_t a, const Slot& s) { return a < s.first; });
    if (it == n->slots.end() || it->second->vm_start > addr) return nullptr;
    return it->second;
}

}  // namespace mmrace::mm
