#include "fs/kernfs.hpp"

namespace mmrace::fs {

bool kernfs_get_active(kernfs_node& kn) {
    // atomic_inc_unless_negative(&kn->active) + rwsem_acquire_read(..., trylock=1).  The
    // node may be removed while the trylock waits at its scheduling point: look after.
    if (!kn.active.down_read_trylock(MMR_SITE("kernfs_get_active"))) return false;
    if (!kn.removed) return true;
    kn.active.up_read(MMR_SITE("kernfs_get_active"));
    return false;
}

void kernfs_put_active(kernfs_node& kn) { kn.active.up_read(MMR_SITE("kernfs_put_active")); }

void kernfs_remove(kernfs_node& kn) {
    // kernfs_drain: rwsem_acquire (a write acquisition lockdep validates), then
    // wait_event until the active count reaches KN_DEACTIVATED_BIAS.
    kn.active.down_write(MMR_SITE("kernfs_drain"));
    kn.removed = true;
    kn.active.up_write(MMR_SITE("kernfs_drain"));
}

void kernfs_activate(kernfs_node& kn) { kn.removed = false; }

}  // namespace mmrace::fs
