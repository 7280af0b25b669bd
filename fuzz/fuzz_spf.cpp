// fuzz_spf: the `spf` fuzz target (mmrace/fuzz.hpp; fuzz/README.md).
#include "harness.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    return mmrace::fuzz::harness::init(mmrace::fuzz::Target::spf);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return mmrace::fuzz::harness::run_one(data, size);
}
