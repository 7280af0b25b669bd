// The pin, gup, dma and /proc/pid/mem ops (DESIGN §9) on top of mm/gup.c's model.
#include "gup/pin.hpp"

#include "check/report.hpp"
#include "gup/gup.hpp"
#include "mm/mmap_lock.hpp"
#include "mmrace/run.hpp"
#include "mm/kernel.hpp"
#include "ops/ops.hpp"

namespace mmrace::gup {

using namespace mm;

namespace {

std::string errno_of(long ret) {
    if (ret == -ENOMEM_) return ops::errno_name(ops::ENOMEM_);
    return ops::errno_name(ops::EFAULT_);
}

PinHandle* held(Kernel& k, int handle) {
    if (handle < 0 || static_cast<size_t>(handle) >= k.pins.size()) return nullptr;
    PinHandle& h = k.pins[handle];
    return h.held ? &h : nullptr;
}

// The pinned page (its pfn in *page) and word at byte offset off from the pinned start.
// The parser bounds off by the pin's size; a pinned folio cannot have been freed.
Folio& dma_target(Kernel& k, const PinHandle& h, uint64_t off, uint32_t* word, Pfn* page) {
    uint64_t at = (h.addr & (PAGE_SIZE - 1)) + off;
    Pfn p = h.pages.at(at >> PAGE_SHIFT);
    const Folio& folio = k.folios[page_folio(k.folios, p)];  // a THP's pin is on its head
    if (p != kZeroPfn && (!folio.in_use || folio.pincount <= 0))
        check::violation(Check::use_after_free, "DMA to pinned pfn " + std::to_string(p) + ", which was freed");
    *word = static_cast<uint32_t>((at & (PAGE_SIZE - 1)) / 8);
    *page = p;
    return k.folios[p];  // every page of a large folio keeps its own content
}

}  // namespace

std::string sys_pin(Kernel& k, const Op& op, int handle) {
    uint32_t flags = FOLL_PIN;
    if (op.flags & GUPF_WRITE) flags |= FOLL_WRITE;
    if (op.flags & GUPF_LONGTERM) flags |= FOLL_LONGTERM;
    auto n = static_cast<long>(op.pages);
    std::vector<Pfn> pages;
    long got = (op.flags & GUPF_FAST) ? gup_fast_fallback(k, op.addr, n, flags, pages)
                                      : pin_user_pages(k, op.addr, n, flags, pages);
    if (got != n) {
        unpin_user_pages(k, pages);
        return errno_of(got < 0 ? got : -EFAULT_);
    }
    if (handle < 0) throw ModelError("pin op without a handle");
    if (static_cast<size_t>(handle) >= k.pins.size()) k.pins.resize(handle + 1);
    PinHandle& h = k.pins[handle];
    h = PinHandle{true, k.thread_process.at(k.rt.self()), op.addr, (flags & FOLL_WRITE) != 0,
                  std::move(pages)};
    return "H" + std::to_string(handle);
}

std::string sys_unpin(Kernel& k, int handle) {
    PinHandle* h = held(k, handle);
    if (!h) return ops::errno_name(ops::EINVAL_);
    h->held = false;
    unpin_user_pages(k, h->pages);
    h->pages.clear();
    return "0";
}

std::string dma_read(Kernel& k, int handle, uint64_t off) {
    // The device's access is one step: the pin cannot go between its check and the access.
    k.rt.yield(MMR_SITE("dma_read"), rt::Ev::access, off);
    PinHandle* h = held(k, handle);
    if (!h) return ops::errno_name(ops::EINVAL_);
    uint32_t w = 0;
    Pfn p = 0;
    return std::to_string(dma_target(k, *h, off, &w, &p).read_word(w));
}

std::string dma_write(Kernel& k, int handle, uint64_t off, uint64_t value) {
    k.rt.yield(MMR_SITE("dma_write"), rt::Ev::access, off);
    PinHandle* h = held(k, handle);
    if (!h) return ops::errno_name(ops::EINVAL_);
    if (!h->write) return ops::errno_name(ops::EACCES_);
    uint32_t w = 0;
    Pfn p = 0;
    dma_target(k, *h, off, &w, &p).write_word(w, value);
    k.folios[page_folio(k.folios, p)].flags |= PG_dirty;  // a folio's flags live on its head
    return "ok";
}

std::string sys_gup(Kernel& k, const Op& op) {
    uint32_t flags = 0;
    if (op.flags & GUPF_WRITE) flags |= FOLL_WRITE;
    if (op.flags & GUPF_FORCE) flags |= FOLL_FORCE;
    mm_struct& mm = k.current_mm();
    std::vector<Pfn> pages;
    long got;
    if (op.flags & GUPF_FAST_ONLY) {  // get_user_pages_fast_only: as many as it got
        got = gup_fast_fallback(k, op.addr, static_cast<long>(op.pages), flags | FOLL_GET | FOLL_FAST_ONLY,
                                pages);
    } else if (op.flags & GUPF_UNLOCKED) {
        got = get_user_pages_unlocked(k, mm, op.addr, static_cast<long>(op.pages), pages, flags);
    } else {
        mmap_read_lock(mm, MMR_SITE("get_user_pages"));
        got = get_user_pages(k, mm, op.addr, static_cast<long>(op.pages), flags, pages);
        mmap_read_unlock(mm, MMR_SITE("get_user_pages"));
    }
    for (Pfn p : pages) gup_put_folio(k, p, FOLL_GET);  // put_page
    return got < 0 ? errno_of(got) : std::to_string(got);
}

std::string sys_peek(Kernel& k, uint64_t addr) {
    uint64_t v = 0;
    if (!access_remote_vm(k, k.current_mm(), addr, &v, false)) return "EIO";
    return std::to_string(v);
}

std::string sys_poke(Kernel& k, uint64_t addr, uint64_t value) {
    if (!access_remote_vm(k, k.current_mm(), addr, &value, true)) return "EIO";
    return "ok";
}

void exit_pins(Kernel& k) {
    int p = k.thread_process.at(k.rt.self());
    if (p < 0 || ++k.processes.at(p).nr_exited != k.processes.at(p).nr_threads) return;
    for (size_t h = 0; h < k.pins.size(); ++h)
        if (k.pins[h].held && k.pins[h].process == p) sys_unpin(k, static_cast<int>(h));
}

}  // namespace mmrace::gup
