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
#include "pact/task_switch.h"
/* The x86-64 switch is inline at each switch site (pact/task_switch.h, as
 * PACT_AWAIT does it in a task's own function): its context is the stack
 * pointer, with the control words, rbp and the resume address pushed. */
static inline __attribute__((always_inline)) void
pact__asm_switch(pact__asm_ctx *from, const pact__asm_ctx *to)
{
    pact_switch_(&from->sp, &to->sp);
}
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
