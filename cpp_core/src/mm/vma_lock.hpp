// Per-VMA locks (include/linux/mm.h and mm/memory.c since 6.4, seed 003): a fault may
// run under one VMA's read lock instead of mmap_lock.  A writer holding mmap_lock for
// write marks each VMA it changes write-locked (vma_start_write); the marks all end at
// once when mmap_write_unlock or mmap_write_downgrade advances mm->mm_lock_seq.
// Writer-side functions are no-ops unless the strategy is pervma (CONFIG_PER_VMA_LOCK),
// so the other strategies' schedules are unchanged.
#pragma once

#include "mm/mm_struct.hpp"

namespace mmrace::mm {

// vma_start_read: a lockless early check of vm_lock_seq against mm_lock_seq, then
// down_read_trylock(vm_lock), then the re-check.  False if the VMA is write-locked now
// or was during the attempt.  The caller holds rcu_read_lock, so vma is not freed.
bool vma_start_read(vm_area_struct* vma);
// vma_end_read: up_read(vm_lock).
void vma_end_read(vm_area_struct* vma);
// vma_assert_locked / vma_assert_write_locked.
void vma_assert_locked(const vm_area_struct* vma);
void vma_assert_write_locked(const vm_area_struct* vma);

// vma_start_write: mmap_lock held for write.  Waits for the VMA's readers to leave
// (down_write + up_write on vm_lock), then marks it write-locked for the rest of the
// mmap_lock hold.  Idempotent within one hold.
void vma_start_write(vm_area_struct* vma);
// vma_end_write_all: mmap_lock held for write; every VMA write lock ends.
void vma_end_write_all(mm_struct& mm);
// vma_mark_detached: the VMA left the tree (munmap, a merge swallowed it); a fault that
// locked it meanwhile must not use it.  Write-locked.
void vma_mark_detached(vm_area_struct* vma);

// What every VMA modifier does, under mmap_write_lock, to a VMA it is about to change,
// in either speculative strategy: vma_start_write (pervma) and vm_write_begin (spf).
// The change ends with vma_write_end_spf (spf's vm_write_end; pervma's mark lasts
// until mmap_write_unlock).  No-ops under classic.
void vma_write_begin(vm_area_struct* vma);
void vma_write_end_spf(vm_area_struct* vma);

}  // namespace mmrace::mm
