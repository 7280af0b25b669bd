// User loads and stores: the MMU (DESIGN §4).  The walk is lockless and, like the
// hardware walk, atomic with the access it permits; a missing or insufficient PTE
// raises a fault through the configured strategy and the access is retried.
#include "check/report.hpp"
#include "fault/fault.hpp"
#include "mm/huge_memory.hpp"
#include "mm/pgalloc.hpp"
#include "ops/ops.hpp"
#include "sync/lockdep.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

// The access itself, through a translation (from the TLB or a fresh walk).  A
// translation whose folio was freed or reused since it was cached is a stale TLB
// entry: the real CPU would touch memory that is no longer this mapping's.
void touch_folio(Kernel& k, const TlbEntry& tr, uint64_t addr, bool write, uint64_t& value) {
    Folio& f = k.folios[tr.pfn];
    if (tr.pfn != kZeroPfn && (!f.in_use || f.serial != tr.folio_serial))
        check::violation(f.in_use ? Check::stale_tlb : Check::use_after_free,
                         std::string(write ? "write" : "read") + " at " + hex(addr) +
                             " through a stale TLB entry to pfn " + std::to_string(tr.pfn) +
                             (f.in_use ? ", which was freed and reused" : ", which was freed"));
    auto word = static_cast<uint32_t>((addr & (PAGE_SIZE - 1)) / 8);
    if (write) f.write_word(word, value);
    else value = f.read_word(word);
}

// One attempt: the TLB, else a walk that, if the PTE allows the access, fills the TLB.
// Returns false with the x86 error code to fault with.
bool mmu_try_access(Kernel& k, mm_struct& mm, uint64_t addr, bool write, bool user,
                    uint64_t& value, uint32_t& error_code) {
    Tlb& tlb = k.tlbs[k.rt.self()];
    uint64_t vpn = addr >> PAGE_SHIFT;
    if (const TlbEntry* e = tlb.lookup(mm.id, vpn); e && (!write || (e->write && e->dirty))) {
        touch_folio(k, *e, addr, write, value);
        return true;
    }
    TableId t = pte_table_lookup(k, mm, addr);
    pte_t* ptep = t == kNoTable ? nullptr : &k.tables[t].entries[k.geo.index(addr, PTE_LEVEL)];
    // A huge PMD leaf ends the walk one level up: it maps the page of its folio.
    PmdRef pmd = t == kNoTable ? pmd_lookup(k, mm, addr) : PmdRef{};
    Pfn sub = 0;
    if (pmd && pmd_trans_huge(pmd_entry(k, pmd))) {
        ptep = &pmd_entry(k, pmd);
        sub = static_cast<Pfn>((addr >> PAGE_SHIFT) & (hpage_pmd_nr(k) - 1));
    }
    pte_t pte = ptep ? *ptep : 0;
    if (pte_hw_present(pte) && (!write || pte_write(pte))) {
        *ptep = write ? pte_mkdirty(pte_mkyoung(pte)) : pte_mkyoung(pte);  // hardware A/D bits
        Pfn pfn = pte_pfn(pte) + sub;
        TlbEntry e{true, mm.id, vpn, pfn, k.folios[pfn].serial, pte_write(pte),
                   write || pte_dirty(pte)};
        tlb.insert(e);
        touch_folio(k, e, addr, write, value);
        return true;
    }
    error_code = (user ? fault::X86_PF_USER : 0) | (write ? fault::X86_PF_WRITE : 0) |
                 (pte_hw_present(pte) ? fault::X86_PF_PROT : 0);
    return false;
}

// `user`: a user-mode access (the op's own load or store); else the kernel's uaccess on
// the thread's behalf (copy_from_user), whose faults carry no X86_PF_USER.
std::string user_access(Kernel& k, uint64_t addr, bool write, bool user, uint64_t& value) {
    mm_struct& mm = k.current_mm();
    for (;;) {
        k.rt.yield(write ? MMR_SITE("mmu_store") : MMR_SITE("mmu_load"), rt::Ev::access, addr);
        uint32_t error_code = 0;
        if (mmu_try_access(k, mm, addr, write, user, value, error_code)) return "";
        switch (fault::do_user_addr_fault(k, addr, error_code)) {
            case fault::UserFault::handled: break;
            case fault::UserFault::sigsegv: return "SIGSEGV";
            case fault::UserFault::sigbus: return "SIGBUS";
            case fault::UserFault::oom: return "OOM";
        }
    }
}

}  // namespace

std::string user_read(Kernel& k, uint64_t addr) {
    uint64_t v = 0;
    std::string sig = user_access(k, addr, false, true, v);
    return sig.empty() ? std::to_string(v) : sig;
}

std::string user_write(Kernel& k, uint64_t addr, uint64_t value) {
    std::string sig = user_access(k, addr, true, true, value);
    return sig.empty() ? "ok" : sig;
}

bool copy_from_user(Kernel& k, uint64_t addr, uint64_t& value) {
    // __might_fault (mm/memory.c)
    sync::might_sleep(MMR_SITE("__might_fault"));
    sync::might_lock_read(k.current_mm().mmap_lock, MMR_SITE("__might_fault"));
    // Any failure, VM_FAULT_OOM included, ends in kernelmode_fixup_or_oops: -EFAULT.
    return user_access(k, addr, false, false, value).empty();
}

}  // namespace mmrace::ops
