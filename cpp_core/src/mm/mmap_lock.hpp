// The mmap_lock API (include/linux/mmap_lock.h), with its lockdep assertions.
#pragma once

#include "mm/mm_struct.hpp"
#include "runtime/site.hpp"

namespace mmrace::mm {

void mmap_read_lock(mm_struct& mm, const rt::Site* site = nullptr);
bool mmap_read_trylock(mm_struct& mm, const rt::Site* site = nullptr);
void mmap_read_unlock(mm_struct& mm, const rt::Site* site = nullptr);
void mmap_write_lock(mm_struct& mm, const rt::Site* site = nullptr);
bool mmap_write_trylock(mm_struct& mm, const rt::Site* site = nullptr);
// mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING): dup_mmap locks the child's mm
// while holding the parent's.
void mmap_write_lock_nested(mm_struct& mm, int subclass, const rt::Site* site = nullptr);
void mmap_write_unlock(mm_struct& mm, const rt::Site* site = nullptr);
void mmap_write_downgrade(mm_struct& mm, const rt::Site* site = nullptr);
void mmap_assert_locked(const mm_struct& mm);
void mmap_assert_write_locked(const mm_struct& mm);

}  // namespace mmrace::mm
