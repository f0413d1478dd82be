/* The assembly switch's first frame: what pact__asm_swap pops on the first
 * switch to a new context (switch_<arch>.S holds the switch itself). */
#include "context.h"

#include <stdint.h>
#include <string.h>

/* The entry stub in switch_<arch>.S: calls entry(arg) from the saved
 * registers, and traps if it ever returns. */
void pact__asm_start(void);

#if defined(__x86_64__)
/* pact__asm_swap pops, from sp up: mxcsr and x87 control word (8 bytes),
 * r15, r14, r13, r12, rbx, rbp, then returns. The stub finds entry in r12
 * and arg in rbx. */
void pact__asm_make(pact__asm_ctx *c, void *stack, size_t size,
                    pact__entry_fn entry, void *arg)
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    /* after the 8 pops and the ret, rsp = sp + 64 must be 16-aligned so
     * that the stub's call leaves the ABI's alignment at entry's start */
    uint64_t *sp = (uint64_t *)(top - 80);
    memset(sp, 0, 80);
    uint32_t csr[2] = {0x1F80, 0x037F}; /* default MXCSR, x87 control word */
    memcpy(&sp[0], csr, sizeof csr);
    sp[4] = (uint64_t)(uintptr_t)entry; /* r12 */
    sp[5] = (uint64_t)(uintptr_t)arg;   /* rbx */
    sp[6] = 0;                          /* rbp: ends frame-pointer walks */
    sp[7] = (uint64_t)(uintptr_t)pact__asm_start;
    c->sp = sp;
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
