// mprotect(2): do_mprotect_pkey, mprotect_fixup and change_protection (mm/mprotect.c).
#include "mm/huge_memory.hpp"
#include "mm/mmap_lock.hpp"
#include "mm/mmu_gather.hpp"
#include "mm/pgalloc.hpp"
#include "mm/vma_merge.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

uint64_t prot_to_vm_flags(uint8_t prot) {
    uint64_t f = 0;
    if (prot & PROT_READ_) f |= VM_READ;
    if (prot & PROT_WRITE_) f |= VM_WRITE;
    if (prot & PROT_EXEC_) f |= VM_EXEC;
    return f;
}

// can_change_pte_writable for a private mapping: an exclusive anonymous page may be
// made writable right away instead of taking a write fault later.
bool can_change_pte_writable(Kernel& k, const vm_area_struct* vma, pte_t pte) {
    if (!(vma->vm_flags & VM_WRITE) || pte_special(pte) || (vma->vm_flags & VM_SHARED)) return false;
    // Do we need write faults for uffd-wp tracking?  (userfaultfd_pte_wp)
    if ((vma->vm_flags & VM_UFFD_WP) && pte_uffd_wp(pte)) return false;
    const Folio& f = k.folios[page_folio(k.folios, pte_pfn(pte))];
    return (f.flags & PG_anon) && PageAnonExclusive(k.folios, pte_pfn(pte));
}

// pte_modify with vm_get_page_prot(newflags): a private writable mapping's page
// protection is read-only (COW), PROT_NONE is _PAGE_PROTNONE.
pte_t pte_modify(Kernel& k, const vm_area_struct* vma, pte_t old) {
    pte_t keep = old & ~(_PAGE_PRESENT | _PAGE_RW | _PAGE_PROTNONE);
    if (!(vma->vm_flags & VM_ACCESS_FLAGS)) return keep | _PAGE_PROTNONE;
    pte_t n = keep | _PAGE_PRESENT;
    if (can_change_pte_writable(k, vma, n)) n |= _PAGE_RW;
    return n;
}

// change_pte_range over one PTE table's part of [addr, end).
void change_pte_range(mmu_gather& tlb, vm_area_struct* vma, uint64_t addr, uint64_t end) {
    Kernel& k = *tlb.k;
    TableId t = pte_table_lookup(k, *vma->vm_mm, addr);
    if (t == kNoTable) return;
    PteRef lock_ref{t, 0};
    pte_lock(k, lock_ref, MMR_SITE("change_pte_range"));
    for (; addr < end; addr += PAGE_SIZE) {
        pte_t& e = k.tables[t].entries[k.geo.index(addr, PTE_LEVEL)];
        if (!pte_present(e)) continue;
        pte_t n = pte_modify(k, vma, e);
        if (n == e) continue;
        e = n;
        tlb_remove_tlb_entry(tlb, addr);  // tlb_flush_pte_range
    }
    pte_unlock(k, lock_ref, MMR_SITE("change_pte_range"));
}

void change_protection(mmu_gather& tlb, vm_area_struct* vma, uint64_t start, uint64_t end) {
    uint64_t span = tlb.k->geo.span(PTE_LEVEL);
    for (uint64_t a = start; a < end;) {
        uint64_t next = std::min((a / span + 1) * span, end);
        // change_pmd_range: a huge PMD wholly in the range changes in place, else splits.
        PmdRef pmd = pmd_lookup(*tlb.k, *vma->vm_mm, a);
        if (pmd && pmd_trans_huge(pmd_entry(*tlb.k, pmd))) {
            if (next - a == span && change_huge_pmd(tlb, vma, pmd, a)) {
                a = next;
                continue;
            }
            split_huge_pmd(*tlb.k, vma, a);
        }
        change_pte_range(tlb, vma, a, next);
        a = next;
    }
}

// mprotect_fixup: returns the VMA now covering [start, end).
vm_area_struct* mprotect_fixup(mmu_gather& tlb, mm_struct& mm, vm_area_struct* vma,
                               uint64_t start, uint64_t end, uint64_t newflags) {
    if (newflags == vma->vm_flags) return vma;
    // A private mapping made writable is charged (VM_ACCOUNT) and stays charged when it
    // is made read-only again, unless it is anonymous and never faulted (no anon_vma).
    uint64_t oldflags = vma->vm_flags;
    if (newflags & VM_WRITE) {
        if (!(oldflags & (VM_ACCOUNT | VM_WRITE | VM_SHARED))) newflags |= VM_ACCOUNT;
    } else if ((oldflags & VM_ACCOUNT) && vma->vma_is_anonymous() && !vma->anon_vma) {
        newflags &= ~static_cast<uint64_t>(VM_ACCOUNT);
    }
    if (newflags == oldflags) return vma;
    vma = vma_modify_flags(mm, vma, start, end, newflags);
    change_protection(tlb, vma, start, end);
    return vma;
}

}  // namespace

std::string sys_mprotect(Kernel& k, uint64_t start, uint64_t pages, uint8_t prot) {
    mm_struct& mm = k.current_mm();
    uint64_t end = start + pages * PAGE_SIZE;
    mmap_write_lock(mm, MMR_SITE("do_mprotect_pkey"));
    mmu_gather tlb;
    tlb_gather_mmu(tlb, k, mm);
    int error = 0;
    vm_area_struct* vma = mm.find_vma(start);
    if (!vma || vma->vm_start > start) error = ENOMEM_;
    uint64_t tmp = vma ? vma->vm_start : 0, nstart = start;
    while (!error && vma && vma->vm_start < end) {
        if (vma->vm_start != tmp) {  // a hole
            error = ENOMEM_;
            break;
        }
        uint64_t newflags = prot_to_vm_flags(prot) | (vma->vm_flags & ~VM_ACCESS_FLAGS);
        // VM_MAY* sit four bits above VM_*: asking for more than the mapping may have.
        if ((newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS) {
            error = EACCES_;
            break;
        }
        vma = mprotect_fixup(tlb, mm, vma, nstart, std::min(vma->vm_end, end), newflags);
        // vma_iter_end: continue after the VMA now covering the range (it may have
        // merged with its successor).
        tmp = nstart = vma->vm_end;
        vma = mm.find_vma(tmp);
    }
    if (!error && tmp < end) error = ENOMEM_;
    tlb_finish_mmu(tlb);
    mmap_write_unlock(mm, MMR_SITE("do_mprotect_pkey"));
    return error ? errno_name(error) : "0";
}

}  // namespace mmrace::ops
