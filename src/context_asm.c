/* The assembly switch's first frame: what the switch loads on the first
 * switch to a new context (switch_<arch>.S holds the aarch64 switch and
 * the entry stubs; the x86-64 switch is inline, in context.h). */
#include "context.h"

#include <stdint.h>
#include <string.h>

/* The entry stub in switch_<arch>.S: calls entry(arg), found in saved
 * registers (aarch64) or on the new stack (x86-64), and traps if it ever
 * returns. */
void pact__asm_start(void);

#if defined(__x86_64__)
/* pact__asm_switch pops, from sp up: mxcsr and x87 control word (8 bytes),
 * rbp, the resume address (here the stub), then jumps; the stub finds
 * entry and arg above, at a 16-aligned address so that its call leaves the
 * ABI's alignment at entry's start. A zero rbp ends frame-pointer walks. */
void pact__asm_make(pact__asm_ctx *c, void *stack, size_t size,
                    pact__entry_fn entry, void *arg)
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 40);
    uint32_t csr[2] = {0x1F80, 0x037F}; /* default MXCSR, x87 control word */
    memcpy(&sp[0], csr, sizeof csr);
    sp[1] = 0; /* rbp */
    sp[2] = (uint64_t)(uintptr_t)pact__asm_start;
    sp[3] = (uint64_t)(uintptr_t)entry;
    sp[4] = (uint64_t)(uintptr_t)arg;
    c->sp = sp;
}

/* Tasks switch inline; this one is for whoever needs a function to call. */
__attribute__((noinline)) void pact__asm_swap(pact__asm_ctx *from,
                                              const pact__asm_ctx *to)
{
    pact__asm_switch(from, to);
}
#elif defined(__aarch64__)
/* pact__asm_swap restores, from sp up: x19..x28, x29, x30, d8..d15, fpcr
 * (22 slots, 176 bytes with padding), then returns to x30. The stub finds
 * entry in x20 and arg in x19. */
void pact__asm_make(pact__asm_ctx *c, void *stack, size_t size,
                    pact__entry_fn entry, void *arg)
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 176 - 16);
    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)arg;              /* x19 */
    sp[1] = (uint64_t)(uintptr_t)entry;            /* x20 */
    sp[10] = 0;                                    /* x29 */
    sp[11] = (uint64_t)(uintptr_t)pact__asm_start; /* x30 */
    c->sp = sp;
}
#else
#error                                                                         \
    "the assembly context switch supports x86-64 and aarch64: configure --with-context=ucontext"
#endif
