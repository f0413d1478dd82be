/* setImmediate: a FIFO of slots run in the check phase. Only the immediates
 * queued before the phase began run in it; ones queued meanwhile wait for the
 * next iteration, so an immediate chain cannot starve I/O. */
#include "internal.h"

static void unlink_imm(pact_loop *loop, struct slot *s)
{
    struct slot *prev = s->u.imm.prev, *next = s->u.imm.next;
    if (prev)
        prev->u.imm.next = next;
    else
        loop->imm_head = next;
    if (next)
        next->u.imm.prev = prev;
    else
        loop->imm_tail = prev;
}

int pact_immediate(pact_loop *loop, pact_cb cb, void *ud, pact_handle *out)
{
    PACT_CHECK_LOOP(loop, "pact_immediate");
    PACT_CHECK_ARG(cb, "pact_immediate");
    struct slot *s =
        pact__slot_alloc(loop, SLOT_IMMEDIATE, (void (*)(void))cb, ud);
    if (!s)
        return PACT_ENOMEM;
    s->u.imm.next = NULL;
    s->u.imm.epoch = loop->imm_epoch;
    s->u.imm.prev = loop->imm_tail;
    if (loop->imm_tail)
        loop->imm_tail->u.imm.next = s;
    else
        loop->imm_head = s;
    loop->imm_tail = s;
    (void)pact__slot_op_start(loop, s, NULL); /* no token: cannot fail */
    pact__slot_activate(loop, s);
    pact__kick(loop);
    if (out)
        *out = pact__slot_handle(s);
    return 0;
}

void pact__immediate_stop(pact_loop *loop, struct slot *s)
{
    if (s->flags & SLOT_ACTIVE)
        unlink_imm(loop, s);
}

void pact__run_immediates(pact_loop *loop)
{
    uint64_t epoch = loop->imm_epoch++;
    struct slot *s;
    while ((s = loop->imm_head) && s->u.imm.epoch <= epoch &&
           !pact__halted(loop)) {
        pact_cb cb = (pact_cb)s->cb;
        void *ud = s->ud;
        unlink_imm(loop, s);
        pact__slot_free(loop, s);
        pact__step_begin(loop, PACT_STEP_IMMEDIATE, (void (*)(void))cb, ud);
        cb(NULL, ud);
        pact__step_end(loop);
        pact__drain(loop);
    }
}
