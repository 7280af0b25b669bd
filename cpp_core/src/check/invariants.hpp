// Structural invariants and leak checks (DESIGN §7, checks 1 and 5).  Each failed
// check ends the run with verdict `violation` and the check's name.
#pragma once

#include <string>

namespace mmrace::mm {
class Kernel;
struct mm_struct;
}  // namespace mmrace::mm

namespace mmrace::check {

// One address space: VMAs sorted, non-overlapping, page aligned; every present PTE
// inside a VMA whose protection allows it; a writable anonymous PTE maps an exclusive
// folio; every reachable page table is live.  Check "invariant".  rmap reaches every
// anonymous mapping (the folio's anon_vma is on the VMA's chain, its index matches the
// address) and every swap PTE's VMA: check "rmap".  A swap PTE names a live slot:
// "use_after_free".
void check_mm(mm::Kernel& k, mm::mm_struct& mm);

// Every live folio's mapcount equals the PTEs that map it, and (with no pins yet) its
// refcount equals its mapcount plus the page cache's or swap cache's reference.  Only
// valid at a quiescent point: no op in flight on any thread.  Check "folio_accounting";
// every swap slot's count equals the swap PTEs that hold it and SWAP_HAS_CACHE matches
// the swap cache: check "swap_accounting".
void check_folio_accounting(mm::Kernel& k);

// All of the above, at a quiescent point.
void check_quiescent(mm::Kernel& k);

// After every process exited: no folio, swap slot, anon_vma, page table or VMA is left
// (page-cache folios and clean swap-cache folios no swap PTE needs are caches, not
// leaks).  Check "leak".
// Returns an empty string or the violation message (called after the run ended).
std::string find_leaks(mm::Kernel& k);

}  // namespace mmrace::check
