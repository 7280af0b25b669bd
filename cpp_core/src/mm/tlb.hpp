// TLBs (DESIGN §4): every user thread runs on its own simulated CPU with a small TLB of
// cached translations.  The MMU consults it before walking the page tables, so a PTE
// change that is not followed by a flush reaching every CPU leaves a stale
// translation, which is how several real bugs show (CVE-2018-18281, fb49c455323f).
//
// The flush side follows arch/x86/mm/tlb.c: flush_tlb_mm_range flushes the local TLB
// and sends a synchronous IPI to the other CPUs in the mm's cpumask; the IPI is only
// acknowledged when the target has IRQs on, which is what gup_fast relies on.
#pragma once

#include <array>
#include <cstdint>

#include "mm/folio.hpp"

namespace mmrace::mm {

class Kernel;
struct mm_struct;

struct TlbEntry {
    bool valid = false;
    int mm = -1;           // mm_struct::id
    uint64_t vpn = 0;      // virtual page number
    Pfn pfn = 0;
    uint64_t folio_serial = 0;  // the folio's allocation serial when cached
    bool write = false;
    // The PTE's dirty bit as cached: a store through an entry cached clean walks the
    // page table again to set _PAGE_DIRTY (x86 sets D on the first write), so that
    // reclaim sees every page written since it was mapped.
    bool dirty = false;
};

class Tlb {
public:
    static constexpr size_t kEntries = 8;
    // A cached translation of (mm, vpn), or null.
    const TlbEntry* lookup(int mm, uint64_t vpn) const;
    // Caches a translation, evicting round-robin (deterministic).
    void insert(const TlbEntry& e);
    void flush_range(int mm, uint64_t start, uint64_t end);
    void flush_mm(int mm);
    void flush_all();

private:
    std::array<TlbEntry, kEntries> e_{};
    size_t next_ = 0;
};

// flush_tlb_mm_range(mm, start, end): every CPU's translations of [start, end) in mm
// are gone when this returns.  May be called under the PTE lock (it spins, not sleeps).
void flush_tlb_mm_range(Kernel& k, mm_struct& mm, uint64_t start, uint64_t end);
// flush_tlb_mm(mm): the whole address space.
void flush_tlb_mm(Kernel& k, mm_struct& mm);
// flush_tlb_page(vma, addr).
void flush_tlb_page(Kernel& k, mm_struct& mm, uint64_t addr);

}  // namespace mmrace::mm
