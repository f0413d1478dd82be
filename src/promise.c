/* Promises: the per-loop node slabs, settling, reaction jobs, and the
 * resolution procedure (Promises/A+ 2.3) with V8's microtask turns: adopting
 * a promise costs a job that attaches to it, then the reaction job, exactly
 * as NewPromiseResolveThenableJob does in Node. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "promise_internal.h"

/* Recycled nodes are marked as freed for ASan and valgrind, so a use after
 * the last unref is still reported although the memory stays in a slab. */
#ifdef PACT__ASAN_BUILD
#include <sanitizer/asan_interface.h>
#define POISON(ps, p, n) ((void)(ps), ASAN_POISON_MEMORY_REGION((p), (n)))
#define UNPOISON(ps, p, n) ((void)(ps), ASAN_UNPOISON_MEMORY_REGION((p), (n)))
#elif defined(HAVE_VALGRIND_MEMCHECK_H)
/* Only under valgrind (ps->marks): natively each client request is a dozen
 * instructions, and a round trip between two tasks makes eight. */
#define POISON(ps, p, n)                                                       \
    do {                                                                       \
        if (PACT__UNLIKELY((ps)->marks))                                       \
            VALGRIND_MAKE_MEM_NOACCESS((p), (n));                              \
    } while (0)
#define UNPOISON(ps, p, n)                                                     \
    do {                                                                       \
        if (PACT__UNLIKELY((ps)->marks))                                       \
            VALGRIND_MAKE_MEM_UNDEFINED((p), (n));                             \
    } while (0)
#else
#define POISON(ps, p, n) ((void)(ps), (void)(p), (void)(n))
#define UNPOISON(ps, p, n) ((void)(ps), (void)(p), (void)(n))
#endif

/* A freed node keeps this state, so a stale unref is reported, not obeyed. */
#define STATE_DEAD PACT__NODE_IDLE

/* ---- nodes --------------------------------------------------------------- */

#define SLAB_NODES 256

struct pact__slab {
    struct pact__slab *next;
    pact_promise nodes[SLAB_NODES];
};

/* Free nodes are linked through the header, which stays readable (and
 * unpoisoned under ASan) so that a stale reference is caught. */
#define FREE_NEXT(n) ((n)->free_next)
#define BODY_OFF offsetof(pact_promise, u)
/* The body is marked freed; the header and the deferred's tail are not. */
#define BODY_LEN (offsetof(pact_promise, d) - BODY_OFF)

/* A referenced deferred's tail, and the node of a far deferred (see struct
 * pact_deferred). */
#define STATE_DEFERRED 0xde

/* Give slot @p n back to the free list, or, while its deferred is still
 * referenced, leave it half dead for the deferred's last unref to free. */
static void slot_put(pact_loop *loop, pact_promise *n)
{
    struct pact__promises *ps = pact__promises_had(loop);
    n->state = STATE_DEAD;
    n->refs = 0;
    if (PACT__UNLIKELY(n->d.state == STATE_DEFERRED)) {
        POISON(ps, (char *)n + BODY_OFF, BODY_LEN);
        return; /* n->loop stays: the deferred's calls check the thread */
    }
    FREE_NEXT(n) = ps->pfree;
    ps->pfree = n;
    ps->plive--;
    POISON(ps, (char *)n + BODY_OFF, BODY_LEN);
}

static void node_release(pact_loop *loop, pact_promise *n)
{
    if (n->flags & P_OWNED)
        n->state = STATE_DEAD; /* idle: its owner may attach it again */
    else
        slot_put(loop, n);
    assert(loop->micro.reserved > 0);
    loop->micro.reserved--; /* pact__micro_unreserve */
}

/* A new slab's first node (the others freed), or NULL without memory. */
static pact_promise *slab_grow(struct pact__promises *ps)
{
    struct pact__slab *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    s->next = ps->slabs;
    ps->slabs = s;
    s->nodes[0].d.state = STATE_DEAD;
    for (size_t i = SLAB_NODES - 1; i > 0; i--) {
        s->nodes[i].state = STATE_DEAD;
        s->nodes[i].refs = 0;
        s->nodes[i].d.state = STATE_DEAD;
        s->nodes[i].d.refs = 0;
        FREE_NEXT(&s->nodes[i]) = ps->pfree;
        ps->pfree = &s->nodes[i];
        POISON(ps, (char *)&s->nodes[i] + BODY_OFF, BODY_LEN);
    }
    return &s->nodes[0];
}

/* A free slot (its body unpoisoned, counted live), or NULL without memory:
 * inline, as a round trip between two tasks takes two. */
static inline pact_promise *slot_take(pact_loop *loop)
{
    struct pact__promises *ps = pact__promises_of(loop);
    if (PACT__UNLIKELY(!ps))
        return NULL;
    pact_promise *n = ps->pfree;
    if (PACT__LIKELY(n != NULL))
        ps->pfree = FREE_NEXT(n);
    else if (!(n = slab_grow(ps)))
        return NULL;
    UNPOISON(ps, (char *)n + BODY_OFF, BODY_LEN);
    ps->plive++;
    return n;
}

/* A node holds a microtask slot for its life: its one job at a time (its
 * reaction, an adoption) is then queued without allocating, where a failure
 * could no longer be reported. */
