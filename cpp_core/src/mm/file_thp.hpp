// Page-cache THPs (shmem, from collapse_file): one PMD-order folio holds HPAGE_PMD_NR
// consecutive indexes of a file (xarray's multi-index entry).  The model's i_pages keeps
// each index's page (head + index - folio->index); the folio's refcount holds one page
// cache reference per page, as collapse_file's folio_ref_add(new_folio, HPAGE_PMD_NR - 1).
//
// Deviation: the model maps no large folio with PTEs (mm/folio.hpp) and no file folio
// with a PMD (do_set_pmd), so a fault that reaches a page-cache THP splits it back into
// order-0 folios first (split_folio, which the kernel does on truncate and reclaim, not
// on a fault).  Collapse then changes where the data lives and when page tables go,
// which is what its races are about, but not how the range is mapped afterwards.
#pragma once

#include "mm/filemap.hpp"
#include "mm/kernel.hpp"

namespace mmrace::mm {

// folio_contains: the folio at head holds page `index` of its file.
inline bool folio_contains(const Kernel& k, Pfn head, uint64_t index) {
    const Folio& f = k.folios[head];
    return index >= f.index && index - f.index < (uint64_t{1} << f.order);
}

// split_folio for an unmapped page-cache THP of f: every page becomes an order-0
// folio in the page cache with its own page-cache reference, on the LRU, as dirty as
// the THP was.  The head page keeps the folio lock (held by the caller) and the
// caller's other references.
void split_file_folio(Kernel& k, address_space& f, Pfn head);

}  // namespace mmrace::mm
