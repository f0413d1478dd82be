/* setImmediate: a FIFO of slots run in the check phase. Only the immediates
 * queued before the phase began run in it; ones queued meanwhile wait for the
 * next iteration, so an immediate chain cannot starve I/O. */
#include "internal.h"

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
    if (s->state == ST_NEW) { /* not due at once */
        s->u.imm.epoch = loop->imm_epoch;
        pact__list_push_back(&loop->imms, &s->u.imm.node);
        pact__slot_set_state(loop, s, ST_ARMED);
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
    (void)loop;
    if (s->state == ST_ARMED) /* queued */
        pact__list_remove(&s->u.imm.node);
}

void pact__run_immediates(pact_loop *loop)
{
    uint64_t epoch = loop->imm_epoch++;
    struct pact__list *n;
    while ((n = pact__list_first(&loop->imms)) && !pact__halted(loop)) {
        struct slot *s = pact__list_entry(n, struct slot, u.imm.node);
        if (s->u.imm.epoch > epoch)
            break;
        pact_cb cb = (pact_cb)s->cb;
        void *ud = s->ud;
        pact__list_remove(n);
        pact__slot_free(loop, s);
        pact__step_begin(loop, PACT_STEP_IMMEDIATE, (void (*)(void))cb, ud);
        cb(NULL, ud);
        pact__step_end(loop);
        pact__drain(loop);
    }
}