static pact_promise *node_new(pact_loop *loop, uint8_t role, uint8_t hkind)
{
    if (pact__reserve(loop) < 0)
        return NULL;
    pact_promise *n = slot_take(loop);
    if (!n) {
        pact__micro_unreserve(loop);
        return NULL;
    }
    n->refs = 1;
    n->state = PACT_PENDING;
    n->role = role;
    n->hkind = hkind;
    n->flags = 0;
    n->loop = loop;
    memset(&n->u.w, 0, sizeof n->u.w);
    return n;
}

void pact__node_free(pact_promise *n)
{
    node_release(n->loop, n);
}

pact_promise *pact__promise_new(pact_loop *loop)
{
    return node_new(loop, NODE_THEN, H_THEN);
}

pact_promise *pact__node_cb(pact_loop *loop, pact__react_fn fn, void *ud,
                            uintptr_t aux)
{
    pact_promise *n = node_new(loop, NODE_CB, H_INTERNAL);
    if (n) {
        n->u.w.on_ok.internal = fn;
        n->u.w.on_err.aux = aux;
        n->u.w.ud = ud;
    }
    return n;
}

/* Free a pending node that can never run, and give back what its handlers
 * hold. An internal reaction hears of it after the node is released: it may
 * free the node's owner, or attach the node again. */
static void discard(pact_loop *loop, pact_promise *n)
{
    if (n->hkind == H_INTERNAL) {
        pact__react_fn fn = n->u.w.on_ok.internal;
        void *ud = n->u.w.ud;
        uintptr_t aux = n->u.w.on_err.aux;
        node_release(loop, n);
        fn(NULL, ud, aux);
        return;
    }
    if (n->hkind == H_THUNK)
        pact__unref(n->u.w.ud);
    node_release(loop, n);
}

/* Free a node whose last reference went. A pending one frees the reactions
 * that waited on it and nobody else holds, iteratively (chains are long). */
static void destroy(pact_promise *p)
{
    pact_loop *loop = p->loop;
    if (p->state == PACT_FULFILLED) {
        if (p->u.v.kind > PACT_PTR) /* plain data holds nothing */
            pact_value_release(&p->u.v);
        node_release(loop, p);
        return;
    }
    if (p->state == PACT_REJECTED) {
        pact_error_unref(p->u.r.err);
        node_release(loop, p);
        return;
    }
    pact_promise *work = p;
    p->u.w.next = NULL;
    while (work) {
        pact_promise *n = work;
        work = n->u.w.next;
        for (pact_promise *c = n->u.w.head, *nx; c; c = nx) {
            nx = c->u.w.next;
            if (--c->refs == 0) {
                c->u.w.next = work;
                work = c;
            }
        }
        discard(loop, n);
    }
}

void pact__destroy(pact_promise *p)
{
    destroy(p);
}

/* ---- settling ------------------------------------------------------------ */

/* Queue one job per reaction, in the order they were attached. */
static void trigger(pact_promise *p, pact_promise *head)
{
    pact_promise *fifo = NULL, *nx;
    for (; head; head = nx) {
        nx = head->u.w.next;
        head->u.w.next = fifo;
        fifo = head;
    }
    for (; fifo; fifo = nx) {
        nx = fifo->u.w.next;
        fifo->u.w.next = p;
        p->refs++;
        pact__micro_must(p->loop, pact__run_reaction, fifo);
    }
}

static bool fulfillable(pact_kind k)
{
    return k <= PACT_LIST || k == PACT__LINK;
}

/* Fulfil @p p with @p v, a kind it may hold. */
static inline void fulfil(pact_promise *p, pact_value v)
{
    pact_promise *head = p->u.w.head;
    p->u.v = v;
    p->state = PACT_FULFILLED;
    if (head && !head->u.w.next) { /* one reaction: an await's, most often */
        head->u.w.next = p;
        p->refs++;
        pact__micro_must(p->loop, pact__run_reaction, head);
    } else if (head) {
        trigger(p, head);
    }
}

void pact__fulfil(pact_promise *p, pact_value v)
{
    if (!fulfillable(v.kind)) {
        int kind = (int)v.kind;
        pact_value_release(&v);
        pact__reject(p, PACT_ERROR(PACT_EINVAL, "unknown value kind %d", kind));
        return;
    }
    fulfil(p, v);
}

void pact__reject(pact_promise *p, pact_error *err)
{
    pact_promise *head = p->u.w.head;
    p->u.r.err = err ? err : pact__enomem();
    p->u.r.id = 0;
    p->state = PACT_REJECTED;
    if (!head && !(p->flags & P_HANDLED))
        pact__rejection_unhandled(p);
    trigger(p, head);
}

void pact__attach_settled(pact_promise *p, pact_promise *node)
{
    bool had = p->flags & P_HANDLED;
    p->flags |= P_HANDLED;
    node->u.w.next = p;
    p->refs++;
    pact__micro_must(p->loop, pact__run_reaction, node);
    if (p->state == PACT_REJECTED && !had)
        pact__rejection_handled(p);
}

void pact__settle_take(pact_promise **slot, pact_value v)
{
    pact_promise *p = *slot;
    *slot = NULL;
    pact__resolve(p, v);
    pact__unref(p);
}

