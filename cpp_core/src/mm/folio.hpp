// Folios (include/linux/mm_types.h struct folio): the unit of memory that page tables
// map.  Content is word-granular and sparse: a word never written reads as zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "mm/free_id_tree.hpp"

namespace mmrace::mm {

using Pfn = uint32_t;
constexpr Pfn kZeroPfn = 0;  // the shared zero page (ZERO_PAGE(0)); never freed

enum FolioFlag : uint32_t {
    PG_anon = 1u << 0,
    PG_anon_exclusive = 1u << 1,  // PageAnonExclusive: only one mm may map it writable
    PG_dirty = 1u << 2,
    PG_uptodate = 1u << 3,
    PG_swapcache = 1u << 4,  // in the swap cache: folio->swap names its slot
    PG_writeback = 1u << 5,  // write I/O in flight (swap_writeout)
    PG_active = 1u << 6,     // on (or bound for) an active LRU list
    PG_referenced = 1u << 7, // folio_mark_accessed / reclaim's first look saw it young
};

struct lruvec;
constexpr int8_t kNoLru = -1;

struct Folio {
    int64_t refcount = 0;   // folio_ref_count
    int64_t mapcount = 0;   // folio_mapcount: page-table mappings
    // FOLL_PIN pins (folio->_pincount for large folios, on the head; an order-0 folio
    // counts them only in its refcount, GUP_PIN_COUNTING_BIAS each: the model keeps both
    // for its checks).
    int64_t pincount = 0;
    uint32_t flags = 0;
    bool in_use = false;
    uint64_t serial = 0;  // which allocation this is: tells a reused folio from the old one
    int mapping = -1;     // the file whose page cache holds it (folio->mapping), or -1
    // For an anonymous folio (PG_anon), folio->mapping is its anon_vma: the id of the
    // anon_vma whose tree reaches every VMA that may map it (0 = none).
    uint64_t anon_vma = 0;
    // Its page index in that file, or for an anonymous folio its linear page index
    // (linear_page_index: vma->vm_pgoff + offset), from which rmap finds its address.
    uint64_t index = 0;
    uint64_t swap = 0;    // folio->swap: the swap slot while PG_swapcache, else 0
    // Isolated from the LRU (folio_isolate_lru cleared PG_lru): a reclaimer holds it
    // and no one else may isolate it.
    bool isolated = false;
    // The LRU (mm/lru.hpp): which list it is on (enum lru_list; kNoLru when PG_lru is
    // clear) and its neighbours there, intrusive like struct folio's lru list_head:
    // lru_prev towards the list's head (newer), lru_next towards its tail (older).
    int8_t lru = kNoLru;
    Pfn lru_prev = UINT32_MAX;
    Pfn lru_next = UINT32_MAX;
    std::vector<uint32_t> writeback_waiters;  // folio_wait_writeback
    // PG_locked: a sleeping bit lock (folio_lock); held across read I/O.
    bool locked = false;
    uint32_t lock_owner = UINT32_MAX;  // the thread, or none while I/O holds it
    std::vector<uint32_t> lock_waiters;
    std::map<uint32_t, uint64_t> words;  // word index in the page -> value (zero if absent)
    // Large folios (THP, mm/huge_memory.c): a PMD-order folio is 2^order pages at
    // consecutive pfns.  Its head carries the folio's refcount, pincount, flags and
    // mapcounts; every page keeps its own content (`words`), its own PTE mapcount and
    // its own PageAnonExclusive bit (a tail's `flags` hold nothing else).  A large
    // folio is mapped by huge PMDs (entire_mapcount), by PTEs (page_mapcount of each
    // page), or both; the head's `mapcount` is folio_mapcount, all of them together
    // (_large_mapcount + 1).  Every mapping of a large folio holds a reference, as
    // every mapping of a small one does.
    unsigned order = 0;           // folio_order
    int64_t entire_mapcount = 0;  // PMD mappings (head only)
    int64_t page_mapcount = 0;    // PTE mappings of this page (large folios only)
    // CONFIG_MM_ID (include/linux/rmap.h): which two mms the head's mappings belong
    // to (0: the slot is free, MM_ID_DUMMY), how many each holds, and whether the
    // folio may be mapped by more than one mm (FOLIO_MM_IDS_SHARED_BIT).  As upstream,
    // a third mm is not tracked and keeps the bit set until one slot holds them all.
    int mm_id[2] = {0, 0};
    int64_t mm_id_mapcount[2] = {0, 0};
    bool maybe_mapped_shared = false;
    Pfn head = 0;                 // compound_head, for a tail; the pfn itself otherwise
    bool tail = false;

