// Sites: stable names of the places in the model where a scheduling decision or a
// trace event happens ("mmap_read_lock@do_user_addr_fault").  The trace hash mixes the
// site's name hash, never its address, so hashes agree across builds and machines.
#pragma once

#include <cstdint>
#include <string_view>

namespace mmrace::rt {

constexpr uint64_t fnv1a(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : s) {
        h ^= static_cast<uint8_t>(c);
        h *= 0x100000001b3ull;
    }
    return h;
}

struct Site {
    const char* name;
    uint64_t hash;
};

}  // namespace mmrace::rt

// A pointer to a static Site for a string literal.
#define MMR_SITE(lit)                                                          \
    ([]() -> const ::mmrace::rt::Site* {                                       \
        static constexpr ::mmrace::rt::Site site_{lit, ::mmrace::rt::fnv1a(lit)}; \
        return &site_;                                                         \
    }())
