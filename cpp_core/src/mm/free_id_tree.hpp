// The free ids of a pool that hands out the lowest free id first (folios, page tables,
// swap slots), so that a run's choices depend only on which ids are free, never on the
// order they were freed in.
//
// A complete binary tree over the ids, stored level by level.  Each node records the
// largest naturally aligned block of free ids under it, as the `longest` array of a
// binary buddy allocator does; the kernel's buddy allocator (free_area[order]) hands
// out blocks in no fixed order, which is why the model keeps its own summary.
//
// Marking an id free or used, the lowest free id and the lowest free aligned block of
// 2^order ids all cost O(log n).  Storage grows with the highest id ever marked free
// and is kept by clear(), which costs what the last run marked: pools are rewound run
// after run and must not allocate once warm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mmrace::mm {

class FreeIdTree {
public:
    static constexpr size_t npos = SIZE_MAX;

    void set_free(size_t id) { update(id, 1); }
    void set_used(size_t id) { update(id, 0); }
    bool test_free(size_t id) const { return id < capacity() && longest_[0][id] != 0; }
    // The lowest free id, or npos.
    size_t find_first_free() const { return find_free_block(0); }
    // The lowest h, a multiple of 2^order, with ids [h, h + 2^order) all free; npos if
    // there is none.
    size_t find_free_block(unsigned order) const;
    // Every id is used again.
    void clear();

private:
    size_t capacity() const { return longest_.empty() ? 0 : longest_[0].size(); }
    // Sets the leaf (1 free, 0 used) and recomputes its ancestors.
    void update(size_t id, uint8_t leaf);
    // Doubles the leaves until id is one of them; the new ids are used.
    void grow(size_t id);
    // A node's value from its two children at level h - 1.
    static uint8_t combine(unsigned h, uint8_t left, uint8_t right);

    // longest_[h][j] describes ids [j << h, (j + 1) << h): 0 when none is free, else 1 +
    // the order of the largest naturally aligned block of free ids among them (h + 1:
    // all free).  longest_[0] are the leaves, longest_.back() the root.
    std::vector<std::vector<uint8_t>> longest_;
    size_t marked_ = 0;  // ids [0, marked_) may have been set free since clear()
};

}  // namespace mmrace::mm
