#include "mm/file_thp.hpp"

#include <string>

#include "check/report.hpp"
#include "mm/lru.hpp"

namespace mmrace::mm {

void split_file_folio(Kernel& k, address_space& f, Pfn head) {
    Folio& h = k.folios[head];
    uint64_t nr = uint64_t{1} << h.order;
    // can_split_folio: the page cache's references, the caller's, and no mapping.
    if (h.mapcount || h.refcount < static_cast<int64_t>(nr) + 1 || h.pincount)
        check::violation("folio_accounting", "splitting page-cache THP pfn " + std::to_string(head) +
                                                 " that is mapped, pinned or short of references");
    int64_t others = h.refcount - static_cast<int64_t>(nr);
    uint32_t dirty = h.flags & PG_dirty;
    k.folios.split_to_order0(head);
    for (uint64_t i = 0; i < nr; ++i) {
        Pfn p = head + static_cast<Pfn>(i);
        Folio& page = k.folios[p];
        page.refcount = i == 0 ? 1 + others : 1;
        page.mapping = f.id;
        page.flags = PG_uptodate | dirty;
        if (!folio_test_lru(page) && !page.isolated) folio_add_lru(k, p);  // lru_add_split_folio
    }
    k.counters.inc(Counter::thp_split_page);
}

}  // namespace mmrace::mm
