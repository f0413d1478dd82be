/* Channels (layer 2): Go's hand-off between the tasks of one loop. A send
 * that finds a parked receiver moves its value into the receiver's record;
 * every finished record joins the channel's done list, delivered by one tick
 * job per channel, so the callback path allocates one record per call and
 * no promise. Parked records are pending operations (op.c): abort tokens,
 * pact_loop_close_all and pact_chan_free cancel them as everything else. */
#include <stdio.h>
#include <stdlib.h>

#include "pact/chan.h"
#include "promise_internal.h"

struct pact_chan {
    pact_loop *loop;
    pact_value *buf; /* ring of cap values */
    size_t cap, len, head;
    struct pact__list recvq, sendq, done;
    bool closed, freed, tick, delivering;
};

struct waiter {
    struct pact__op op; /* first: the op.c hooks cast back */
    pact_loop *loop;
    struct pact__list node; /* recvq, sendq or done */
    bool send;
    bool sync; /* a promise twin's: settled at once, no tick */
    int rc;    /* 0, PACT_EOF, PACT_EPIPE */
    pact_value v;
    pact_cb scb;
    pact_chan_recv_cb rcb;
    void *ud;
};

/* Waiters come from the loop's few spares before malloc. */
#define SPARE_MAX 16

static struct waiter *waiter_alloc(pact_loop *loop)
{
    struct pact__promises *ps = pact__promises_of(loop);
    void *w = ps ? ps->chan_spare : NULL;
    if (!w)
        return malloc(sizeof(struct waiter));
    ps->chan_spare = *(void **)w;
    ps->chan_nspare--;
    return w;
}

static void waiter_free(struct waiter *w)
{
    pact_value_release(&w->v);
    struct pact__promises *ps = pact__service_find(w->loop, PACT__SVC_PROMISES);
    if (!ps || ps->chan_nspare >= SPARE_MAX) {
        free(w);
        return;
    }
    *(void **)w = ps->chan_spare;
    ps->chan_spare = w;
    ps->chan_nspare++;
}

static void call(struct waiter *w, pact_error *err)
{
    if (w->send) {
        if (w->scb)
            w->scb(err, w->ud);
    } else {
        w->rcb(err, err ? NULL : &w->v, w->ud);
    }
    waiter_free(w);
}

static void chan_destroy(pact_chan *ch)
{
    while (ch->len) {
        pact_value_release(&ch->buf[ch->head]);
        ch->head = (ch->head + 1) % ch->cap;
        ch->len--;
    }
    free(ch->buf);
    free(ch);
}

static pact_error *result_error(int rc)
{
    pact_error *err = NULL;
    if (rc == PACT_EOF)
        err = PACT_ERROR(PACT_EOF, "The channel is closed");
    else if (rc == PACT_EPIPE)
        err = PACT_ERROR(PACT_EPIPE, "The channel is closed");
    return rc && !err ? pact__enomem() : err;
}

static void deliver(void *ud)
{
    pact_chan *ch = ud;
    struct pact__list due;
    pact__list_init(&due);
    pact__list_splice(&due, &ch->done);
    ch->tick = false;
    ch->delivering = true;
    struct pact__list *n;
    while ((n = pact__list_first(&due))) {
        struct waiter *w = pact__list_entry(n, struct waiter, node);
        pact__list_remove(n);
        pact_error *err = result_error(w->rc);
        call(w, err); /* may send, receive, close or free */
        pact_error_unref(err);
    }
    ch->delivering = false;
    if (ch->freed && !ch->tick)
        chan_destroy(ch);
}

/* Make sure the delivery tick is queued, before anything is promised. */
static int arm(pact_chan *ch)
{
    if (ch->tick)
        return 0;
    int rc = pact__jobq_push(&ch->loop->ticks, deliver, ch);
    if (rc < 0)
        return rc;
    ch->tick = true;
    pact__kick(ch->loop);
    return 0;
}

/* A promise twin's record settles its deferred at once (the promise's
 * reactions are a microtask away anyway); a callback's waits for the tick. */
static void finish(pact_chan *ch, struct waiter *w, int rc)
{
    if (w->sync) {
        pact_error *err = result_error(rc);
        call(w, err);
        pact_error_unref(err);
        return;
    }
    w->rc = rc;
    pact__list_push_back(&ch->done, &w->node);
}

