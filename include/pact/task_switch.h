/** @file
 * The x86-64 stack switch, inline: for PACT_AWAIT (pact/task.h), not an API
 * of its own. Nothing here is to be called directly.
 *
 * A task's await switches stacks in its caller's own function, not in a
 * library function that returns into the other stack: a return the CPU's
 * return predictor cannot foresee is a mispredict at every switch, and the
 * return up from the await into the other task's code was one more. The
 * library decides where to switch (pact_await_enter_); the switch itself
 * is this asm, where the await is written. Other targets, and compilers
 * without GNU C's asm, call the library's functions instead.
 */
#ifndef PACT_TASK_SWITCH_H
#define PACT_TASK_SWITCH_H

#if defined(PACT__LAYER) && PACT__LAYER < 3
#error                                                                         \
    "pact/task_switch.h is layer 3 (await): a lower layer must not include it"
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PACT_NO_INLINE_SWITCH)
/** 1 where PACT_AWAIT switches stacks inline (x86-64, GNU C); 0 elsewhere.
 *  Define PACT_NO_INLINE_SWITCH before including pact.h to call the
 *  library instead. */
#define PACT_SWITCH_INLINE 1

/** @cond PACT_INTERNAL */
/* The x86-64 switch, inline at its call site: no call and no ret. A ret
 * returns to the other context's call site while the return stack
 * predicts this one's, a mispredict at every switch; and a call without
 * its ret (pop and jump) leaves an entry that makes every later ret on
 * the resumed stack mispredict. Here both ways are jumps: the indirect
 * predictor learns each site's targets, the return stack is left alone.
 *
 * It pushes only what it must below the red zone (the enclosing function
 * may keep data there): the resume address, rbp (the frame pointer, so
 * no clobber) and the control words -- MXCSR and the x87 control word
 * are per context (fesetround in a task stays in it). Every other
 * register is declared clobbered: the compiler saves what is live across,
 * as around a call, and more (xmm, x87), since nothing is callee-saved
 * here.
 *
 * Unwinding (the stall detector's backtrace() from a signal, gdb): from
 * the moment it moves the stack pointer, the asm describes itself as a
 * frame called from its resume address, whose caller is the enclosing
 * function: the frame is the same on both stacks, so the rules hold
 * across the load of the other stack pointer (the unwinder then sees the
 * other context's function). The nop before the resume address is never
 * run: it puts the address just before it, where an unwinder looks up a
 * return address, back under the compiler's rules. Under CET's
 * indirect-branch tracking the resume address is marked a jump target. */
#if defined(__GCC_HAVE_DWARF2_CFI_ASM)
#define PACT_SWITCH_CFI_(x) x "\n\t"
#else
#define PACT_SWITCH_CFI_(x) ""
#endif
#if defined(__CET__) && (__CET__ & 1)
#define PACT_SWITCH_ENDBR_ "endbr64\n\t"
#else
#define PACT_SWITCH_ENDBR_ ""
#endif
#if defined(__AVX512F__)
#define PACT_SWITCH_AVX512_                                                    \
    , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",  \
        "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",         \
        "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#else
#define PACT_SWITCH_AVX512_
#endif
/* one instruction or directive a line: */
/* clang-format off */
static inline __attribute__((always_inline)) void
pact_switch_(void **from, void *const *to)
{
    __asm__ volatile(
        "leaq 1f(%%rip), %%rax\n\t"
        "leaq -128(%%rsp), %%rsp\n\t"
        PACT_SWITCH_CFI_(".cfi_remember_state")
        PACT_SWITCH_CFI_(".cfi_def_cfa %%rsp, 128")
        PACT_SWITCH_CFI_(".cfi_register %%rip, %%rax")
        "pushq %%rax\n\t"
        PACT_SWITCH_CFI_(".cfi_def_cfa_offset 136")
        PACT_SWITCH_CFI_(".cfi_offset %%rip, -136")
        "pushq %%rbp\n\t"
        PACT_SWITCH_CFI_(".cfi_def_cfa_offset 144")
        PACT_SWITCH_CFI_(".cfi_offset %%rbp, -144")
        "leaq -8(%%rsp), %%rsp\n\t"
        PACT_SWITCH_CFI_(".cfi_def_cfa_offset 152")
        "stmxcsr (%%rsp)\n\t"
        "fnstcw 4(%%rsp)\n\t"
        "movq %%rsp, (%0)\n\t"
        "movq (%1), %%rsp\n\t" /* the same frame on this stack: rules hold */
        "ldmxcsr (%%rsp)\n\t"
        "fldcw 4(%%rsp)\n\t"
        "leaq 8(%%rsp), %%rsp\n\t"
        PACT_SWITCH_CFI_(".cfi_def_cfa_offset 144")
        "popq %%rbp\n\t"
        PACT_SWITCH_CFI_(".cfi_def_cfa_offset 136")
        PACT_SWITCH_CFI_(".cfi_same_value %%rbp")
        "popq %%rcx\n\t"
        PACT_SWITCH_CFI_(".cfi_def_cfa_offset 128")
        PACT_SWITCH_CFI_(".cfi_register %%rip, %%rcx")
        "jmp *%%rcx\n\t"
        PACT_SWITCH_CFI_(".cfi_restore_state")
        "nop\n"
        "1:\n\t"
        PACT_SWITCH_CFI_(".cfi_remember_state")
        PACT_SWITCH_CFI_(".cfi_def_cfa %%rsp, 128")
        PACT_SWITCH_CFI_(".cfi_register %%rip, %%rcx")
        PACT_SWITCH_ENDBR_
        "leaq 128(%%rsp), %%rsp\n\t"
        PACT_SWITCH_CFI_(".cfi_restore_state")
        : "+D"(from), "+S"(to)
        :
        : "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13",
          "r14", "r15", "cc", "memory",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)",
          "mm0", "mm1", "mm2", "mm3", "mm4", "mm5", "mm6", "mm7"
          PACT_SWITCH_AVX512_);
}
/* clang-format on */

/** @endcond */
#else
/** 0: PACT_AWAIT calls the library to switch (see above). */
#define PACT_SWITCH_INLINE 0
#endif

#endif