pact_value pact__share(pact_promise *p)
{
    if (p->state == PACT_REJECTED)
        return pact_throw(pact_error_ref(p->u.r.err));
    pact_value v = p->u.v;
    switch ((int)v.kind) {
    case PACT_JSON:
        json_incref(v.u.json);
        break;
    case PACT_LIST:
        v.u.list->refs++;
        break;
    case PACT_OWNED:
    case PACT_BYTES:
    case PACT_STRING:
        v.kind = PACT__LINK;
        v.u.promise = p;
        p->refs++;
        break;
    case PACT__LINK:
        v.u.promise->refs++;
        break;
    }
    return v;
}

const pact_value *pact__value(const pact_promise *p)
{
    const pact_value *v = &p->u.v;
    return v->kind == PACT__LINK ? &v->u.promise->u.v : v;
}

/* The value held by @p p (fulfilled), moved out if nobody else can see it. */
static pact_value take_value(pact_promise *p)
{
    pact_promise *holder = p;
    if (p->u.v.kind == PACT__LINK)
        holder = p->u.v.u.promise;
    if (holder->u.v.kind <= PACT_PTR) /* plain data: a copy is a move */
        return holder->u.v;
    if (p->refs == 1 && (holder == p || holder->refs == 1)) {
        pact_value v = holder->u.v;
        holder->u.v = pact_nothing();
        return v;
    }
    return pact_value_copy(pact__value(p));
}

pact_error *pact__await_take(pact_promise *src, pact_value *out)
{
    /* the tests apart: one 8-byte load of refs and state together would
     * wait for the caller's recent 4-byte store to refs (no forwarding) */
    if (PACT__LIKELY(src->state == PACT_FULFILLED &&
                     src->u.v.kind <= PACT_PTR && src->refs == 1)) {
        /* data, and the last reference: nothing to copy or release */
        if (out)
            *out = src->u.v;
        node_release(src->loop, src);
        return NULL;
    }
    pact_error *err = NULL;
    if (src->state == PACT_REJECTED) {
        err = pact_error_ref(src->u.r.err);
    } else if (out) {
        *out = take_value(src);
        if (out->kind == PACT_ERROR) { /* an owned value others still hold */
            err = out->u.error;
            *out = pact_nothing();
        }
    }
    pact__unref(src);
    return err;
}

/* ---- the resolution procedure ------------------------------------------- */

/* NewPromiseResolveThenableJob for a pact promise: wait on it as a
 * pass-through reaction (the job's reference moves to its list). */
static void adopt_job(void *arg)
{
    pact_promise *p = arg, *q = p->u.w.ud;
    p->u.w.ud = NULL;
    pact__attach(q, p);
    pact__unref(q);
}

/* A far deferred for @p p (its reference moves in), or NULL without
 * memory: a thenable's resolver, quiet. */
static pact_deferred *far_deferred_new(pact_loop *loop, pact_promise *p)
{
    pact_promise *n = slot_take(loop);
    if (!n)
        return NULL;
    n->refs = 0;
    n->state = STATE_DEFERRED; /* not a promise */
    n->role = NODE_CB;
    n->hkind = H_CALLBACK;
    n->flags = 0;
    n->loop = loop;
    n->u.far.p = p;
    n->d = (struct pact_deferred){
        .refs = 1, .state = STATE_DEFERRED, .quiet = true, .far = true};
    return &n->d;
}

/* The same for a foreign thenable: call its then once with a resolver. */
static void thenable_job(void *arg)
{
    pact_promise *p = arg;
    void *obj = p->u.w.ud;
    const pact_thenable_vt *vt = p->u.w.on_err.vt;
    p->u.w.ud = NULL;
    p->u.w.on_err.vt = NULL;
    pact_deferred *d = far_deferred_new(p->loop, p);
    if (!d) {
        pact__reject(p, NULL);
        pact__unref(p);
    } else {
        /* a microtask step: say whose code it runs */
        pact__label_refine(p->loop, PACT_STEP_REACTION,
                           (void (*)(void))vt->then, obj);
        int rc = vt->then(obj, d);
        if (rc < 0 && !d->done)
            pact_deferred_reject(
                d, PACT_ERROR(rc, "the thenable's then failed (%s)",
                              pact_err_name(rc)));
    }
    if (vt->release)
        vt->release(obj);
    if (d)
        pact_deferred_unref(d);
}

