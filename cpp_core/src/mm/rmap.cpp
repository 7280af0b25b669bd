#include "mm/rmap.hpp"

#include "check/report.hpp"
#include "gup/gup.hpp"
#include "mm/huge_memory.hpp"
#include "mm/kernel.hpp"
#include "mm/mm_struct.hpp"
#include "mm/pgalloc.hpp"
#include "mmrace/run.hpp"

namespace mmrace::mm {

namespace {

// try_to_unmap_one for an order-0 folio at addr of vma.  Returns false to stop the walk
// (a mapping that cannot be unmapped).
bool try_to_unmap_one(Kernel& k, Pfn p, vm_area_struct* vma, uint64_t addr) {
    mm_struct& mm = *vma->vm_mm;
    TableId t = pte_table_lookup(k, mm, addr);  // page_vma_mapped_walk
    if (t == kNoTable) return true;
    PteRef pte{t, k.geo.index(addr, PTE_LEVEL)};
    pte_lock(k, pte, MMR_SITE("try_to_unmap_one"));
    pte_t pteval = ptep_get(k, pte);
    if (!pte_present(pteval) || pte_special(pteval) || pte_pfn(pteval) != p) {
        pte_unlock(k, pte, MMR_SITE("try_to_unmap_one"));
        return true;
    }
    if (vma->vm_flags & VM_LOCKED) {  // mlocked: the folio stays
        pte_unlock(k, pte, MMR_SITE("try_to_unmap_one"));
        return false;
    }
    Folio& f = k.folios[p];
    // ptep_clear_flush: nobody may keep using the old translation once it is gone.
    set_pte_at(k, pte, 0);
    flush_tlb_page(k, mm, addr);
    if (pte_dirty(pteval)) f.flags |= PG_dirty;  // folio_mark_dirty
    if (f.flags & PG_anon) {
        swp_entry_t entry{f.swap};
        if (!(f.flags & PG_swapcache) || !swap_duplicate(k, entry)) {
            set_pte_at(k, pte, pteval);
            pte_unlock(k, pte, MMR_SITE("try_to_unmap_one"));
            return false;
        }
        // folio_try_share_anon_rmap_pte: the swap PTE remembers exclusivity; a
        // maybe-pinned exclusive page cannot become shared, so it stays mapped.
        bool anon_exclusive = f.flags & PG_anon_exclusive;
        if (anon_exclusive && gup::folio_maybe_dma_pinned(k, p)) {
            swap_free(k, entry);
            set_pte_at(k, pte, pteval);
            pte_unlock(k, pte, MMR_SITE("try_to_unmap_one"));
            return false;
        }
        f.flags &= ~PG_anon_exclusive;
        pte_t swp_pte = swp_entry_to_pte(entry);
        if (anon_exclusive) swp_pte = pte_swp_mkexclusive(swp_pte);
        if (pte_uffd_wp(pteval)) swp_pte = pte_swp_mkuffd_wp(swp_pte);
        set_pte_at(k, pte, swp_pte);
    }
    folio_remove_rmap_pte(k, p, mm);
    pte_unlock(k, pte, MMR_SITE("try_to_unmap_one"));
    k.folios.put(p);  // the mapping's reference; the caller holds another
    return true;
}

// rmap_walk_anon with try_to_unmap_one.  folio_lock_anon_vma_read: a folio that is no
// longer mapped may have an anon_vma already freed, so it is not looked at.
void rmap_walk_anon(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    if (!f.mapcount || !f.anon_vma) return;
    anon_vma* av = anon_vma_of(k, f.anon_vma);
    // A mapped folio's anon_vma is alive: a VMA that maps it is on its tree.
    get_anon_vma(av);
    anon_vma_lock_read(av);
    uint64_t pgoff = f.index;
    std::vector<vm_area_struct*> vmas = av->rb_root;  // stable: we hold the lock
    for (vm_area_struct* vma : vmas) {
        uint64_t addr = vma_address(vma, pgoff);
        if (addr == UINT64_MAX) continue;
        if (!try_to_unmap_one(k, p, vma, addr)) break;
        if (!k.folios[p].mapcount) break;  // rwc->done: folio_not_mapped
    }
    anon_vma_unlock_read(av);
    put_anon_vma(k, av);
}

// rmap_walk_file with try_to_unmap_one, under i_mmap_rwsem for read.
void rmap_walk_file(Kernel& k, Pfn p) {
    Folio& f = k.folios[p];
    if (f.mapping < 0) return;
    address_space& as = *k.files[f.mapping];
    as.i_mmap_rwsem.down_read(MMR_SITE("rmap_walk_file"));
    uint64_t pgoff = f.index;
    std::vector<vm_area_struct*> vmas = as.i_mmap;
    for (vm_area_struct* vma : vmas) {
        uint64_t addr = vma_address(vma, pgoff);
        if (addr == UINT64_MAX) continue;
        if (!try_to_unmap_one(k, p, vma, addr)) break;
        if (!k.folios[p].mapcount) break;
    }
    as.i_mmap_rwsem.up_read(MMR_SITE("rmap_walk_file"));
}

}  // namespace

void folio_add_new_anon_rmap(Kernel& k, Pfn p, vm_area_struct* vma, uint64_t addr, bool exclusive) {
    __folio_add_new_anon_rmap(k, p, vma->anon_vma, linear_page_index(vma, addr), exclusive);
}

void __folio_add_new_anon_rmap(Kernel& k, Pfn p, uint64_t anon_vma_id, uint64_t index, bool exclusive) {
    if (!anon_vma_id) throw ModelError("folio_add_new_anon_rmap on a VMA without an anon_vma");
    Folio& f = k.folios[p];
    anon_vma* av = anon_vma_of(k, anon_vma_id);
    f.anon_vma = exclusive ? av->id : av->root->id;  // __folio_set_anon
    f.index = index;
    f.flags |= PG_anon;
    if (exclusive) f.flags |= PG_anon_exclusive;
    f.mapcount = 1;
}

void folio_add_anon_rmap_pte(Kernel& k, Pfn page, vm_area_struct* vma, uint64_t, bool exclusive) {
    if (exclusive) SetPageAnonExclusive(k.folios, page);
    folio_add_rmap_pte(k, page, *vma->vm_mm);
}

void folio_move_anon_rmap(Kernel& k, Pfn p, uint64_t anon_vma) {
    k.folios[p].anon_vma = anon_vma;
}

namespace {

// The mm as the folio's mm id slots name it (mm->mm_id; 0 is MM_ID_DUMMY).
int mm_id(const mm_struct& mm) { return mm.id + 1; }

// folio_add_return_large_mapcount (CONFIG_MM_ID): nr more mappings by mm.  A second mm
// in the slots, or a first one while untracked mappings exist, may share the folio.
void folio_add_large_mapcount(Folio& f, int64_t nr, const mm_struct& mm) {
    int id = mm_id(mm);
    f.mapcount += nr;
    if (f.mm_id[0] == id) {
        f.mm_id_mapcount[0] += nr;
    } else if (f.mm_id[1] == id) {
        f.mm_id_mapcount[1] += nr;
    } else if (f.mm_id[0] == 0) {
        f.mm_id[0] = id;
        f.mm_id_mapcount[0] = nr;
        if (f.mapcount != nr) f.maybe_mapped_shared = true;  // other mappings already
    } else if (f.mm_id[1] == 0) {
        f.mm_id[1] = id;
        f.mm_id_mapcount[1] = nr;
        f.maybe_mapped_shared = true;  // slot 0 certainly has mappings as well
    }
}

// folio_sub_return_large_mapcount: nr mappings fewer by mm.  Once one slot owns every
// mapping left, the folio is mapped exclusively again.
void folio_sub_large_mapcount(Folio& f, int64_t nr, const mm_struct& mm) {
    int id = mm_id(mm);
    f.mapcount -= nr;
    for (int slot = 0; slot < 2; ++slot) {
        if (f.mm_id[slot] != id) continue;
        f.mm_id_mapcount[slot] -= nr;
        if (f.mm_id_mapcount[slot] > 0) return;
        f.mm_id_mapcount[slot] = 0;  // may underflow: mappings added while untracked
        f.mm_id[slot] = 0;
        break;
    }
    if (f.mm_id_mapcount[0] == f.mapcount || f.mm_id_mapcount[1] == f.mapcount)
        f.maybe_mapped_shared = false;
}

void mapcount_underflow(Pfn p) {
    check::violation(Check::mapcount, "mapcount underflow on pfn " + std::to_string(p));
}

}  // namespace

void folio_add_rmap_ptes(Kernel& k, Pfn page, uint64_t nr, const mm_struct& mm) {
    if (page == kZeroPfn) return;
    if (!folio_test_large(k.folios, page)) {
        k.folios[page].mapcount += static_cast<int64_t>(nr);
        return;
    }
    for (uint64_t i = 0; i < nr; ++i) ++k.folios[page + static_cast<Pfn>(i)].page_mapcount;
    folio_add_large_mapcount(k.folios[page_folio(k.folios, page)], static_cast<int64_t>(nr), mm);
}

void folio_remove_rmap_ptes(Kernel& k, Pfn page, uint64_t nr, const mm_struct& mm) {
    if (page == kZeroPfn) return;
    if (!folio_test_large(k.folios, page)) {
        if ((k.folios[page].mapcount -= static_cast<int64_t>(nr)) < 0) mapcount_underflow(page);
        return;
    }
    for (uint64_t i = 0; i < nr; ++i)
        if (--k.folios[page + static_cast<Pfn>(i)].page_mapcount < 0) mapcount_underflow(page + static_cast<Pfn>(i));
    Pfn head = page_folio(k.folios, page);
    folio_sub_large_mapcount(k.folios[head], static_cast<int64_t>(nr), mm);
    if (k.folios[head].mapcount < 0) mapcount_underflow(head);
}

void folio_add_rmap_pmd(Kernel& k, Pfn head, const mm_struct& mm) {
    ++k.folios[head].entire_mapcount;
    folio_add_large_mapcount(k.folios[head], 1, mm);
}

void folio_remove_rmap_pmd(Kernel& k, Pfn head, const mm_struct& mm) {
    Folio& f = k.folios[head];
    if (--f.entire_mapcount < 0) mapcount_underflow(head);
    folio_sub_large_mapcount(f, 1, mm);
    if (f.mapcount < 0) mapcount_underflow(head);
}

bool folio_maybe_mapped_shared(const FolioPool& pool, Pfn head) {
    const Folio& f = pool[head];
    if (!f.order) return f.mapcount > 1;
    if (f.mapcount <= 1) return false;
    if (f.entire_mapcount || static_cast<uint64_t>(f.mapcount) > folio_nr_pages(pool, head)) return true;
    return f.maybe_mapped_shared;
}

void try_to_unmap(Kernel& k, Pfn p) {
    // Reclaim splits a large folio first (shrink_folio_list: no THP swap here).
    if (folio_test_large(k.folios, p)) throw ModelError("try_to_unmap of a large folio");
    if (k.folios[p].flags & PG_anon) rmap_walk_anon(k, p);
    else rmap_walk_file(k, p);
}

namespace {

// struct folio_referenced_arg
struct ReferencedArg {
    int64_t mapcount;  // mappings not visited yet
    int referenced = 0;
    uint64_t vm_flags = 0;
};

// One mapping folio_referenced_one found: its young bit cleared, counted.
void referenced_mapping(vm_area_struct* vma, bool young, ReferencedArg& pra) {
    --pra.mapcount;
    if (young) {
        ++pra.referenced;
        pra.vm_flags |= vma->vm_flags & ~static_cast<uint64_t>(VM_LOCKED);
    }
}

// folio_referenced_one for the huge PMD at addr, if it maps the folio at head
// (pmdp_clear_young_notify).  Returns whether it did.  Takes the PMD lock.
bool referenced_pmd(Kernel& k, Pfn head, vm_area_struct* vma, uint64_t addr, ReferencedArg& pra) {
    PmdRef pmd = pmd_lookup(k, *vma->vm_mm, addr);
    if (!pmd || !pmd_trans_huge(pmd_entry(k, pmd))) return false;
    pmd_lock(*vma->vm_mm, MMR_SITE("folio_referenced_one"));
    uint64_t& e = pmd_entry(k, pmd);
    bool mapped = pmd_trans_huge(e) && pmd_pfn(e) == head;
    bool young = mapped && (e & _PAGE_ACCESSED);
    if (young) e &= ~_PAGE_ACCESSED;
    pmd_unlock(*vma->vm_mm, MMR_SITE("folio_referenced_one"));
    if (mapped) referenced_mapping(vma, young, pra);
    return mapped;
}

// folio_referenced_one for the folio at head in vma, whose first page rmap places at
// pgoff: each huge PMD or PTE mapping one of its pages (page_vma_mapped_walk) is
// looked at under its lock.  Returns false to stop the walk: every mapping was seen, or
// an mlocked one was found.
bool folio_referenced_one(Kernel& k, Pfn head, vm_area_struct* vma, uint64_t pgoff, ReferencedArg& pra) {
    uint64_t nr = folio_nr_pages(k.folios, head);
    for (uint64_t i = 0; i < nr && pra.mapcount > 0; ++i) {
        uint64_t addr = vma_address(vma, pgoff + i);
        if (addr == UINT64_MAX) continue;
        if (nr > 1 && referenced_pmd(k, head, vma, addr, pra)) {  // the PMD maps them all
            if (!(vma->vm_flags & VM_LOCKED)) break;
            pra.vm_flags |= VM_LOCKED;
            return false;
        }
        TableId t = pte_table_lookup(k, *vma->vm_mm, addr);
        if (t == kNoTable) continue;
        PteRef pte{t, k.geo.index(addr, PTE_LEVEL)};
        pte_lock(k, pte, MMR_SITE("folio_referenced_one"));
        pte_t pteval = ptep_get(k, pte);
        if (!pte_present(pteval) || pte_special(pteval) || pte_pfn(pteval) != head + i) {
            pte_unlock(k, pte, MMR_SITE("folio_referenced_one"));
            continue;
        }
        if (vma->vm_flags & VM_LOCKED) {
            pte_unlock(k, pte, MMR_SITE("folio_referenced_one"));
            pra.vm_flags |= VM_LOCKED;
            return false;
        }
        bool young = pteval & _PAGE_ACCESSED;
        if (young) set_pte_at(k, pte, pteval & ~_PAGE_ACCESSED);  // ptep_clear_young_notify
        pte_unlock(k, pte, MMR_SITE("folio_referenced_one"));
        referenced_mapping(vma, young, pra);
    }
    return pra.mapcount > 0;  // rwc->done: folio_referenced_one saw them all
}

// rmap_walk_anon with rwc->try_lock (folio_lock_anon_vma_read).  false if the anon_vma
// lock was contended.  The walk holds a reference on the anon_vma across the trylock,
// which is a scheduling point here (upstream it is under RCU with no window).
bool referenced_walk_anon(Kernel& k, Pfn p, ReferencedArg& pra) {
    Folio& f = k.folios[p];
    if (!f.mapcount || !f.anon_vma) return true;
    anon_vma* av = anon_vma_of(k, f.anon_vma);
    get_anon_vma(av);
    bool locked = anon_vma_trylock_read(av);
    if (locked) {
        // folio_mapped again under the lock; then av's tree is stable.
        for (size_t i = 0; k.folios[p].mapcount && i < av->rb_root.size(); ++i)
            if (!folio_referenced_one(k, p, av->rb_root[i], f.index, pra)) break;
        anon_vma_unlock_read(av);
    }
    put_anon_vma(k, av);
    return locked;
}

// rmap_walk_file with rwc->try_lock: i_mmap_trylock_read.  false if contended.
bool referenced_walk_file(Kernel& k, Pfn p, ReferencedArg& pra) {
    int mapping = k.folios[p].mapping;
    if (mapping < 0) return true;  // truncated meanwhile
    address_space& as = *k.files[mapping];
    if (!as.i_mmap_rwsem.down_read_trylock(MMR_SITE("rmap_walk_file"))) return false;
    for (size_t i = 0; i < as.i_mmap.size(); ++i)
        if (!folio_referenced_one(k, p, as.i_mmap[i], k.folios[p].index, pra)) break;
    as.i_mmap_rwsem.up_read(MMR_SITE("rmap_walk_file"));
    return true;
}

}  // namespace

int folio_referenced(Kernel& k, Pfn p, bool is_locked, uint64_t* vm_flags) {
    Folio& f = k.folios[p];
    *vm_flags = 0;
    bool anon = f.flags & PG_anon;
    // !folio_raw_mapping || !folio_mapped: nothing maps it, nothing to look at.
    if (!f.mapcount || (anon ? !f.anon_vma : f.mapping < 0)) return 0;
    ReferencedArg pra{f.mapcount};
    bool we_locked = false;
    if (!is_locked && !anon) {
        if (!folio_trylock(k, p)) return 1;
        we_locked = true;
    }
    bool uncontended = anon ? referenced_walk_anon(k, p, pra) : referenced_walk_file(k, p, pra);
    if (we_locked) folio_unlock(k, p);
    *vm_flags = pra.vm_flags;
    return uncontended ? pra.referenced : -1;
}

}  // namespace mmrace::mm
