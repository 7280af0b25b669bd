// A kernfs node's active references (fs/kernfs/dir.c): what a sysfs file's readers and
// writers hold while they run the attribute's ->show/->store, and what removing the
// node drains.  Lockdep sees them as the rwsem-like class "s_active" (kn->dep_map):
// kernfs_get_active is a read trylock, kernfs_drain a write acquisition that waits for
// the readers, which is how the seed 002 report gets its s_active edges.
#pragma once

#include "sync/rwsem.hpp"

namespace mmrace::fs {

struct kernfs_node {
    // kn->active with kn->dep_map.  The model lets the rwsem do both: its read holds are
    // the active references, and a queued or holding writer is KN_DEACTIVATED_BIAS.
    sync::RwSem active{"s_active"};
    // Removed by kernfs_remove and not yet created again: kernfs_get_active fails.
    bool removed = false;
};

// kernfs_get_active: an active reference, or false once the node is being removed or
// gone (the caller's op then fails with -ENODEV).  Never sleeps.
bool kernfs_get_active(kernfs_node& kn);
// kernfs_put_active: drops it; the last one lets a waiting kernfs_drain go on.
void kernfs_put_active(kernfs_node& kn);
// kernfs_remove -> __kernfs_remove -> kernfs_drain: deactivates the node and sleeps
// until every active reference is put.  The caller may hold other locks (cpu down
// holds cpu_hotplug_lock): that is the dependency lockdep records.
void kernfs_remove(kernfs_node& kn);
// The node is created again (device_create on the way back up).
void kernfs_activate(kernfs_node& kn);

}  // namespace mmrace::fs
