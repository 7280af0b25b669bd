// User loads and stores: the MMU (DESIGN §4).  The walk is lockless and, like the
// hardware walk, atomic with the access it permits; a missing or insufficient PTE
// raises a fault through the configured strategy and the access is retried.
#include "fault/fault.hpp"
#include "mm/pgalloc.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

using namespace mm;

namespace {

// One attempt: walk and, if the PTE allows it, access.  Returns false with the x86
// error code to fault with.
bool mmu_try_access(Kernel& k, mm_struct& mm, uint64_t addr, bool write, uint64_t& value,
                    uint32_t& error_code) {
    TableId t = pte_table_lookup(k, mm, addr);
    pte_t* ptep = t == kNoTable ? nullptr : &k.tables[t].entries[k.geo.index(addr, PTE_LEVEL)];
    pte_t pte = ptep ? *ptep : 0;
    if (pte_present(pte) && (!write || pte_write(pte))) {
        Folio& f = k.folios[pte_pfn(pte)];
        auto word = static_cast<uint32_t>((addr & (PAGE_SIZE - 1)) / 8);
        if (write) f.write_word(word, value);
        else value = f.read_word(word);
        *ptep = write ? pte_mkdirty(pte_mkyoung(pte)) : pte_mkyoung(pte);  // hardware A/D bits
        return true;
    }
    error_code = fault::X86_PF_USER | (write ? fault::X86_PF_WRITE : 0) |
                 (pte_present(pte) ? fault::X86_PF_PROT : 0);
    return false;
}

std::string user_access(Kernel& k, uint64_t addr, bool write, uint64_t& value) {
    mm_struct& mm = k.current_mm();
    for (;;) {
        k.rt.yield(write ? MMR_SITE("mmu_store") : MMR_SITE("mmu_load"), rt::Ev::access, addr);
        uint32_t error_code = 0;
        if (mmu_try_access(k, mm, addr, write, value, error_code)) return "";
        switch (fault::do_user_addr_fault(k, addr, error_code)) {
            case fault::UserFault::handled: break;
            case fault::UserFault::sigsegv: return "SIGSEGV";
            case fault::UserFault::sigbus: return "SIGBUS";
        }
    }
}

}  // namespace

std::string user_read(Kernel& k, uint64_t addr) {
    uint64_t v = 0;
    std::string sig = user_access(k, addr, false, v);
    return sig.empty() ? std::to_string(v) : sig;
}

std::string user_write(Kernel& k, uint64_t addr, uint64_t value) {
    std::string sig = user_access(k, addr, true, value);
    return sig.empty() ? "ok" : sig;
}

}  // namespace mmrace::ops
