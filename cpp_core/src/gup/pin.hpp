// Pins held for a device (a driver's pin_user_pages, e.g. an RDMA memory region), and
// the ops that take, use and drop them (DESIGN §6, §9).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mm/folio.hpp"
#include "mmrace/program.hpp"

namespace mmrace::mm {
class Kernel;
}

namespace mmrace::gup {

// One `pin` op's pinned pages while the device holds them.
struct PinHandle {
    bool held = false;
    int process = -1;       // the pinning process; its exit releases the pin
    uint64_t addr = 0;      // the pinned start
    bool write = false;     // FOLL_WRITE: the device may write
    std::vector<mm::Pfn> pages;
};

// `pin ADDR pages=N flags=...`: pin_user_pages(_fast) with FOLL_PIN.  All N pages or
// none: a short pin is released and fails with EFAULT, as drivers do.  "H<handle>" or
// an errno.
std::string sys_pin(mm::Kernel& k, const Op& op, int handle);
// `unpin H`: "0", or EINVAL when H is not held (never pinned, failed, or unpinned).
std::string sys_unpin(mm::Kernel& k, int handle);
// `dma_read H OFF` / `dma_write H OFF VALUE`: the device reads or writes the pinned
// folio.  EINVAL when H is not held; EACCES for a write through a pin without `write`
// (the device's own permission check, like an RDMA region without remote write).
std::string dma_read(mm::Kernel& k, int handle, uint64_t off);
std::string dma_write(mm::Kernel& k, int handle, uint64_t off, uint64_t value);
// `gup ADDR pages=N flags=...`: get_user_pages (FOLL_GET), references dropped at once.
// Pages got, or an errno.
std::string sys_gup(mm::Kernel& k, const Op& op);
// `peek ADDR` / `poke ADDR VALUE`: /proc/pid/mem (mem_rw -> access_remote_vm with
// FOLL_FORCE).  The value / "ok", or EIO when nothing could be transferred.
std::string sys_peek(mm::Kernel& k, uint64_t addr);
std::string sys_poke(mm::Kernel& k, uint64_t addr, uint64_t value);
// The calling thread has exited (do_exit).  With the last thread of its process the
// device's file is released (exit_files, after exit_mm), unpinning what the process
// still holds, even while someone else (smaps' mmget) keeps its mm.
void exit_pins(mm::Kernel& k);

}  // namespace mmrace::gup
