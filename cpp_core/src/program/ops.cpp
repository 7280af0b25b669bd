// The words of the op registry's enumerated argument kinds (mmrace/ops.hpp), from the
// format's vocabulary (mmr_lexer.hpp), for _core.op_specs().
#include <vector>

#include "mmrace/ops.hpp"
#include "program/mmr_lexer.hpp"

namespace mmrace {

namespace {

template <class V, size_t N>
std::vector<std::string_view> names(const std::array<mmr::Word<V>, N>& words) {
    std::vector<std::string_view> out;
    for (const auto& w : words) out.push_back(w.name);
    return out;
}

// mmap flags other than file:FNAME:PGOFF, in print order.
std::vector<std::string_view> mmap_flag_names() {
    std::vector<std::string_view> out = {"private", "shared", "anon"};
    for (const auto& w : mmr::kMmapOptions) out.push_back(w.name);
    return out;
}

}  // namespace

std::span<const std::string_view> arg_words(ArgKind k) {
    static const std::vector<std::string_view> prot = {"none", "r", "w", "x"};
    static const std::vector<std::string_view> mmap_flags = mmap_flag_names();
    static const std::vector<std::string_view> advice = names(mmr::kAdvice);
    static const std::vector<std::string_view> mremap = names(mmr::kMremapFlags);
    static const std::vector<std::string_view> pin = names(mmr::kPinFlags);
    static const std::vector<std::string_view> gup = names(mmr::kGupFlags);
    static const std::vector<std::string_view> uffd = names(mmr::kUffdModes);
    static const std::vector<std::string_view> on_off = {"on", "off"};
    switch (k) {
        case ArgKind::prot: return prot;
        case ArgKind::mmap_flags: return mmap_flags;
        case ArgKind::advice: return advice;
        case ArgKind::mremap_flags: return mremap;
        case ArgKind::pin_flags: return pin;
        case ArgKind::gup_flags: return gup;
        case ArgKind::uffd_mode: return uffd;
        case ArgKind::on_off: return on_off;
        default: return {};
    }
}

}  // namespace mmrace