/* Before taking the first record of @p q: a callback's needs the tick. */
static int arm_for(pact_chan *ch, const struct pact__list *q)
{
    const struct pact__list *n = pact__list_first((struct pact__list *)q);
    if (!n || pact__list_entry(n, const struct waiter, node)->sync)
        return 0;
    return arm(ch);
}

/* A parked record leaves its queue, its op ended (it was pending). */
static struct waiter *unpark(struct pact__list *q)
{
    struct waiter *w =
        pact__list_entry(pact__list_first(q), struct waiter, node);
    pact__list_remove(&w->node);
    pact_error *err;
    pact__op_end(&w->op, &err);
    pact_error_unref(err);
    return w;
}

static bool op_stop(struct pact__op *op)
{
    struct waiter *w = (struct waiter *)op;
    pact__list_remove(&w->node);
    return true;
}

static void op_fail(struct pact__op *op, pact_error *err)
{
    call((struct waiter *)op, err);
}

static void op_drop(struct pact__op *op)
{
    waiter_free((struct waiter *)op);
}

static void op_describe(const struct pact__op *op, char *buf, size_t len)
{
    const struct waiter *w = (const struct waiter *)op;
    snprintf(buf, len, "chan %s", w->send ? "send" : "recv");
}

static const struct pact__op_type chan_op = {
    .stop = op_stop,
    .fail = op_fail,
    .drop = op_drop,
    .describe = op_describe,
};

static int park(pact_chan *ch, struct pact__list *q, struct waiter *w,
                const pact_chan_opts *opts)
{
    pact__list_push_back(q, &w->node);
    int rc = pact__op_start(ch->loop, &w->op, &chan_op,
                            opts ? opts->abort : NULL, false);
    if (rc < 0)
        pact__list_remove(&w->node);
    return rc;
}

pact_chan *pact_chan_new(pact_loop *loop, size_t capacity)
{
    if (!loop) {
        pact__misuse("pact_chan_new", PACT_EINVAL, "loop is NULL");
        return NULL;
    }
    pact_chan *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    if (capacity && !(ch->buf = calloc(capacity, sizeof *ch->buf))) {
        free(ch);
        return NULL;
    }
    ch->loop = loop;
    ch->cap = capacity;
    pact__list_init(&ch->recvq);
    pact__list_init(&ch->sendq);
    pact__list_init(&ch->done);
    return ch;
}

static void cancel_all(struct pact__list *q)
{
    struct pact__list *n;
    while ((n = pact__list_first(q))) {
        struct waiter *w = pact__list_entry(n, struct waiter, node);
        /* stop() takes it off q; op.c calls it back on the next tick */
        pact__op_cancel(&w->op,
                        PACT_ERROR(PACT_ECANCELED, "The channel was freed"));
        if (pact__list_first(q) == n) /* not pending (cannot happen) */
            pact__list_remove(n);
    }
}

void pact_chan_free(pact_chan *ch)
{
    if (!ch || ch->freed)
        return;
    cancel_all(&ch->recvq);
    cancel_all(&ch->sendq);
    ch->freed = true;
    if (!ch->tick && !ch->delivering)
        chan_destroy(ch);
}

int pact_chan_close(pact_chan *ch)
{
    if (!ch || ch->freed)
        return pact__misuse("pact_chan_close", PACT_EINVAL, "ch is NULL");
    if (pact__misuse_thread(ch->loop, "pact_chan_close"))
        return PACT_ETHREAD;
    if (ch->closed)
        return PACT_EALREADY;
    bool any = !pact__list_empty(&ch->recvq) || !pact__list_empty(&ch->sendq);
    if (any) {
        int rc = arm(ch);
        if (rc < 0)
            return rc;
    }
    ch->closed = true;
    while (!pact__list_empty(&ch->recvq))
        finish(ch, unpark(&ch->recvq), PACT_EOF);
    while (!pact__list_empty(&ch->sendq)) {
        struct waiter *w = unpark(&ch->sendq);
        pact_value_release(&w->v);
        finish(ch, w, PACT_EPIPE);
    }
    return 0;
}

