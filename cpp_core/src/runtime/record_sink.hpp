// A listener to every trace record of a run: the fuzzers' interleaving feedback
// (fuzz/interleave.hpp) watches context switches, contention and failed trylocks
// through it.  The runtime calls it only when one is set, so a run without one pays a
// null test per record.
#pragma once

#include <cstdint>

#include "runtime/policy.hpp"
#include "runtime/site.hpp"

namespace mmrace::rt {

enum class Ev : uint8_t;

class RecordSink {
public:
    virtual ~RecordSink() = default;
    virtual void on_record(Entity who, const Site* site, Ev ev, uint64_t arg) = 0;
};

}  // namespace mmrace::rt
