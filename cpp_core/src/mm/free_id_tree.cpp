#include "mm/free_id_tree.hpp"

#include <algorithm>

namespace mmrace::mm {

uint8_t FreeIdTree::combine(unsigned h, uint8_t left, uint8_t right) {
    // A child at level h - 1 is all free when its value is h: then so is the node.
    if (left == h && right == h) return static_cast<uint8_t>(h + 1);
    return std::max(left, right);
}

void FreeIdTree::update(size_t id, uint8_t leaf) {
    if (id >= capacity()) {
        if (!leaf) return;  // ids beyond the leaves are used already
        grow(id);
    }
    if (leaf) marked_ = std::max(marked_, id + 1);
    longest_[0][id] = leaf;
    for (unsigned h = 1; h < longest_.size(); ++h) {
        id >>= 1;
        uint8_t v = combine(h, longest_[h - 1][2 * id], longest_[h - 1][2 * id + 1]);
        if (longest_[h][id] == v) break;  // the ancestors depend only on this value
        longest_[h][id] = v;
    }
}

void FreeIdTree::grow(size_t id) {
    size_t cap = std::max<size_t>(capacity(), 64);
    while (cap <= id) cap *= 2;
    size_t old_levels = longest_.size();
    size_t levels = 1;
    while ((size_t{1} << (levels - 1)) < cap) ++levels;
    longest_.resize(levels);
    for (size_t h = 0; h < levels; ++h) longest_[h].resize(cap >> h, 0);
    // The new nodes cover only new (used) ids, except the old root's new ancestors.
    for (size_t h = std::max<size_t>(old_levels, 1); h < levels; ++h)
        longest_[h][0] = combine(static_cast<unsigned>(h), longest_[h - 1][0], longest_[h - 1][1]);
}

size_t FreeIdTree::find_free_block(unsigned order) const {
    if (order >= longest_.size()) return npos;
    const unsigned need = order + 1;  // the value of an all-free node at level order
    size_t h = longest_.size() - 1, j = 0;
    if (longest_[h][0] < need) return npos;
    // Go left whenever the left child holds such a block: the lowest one is there.
    while (h > order) {
        --h;
        j *= 2;
        if (longest_[h][j] < need) ++j;
    }
    return j << order;
}

void FreeIdTree::clear() {
    // Only the nodes above ids [0, marked_) can be nonzero.
    for (size_t h = 0; h < longest_.size(); ++h) {
        size_t n = std::min(longest_[h].size(), (marked_ + (size_t{1} << h) - 1) >> h);
        std::fill_n(longest_[h].begin(), n, uint8_t{0});
    }
    marked_ = 0;
}

}  // namespace mmrace::mm
