// The VMA tree of an mm (mm->mm_mt, lib/maple_tree.c in RCU mode), reduced to what the
// fault strategies depend on: one node holding every VMA keyed by vm_end, and how a
// writer replaces it.
//
// Writers hold mmap_lock for write.  In RCU mode (the pervma strategy: the maple tree
// since 6.4 lets lock_vma_under_rcu walk it with only rcu_read_lock) a modification
// publishes a new node and frees the old one through call_rcu, so a lockless walker
// that loaded the old root may still read it.  A node freed without that delay is a
// use after free the walker reports (StackRot, CVE-2023-3269).  Otherwise (classic,
// and spf's 2018 rbtree, which its readers walk under the mm_rb rwlock) the node is
// changed in place.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace mmrace::mm {

struct vm_area_struct;

class MapleTree {
public:
    using Slot = std::pair<uint64_t, vm_area_struct*>;  // (vm_end, vma), sorted by vm_end
    using const_iterator = std::vector<Slot>::const_iterator;
    using const_reverse_iterator = std::vector<Slot>::const_reverse_iterator;

    MapleTree();
    // mt_set_in_rcu: from now on writers replace nodes and free them through RCU.
    void set_in_rcu(bool on) { rcu_ = on; }
    bool in_rcu() const { return rcu_; }

    // Walks of the current node: mmap_lock (or, for spf, the mm_rb lock) held.
    const_iterator begin() const { return root_->slots.begin(); }
    const_iterator end() const { return root_->slots.end(); }
    const_reverse_iterator rbegin() const { return root_->slots.rbegin(); }
    const_reverse_iterator rend() const { return root_->slots.rend(); }
    bool empty() const { return root_->slots.empty(); }
    size_t size() const { return root_->slots.size(); }
    // The first slot with vm_end > addr (find_vma's answer).
    const_iterator upper_bound(uint64_t addr) const;

    // mas_store / mas_erase for one VMA.  mmap_lock held for write.
    void store(vm_area_struct* vma);
    void erase(vm_area_struct* vma);

    // mas_walk under rcu_read_lock (lock_vma_under_rcu): the VMA whose range holds
    // addr, or null.  A scheduling point between loading the root and reading the node,
    // where a writer may replace it.  Reading a node that was freed is a violation
    // "use_after_free".
    vm_area_struct* mas_walk_rcu(uint64_t addr);

    // Nodes allocated and not yet freed (the leak check).
    size_t live_nodes() const { return live_; }

private:
    struct Node {
        std::vector<Slot> slots;
        uint64_t serial = 0;  // which allocation of this node it is
        bool live = false;
    };
    Node* alloc_node();
    void free_node(Node* n);
    // The node a writer may change: the root itself, or in RCU mode a copy of it that
    // publish() installs.
    Node* begin_write();
    void publish(Node* n);

    std::vector<std::unique_ptr<Node>> nodes_;  // storage; freed nodes are reused
    std::vector<Node*> free_;
    Node* root_;
    uint64_t serial_ = 0;
    size_t live_ = 0;
    bool rcu_ = false;
};

}  // namespace mmrace::mm