void pact__resolve(pact_promise *p, pact_value v)
{
    if (PACT__LIKELY(v.kind <= PACT_LIST)) { /* data: no thenable to adopt */
        fulfil(p, v);
        return;
    }
    switch (v.kind) {
    case PACT_PROMISE:
        if (!v.u.promise) {
            pact__reject(p, PACT_ERROR(PACT_EINVAL, "resolved with NULL "
                                                    "promise"));
        } else if (v.u.promise->loop != p->loop) {
            pact__unref(v.u.promise);
            pact__reject(p, PACT_ERROR(PACT_EINVAL, "resolved with a promise "
                                                    "of another loop"));
        } else if (v.u.promise == p) {
            pact__unref(p);
            pact__reject(p, PACT_ERROR(PACT_ETYPE, "Chaining cycle detected "
                                                   "for promise #<Promise>"));
        } else {
            p->hkind = H_THEN;
            p->u.w.on_ok.ok = NULL;
            p->u.w.on_err.fail = NULL;
            p->u.w.ud = v.u.promise;
            p->refs++;
            pact__micro_must(p->loop, adopt_job, p);
        }
        return;
    case PACT_THENABLE:
        if (!v.u.thenable.vt || !v.u.thenable.vt->then) {
            pact_value_release(&v);
            pact__reject(p, PACT_ERROR(PACT_EINVAL, "thenable without then"));
            return;
        }
        p->hkind = H_THEN;
        p->u.w.on_ok.ok = NULL;
        p->u.w.on_err.vt = v.u.thenable.vt;
        p->u.w.ud = v.u.thenable.obj;
        p->refs++;
        pact__micro_must(p->loop, thenable_job, p);
        return;
    case PACT_ERROR:
        pact__reject(p, v.u.error);
        return;
    default:
        pact__fulfil(p, v);
    }
}

/* ---- reactions ----------------------------------------------------------- */

/* finally's first step (thenFinally / catchFinally): call the handler, then
 * wait for what it returned with a thunk that yields the original outcome. */
static pact_value finally_step(pact_promise *n, pact_promise *src)
{
    pact_value r = n->u.w.on_ok.fin(n->u.w.ud);
    if (r.kind == PACT_ERROR)
        return r;
    pact_promise *q;
    if (r.kind == PACT_PROMISE && r.u.promise) {
        q = r.u.promise;
    } else if (!(q = pact__promise_new(n->loop))) {
        pact_value_release(&r);
        return pact_throw(NULL);
    } else {
        pact__resolve(q, r);
    }
    pact_promise *t = pact__promise_new(n->loop);
    if (!t) {
        pact__unref(q);
        return pact_throw(NULL);
    }
    t->hkind = H_THUNK;
    t->u.w.ud = src;
    src->refs++;
    t->refs++; /* one for q's list, one for the resolution */
    pact__attach(q, t);
    pact__unref(q);
    return pact_promise_v(t);
}

/* What a then-node's handler makes of its source's outcome. */
static pact_value react(pact_promise *n, pact_promise *src)
{
    void *ud = n->u.w.ud;
    bool ok = src->state == PACT_FULFILLED;
    switch (n->hkind) {
    case H_SETTLED:
        return n->u.w.on_ok.settled(ok ? NULL : src->u.r.err,
                                    ok ? pact__value(src) : NULL, ud);
    case H_FINALLY:
        return finally_step(n, src);
    case H_THUNK: {
        pact_value r = pact__share(ok ? (pact_promise *)ud : src);
        n->u.w.ud = NULL;
        pact__unref(ud);
        return r;
    }
    default:
        if (ok && n->u.w.on_ok.ok)
            return n->u.w.on_ok.ok(pact__value(src), ud);
        if (!ok && n->u.w.on_err.fail)
            return n->u.w.on_err.fail(src->u.r.err, ud);
        return pact__share(src);
    }
}

/* For stall reports: the microtask step that runs reaction @p n is that
 * reaction, running the function it has for @p src's outcome. */
static void label_reaction(pact_promise *n, const pact_promise *src)
{
    typedef void (*any_fn)(void);
    any_fn fn = NULL;
    if (n->role == NODE_CB && n->hkind == H_CALLBACK)
        fn = (any_fn)n->u.w.on_ok.cb;
    else if (n->role == NODE_CB)
        fn = (any_fn)n->u.w.on_ok.internal;
    else if (n->hkind == H_SETTLED)
        fn = (any_fn)n->u.w.on_ok.settled;
    else if (n->hkind == H_FINALLY)
        fn = (any_fn)n->u.w.on_ok.fin;
    else if (n->hkind == H_THEN && src->state == PACT_FULFILLED)
        fn = (any_fn)n->u.w.on_ok.ok;
    else if (n->hkind == H_THEN)
        fn = (any_fn)n->u.w.on_err.fail;
    if (fn) /* a pass-through runs nothing of the program's */
        pact__label_refine(n->loop, PACT_STEP_REACTION, fn, n->u.w.ud);
}

void pact__run_reaction(void *arg)
{
    pact_promise *n = arg, *src = n->u.w.next;
    if (PACT__UNLIKELY(n->loop->stall != NULL))
        label_reaction(n, src);
    if (n->role == NODE_CB) {
        /* released first: the reaction may free the node's owner (a task
         * embeds its await's node), or attach the node again */
        union pact_handler_ok on_ok = n->u.w.on_ok;
        uintptr_t aux = n->u.w.on_err.aux;
        void *ud = n->u.w.ud;
        bool take = n->flags & P_TAKE, cb = n->hkind == H_CALLBACK;
        node_release(n->loop, n);
        if (cb) {
            bool ok = src->state == PACT_FULFILLED;
            on_ok.cb(ok ? NULL : src->u.r.err, ok ? pact__value(src) : NULL,
                     ud);
        } else {
            on_ok.internal(src, ud, aux);
        }
        if (!take)
            pact__unref(src);
        return;
    }
    pact_value r = react(n, src);
    n->hkind = H_THEN;
    n->u.w.on_ok.ok = NULL;
    n->u.w.on_err.fail = NULL;
    n->u.w.next = NULL;
    pact__unref(src);
    pact__resolve(n, r);
    pact__unref(n);
}

