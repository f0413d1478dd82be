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

static int immediate_start(pact_loop *loop, const pact_watch_opts *opts,
                           pact_cb cb, void *ud, pact_handle *out,
                           const char *fn)
{
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(cb, fn);
    pact_abort *abort = opts ? opts->abort : NULL;
    struct slot *s =
        pact__slot_alloc(loop, SLOT_IMMEDIATE, (void (*)(void))cb, ud);
    if (!s)
        return PACT_ENOMEM;
    if (opts && opts->unref)
        s->flags &= (uint8_t)~SLOT_REF;
    /* a token aborted already stops it in the start: its call is then due,
     * and it is never queued */
    int rc = pact__slot_op_start(loop, s, abort);
    if (rc < 0) {
        pact__slot_free(loop, s);
        return rc;
    }
    if (!(s->flags & SLOT_CANCEL)) {
        s->u.imm.next = NULL;
        s->u.imm.epoch = loop->imm_epoch;
        s->u.imm.prev = loop->imm_tail;
        if (loop->imm_tail)
            loop->imm_tail->u.imm.next = s;
        else
            loop->imm_head = s;
        loop->imm_tail = s;
        pact__slot_activate(loop, s);
    }
    pact__kick(loop);
    if (out)
        *out = pact__slot_handle(s);
    return 0;
}

int pact_immediate(pact_loop *loop, pact_cb cb, void *ud, pact_handle *out)
{
    return immediate_start(loop, NULL, cb, ud, out, "pact_immediate");
}

int pact_immediate_start(pact_loop *loop, const pact_watch_opts *opts,
                         pact_cb cb, void *ud, pact_handle *out)
{
    return immediate_start(loop, opts, cb, ud, out, "pact_immediate_start");
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
