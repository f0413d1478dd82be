/* Private to the promise layer (value.c, promise.c, combine.c, adapt.c,
 * reject.c): the promise's layout and the calls those files share.
 *
 * One 64-byte node is both a promise and the reaction that feeds it: the
 * promise made by then() waits on its source's list as that reaction, with the
 * handlers stored in it until they have run, so a then() costs one
 * allocation. Callback reactions (pact_promise_callback, the combinators' and
 * later the await layer's) are nodes with role NODE_CB: not promises, but
 * listed and run the same way. */
#ifndef PACT_PROMISE_INTERNAL_H
#define PACT_PROMISE_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 2
#error                                                                         \
    "promise_internal.h is layer 2 (promise): a lower layer must not include it"
#endif

#include "internal.h"
#include "pact/promise.h"
#include "pact/value.h"

/* A value kind that never leaves the layer: "the value of promise u.promise"
 * (one reference), for values that cannot be copied (PACT_OWNED) or would
 * cost a copy (PACT_BYTES, PACT_STRING), shared by pass-through or adoption.
 * Its target is never a link. */
#define PACT__LINK ((pact_kind)64)

/* An internal reaction: @p src is the settled promise (borrowed), or NULL when
 * the node is discarded because its source can never settle (release @p ud's
 * resources then). */
typedef void (*pact__react_fn)(pact_promise *src, void *ud, uintptr_t aux);

enum node_role {
    NODE_THEN, /* a promise (made by then(), a deferred, a combinator...) */
    NODE_CB,   /* a callback reaction only */
};

/* What a node's handler slots hold. */
enum node_handler {
    H_THEN,     /* on_ok.ok / on_err.fail, each may be NULL (pass through) */
    H_SETTLED,  /* on_ok.settled: one error-first handler */
    H_FINALLY,  /* on_ok.fin: finally's handler */
    H_THUNK,    /* finally's second step: ud is the original source (a ref)
                   whose outcome becomes this promise's */
    H_CALLBACK, /* NODE_CB: on_ok.cb, a pact_value_cb */
    H_INTERNAL, /* NODE_CB: on_ok.internal with on_err.aux */
};

enum node_flags {
    P_HANDLED = 1, /* a reaction was attached once (V8's has_handler) */
    P_WARNED = 2,  /* reported as unhandled; a late handler is news */
    P_TAKE = 4,    /* NODE_CB: its callback takes over the job's reference to
                      the source (an await moving the value out needs to hold
                      the last one) */
    P_OWNED = 64,  /* NODE_CB embedded in its owner (pact__node_embed), not
                      in a slab: released by going idle, never freed */
    /* only inside pact__promises_close's search for cycles */
    P_WALK = 8,  /* on the path being followed */
    P_DONE = 16, /* its fate is known */
    P_DOOM = 32, /* waits on a cycle, or is in one */
};

union pact_handler_ok {
    pact_on_fulfilled ok;
    pact_on_settled settled;
    pact_on_finally fin;
    pact_value_cb cb;
    pact__react_fn internal;
};

union pact_handler_err {
    pact_on_rejected fail;
    uintptr_t aux;
    const pact_thenable_vt *vt; /* while adopting a thenable */
};

/* A deferred lives in the tail of its promise's node (the handle points
 * there), so that pact_deferred_new takes one slab node, not two. The node
 * goes back to its slab when both are gone: the promise's last unref with
 * the deferred alive leaves the node half dead (state PACT__NODE_IDLE, the
 * body marked freed, counted in plive so that pact_loop_free still refuses),
 * and the deferred's last unref then frees it. The tail, like the header,
 * stays readable while the node is free, so that a stale deferred is
 * reported, not obeyed. A thenable's resolver is made for a promise that may
 * have a deferred of its own already: it is a far deferred, the tail of a
 * node of its own whose body holds the promise (u.far.p). */
struct pact_deferred {
    uint32_t refs;
    uint8_t state; /* promise.c's STATE_DEFERRED while referenced */
    bool done;
    bool quiet; /* a thenable's resolver: settling twice is allowed */
    bool far;   /* the promise is u.far.p, not the node's own */
};

struct pact_promise {
    uint32_t refs;
    uint8_t state; /* pact_state */
    uint8_t role;  /* node_role */
    uint8_t hkind; /* node_handler */
    uint8_t flags; /* node_flags */
    union {
        pact_loop *loop;
        pact_promise *free_next; /* while free: the header stays readable */
    };
    union {
        struct {
            /* reactions waiting on this promise, newest first */
            pact_promise *head;
            /* as a reaction: the next one on its source's list; once its
             * source settled and its job is queued, the source (a ref) */
            pact_promise *next;
            union pact_handler_ok on_ok;
            union pact_handler_err on_err;
            void *ud;
        } w;          /* pending */
        pact_value v; /* fulfilled */
        struct {
            pact_error *err;
            uint64_t id; /* rejection id, once reported */
        } r;             /* rejected */
        struct {
            pact_promise *p; /* a reference until done */
        } far;               /* a far deferred's node (see pact_deferred) */
    } u;
    struct pact_deferred d; /* the promise's own deferred, when it has one */
};

