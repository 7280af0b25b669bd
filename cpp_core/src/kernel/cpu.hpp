// CPU hotplug (kernel/cpu.c): cpu_hotplug_lock, the percpu rwsem that readers take with
// cpus_read_lock() (get_online_cpus() in 2016) and that _cpu_down/_cpu_up hold for write
// while the hotplug callbacks run.
#pragma once

namespace mmrace::mm {
class Kernel;
}

namespace mmrace::kernel {

// cpus_read_lock / cpus_read_unlock: may sleep while a hotplug operation runs.
void cpus_read_lock(mm::Kernel& k);
void cpus_read_unlock(mm::Kernel& k);

// cpu_device_down then cpu_device_up of one CPU.  Each runs its callbacks under
// cpus_write_lock; the cpuid driver's (cpuid_class_cpu_callback in the seed's report)
// destroys the CPU's cpuid device on the way down, whose removal drains the active
// references of its sysfs files, and creates it again on the way up.
// No locks on entry or return.
void cpu_hotplug(mm::Kernel& k);

}  // namespace mmrace::kernel