static struct waiter *waiter_new(pact_chan *ch, const char *fn, bool sync,
                                 int *rc)
{
    if (!ch || ch->freed) {
        *rc = pact__misuse(fn, PACT_EINVAL, "ch is NULL or freed");
        return NULL;
    }
    if (pact__misuse_thread(ch->loop, fn)) {
        *rc = PACT_ETHREAD;
        return NULL;
    }
    struct waiter *w = waiter_alloc(ch->loop);
    if (!w) {
        *rc = PACT_ENOMEM;
        return NULL;
    }
    /* field by field: a compound literal zeroes the whole record (its op
     * too) with `rep stos`, which costs more than the rest of a call */
    w->op.state = PACT__OP_IDLE;
    w->loop = ch->loop;
    w->send = false;
    w->sync = sync;
    w->rc = 0;
    w->v = pact_nothing();
    w->scb = NULL;
    w->rcb = NULL;
    w->ud = NULL;
    if (!sync && (*rc = arm(ch)) < 0) {
        waiter_free(w);
        return NULL;
    }
    return w;
}

static int send_at(pact_chan *ch, pact_value value, const pact_chan_opts *opts,
                   pact_cb cb, void *ud, bool sync)
{
    int rc = 0;
    struct waiter *w = waiter_new(ch, "pact_chan_send", sync, &rc);
    if (!w || (!ch->closed && (rc = arm_for(ch, &ch->recvq)) < 0)) {
        if (w)
            waiter_free(w);
        pact_value_release(&value);
        return rc;
    }
    w->send = true;
    w->scb = cb;
    w->ud = ud;
    if (ch->closed) {
        pact_value_release(&value);
        finish(ch, w, PACT_EPIPE);
    } else if (!pact__list_empty(&ch->recvq)) {
        struct waiter *r = unpark(&ch->recvq); /* the hand-off */
        r->v = value;
        finish(ch, r, 0);
        finish(ch, w, 0);
    } else if (ch->len < ch->cap) {
        ch->buf[(ch->head + ch->len++) % ch->cap] = value;
        finish(ch, w, 0);
    } else {
        w->v = value;
        if ((rc = park(ch, &ch->sendq, w, opts)) < 0)
            waiter_free(w);
    }
    return rc;
}

int pact_chan_send(pact_chan *ch, pact_value value, const pact_chan_opts *opts,
                   pact_cb cb, void *ud)
{
    return send_at(ch, value, opts, cb, ud, false);
}

static int recv_at(pact_chan *ch, const pact_chan_opts *opts,
                   pact_chan_recv_cb cb, void *ud, bool sync)
{
    if (!cb)
        return pact__misuse("pact_chan_recv", PACT_EINVAL, "cb is NULL");
    int rc = 0;
    struct waiter *w = waiter_new(ch, "pact_chan_recv", sync, &rc);
    if (!w || (rc = arm_for(ch, &ch->sendq)) < 0) {
        if (w)
            waiter_free(w);
        return rc;
    }
    w->rcb = cb;
    w->ud = ud;
    if (ch->len) {
        w->v = ch->buf[ch->head];
        ch->head = (ch->head + 1) % ch->cap;
        ch->len--;
        finish(ch, w, 0);
        if (!pact__list_empty(&ch->sendq)) { /* room for a parked send */
            struct waiter *s = unpark(&ch->sendq);
            ch->buf[(ch->head + ch->len++) % ch->cap] = s->v;
            s->v = pact_nothing();
            finish(ch, s, 0);
        }
    } else if (!pact__list_empty(&ch->sendq)) { /* unbuffered hand-off */
        struct waiter *s = unpark(&ch->sendq);
        w->v = s->v;
        s->v = pact_nothing();
        finish(ch, w, 0);
        finish(ch, s, 0);
    } else if (ch->closed) {
        finish(ch, w, PACT_EOF);
    } else if ((rc = park(ch, &ch->recvq, w, opts)) < 0) {
        waiter_free(w);
    }
    return rc;
}

int pact_chan_recv(pact_chan *ch, const pact_chan_opts *opts,
                   pact_chan_recv_cb cb, void *ud)
{
    return recv_at(ch, opts, cb, ud, false);
}

static void send_settled(pact_error *err, void *ud)
{
    pact_deferred *d = ud;
    if (err)
        pact_deferred_reject(d, pact_error_ref(err));
    else
        pact_deferred_resolve(d, pact_nothing());
    pact_deferred_unref(d);
}