struct pact_list {
    uint32_t refs;
    size_t len;
    pact_promise *items[]; /* references */
};

/* A loop's promise state: the layer's service (PACT__SVC_PROMISES), made
 * with the loop's first promise, which the core sees only as a void *. */
struct pact__promises {
    struct pact__slab *slabs; /* node chunks, freed with the loop */
    pact_promise *pfree;      /* free nodes, linked through free_next */
    size_t plive;             /* nodes handed out and not freed */
    bool marks; /* under valgrind: freed nodes are marked inaccessible */
    /* reject.c */
    pact_promise **unhandled; /* rejected without a handler (refs), FIFO */
    size_t unhandled_len, unhandled_cap;
    pact_promise **late; /* reported, then handled (refs), FIFO */
    size_t late_len, late_cap;
    int unhandled_mode; /* pact_unhandled_mode */
    pact_rejection_hook rejection_hook;
    void *rejection_ud;
    uint64_t rejection_ids;
    /* chan.c: finished waiters kept for the next call, linked through
     * their first word (a round trip between two tasks makes four) */
    void *chan_spare;
    size_t chan_nspare;
};

/* ---- promise.c ----------------------------------------------------------- */

/* @p loop's promise state, made on first use; NULL without memory. */
struct pact__promises *pact__promises_make(pact_loop *loop);
static inline struct pact__promises *pact__promises_of(pact_loop *loop)
{
    void *ps = pact__service_find(loop, PACT__SVC_PROMISES);
    return PACT__UNLIKELY(!ps) ? pact__promises_make(loop) : ps;
}
/* The state of a loop that has made a promise. */
static inline struct pact__promises *pact__promises_had(pact_loop *loop)
{
    struct pact__promises *ps = pact__service_find(loop, PACT__SVC_PROMISES);
    assert(ps);
    return ps;
}

/* The microtask job that runs reaction node @p arg. */
void pact__run_reaction(void *arg);
/* Free a node never attached, without running or discarding its handler. */
void pact__node_free(pact_promise *n);
/* A pending promise (role NODE_THEN, no handlers), or NULL without memory. */
pact_promise *pact__promise_new(pact_loop *loop);
/* The state of a freed node, and of an embedded one that is idle. */
#define PACT__NODE_IDLE 0xdd
/* The microtask drain's next job, taken by the layer that would run it
 * (the await layer's switch straight from one task to the next): peek says
 * whether it is a P_TAKE reaction of @p fn and returns its ud, or NULL
 * (nothing queued, another job, an uncaught error stopping the drain);
 * take then pops it as the drain would have, releasing the node: *@p src
 * (a reference) and *@p aux are what @p fn would have been called with. */
static inline void *pact__micro_peek_reaction(pact_loop *loop,
                                              pact__react_fn fn)
{
    const struct job *j = pact__micro_peek(loop);
    if (!j || j->fn != pact__run_reaction)
        return NULL;
    const pact_promise *n = j->ud;
    if (n->role != NODE_CB || n->hkind != H_INTERNAL ||
        n->u.w.on_ok.internal != fn || !(n->flags & P_TAKE))
        return NULL;
    return n->u.w.ud;
}
static inline void pact__micro_take_reaction(pact_loop *loop,
                                             pact_promise **src, uintptr_t *aux)
{
    struct job j;
    bool popped = pact__jobq_pop(&loop->micro, &j);
    assert(popped && j.fn == pact__run_reaction);
    (void)popped;
    pact_promise *n = j.ud;
    *src = n->u.w.next; /* the job's reference moves (P_TAKE) */
    *aux = n->u.w.on_err.aux;
    if (n->flags & P_OWNED) { /* idle: its owner may attach it again */
        n->state = PACT__NODE_IDLE;
        assert(loop->micro.reserved > 0);
        loop->micro.reserved--; /* pact__micro_unreserve */
    } else {
        pact__node_free(n);
    }
}
/* pact__micro_reserve, its common case inline: once per node. */
static inline int pact__reserve(pact_loop *loop)
{
    struct jobq *q = &loop->micro;
    if (PACT__UNLIKELY(q->len + q->reserved >= q->cap))
        return pact__micro_reserve(loop);
    q->reserved++;
    return 0;
}
/* Set up @p n, a node embedded in its owner and idle (state PACT__NODE_IDLE),
 * as a callback reaction (flag P_OWNED) to attach with pact__attach: an
 * owner that awaits over and over reuses one node instead of taking one
 * from the slabs each time. It is idle again once its reaction ran or was
 * discarded (before @p fn is called). 0 or PACT_ENOMEM. Inline: a task or an
 * async function embeds its node at every await. */
static inline int pact__node_embed(pact_loop *loop, pact_promise *n,
                                   pact__react_fn fn, void *ud, uintptr_t aux)
{
    if (pact__reserve(loop) < 0)
        return PACT_ENOMEM;
    n->refs = 1;
    n->state = PACT_PENDING;
    n->role = NODE_CB;
    n->hkind = H_INTERNAL;
    n->flags = P_OWNED;
    n->loop = loop;
    n->u.w.head = NULL;
    n->u.w.next = NULL;
    n->u.w.on_ok.internal = fn;
    n->u.w.on_err.aux = aux;
    n->u.w.ud = ud;
    return 0;
}
/* A callback reaction node. */
pact_promise *pact__node_cb(pact_loop *loop, pact__react_fn fn, void *ud,
                            uintptr_t aux);