    uint64_t read_word(uint32_t w) const {
        auto it = words.find(w);
        return it == words.end() ? 0 : it->second;
    }
    void write_word(uint32_t w, uint64_t v) {
        if (v == 0) words.erase(w);
        else words[w] = v;
    }
};

// The folio pool: `limit` allocatable folios (config folios=N) besides the zero page.
// Pfns are handed out lowest-first so that runs are deterministic; the free pfns are
// kept in a FreeIdTree, so every allocation and free costs O(log n).  Storage grows on
// demand and is kept across runs: reset() only rewinds the pool (in time proportional
// to the pfns the last run freed); alloc() reinitialises the folio it hands out,
// reusing its containers' memory.
class FolioPool {
public:
    FolioPool() { reset(0); }
    // Frees every folio; `limit` folios may be allocated in the next run.
    void reset(size_t limit);
    // alloc_anon_folio: a zeroed order-0 folio with refcount 1, or kNoPfn when all
    // `limit` folios are in use.
    Pfn alloc();
    // folio_alloc(order): a zeroed folio of 2^order pages at aligned consecutive pfns,
    // refcount 1 on its head, or kNoPfn when no such block is free.  The pool's limit
    // (config folios=N) counts pages, so a PMD-order folio uses 2^order of them.
    Pfn alloc_order(unsigned order);
    // The bookkeeping of __split_folio_to_order(0): every page of the large folio at
    // head becomes an order-0 folio with the head's flags (but its own
    // PageAnonExclusive), anon_vma, mapping and consecutive indexes, its PTE mappings
    // as its mapcount, and refcount 0 (the caller hands out the references).  Same
    // serials: the memory is the same.
    void split_to_order0(Pfn head);
    Folio& operator[](Pfn p) { return folios_[p]; }
    const Folio& operator[](Pfn p) const { return folios_[p]; }
    // folio_get / folio_put: the last put frees the folio (all its pages).
    void get(Pfn p);
    void put(Pfn p);
    size_t in_use() const { return used_; }
    size_t limit() const { return limit_; }
    // Every pfn handed out since reset() is below this (pfn 0 is the zero page).
    size_t high_water() const { return nr_; }
    static constexpr Pfn kNoPfn = UINT32_MAX;
    // The LRU lists a freed folio leaves (__page_cache_release); set once by Kernel.
    void set_lruvec(lruvec* l) { lruvec_ = l; }

private:
    // The lowest h, a multiple of 2^order and at least 2^order, whose pages
    // [h, h + 2^order) are each free or not yet handed out (>= nr_); the limit is the
    // caller's to check.
    size_t lowest_free_block(unsigned order) const;

    std::deque<Folio> folios_;  // a deque keeps references stable as it grows
    size_t nr_ = 1;             // pfns [0, nr_) handed out since reset()
    FreeIdTree free_;           // freed pfns, all below nr_
    size_t limit_ = 0;
    size_t used_ = 0;
    uint64_t serial_ = 0;
    lruvec* lruvec_ = nullptr;
};

// page_folio: the folio a page belongs to (its head's pfn).
inline Pfn page_folio(const FolioPool& pool, Pfn p) { return pool[p].tail ? pool[p].head : p; }
// folio_test_large: the page belongs to a large folio.
inline bool folio_test_large(const FolioPool& pool, Pfn p) { return pool[p].tail || pool[p].order > 0; }
// folio_nr_pages of the folio headed by head.
inline uint64_t folio_nr_pages(const FolioPool& pool, Pfn head) { return uint64_t{1} << pool[head].order; }
// PageAnonExclusive / SetPageAnonExclusive / ClearPageAnonExclusive: a page's own bit
// (for a PMD-mapped THP, the head page's speaks for the whole folio).
inline bool PageAnonExclusive(const FolioPool& pool, Pfn page) { return pool[page].flags & PG_anon_exclusive; }
inline void SetPageAnonExclusive(FolioPool& pool, Pfn page) { pool[page].flags |= PG_anon_exclusive; }
inline void ClearPageAnonExclusive(FolioPool& pool, Pfn page) { pool[page].flags &= ~PG_anon_exclusive; }

}  // namespace mmrace::mm