/* ---- loop teardown ------------------------------------------------------- */

static bool is_promise_job(pact_fn fn)
{
    return fn == pact__run_reaction || fn == adopt_job || fn == thenable_job;
}

/* Drop a queued job's references as if it ran and found nothing to do. */
static void drop_job(pact_fn fn, void *ud)
{
    pact_promise *n = ud;
    if (fn == pact__run_reaction) {
        pact_promise *src = n->u.w.next;
        n->u.w.next = NULL;
        if (n->role == NODE_CB) {
            discard(n->loop, n);
        } else {
            pact__unref(n);
        }
        pact__unref(src);
    } else if (fn == adopt_job) {
        pact_promise *q = n->u.w.ud;
        n->u.w.ud = NULL;
        pact__unref(q);
        pact__unref(n);
    } else {
        const pact_thenable_vt *vt = n->u.w.on_err.vt;
        if (vt->release)
            vt->release(n->u.w.ud);
        n->u.w.ud = NULL;
        pact__unref(n);
    }
}

/* pact_loop_free: drop the queued promise jobs and the rejection lists; the
 * loop cannot be freed while promises are still referenced. */
static const char *promises_busy(pact_loop *loop, void *state)
{
    struct pact__promises *ps = state;
    struct jobq *q = &loop->micro;
    struct job j;
    /* once round the ring, the other jobs put back into the slot just
     * popped; dropping one job may free nodes that other jobs no longer
     * name */
    for (size_t n = q->len; n > 0 && pact__jobq_pop(q, &j); n--) {
        if (is_promise_job(j.fn))
            drop_job(j.fn, j.ud);
        else
            pact__jobq_put(q, j.fn, j.ud);
    }
    pact__rejections_free(ps);
    return ps->plive ? "promises or deferreds are still referenced: unref "
                       "them first"
                     : NULL;
}

static void promises_free(pact_loop *loop, void *state)
{
    (void)loop;
    struct pact__promises *ps = state;
    pact__rejections_free(ps);
    for (void *w = ps->chan_spare, *nx; w; w = nx) {
        nx = *(void **)w;
        free(w);
    }
    for (struct pact__slab *s = ps->slabs, *nx; s; s = nx) {
        nx = s->next;
        UNPOISON(ps, s, sizeof *s);
        free(s);
    }
    free(ps);
}

static int promises_close(pact_loop *loop, void *state);

/* The lowest service: its close_all (the search for cycles) runs after the
 * upper layers have cancelled what they had pending. */
static const struct pact__service_ops promises_ops = {
    .close_all = promises_close,
    .busy = promises_busy,
    .free = promises_free,
};

static void *promises_make(pact_loop *loop)
{
    struct pact__promises *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    ps->marks = pact__on_valgrind();
    ps->unhandled_mode = PACT_UNHANDLED_THROW; /* PACT_UNHANDLED_REJECTIONS
                                                  may say otherwise */
    pact__on_drained(loop, pact__rejections, ps);
    return ps;
}

struct pact__promises *pact__promises_make(pact_loop *loop)
{
    return pact__service(loop, PACT__SVC_PROMISES, &promises_ops,
                         promises_make);
}

/* ---- cycles, at pact_loop_close_all -------------------------------------- */

/* Promises resolved with each other (directly, or round a chain) each wait
 * as a reaction on the next one's list, so each holds the next alive and none
 * can ever settle: once the program drops them, nothing could free them.
 * pact_loop_close_all finds them: every pending node waits on at most one
 * source (the list it is on, or the promise its queued adoption will attach
 * to), so following sources from any node either ends at one that waits on
 * nothing, or loops. Those that loop, and those that wait on them, are taken
 * off their sources and reacted to as if those had rejected. */

struct cycles {
    struct pact__slab **slabs; /* sorted by address */
    size_t nslabs;
    pact_promise **src; /* each node's source, by index */
};

static int slab_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (struct pact__slab *const *)a;
    uintptr_t y = (uintptr_t) * (struct pact__slab *const *)b;
    return x < y ? -1 : x > y;
}

static pact_promise **src_of(struct cycles *c, const pact_promise *n)
{
    size_t lo = 0, hi = c->nslabs;
    while (hi - lo > 1) { /* the last slab starting at or before n */
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)c->slabs[mid] <= (uintptr_t)n)
            lo = mid;
        else
            hi = mid;
    }
    size_t i = (size_t)(n - c->slabs[lo]->nodes);
    return &c->src[lo * SLAB_NODES + i];
}

static struct job *micro_at(pact_loop *loop, size_t i)
{
    struct jobq *q = &loop->micro;
    return &q->v[(q->head + i) & (q->cap - 1)];
}

#define EACH_NODE(c, n)                                                        \
    for (size_t si = 0; si < (c)->nslabs; si++)                                \
        for (pact_promise *n = (c)->slabs[si]->nodes;                          \
             n < (c)->slabs[si]->nodes + SLAB_NODES; n++)                      \
            if (n->state != STATE_DEAD && n->state != STATE_DEFERRED)

