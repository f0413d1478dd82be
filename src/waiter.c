/* The waiters of ports and workers (pending receives, waits for room, waits
 * for a worker's end): their abort tokens and their cancellation. Whatever
 * ends a waiter, its callback runs once: with what it waited for, or with
 * PACT_ECANCELED (an abort token, pact_worker_free, pact_loop_close_all),
 * so its ud always goes back to its owner (a promise twin's deferred
 * rejects). src/worker_internal.h describes the rest of the design. */
#include "worker_internal.h"

static void detach(struct waiter *x)
{
    struct abortable *ab = x->ab;
    if (!ab)
        return;
    if (ab->id)
        pact_abort_off(ab->abort, ab->id);
    pact_abort_unref(ab->abort);
    free(ab);
    x->ab = NULL;
}

void pact__waiter_call(const struct waiter *x, pact_error *err, pact_value *msg,
                       int code)
{
    switch (x->kind) {
    case W_RECV:
        ((pact_msg_cb)x->fn)(err, err ? NULL : msg, x->ud);
        break;
    case W_WRITABLE:
        ((pact_cb)x->fn)(err, x->ud);
        break;
    default:
        ((pact_exit_cb)x->fn)(err, code, x->ud);
        break;
    }
}

/* ---- cancellations due on the next tick ----------------------------------
 */

static void run_done(void *ud)
{
    struct workers *s = ud;
    s->tick_queued = false;
    /* only those queued so far: a callback that waits again with a token
     * aborted already is called back on a later tick, not in this loop */
    for (size_t n = s->done.len; n; n--) {
        struct cancelled c;
        ring_pop(&s->done, &c, sizeof c);
        pact__waiter_call(&c.w, c.err, NULL, 0);
        pact_error_unref(c.err);
    }
}

static void queue_done(struct workers *s, const struct waiter *x,
                       pact_error *err)
{
    struct cancelled c = {*x, err};
    if (ring_push(&s->done, &c, sizeof c) < 0) {
        /* no room to defer it: calling back now is the lesser evil */
        pact__waiter_call(x, err, NULL, 0);
        pact_error_unref(err);
        return;
    }
    if (s->tick_queued)
        return;
    s->tick_queued = true;
    if (pact_next_tick(s->loop, run_done, s) < 0)
        pact__micro_must(s->loop, run_done, s);
}

void pact__waiters_flush(struct workers *s)
{
    struct cancelled c;
    while (ring_pop(&s->done, &c, sizeof c)) {
        pact__waiter_call(&c.w, c.err, NULL, 0);
        pact_error_unref(c.err);
    }
}

void pact__waiters_cancel(struct workers *s, struct ring *r, pact_error *err)
{
    struct waiter x;
    while (pact__waiter_pop(r, UINT64_MAX, &x))
        queue_done(s, &x, pact_error_ref(err));
}

/* ---- abort tokens ----------------------------------------------------------
 */

static pact_error *aborted_error(pact_error *reason)
{
    pact_error *err =
        reason ? PACT_ERROR_CAUSE(reason, PACT_ECANCELED,
                                  "The operation was aborted")
               : PACT_ERROR(PACT_ECANCELED, "The operation was aborted");
    return err ? err : pact__enomem();
}

/* The token fired: take the waiter off its ring; it is called back on the
 * next tick, never inside pact_abort_abort. */
static void on_abort(pact_error *reason, void *ud)
{
    struct abortable *ab = ud;
    ab->id = 0; /* an aborted token drops its listeners */
    struct ring *r = ab->ring;
    for (size_t i = 0; i < r->len; i++) {
        struct waiter *x = ring_at(r, i, sizeof *x);
        if (x->ab != ab)
            continue;
        struct waiter w = *x;
        ring_remove_at(r, i, sizeof w);
        pact_port *port = ab->port;
        detach(&w);
        queue_done(port->svc, &w, aborted_error(reason));
        pact__port_update_ref(port);
        return;
    }
}

int pact__waiter_add(pact_port *port, struct ring *r, int kind,
                     void (*fn)(void), void *ud, const pact_wait_opts *opts)
{
    struct workers *s = port->svc;
    struct waiter x = {fn, ud, NULL, s->wseq, (uint8_t)kind};
    pact_abort *abort = opts ? opts->abort : NULL;
    if (abort && pact_abort_aborted(abort)) { /* as a timer: succeeds, and */
        queue_done(s, &x, aborted_error(pact_abort_reason(abort)));
        s->wseq++;
        return 0;
    }
    if (abort) {
        x.ab = malloc(sizeof *x.ab);
        if (!x.ab)
            return PACT_ENOMEM;
        *x.ab = (struct abortable){pact_abort_ref(abort), 0, r, port};
        int rc = pact_abort_on(abort, on_abort, x.ab, &x.ab->id);
        if (rc < 0) {
            x.ab->id = 0;
            detach(&x);
            return rc;
        }
    }
    int rc = ring_push(r, &x, sizeof x);
    if (rc < 0) {
        detach(&x);
        return rc;
    }
    s->wseq++;
    return 0;
}

bool pact__waiter_pop(struct ring *r, uint64_t limit, struct waiter *out)
{
    if (!r->len || ((struct waiter *)ring_at(r, 0, sizeof *out))->seq >= limit)
        return false;
    ring_pop(r, out, sizeof *out);
    detach(out);
    return true;
}
