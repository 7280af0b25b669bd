// The catalogue of injectable historical bugs (DESIGN §8): the tool's ground truth.
//
// A row exists as soon as the bug is on the target list, so that `config mutants=...`
// can name it; `built` says whether the core can switch it on yet.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "mmrace/verdict.hpp"

namespace mmrace {

// The mutants' names, in the catalogue's order: the core asks `k.mutant(MutantId::x)`.
#define MMRACE_MUTANTS(X)                                                                  \
    X(khugepaged_no_revalidate) X(khugepaged_hotplug_lock_order) X(khugepaged_retract_no_ipi) \
    X(gup_pin_no_early_cow) X(fork_shares_pinned_page) X(gup_vmas_after_retry)             \
    X(fault_retry_stale_vma) X(spf_no_seqcount_check) X(spf_no_pmd_recheck)                \
    X(spf_no_vma_refcount) X(pervma_fork_no_vma_write_lock) X(pervma_anon_vma_check_unlocked) \
    X(pervma_dup_anon_vma_unlocked) X(pervma_new_vma_unlocked) X(pervma_expand_stack_unlocked) \
    X(stackrot) X(munmap_downgrade_expand_stack) X(dirty_cow) X(cow_reuse_after_ro_gup)     \
    X(mremap_flush_after_ptl_drop) X(uffd_copy_ignores_mmap_changing)

enum class MutantId : uint8_t {
#define X(name) name,
    MMRACE_MUTANTS(X)
#undef X
    count_
};
constexpr size_t kMutantCount = static_cast<size_t>(MutantId::count_);

struct MutantInfo {
    const char* name;        // the name used in `config mutants=...`
    const char* reference;   // upstream commit, CVE, or the seed review it comes from
    const char* seed;        // the seed(s) the §8 table names ("000".."004"), else "-"
    const char* strategies;  // "all", or a comma list of the strategies it applies to
    Check check;             // the check expected to catch it (its reproducer fails it)
    const char* summary;     // what goes wrong
    bool built;              // the core implements the switch
};

// Every row of DESIGN §8, in its order.
const std::vector<MutantInfo>& mutant_catalogue();

// The row named `name`, or nullptr.
const MutantInfo* find_mutant(std::string_view name);
// Its id (the row's index).
MutantId mutant_id(const MutantInfo& row);

}  // namespace mmrace