/* pact_deferred_new and the deferred's settle, naming @p fn in misuse
 * reports. */
pact_deferred *pact__deferred_new(pact_loop *loop, pact_promise **out,
                                  const char *fn);
int pact__settle(pact_deferred *d, pact_value v, const char *fn);
/* Attach a reaction node (its reference moves to @p p's list, or to the job
 * when @p p is settled already). Inline for a pending @p p (every await);
 * pact__attach_settled is the rest. */
void pact__attach_settled(pact_promise *p, pact_promise *node);
static inline void pact__attach(pact_promise *p, pact_promise *node)
{
    if (PACT__UNLIKELY(p->state != PACT_PENDING)) {
        pact__attach_settled(p, node);
        return;
    }
    p->flags |= P_HANDLED;
    node->u.w.next = p->u.w.head;
    p->u.w.head = node;
}
/* The resolution procedure; steals @p v. @p p must be unresolved. */
void pact__resolve(pact_promise *p, pact_value v);
/* Resolve *@p slot with @p v (stolen), then drop the reference the slot
 * held and clear it: how a combinator lets go of its target. */
void pact__settle_take(pact_promise **slot, pact_value v);
/* Settle at once (no adoption); steals @p v / @p err. */
void pact__fulfil(pact_promise *p, pact_value v);
void pact__reject(pact_promise *p, pact_error *err);
/* @p p's outcome (settled) as a resolution of its own: a copy or link of the
 * value, or a new reference to the error. */
pact_value pact__share(pact_promise *p);
/* The value a fulfilled promise holds, links followed. */
const pact_value *pact__value(const pact_promise *p);
/* Free a node whose last reference went (pact__unref's slow path). */
void pact__destroy(pact_promise *p);
/* Drop a reference from inside the layer (no thread check): inline, as a
 * round trip between two tasks drops six. */
static inline void pact__unref(pact_promise *p)
{
    if (p && --p->refs == 0)
        pact__destroy(p);
}
/* What an await gives back from the settled @p src (a reference, consumed):
 * NULL and *@p out (may be NULL) set to the value -- moved out when @p src
 * held the last reference to it, else a copy -- or the rejection (a new
 * reference). */
pact_error *pact__await_take(pact_promise *src, pact_value *out);

/* ---- adapt.c ------------------------------------------------------------- */

/* pact_promisify, naming @p fn in misuse reports. */
pact_promise *pact__promisify(pact_loop *loop, pact_start_fn start, void *args,
                              const char *fn);

/* ---- combine.c ----------------------------------------------------------- */

/* pact_promise_abortable; with @p wrap the rejection is PACT_ECANCELED caused
 * by the reason (as the timers' twins reject). */
pact_promise *pact__abortable(pact_promise *p, pact_abort *abort, bool wrap,
                              const char *fn);

/* ---- value.c ------------------------------------------------------------- */

pact_list *pact__list_new(size_t len);
void pact__list_unref(pact_list *l);

/* ---- reject.c ------------------------------------------------------------ */

void pact__rejections_free(struct pact__promises *ps);
/* The "queues drained" hook: Node's processPromiseRejections. @return
 * whether anything ran that may have queued more work. */
bool pact__rejections(pact_loop *loop, void *state);

/* A promise was rejected with no handler (V8's kPromiseRejectWithNoHandler). */
void pact__rejection_unhandled(pact_promise *p);
/* A handler was attached to a rejected promise that had none. */
void pact__rejection_handled(pact_promise *p);

/* ---- chan.c -------------------------------------------------------------- */

struct pact_chan;
/* pact_chan_send and _recv whose callback runs inside the call that
 * completes them (this one, or the other side's), never on a later tick,
 * and whose cancellation is the ambient token's: for an await that parks a
 * task (layer 3). A cancellation still calls back on a later tick. */
int pact__chan_send_sync(struct pact_chan *ch, pact_value value, pact_cb cb,
                         void *ud);
int pact__chan_recv_sync(struct pact_chan *ch,
                         void (*cb)(pact_error *err, pact_value *v, void *ud),
                         void *ud);
/* A task's await without a record when it need not wait: hand @p value to a
 * parked receiver or into the buffer (1: taken), or 0 (it would wait;
 * untouched), or PACT_EPIPE (closed; untouched), PACT_EINVAL, PACT_ETHREAD,
 * PACT_ENOMEM. */
int pact__chan_try_send(struct pact_chan *ch, pact_value *value);
/* Take a value from the buffer or a parked sender (1), or 0 (it would
 * wait), PACT_EOF (closed and drained), PACT_EINVAL, PACT_ETHREAD,
 * PACT_ENOMEM. */
int pact__chan_try_recv(struct pact_chan *ch, pact_value *out);

#endif
