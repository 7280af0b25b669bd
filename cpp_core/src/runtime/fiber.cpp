#include "runtime/fiber.hpp"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MMR_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MMR_ASAN 1
#endif

#ifdef MMR_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     size_t* size_old);
void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
}
#endif

#if MMRACE_FIBER_ASM
extern "C" void mmr_fiber_switch(void** save_sp, void* new_sp);
extern "C" void mmr_fiber_trampoline();
#endif

namespace mmrace::rt {

struct Fiber::Impl {
    FiberKind kind;
    void* sp = nullptr;          // asm: saved stack pointer
    ucontext_t uc{};             // ucontext: saved context
    char* map = nullptr;         // the mapping: guard page + stack
    size_t map_len = 0;
    const void* stack_bottom = nullptr;  // for the sanitizer; learned for the host
    size_t stack_size = 0;
    void* fake_stack = nullptr;
    void (*uc_entry)(void*) = nullptr;  // ucontext: entry not yet started
    void* uc_arg = nullptr;
};

namespace {

// The fiber whose switch is in flight: lets on_entry() tell the sanitizer where the
// previous stack was (the host stack is only known that way).
thread_local Fiber::Impl* tl_switch_from = nullptr;

void sanitizer_start(Fiber::Impl& from, Fiber::Impl& to, bool final) {
#ifdef MMR_ASAN
    __sanitizer_start_switch_fiber(final ? nullptr : &from.fake_stack, to.stack_bottom,
                                   to.stack_size);
#endif
    tl_switch_from = &from;
}

// fake_stack is the resumed fiber's saved ASan fake stack (nullptr on first entry).
void sanitizer_finish(void* fake_stack) {
#ifdef MMR_ASAN
    const void* bottom = nullptr;
    size_t size = 0;
    __sanitizer_finish_switch_fiber(fake_stack, &bottom, &size);
    if (tl_switch_from && !tl_switch_from->map) {
        tl_switch_from->stack_bottom = bottom;
        tl_switch_from->stack_size = size;
    }
#endif
    (void)fake_stack;
}

size_t page_size() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// Stacks of finished fibers, kept for the next run on this OS thread: a run makes a
// fiber per simulated thread, and mapping, faulting in and unmapping their stacks cost
// more than the run itself.  Each entry is a whole mapping (guard page + stack).
// Fibers may outlive the cache at thread exit (a kernel kept in another thread_local):
// a plain flag, which has no destructor, says when it is gone.
thread_local bool tl_stacks_gone = false;

struct StackCache {
    static constexpr size_t kMax = 64;
    std::vector<std::pair<char*, size_t>> free;
    ~StackCache() {
        for (auto& [m, len] : free) munmap(m, len);
        tl_stacks_gone = true;
    }
    char* take(size_t len) {
        for (size_t i = 0; i < free.size(); ++i)
            if (free[i].second == len) {
                char* m = free[i].first;
                free[i] = free.back();
                free.pop_back();
                return m;
            }
        return nullptr;
    }
    void give(char* m, size_t len, size_t guard) {
        if (free.size() >= kMax) {
            munmap(m, len);
            return;
        }
#ifdef MMR_ASAN
        // A fiber that finished never returned from its frames: clear their redzones.
        __asan_unpoison_memory_region(m + guard, len - guard);
#endif
        (void)guard;
        free.emplace_back(m, len);
    }
};
thread_local StackCache tl_stacks;

thread_local Fiber::Entry tl_uc_entry = nullptr;
thread_local void* tl_uc_arg = nullptr;

void ucontext_entry() { tl_uc_entry(tl_uc_arg); }

}  // namespace

FiberKind default_fiber_kind() {
#if MMRACE_FIBER_ASM
    return FiberKind::asm_switch;
#else
    return FiberKind::ucontext;
#endif
}

const char* fiber_kind_name(FiberKind k) {
    return k == FiberKind::asm_switch ? "asm" : "ucontext";
}

Fiber::Fiber(FiberKind kind) : impl_(std::make_unique<Impl>()) {
#if !MMRACE_FIBER_ASM
    if (kind == FiberKind::asm_switch) throw std::runtime_error("asm fibers: not on this CPU");
#endif
    impl_->kind = kind;
}

Fiber::Fiber(FiberKind kind, size_t stack_bytes) : Fiber(kind) {
    const size_t pg = page_size();
    stack_bytes = (stack_bytes + pg - 1) / pg * pg;
    impl_->map_len = stack_bytes + pg;
    impl_->map = tl_stacks_gone ? nullptr : tl_stacks.take(impl_->map_len);
    if (!impl_->map) {
        void* m = mmap(nullptr, impl_->map_len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) throw std::bad_alloc();
        impl_->map = static_cast<char*>(m);
        mprotect(impl_->map, pg, PROT_NONE);  // overflow faults instead of corrupting
    }
    impl_->stack_bottom = impl_->map + pg;
    impl_->stack_size = stack_bytes;
}

Fiber::~Fiber() {
    if (!impl_ || !impl_->map) return;
    if (tl_stacks_gone) munmap(impl_->map, impl_->map_len);
    else tl_stacks.give(impl_->map, impl_->map_len, page_size());
}

void Fiber::prepare(Entry entry, void* arg) {
    Impl& f = *impl_;
    char* top = static_cast<char*>(const_cast<void*>(f.stack_bottom)) + f.stack_size;
    if (f.kind == FiberKind::ucontext) {
        getcontext(&f.uc);
        f.uc.uc_stack.ss_sp = const_cast<void*>(f.stack_bottom);
        f.uc.uc_stack.ss_size = f.stack_size;
        f.uc.uc_link = nullptr;
        // makecontext passes only ints; the entry and its argument go through TLS,
        // read by ucontext_entry before anything else can switch.
        makecontext(&f.uc, ucontext_entry, 0);
        f.uc_entry = entry;
        f.uc_arg = arg;
        return;
    }
#if MMRACE_FIBER_ASM
    // Frame popped by mmr_fiber_switch: [mxcsr|fcw] r15 r14 r13 r12 rbx rbp ret.
    auto* base = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t{15});
    uint64_t* sp = base - 8;
    uint32_t csr[2];
    asm volatile("stmxcsr %0" : "=m"(csr[0]));
    asm volatile("fnstcw %0" : "=m"(csr[1]));
    std::memcpy(&sp[0], csr, 8);
    sp[1] = 0;                                          // r15
    sp[2] = 0;                                          // r14
    sp[3] = reinterpret_cast<uint64_t>(entry);          // r13
    sp[4] = reinterpret_cast<uint64_t>(arg);            // r12
    sp[5] = 0;                                          // rbx
    sp[6] = 0;                                          // rbp
    sp[7] = reinterpret_cast<uint64_t>(&mmr_fiber_trampoline);
    f.sp = sp;
#else
    (void)entry;
    (void)arg;
    (void)top;
#endif
}

static void raw_switch(Fiber::Impl& from, Fiber::Impl& to) {
    if (to.kind == FiberKind::ucontext) {
        if (to.uc_entry) {  // first entry: hand the entry point over through TLS
            tl_uc_entry = to.uc_entry;
            tl_uc_arg = to.uc_arg;
            to.uc_entry = nullptr;
        }
        swapcontext(&from.uc, &to.uc);
        return;
    }
#if MMRACE_FIBER_ASM
    mmr_fiber_switch(&from.sp, to.sp);
#endif
}

void Fiber::switch_to(Fiber& from, Fiber& to) {
    sanitizer_start(*from.impl_, *to.impl_, false);
    raw_switch(*from.impl_, *to.impl_);
    sanitizer_finish(from.impl_->fake_stack);
}

void Fiber::switch_final(Fiber& from, Fiber& to) {
    sanitizer_start(*from.impl_, *to.impl_, true);
    raw_switch(*from.impl_, *to.impl_);
    __builtin_unreachable();
}

void Fiber::on_entry() { sanitizer_finish(nullptr); }

}  // namespace mmrace::rt