/* Fill c->src: the lists, and the adoptions still queued. */
static void find_sources(pact_loop *loop, struct cycles *c)
{
    EACH_NODE(c, n)
    {
        if (n->state == PACT_PENDING)
            for (pact_promise *w = n->u.w.head; w; w = w->u.w.next)
                if (!(w->flags & P_OWNED)) /* not in a slab: see below */
                    *src_of(c, w) = n;
    }
    for (size_t i = 0; i < loop->micro.len; i++) {
        struct job *j = micro_at(loop, i);
        if (j->fn == adopt_job) {
            pact_promise *p = j->ud;
            *src_of(c, p) = p->u.w.ud;
        }
    }
}

/* Mark P_DOOM on every node whose sources loop. @return how many. */
static size_t find_doomed(struct cycles *c)
{
    size_t doomed = 0;
    EACH_NODE(c, x)
    {
        pact_promise *y = x, *s;
        while (!(y->flags & (P_WALK | P_DONE)) && (s = *src_of(c, y))) {
            y->flags |= P_WALK;
            y = s;
        }
        /* round to the path itself, or on to a known fate, or a root */
        bool doom = (y->flags & P_WALK) || (y->flags & P_DOOM);
        for (pact_promise *z = x; z->flags & P_WALK; z = *src_of(c, z)) {
            z->flags =
                (uint8_t)((z->flags & ~P_WALK) | P_DONE | (doom ? P_DOOM : 0));
            doomed += doom;
        }
        x->flags |= P_DONE;
    }
    return doomed;
}

/* Queue @p n's reaction to @p r (rejected) instead of to its source. */
static void react_to(pact_promise *n, pact_promise *r, pact_fn *slot)
{
    n->u.w.next = r;
    r->refs++;
    n->flags |= P_HANDLED; /* a shutdown's cancellation is not news */
    if (slot)
        *slot = pact__run_reaction;
    else
        pact__micro_must(n->loop, pact__run_reaction, n);
}

static void cancel_doomed(pact_loop *loop, struct cycles *c, pact_promise *r)
{
    EACH_NODE(c, s)
    {
        if (s->state != PACT_PENDING)
            continue;
        /* take the doomed off the list (all of them: a doomed node's
         * waiters are doomed too), oldest first */
        pact_promise **link = &s->u.w.head, *w, *fifo = NULL;
        bool doomed = s->flags & P_DOOM;
        while ((w = *link)) {
            /* an embedded node waits on nothing else: doomed as its source */
            if ((w->flags & P_DOOM) || (doomed && (w->flags & P_OWNED))) {
                *link = w->u.w.next;
                w->u.w.next = fifo;
                fifo = w;
            } else {
                link = &w->u.w.next;
            }
        }
        for (pact_promise *nx; fifo; fifo = nx) {
            nx = fifo->u.w.next;
            react_to(fifo, r, NULL); /* the list's reference moves */
        }
    }
    for (size_t i = 0; i < loop->micro.len; i++) {
        struct job *j = micro_at(loop, i);
        pact_promise *p = j->ud;
        if (j->fn != adopt_job || !(p->flags & P_DOOM))
            continue;
        pact_promise *q = p->u.w.ud;
        p->u.w.ud = NULL;
        react_to(p, r, &j->fn); /* the job's reference stays */
        /* q is doomed too: its own job still holds it */
        pact__unref(q);
    }
}

/* pact_loop_close_all's part: promises that wait on each other in a cycle,
 * which nothing can settle, are rejected with PACT_ECANCELED (their reactions
 * queued). @return 0, or PACT_ENOMEM (the cycles are left). */
static int promises_close(pact_loop *loop, void *state)
{
    struct pact__promises *ps = state;
    struct cycles c = {0};
    for (struct pact__slab *s = ps->slabs; s; s = s->next)
        c.nslabs++;
    if (!ps->plive)
        return 0;
    c.slabs = malloc(c.nslabs * sizeof *c.slabs);
    c.src = calloc(c.nslabs * SLAB_NODES, sizeof *c.src);
    int rc = c.slabs && c.src ? 0 : PACT_ENOMEM;
    if (rc == 0) {
        size_t i = 0;
        for (struct pact__slab *s = ps->slabs; s; s = s->next)
            c.slabs[i++] = s;
        qsort(c.slabs, c.nslabs, sizeof *c.slabs, slab_cmp);
        find_sources(loop, &c);
        if (find_doomed(&c)) {
            pact_promise *r = pact__promise_new(loop);
            if (r) {
                r->flags |= P_HANDLED;
                pact__reject(r, PACT_ERROR(PACT_ECANCELED,
                                           "promises waiting on each other "
                                           "in a cycle, cancelled by "
                                           "pact_loop_close_all"));
                cancel_doomed(loop, &c, r);
                pact__unref(r);
            } else {
                rc = PACT_ENOMEM;
            }
        }
        EACH_NODE(&c, n)
        {
            n->flags &= (uint8_t) ~(P_WALK | P_DONE | P_DOOM);
        }
    }
    free(c.slabs);
    free(c.src);
    return rc;
}

/* ---- the public calls ---------------------------------------------------- */

