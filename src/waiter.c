/* The waiters of ports and workers (pending receives, waits for room, waits
 * for a worker's end) as pending-operation records (op.c): whatever ends a
 * waiter, its callback runs once -- with what it waited for, or with
 * PACT_ECANCELED (an abort token, pact_worker_free, pact_loop_close_all) on
 * a later tick -- so its ud always goes back to its owner (a promise twin's
 * deferred rejects, or is released if the loop is freed first).
 * src/worker_internal.h describes the rest of the design. */
#include "symbol.h"
#include "worker_internal.h"

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

static struct waiter *op_waiter(struct pact__op *op)
{
    return pact__list_entry(op, struct waiter, op);
}

/* Off its list: the port may stop keeping its loop alive. */
static void unlink_waiter(struct waiter *x)
{
    assert(x->list->len > 0);
    pact__list_remove(&x->link);
    x->list->len--;
}

static bool waiter_stop(struct pact__op *op)
{
    struct waiter *x = op_waiter(op);
    unlink_waiter(x);
    pact__port_update_ref(x->port);
    return true;
}

static void waiter_fail(struct pact__op *op, pact_error *err)
{
    struct waiter x = *op_waiter(op);
    free(op_waiter(op));
    /* the port may be gone (its worker freed): only the loop is left */
    pact__label_refine(x.op.loop, PACT_STEP_TICK, x.fn, x.ud);
    /* its cancellation is its own: "started at" the wait's call */
    pact__waiter_call(&x, pact__error_site(err, x.site), NULL, 0);
}

static void waiter_drop(struct pact__op *op)
{
    struct waiter *x = op_waiter(op);
    pact_fn drop = x->ud_drop;
    void *ud = x->ud;
    free(x);
    if (drop)
        drop(ud);
}

static void waiter_describe(const struct pact__op *op, char *buf, size_t len)
{
    const struct waiter *x = pact__list_entry(op, const struct waiter, op);
    static const char *const what[] = {
        [W_RECV] = "a message",
        [W_WRITABLE] = "room to send",
        [W_EXIT] = "its end",
    };
    char call[160];
    pact__describe_call(call, sizeof call, x->fn, x->ud);
    snprintf(buf, len, "worker %s, %s port: waits for %s, calls %s",
             x->port->w->name, x->port->parent ? "the parent's" : "its own",
             what[x->kind], call);
}

static const struct pact__op_type waiter_type = {
    .what = "port wait",
    .stop = waiter_stop,
    .fail = waiter_fail,
    .drop = waiter_drop,
    .describe = waiter_describe,
    .waited = false,
};

int pact__waiter_add(pact_port *port, struct wlist *r, int kind,
                     void (*fn)(void), void *ud, pact_fn ud_drop,
                     const pact_wait_opts *opts, const void *site)
{
    struct workers *s = port->svc;
    struct waiter *x = malloc(sizeof *x);
    if (!x)
        return PACT_ENOMEM;
    x->list = r;
    x->port = port;
    x->fn = fn;
    x->ud = ud;
    x->ud_drop = ud_drop;
    x->seq = s->wseq;
    x->site = site;
    x->kind = (uint8_t)kind;
    pact__list_push_back(&r->head, &x->link);
    r->len++;
    /* a token aborted already takes it off again here (as a timer's, the
     * start succeeds and the cancellation is due on the next tick) */
    int rc = pact__op_start(port->loop, &x->op, &waiter_type,
                            opts ? opts->abort : NULL, 0);
    if (rc < 0) {
        unlink_waiter(x);
        free(x);
        return rc;
    }
    s->wseq++;
    return 0;
}

bool pact__waiter_pop(struct wlist *r, uint64_t limit, struct waiter *out)
{
    struct pact__list *n = pact__list_first(&r->head);
    if (!n)
        return false;
    struct waiter *x = pact__list_entry(n, struct waiter, link);
    if (x->seq >= limit)
        return false;
    unlink_waiter(x);
    pact_error *err;
    bool call = pact__op_end(&x->op, &err);
    assert(call && !err); /* a cancelled one left its list */
    (void)call;
    *out = *x;
    free(x);
    return true;
}

void pact__waiters_cancel(struct wlist *r, pact_error *err)
{
    struct pact__list *n;
    while ((n = pact__list_first(&r->head))) {
        struct waiter *x = pact__list_entry(n, struct waiter, link);
        pact__op_cancel(&x->op, pact_error_ref(err)); /* unlinks it */
    }
}
