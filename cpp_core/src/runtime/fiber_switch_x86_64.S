/* mmr_fiber_switch(void **save_sp, void *new_sp)
 * Saves the callee-saved registers of the System V x86-64 ABI, plus MXCSR and the x87
 * control word (also callee-saved), on the current stack, stores the stack pointer in
 * *save_sp, and resumes the context whose stack pointer is new_sp.
 *
 * mmr_fiber_trampoline: the first "return address" of a new fiber; calls r13(r12). */
    .text
    .globl mmr_fiber_switch
    .type mmr_fiber_switch,@function
mmr_fiber_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size mmr_fiber_switch,.-mmr_fiber_switch

    .globl mmr_fiber_trampoline
    .type mmr_fiber_trampoline,@function
mmr_fiber_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size mmr_fiber_trampoline,.-mmr_fiber_trampoline

    .section .note.GNU-stack,"",@progbits