/* The common checks of the calls on a promise: 0, or the code (reported). */
static int check(const pact_promise *p, const char *fn)
{
    if (!p)
        return pact__misuse(fn, PACT_EINVAL, "promise is NULL");
    if (p->state == STATE_DEAD) {
        char why[96];
        snprintf(why, sizeof why, "promise %p was already freed", (void *)p);
        return pact__misuse_always(fn, PACT_EINVAL, why);
    }
    if (pact__misuse_thread(p->loop, fn))
        return PACT_ETHREAD;
    return 0;
}

static bool loop_ok(pact_loop *loop, const char *fn)
{
    if (!loop) {
        pact__misuse(fn, PACT_EINVAL, "loop is NULL");
        return false;
    }
    return !pact__misuse_thread(loop, fn);
}

/* The node whose tail @p d is. */
static inline pact_promise *deferred_node(const pact_deferred *d)
{
    return (pact_promise *)((char *)(uintptr_t)d - offsetof(pact_promise, d));
}

pact_deferred *pact__deferred_new(pact_loop *loop, pact_promise **out,
                                  const char *fn)
{
    if (!loop_ok(loop, fn))
        return NULL;
    pact_promise *p = pact__promise_new(loop);
    if (!p)
        return NULL;
    /* p's one reference is the deferred's until it settles */
    p->d = (struct pact_deferred){.refs = 1, .state = STATE_DEFERRED};
    if (out) {
        p->refs++;
        *out = p;
    }
    return &p->d;
}

pact_deferred *pact_deferred_new(pact_loop *loop, pact_promise **out)
{
    return pact__deferred_new(loop, out, "pact_deferred_new");
}

/* The code (reported) for a NULL or freed deferred, or off its thread. */
static int deferred_misuse(const pact_deferred *d, const char *fn)
{
    if (!d)
        return pact__misuse(fn, PACT_EINVAL, "deferred is NULL");
    if (d->state != STATE_DEFERRED) {
        char why[96];
        snprintf(why, sizeof why, "deferred %p was already freed",
                 (const void *)d);
        return pact__misuse_always(fn, PACT_EINVAL, why);
    }
    return pact__misuse(fn, PACT_ETHREAD, "called off the loop thread");
}

/* 0, or the code (reported) for a NULL or freed deferred, or off its
 * thread: inline, as it runs twice per operation. */
static inline int check_deferred(const pact_deferred *d, const char *fn)
{
    if (PACT__UNLIKELY(!d || d->state != STATE_DEFERRED ||
                       !pact__on_thread(deferred_node(d)->loop)))
        return deferred_misuse(d, fn);
    return 0;
}

int pact__settle(pact_deferred *d, pact_value v, const char *fn)
{
    int rc = check_deferred(d, fn);
    if (rc < 0) {
        pact_value_release(&v);
        return rc;
    }
    pact_promise *p = deferred_node(d);
    if (d->done) {
        char why[96];
        pact_value_release(&v);
        if (d->quiet)
            return PACT_EALREADY;
        snprintf(why, sizeof why, "the deferred already resolved promise %p",
                 (const void *)p);
        return pact__misuse(fn, PACT_EALREADY, why);
    }
    d->done = true;
    if (PACT__UNLIKELY(d->far)) {
        pact_promise *q = p->u.far.p;
        p->u.far.p = NULL;
        p = q;
    }
    pact__resolve(p, v);
    pact__unref(p); /* the deferred's reference: p's node may go half dead */
    return 0;
}

int pact_deferred_resolve(pact_deferred *d, pact_value v)
{
    return pact__settle(d, v, "pact_deferred_resolve");
}

int pact_deferred_reject(pact_deferred *d, pact_error *err)
{
    return pact__settle(d, pact_throw(err ? err : pact__enomem()),
                        "pact_deferred_reject");
}

bool pact_deferred_done(const pact_deferred *d)
{
    return d && d->state == STATE_DEFERRED && d->done;
}

pact_deferred *pact_deferred_ref(pact_deferred *d)
{
    if (check_deferred(d, "pact_deferred_ref") == 0)
        d->refs++;
    return d;
}

void pact_deferred_unref(pact_deferred *d)
{
    if (!d || check_deferred(d, "pact_deferred_unref") < 0 || --d->refs)
        return;
    if (!d->done)
        pact_deferred_reject(d, PACT_ERROR(PACT_ECANCELED,
                                           "broken promise: its deferred was "
                                           "dropped unresolved"));
    pact_promise *n = deferred_node(d);
    d->state = STATE_DEAD;
    if (d->far || n->state == STATE_DEAD) /* the promise went before */
        slot_put(n->loop, n);
}

static pact_promise *resolved(pact_loop *loop, pact_value v, const char *fn)
{
    if (!loop_ok(loop, fn)) {
        pact_value_release(&v);
        return NULL;
    }
    if (v.kind == PACT_PROMISE && v.u.promise)
        return v.u.promise;
    pact_promise *p = pact__promise_new(loop);
    if (!p) {
        pact_value_release(&v);
        return NULL;
    }
    pact__resolve(p, v);
    return p;
}

pact_promise *pact_resolved(pact_loop *loop, pact_value v)
{
    return resolved(loop, v, "pact_resolved");
}