static void recv_settled(pact_error *err, pact_value *v, void *ud)
{
    pact_deferred *d = ud;
    if (err) {
        pact_deferred_reject(d, pact_error_ref(err));
    } else {
        pact_deferred_resolve(d, *v);
        *v = pact_nothing();
    }
    pact_deferred_unref(d);
}

static pact_promise *twin_failed(pact_deferred *d, pact_promise *p, int rc)
{
    if (rc == PACT_EINVAL || rc == PACT_ETHREAD) {
        pact_deferred_unref(d);
        pact_promise_unref(p);
        return NULL;
    }
    pact_deferred_reject(d, PACT_ERROR(rc, "pact_chan failed"));
    pact_deferred_unref(d);
    return p;
}

pact_promise *pact_chan_send_p(pact_chan *ch, pact_value value,
                               const pact_chan_opts *opts)
{
    if (!ch || ch->freed) {
        pact_value_release(&value);
        pact__misuse("pact_chan_send_p", PACT_EINVAL, "ch is NULL or freed");
        return NULL;
    }
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(ch->loop, &p);
    if (!d) {
        pact_value_release(&value);
        return pact_rejected(ch->loop, NULL);
    }
    int rc = send_at(ch, value, opts, send_settled, d, true);
    return rc < 0 ? twin_failed(d, p, rc) : p;
}

pact_promise *pact_chan_recv_p(pact_chan *ch, const pact_chan_opts *opts)
{
    if (!ch || ch->freed) {
        pact__misuse("pact_chan_recv_p", PACT_EINVAL, "ch is NULL or freed");
        return NULL;
    }
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(ch->loop, &p);
    if (!d)
        return pact_rejected(ch->loop, NULL);
    int rc = recv_at(ch, opts, recv_settled, d, true);
    return rc < 0 ? twin_failed(d, p, rc) : p;
}

int pact__chan_try_send(pact_chan *ch, pact_value *value)
{
    if (!ch || ch->freed)
        return pact__misuse("pact_await_send", PACT_EINVAL,
                            "ch is NULL or freed");
    if (pact__misuse_thread(ch->loop, "pact_await_send"))
        return PACT_ETHREAD;
    if (ch->closed)
        return PACT_EPIPE;
    if (!pact__list_empty(&ch->recvq)) {
        int rc = arm_for(ch, &ch->recvq);
        if (rc < 0)
            return rc;
        struct waiter *r = unpark(&ch->recvq); /* the hand-off */
        r->v = *value;
        finish(ch, r, 0);
        return 1;
    }
    if (ch->len < ch->cap) {
        ch->buf[(ch->head + ch->len++) % ch->cap] = *value;
        return 1;
    }
    return 0;
}

int pact__chan_try_recv(pact_chan *ch, pact_value *out)
{
    if (!ch || ch->freed)
        return pact__misuse("pact_await_recv", PACT_EINVAL,
                            "ch is NULL or freed");
    if (pact__misuse_thread(ch->loop, "pact_await_recv"))
        return PACT_ETHREAD;
    if (!ch->len && pact__list_empty(&ch->sendq))
        return ch->closed ? PACT_EOF : 0;
    int rc = arm_for(ch, &ch->sendq);
    if (rc < 0)
        return rc;
    if (ch->len) {
        *out = ch->buf[ch->head];
        ch->head = (ch->head + 1) % ch->cap;
        ch->len--;
        if (!pact__list_empty(&ch->sendq)) { /* room for a parked send */
            struct waiter *s = unpark(&ch->sendq);
            ch->buf[(ch->head + ch->len++) % ch->cap] = s->v;
            s->v = pact_nothing();
            finish(ch, s, 0);
        }
        return 1;
    }
    struct waiter *s = unpark(&ch->sendq); /* unbuffered hand-off */
    *out = s->v;
    s->v = pact_nothing();
    finish(ch, s, 0);
    return 1;
}

int pact__chan_send_sync(pact_chan *ch, pact_value value, pact_cb cb, void *ud)
{
    return send_at(ch, value, NULL, cb, ud, true);
}

int pact__chan_recv_sync(pact_chan *ch, pact_chan_recv_cb cb, void *ud)
{
    return recv_at(ch, NULL, cb, ud, true);
}

size_t pact_chan_len(const pact_chan *ch)
{
    return ch ? ch->len : 0;
}
