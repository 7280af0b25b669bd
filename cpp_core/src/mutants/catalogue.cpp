// The rows of DESIGN §8.  `check` is the check that catches each bug: for a built
// mutant, the one its reproducer in examples/mutants/ fails (pytests/test_mutants.py);
// for one not built yet, read from how the bug shows: a freed object used later is
// use_after_free, a lock cycle lockdep, wrong data seen by a process or device
// linearizability, a broken structural rule of DESIGN §7.1 invariant.
#include "mutants/catalogue.hpp"

#include <iterator>
#include <stdexcept>
#include <string>

namespace mmrace {

const std::vector<MutantInfo>& mutant_catalogue() {
    static const std::vector<MutantInfo> rows = {
        {"khugepaged_no_revalidate", "seed 002 review", "002", "all", Check::use_after_free,
         "after up_read/down_write the VMA (and PMD) are used without a fresh lookup", true},
        {"khugepaged_hotplug_lock_order", "seed 002 patch 2", "002", "all", Check::lockdep,
         "cpu_hotplug_lock taken under mmap_lock: a lockdep cycle with kernfs s_active", true},
        {"khugepaged_retract_no_ipi", "2ba99c5e0881", "-", "all", Check::use_after_free,
         "a page table freed while gup_fast (IRQs off) still walks it", true},
        {"gup_pin_no_early_cow", "70e806e4e645", "004", "all", Check::invariant,
         "after fork, a write fault COWs a page away from its FOLL_PIN pin: DMA data lost", true},
        {"fork_shares_pinned_page", "70e806e4e645", "-", "all", Check::invariant,
         "fork shares a maybe-DMA-pinned anonymous page instead of copying it for the child",
         true},
        {"gup_vmas_after_retry", "seed 001", "001", "all", Check::use_after_free,
         "GUP keeps using its vmas array after the lock was dropped for VM_FAULT_RETRY", true},
        {"fault_retry_stale_vma", "seeds 001, 003", "001,003", "classic,pervma", Check::use_after_free,
         "a retried fault reuses the VMA found before the lock was dropped", true},
        {"spf_no_seqcount_check", "seed 000", "000", "spf", Check::invariant,
         "spf installs a PTE without re-checking the VMA sequence count", true},
        {"spf_no_pmd_recheck", "seed 000", "000", "spf", Check::pgtable,
         "spf installs a PTE without re-checking the PMD against a collapse", true},
        {"spf_no_vma_refcount", "seed 000", "000", "spf", Check::use_after_free,
         "spf uses a VMA that munmap freed meanwhile", false},
        {"pervma_fork_no_vma_write_lock", "fb49c455323f", "-", "pervma", Check::linearizability,
         "a per-VMA fault during fork COWs a page while siblings write through stale TLB "
         "entries",
         true},
        {"pervma_anon_vma_check_unlocked", "657b5146955e", "-", "pervma", Check::invariant,
         "lock_vma_under_rcu checks vma->anon_vma before taking the VMA lock", false},
        {"pervma_dup_anon_vma_unlocked", "d8ab9f7b644a", "-", "pervma", Check::invariant,
         "a merge sets anon_vma without the VMA write lock", false},
        {"pervma_new_vma_unlocked", "33313a747e81", "-", "pervma", Check::invariant,
         "a new VMA is visible in the tree before it is write-locked", false},
        {"pervma_expand_stack_unlocked", "c137381f71ae", "-", "pervma", Check::invariant,
         "stack expansion without the VMA write lock", false},
        {"stackrot", "CVE-2023-3269", "-", "all", Check::use_after_free,
         "stack expansion under mmap read lock replaces a tree node that a reader still uses",
         false},
        {"munmap_downgrade_expand_stack", "CVE-2020-29369", "-", "all", Check::use_after_free,
         "munmap downgrades to read; a stack expands over the detached range", false},
        {"dirty_cow", "CVE-2016-5195", "-", "all", Check::linearizability,
         "a FOLL_FORCE write retried after madvise(DONTNEED) lands in the page cache", true},
        {"cow_reuse_after_ro_gup", "CVE-2020-29374", "-", "all", Check::linearizability,
         "a write reuses a page that a read-only GUP in the child still references", true},
        {"mremap_flush_after_ptl_drop", "CVE-2018-18281", "-", "all", Check::use_after_free,
         "mremap drops the PTE lock before the TLB flush; a stale entry outlives the page", false},
        {"uffd_copy_ignores_mmap_changing", "df2cc96e7701", "-", "all", Check::uffd_event_order,
         "UFFDIO_COPY races fork/mremap without the mmap_changing check", true},
    };
    return rows;
}

namespace {
constexpr std::string_view kIdNames[] = {
#define X(name) #name,
    MMRACE_MUTANTS(X)
#undef X
};
static_assert(std::size(kIdNames) == kMutantCount);
}  // namespace

MutantId mutant_id(const MutantInfo& row) {
    const auto& rows = mutant_catalogue();
    auto i = static_cast<size_t>(&row - rows.data());
    if (i >= rows.size() || kIdNames[i] != row.name)
        throw std::logic_error("mutant catalogue and MMRACE_MUTANTS disagree at " +
                               std::string(row.name));
    return static_cast<MutantId>(i);
}

const MutantInfo* find_mutant(std::string_view name) {
    for (const auto& m : mutant_catalogue())
        if (name == m.name) return &m;
    return nullptr;
}

}  // namespace mmrace
