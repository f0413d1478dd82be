/* The portable switch, over ucontext: getcontext/makecontext/swapcontext.
 * swapcontext also saves and restores the signal mask, a system call each
 * way, which is why the assembly switch exists. */
#include "context.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* makecontext passes int arguments only: the pointers go in halves. */
static void start(unsigned eh, unsigned el, unsigned ah, unsigned al)
{
    pact__entry_fn entry =
        (pact__entry_fn)(uintptr_t)(((uint64_t)eh << 32) | (uint64_t)el);
    void *arg = (void *)(uintptr_t)(((uint64_t)ah << 32) | (uint64_t)al);
    entry(arg);
    abort(); /* entry switches away for good; returning is a bug */
}

void pact__uctx_make(pact__uctx_ctx *c, void *stack, size_t size,
                     pact__entry_fn entry, void *arg)
{
    if (getcontext(&c->uc) != 0) {
        perror("pact: getcontext");
        abort();
    }
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    uint64_t e = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
    makecontext(&c->uc, (void (*)(void))start, 4, (unsigned)(e >> 32),
                (unsigned)e, (unsigned)(a >> 32), (unsigned)a);
}

void pact__uctx_swap(pact__uctx_ctx *from, const pact__uctx_ctx *to)
{
    if (swapcontext(&from->uc, &to->uc) != 0) {
        perror("pact: swapcontext");
        abort();
    }
}
