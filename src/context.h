/* Private: switching between stacks. Two implementations behind one set of
 * names, chosen by configure (--with-context): assembly for x86-64 and
 * aarch64 (callee-saved registers only, no system call), and ucontext
 * elsewhere (which also saves the signal mask: a system call per switch).
 * Both are always named by their own prefix too, so the benchmark can put
 * them side by side in one program. */
#ifndef PACT_CONTEXT_H
#define PACT_CONTEXT_H

#if defined(PACT__LAYER) && PACT__LAYER < 3
#error "context.h is layer 3 (await): a lower layer must not include it"
#endif

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stddef.h>

typedef void (*pact__entry_fn)(void *arg);

/* The assembly switch: a context is the stack pointer it stopped at, with
 * what the switch saves pushed below it. */
typedef struct pact__asm_ctx {
    void *sp;
} pact__asm_ctx;
/* Make @p c start @p entry(@p arg) on [stack, stack + size) when first
 * switched to. @p entry must never return: it switches away for good. */
void pact__asm_make(pact__asm_ctx *c, void *stack, size_t size,
                    pact__entry_fn entry, void *arg);
/* Save the running context in @p from, continue @p to. On x86-64 it is
 * pact__asm_switch in a function of its own, for callers that need a
 * function (test/switch_check.c); the two resume each other's contexts. */
void pact__asm_swap(pact__asm_ctx *from, const pact__asm_ctx *to);

#if defined(__x86_64__)
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
#define PACT__CFI_(x) x "\n\t"
#else
#define PACT__CFI_(x) ""
#endif
#if defined(__CET__) && (__CET__ & 1)
#define PACT__ENDBR_ "endbr64\n\t"
#else
#define PACT__ENDBR_ ""
#endif
#if defined(__AVX512F__)
#define PACT__CLOBBER_AVX512_                                                  \
    , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",  \
        "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",         \
        "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#else
#define PACT__CLOBBER_AVX512_
#endif
/* one instruction or directive a line: */
/* clang-format off */
static inline __attribute__((always_inline)) void
pact__asm_switch(pact__asm_ctx *from, const pact__asm_ctx *to)
{
    __asm__ volatile(
        "leaq 1f(%%rip), %%rax\n\t"
        "leaq -128(%%rsp), %%rsp\n\t"
        PACT__CFI_(".cfi_remember_state")
        PACT__CFI_(".cfi_def_cfa %%rsp, 128")
        PACT__CFI_(".cfi_register %%rip, %%rax")
        "pushq %%rax\n\t"
        PACT__CFI_(".cfi_def_cfa_offset 136")
        PACT__CFI_(".cfi_offset %%rip, -136")
        "pushq %%rbp\n\t"
        PACT__CFI_(".cfi_def_cfa_offset 144")
        PACT__CFI_(".cfi_offset %%rbp, -144")
        "leaq -8(%%rsp), %%rsp\n\t"
        PACT__CFI_(".cfi_def_cfa_offset 152")
        "stmxcsr (%%rsp)\n\t"
        "fnstcw 4(%%rsp)\n\t"
        "movq %%rsp, (%0)\n\t"
        "movq (%1), %%rsp\n\t" /* the same frame on this stack: rules hold */
        "ldmxcsr (%%rsp)\n\t"
        "fldcw 4(%%rsp)\n\t"
        "leaq 8(%%rsp), %%rsp\n\t"
        PACT__CFI_(".cfi_def_cfa_offset 144")
        "popq %%rbp\n\t"
        PACT__CFI_(".cfi_def_cfa_offset 136")
        PACT__CFI_(".cfi_same_value %%rbp")
        "popq %%rcx\n\t"
        PACT__CFI_(".cfi_def_cfa_offset 128")
        PACT__CFI_(".cfi_register %%rip, %%rcx")
        "jmp *%%rcx\n\t"
        PACT__CFI_(".cfi_restore_state")
        "nop\n"
        "1:\n\t"
        PACT__CFI_(".cfi_remember_state")
        PACT__CFI_(".cfi_def_cfa %%rsp, 128")
        PACT__CFI_(".cfi_register %%rip, %%rcx")
        PACT__ENDBR_
        "leaq 128(%%rsp), %%rsp\n\t"
        PACT__CFI_(".cfi_restore_state")
        : "+D"(from), "+S"(to)
        :
        : "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13",
          "r14", "r15", "cc", "memory",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)",
          "mm0", "mm1", "mm2", "mm3", "mm4", "mm5", "mm6", "mm7"
          PACT__CLOBBER_AVX512_);
}
/* clang-format on */
#endif

#if !PACT_CONTEXT_ASM || defined(PACT_CONTEXT_BOTH)
#include <ucontext.h>
typedef struct pact__uctx_ctx {
    ucontext_t uc;
} pact__uctx_ctx;
void pact__uctx_make(pact__uctx_ctx *c, void *stack, size_t size,
                     pact__entry_fn entry, void *arg);
void pact__uctx_swap(pact__uctx_ctx *from, const pact__uctx_ctx *to);
#endif

#if PACT_CONTEXT_ASM
typedef pact__asm_ctx pact__ctx;
#define pact__ctx_make pact__asm_make
#if defined(__x86_64__)
#define pact__ctx_swap pact__asm_switch
#else
#define pact__ctx_swap pact__asm_swap
#endif
#define PACT_CONTEXT_NAME "asm"
#else
typedef pact__uctx_ctx pact__ctx;
#define pact__ctx_make pact__uctx_make
#define pact__ctx_swap pact__uctx_swap
#define PACT_CONTEXT_NAME "ucontext"
#endif

#endif
