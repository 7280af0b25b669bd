// Fibers: the stacks that simulated threads run on.
//
// Only one fiber runs at a time and every switch is explicit, which is what makes a run
// a pure function of (program, schedule).  Two mechanisms are built; bench/ measures
// both (bench_fiber):
//   - asm:      a hand-written callee-saved-register switch (x86-64 only), ~10x faster;
//   - ucontext: swapcontext(3), portable, but it makes a sigprocmask syscall per switch.
// The asm switch is used where it exists.  Both are annotated for AddressSanitizer
// (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber).
#pragma once

#include <cstddef>
#include <memory>

namespace mmrace::rt {

enum class FiberKind { asm_switch, ucontext };
FiberKind default_fiber_kind();
const char* fiber_kind_name(FiberKind k);

class Fiber {
public:
    using Entry = void (*)(void* arg);

    // A fiber for the calling OS thread's own stack (the "host"); it is never started,
    // only switched away from and back to.
    explicit Fiber(FiberKind kind = default_fiber_kind());
    // A fiber with its own stack of `stack_bytes` (a guard page below it).
    Fiber(FiberKind kind, size_t stack_bytes);
    ~Fiber();
    Fiber(const Fiber&) = delete;
    Fiber& operator=(const Fiber&) = delete;

    // Arms the fiber so that the next switch into it calls entry(arg) from the top of
    // its stack.  entry must never return: it ends with switch_final.
    void prepare(Entry entry, void* arg);

    // Saves the running context in `from` and resumes `to`.  Returns when something
    // switches back to `from`.
    static void switch_to(Fiber& from, Fiber& to);
    // Like switch_to, but `from` will never be resumed (its stack may be re-prepared).
    [[noreturn]] static void switch_final(Fiber& from, Fiber& to);

    // Must be the first call of an entry function (completes the sanitizer handshake).
    static void on_entry();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace mmrace::rt
