#include "kernel/cpu.hpp"

#include "fs/kernfs.hpp"
#include "mm/kernel.hpp"

namespace mmrace::kernel {

// percpu_down_read: the model's rwsem orders readers behind a waiting writer, as
// percpu_rwsem does once the writer has set its readers_block.
void cpus_read_lock(mm::Kernel& k) { k.cpu_hotplug_lock.down_read(MMR_SITE("cpus_read_lock")); }
void cpus_read_unlock(mm::Kernel& k) { k.cpu_hotplug_lock.up_read(MMR_SITE("cpus_read_unlock")); }

namespace {

// _cpu_down: CPUHP teardown callbacks under cpus_write_lock; among them the cpuid
// driver's, which unregisters the device (device_destroy -> device_del ->
// kernfs_remove).
void cpu_down(mm::Kernel& k) {
    k.cpu_hotplug_lock.down_write(MMR_SITE("cpus_write_lock"));
    fs::kernfs_remove(k.cpuid_kn);
    k.cpu_hotplug_lock.up_write(MMR_SITE("cpus_write_unlock"));
}

// _cpu_up: the startup callbacks, the cpuid device created again.
void cpu_up(mm::Kernel& k) {
    k.cpu_hotplug_lock.down_write(MMR_SITE("cpus_write_lock"));
    fs::kernfs_activate(k.cpuid_kn);
    k.cpu_hotplug_lock.up_write(MMR_SITE("cpus_write_unlock"));
}

}  // namespace

void cpu_hotplug(mm::Kernel& k) {
    cpu_down(k);
    cpu_up(k);
}

}  // namespace mmrace::kernel