pact_promise *pact_rejected(pact_loop *loop, pact_error *err)
{
    return resolved(loop, pact_throw(err ? err : pact__enomem()),
                    "pact_rejected");
}

/* A then-node on @p p after the checks of public call @p fn (@p missing: its
 * handler is NULL): one reference for the caller, one for the list. */
static pact_promise *then_node(pact_promise *p, const char *fn, bool missing,
                               uint8_t hkind, void *ud)
{
    if (check(p, fn) < 0)
        return NULL;
    if (missing)
        return pact__misuse(fn, PACT_EINVAL, "the handler is NULL"), NULL;
    pact_promise *n = node_new(p->loop, NODE_THEN, hkind);
    if (!n)
        return NULL;
    n->u.w.ud = ud;
    n->refs = 2;
    return n;
}

static pact_promise *then_(pact_promise *p, const char *fn,
                           pact_on_fulfilled ok, pact_on_rejected fail,
                           void *ud)
{
    pact_promise *n = then_node(p, fn, false, H_THEN, ud);
    if (n) {
        n->u.w.on_ok.ok = ok;
        n->u.w.on_err.fail = fail;
        pact__attach(p, n);
    }
    return n;
}

static pact_promise *finally_(pact_promise *p, const char *fn,
                              pact_on_finally fin, void *ud)
{
    pact_promise *n = then_node(p, fn, !fin, H_FINALLY, ud);
    if (n) {
        n->u.w.on_ok.fin = fin;
        pact__attach(p, n);
    }
    return n;
}

static pact_promise *then_cb_(pact_promise *p, const char *fn,
                              pact_on_settled settled, void *ud)
{
    pact_promise *n = then_node(p, fn, !settled, H_SETTLED, ud);
    if (n) {
        n->u.w.on_ok.settled = settled;
        pact__attach(p, n);
    }
    return n;
}

pact_promise *pact_then(pact_promise *p, pact_on_fulfilled ok,
                        pact_on_rejected fail, void *ud)
{
    return then_(p, "pact_then", ok, fail, ud);
}

pact_promise *pact_catch(pact_promise *p, pact_on_rejected fail, void *ud)
{
    return then_(p, "pact_catch", NULL, fail, ud);
}

pact_promise *pact_finally(pact_promise *p, pact_on_finally fn, void *ud)
{
    return finally_(p, "pact_finally", fn, ud);
}

pact_promise *pact_then_cb(pact_promise *p, pact_on_settled fn, void *ud)
{
    return then_cb_(p, "pact_then_cb", fn, ud);
}

/* The _take forms: the source's reference is the caller's to give, so it
 * goes whatever the result (the derived promise, when there is one, keeps
 * what it needs of it: its place on the source's list, or a reference while
 * its reaction is queued). A NULL source is an earlier link that failed:
 * passed on quietly, as NULL (that failure was reported where it happened). */
static pact_promise *took(pact_promise *p, pact_promise *derived)
{
    pact_promise_unref(p);
    return derived;
}

pact_promise *pact_then_take(pact_promise *p, pact_on_fulfilled ok,
                             pact_on_rejected fail, void *ud)
{
    return p ? took(p, then_(p, "pact_then_take", ok, fail, ud)) : NULL;
}

pact_promise *pact_catch_take(pact_promise *p, pact_on_rejected fail, void *ud)
{
    return p ? took(p, then_(p, "pact_catch_take", NULL, fail, ud)) : NULL;
}

pact_promise *pact_finally_take(pact_promise *p, pact_on_finally fn, void *ud)
{
    return p ? took(p, finally_(p, "pact_finally_take", fn, ud)) : NULL;
}

pact_promise *pact_then_cb_take(pact_promise *p, pact_on_settled fn, void *ud)
{
    return p ? took(p, then_cb_(p, "pact_then_cb_take", fn, ud)) : NULL;
}

int pact_promise_callback(pact_promise *p, pact_value_cb cb, void *ud)
{
    int rc = check(p, "pact_promise_callback");
    if (rc < 0)
        return rc;
    PACT_CHECK_ARG(cb, "pact_promise_callback");
    pact_promise *n = node_new(p->loop, NODE_CB, H_CALLBACK);
    if (!n)
        return PACT_ENOMEM;
    n->u.w.on_ok.cb = cb;
    n->u.w.ud = ud;
    pact__attach(p, n);
    return 0;
}

pact_promise *pact_promise_ref(pact_promise *p)
{
    if (check(p, "pact_promise_ref") == 0)
        p->refs++;
    return p;
}

void pact_promise_unref(pact_promise *p)
{
    if (p && check(p, "pact_promise_unref") == 0)
        pact__unref(p);
}

pact_state pact_promise_state(const pact_promise *p)
{
    return p && p->state != STATE_DEAD ? (pact_state)p->state : PACT_PENDING;
}

const pact_value *pact_promise_value(const pact_promise *p)
{
    return pact_promise_state(p) == PACT_FULFILLED ? pact__value(p) : NULL;
}

pact_error *pact_promise_error(const pact_promise *p)
{
    return pact_promise_state(p) == PACT_REJECTED ? p->u.r.err : NULL;
}

pact_loop *pact_promise_loop(const pact_promise *p)
{
    return p && p->state != STATE_DEAD ? p->loop : NULL;
}
