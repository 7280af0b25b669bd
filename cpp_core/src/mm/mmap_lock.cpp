#include "mm/mmap_lock.hpp"

#include "mm/kernel.hpp"
#include "mm/vma_lock.hpp"
#include "sync/domain.hpp"
#include "sync/lockdep.hpp"

namespace mmrace::mm {

namespace {
const rt::Site* or_default(const rt::Site* s, const rt::Site* d) { return s ? s : d; }

// Contention on mmap_lock is what every alternative fault path tries to avoid.
void count_wait() {
    if (sync::lock_waited()) Kernel::current().counters.inc(Counter::mmap_lock_wait);
}
}  // namespace

void mmap_read_lock(mm_struct& mm, const rt::Site* site) {
    mm.mmap_lock.down_read(or_default(site, MMR_SITE("mmap_read_lock")));
    count_wait();
}

bool mmap_read_trylock(mm_struct& mm, const rt::Site* site) {
    return mm.mmap_lock.down_read_trylock(or_default(site, MMR_SITE("mmap_read_trylock")));
}

void mmap_read_unlock(mm_struct& mm, const rt::Site* site) {
    mm.mmap_lock.up_read(or_default(site, MMR_SITE("mmap_read_unlock")));
}

void mmap_write_lock(mm_struct& mm, const rt::Site* site) {
    mm.mmap_lock.down_write(or_default(site, MMR_SITE("mmap_write_lock")));
    count_wait();
}

bool mmap_write_trylock(mm_struct& mm, const rt::Site* site) {
    return mm.mmap_lock.down_write_trylock(or_default(site, MMR_SITE("mmap_write_trylock")));
}

void mmap_write_lock_nested(mm_struct& mm, int subclass, const rt::Site* site) {
    mm.mmap_lock.down_write_nested(subclass, or_default(site, MMR_SITE("mmap_write_lock_nested")));
    count_wait();
}

void mmap_write_unlock(mm_struct& mm, const rt::Site* site) {
    vma_end_write_all(mm);
    mm.mmap_lock.up_write(or_default(site, MMR_SITE("mmap_write_unlock")));
}

void mmap_write_downgrade(mm_struct& mm, const rt::Site* site) {
    vma_end_write_all(mm);
    mm.mmap_lock.downgrade_write(or_default(site, MMR_SITE("mmap_write_downgrade")));
}

void mmap_assert_locked(const mm_struct& mm) {
    sync::lockdep_assert_held(mm.mmap_lock, sync::LockMode::any);
}

void mmap_assert_write_locked(const mm_struct& mm) {
    sync::lockdep_assert_held(mm.mmap_lock, sync::LockMode::write);
}

}  // namespace mmrace::mm
