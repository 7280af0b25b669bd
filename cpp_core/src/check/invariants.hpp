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
// folio; every reachable page table is live.  Check "invariant".
void check_mm(mm::Kernel& k, mm::mm_struct& mm);

// Every live folio's mapcount equals the PTEs that map it, and (with no pins or caches
// yet) its refcount equals its mapcount.  Only valid at a quiescent point: no op in
// flight on any thread.  Check "folio_accounting".
void check_folio_accounting(mm::Kernel& k);

// All of the above, at a quiescent point.
void check_quiescent(mm::Kernel& k);

// After every process exited: no folio, page table or VMA is left.  Check "leak".
// Returns an empty string or the violation message (called after the run ended).
const char* leak_check_name();
std::string find_leaks(mm::Kernel& k);

}  // namespace mmrace::check
