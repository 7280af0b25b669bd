// The seed 002 lockdep scenario's two sides that are not khugepaged: a write(2) to a
// sysfs file, and CPU hotplug.
#include "fs/kernfs.hpp"
#include "kernel/cpu.hpp"
#include "ops/ops.hpp"

namespace mmrace::ops {

// kernfs_fop_write as the report's stack shows it (kernfs_fop_write+0x8e takes the
// active reference, +0xaf faults in the user copy): the copy runs under s_active.
// Today's kernfs_fop_write_iter copies before kernfs_get_active; the model keeps the
// seed's order because that is the kernel whose lockdep report it reproduces.
std::string sysfs_write(Kernel& k, uint64_t addr) {
    if (!fs::kernfs_get_active(k.cpuid_kn)) return errno_name(ENODEV_);
    uint64_t value = 0;
    bool copied = copy_from_user(k, addr, value);
    fs::kernfs_put_active(k.cpuid_kn);
    return copied ? "ok" : errno_name(EFAULT_);
}

std::string cpu_hotplug(Kernel& k) {
    kernel::cpu_hotplug(k);
    return "0";
}

}  // namespace mmrace::ops
