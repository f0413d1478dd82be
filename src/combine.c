/* The combinators (Promise.all, allSettled, race, any) and the promise
 * wrappers with a deadline or an abort token. Each input gets one callback
 * reaction, attached in array order as Node's `.then` calls are, so results
 * and rejections arrive in the same microtask turns. */
#include <stdlib.h>

#include "promise_internal.h"

enum comb_kind { C_ALL, C_SETTLED, C_RACE, C_ANY };

/* Shared by the reactions of one call; freed when the last has run or been
 * discarded (an input that can never settle). */
struct comb {
    uint8_t kind;
    pact_promise *target; /* a reference until we settle it */
    pact_list *list;      /* all / allSettled: the inputs, in order */
    pact_error **errs;    /* any: the reasons, in input order */
    size_t n, remaining, nodes;
};

/* any()'s rejection, in Node's words (V8's AggregateError message). */
#define any_error(errs, n)                                                     \
    pact_error_aggregate_at(__FILE__, __LINE__, (errs), (n),                   \
                            "All promises were rejected")

static void comb_done(struct comb *c)
{
    if (--c->nodes)
        return;
    pact__unref(c->target);
    pact__list_unref(c->list);
    if (c->errs) {
        for (size_t i = 0; i < c->n; i++)
            pact_error_unref(c->errs[i]);
        free(c->errs);
    }
    free(c);
}

static pact_value list_value(pact_list *l)
{
    pact_value v = {PACT_LIST, {0}};
    l->refs++;
    v.u.list = l;
    return v;
}

static void on_input(pact_promise *src, void *ud, uintptr_t i)
{
    struct comb *c = ud;
    if (src && c->target) {
        bool ok = src->state == PACT_FULFILLED;
        switch (c->kind) {
        case C_ALL:
            if (!ok)
                pact__settle_take(&c->target, pact__share(src));
            else if (--c->remaining == 0)
                pact__settle_take(&c->target, list_value(c->list));
            break;
        case C_SETTLED:
            if (--c->remaining == 0)
                pact__settle_take(&c->target, list_value(c->list));
            break;
        case C_RACE:
            pact__settle_take(&c->target, pact__share(src));
            break;
        case C_ANY:
            if (ok) {
                pact__settle_take(&c->target, pact__share(src));
            } else {
                c->errs[i] = pact_error_ref(src->u.r.err);
                if (--c->remaining == 0)
                    pact__settle_take(&c->target,
                                      pact_throw(any_error(c->errs, c->n)));
            }
            break;
        }
    }
    comb_done(c);
}

/* Checks shared by the four: every input usable. */
static bool inputs_ok(pact_loop *loop, pact_promise *const *ps, size_t n,
                      const char *fn)
{
    if (!loop) {
        pact__misuse(fn, PACT_EINVAL, "loop is NULL");
        return false;
    }
    if (pact__misuse_thread(loop, fn))
        return false;
    if (n && !ps) {
        pact__misuse(fn, PACT_EINVAL, "ps is NULL");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ps[i] || pact_promise_loop(ps[i]) != loop) {
            pact__misuse(fn, PACT_EINVAL,
                         "an input is NULL, freed or of another loop");
            return false;
        }
    }
    return true;
}

static pact_promise *combine(pact_loop *loop, pact_promise *const *ps, size_t n,
                             enum comb_kind kind, const char *fn)
{
    if (!inputs_ok(loop, ps, n, fn))
        return NULL;
    pact_promise *t = pact__promise_new(loop);
    if (!t)
        return NULL;
    if (n == 0) {
        pact_list *l;
        switch (kind) {
        case C_RACE: /* pending for ever, as Promise.race([]) */
            return t;
        case C_ANY:
            pact__reject(t, any_error(NULL, 0));
            return t;
        default:
            if (!(l = pact__list_new(0))) {
                pact__unref(t);
                return NULL;
            }
            pact__fulfil(t, list_value(l));
            pact__list_unref(l);
            return t;
        }
    }
    struct comb *c = calloc(1, sizeof *c);
    pact_promise **nodes = malloc(n * sizeof *nodes);
    bool ok = c && nodes;
    if (ok && (kind == C_ALL || kind == C_SETTLED))
        ok = (c->list = pact__list_new(n)) != NULL;
    if (ok && kind == C_ANY)
        ok = (c->errs = calloc(n, sizeof *c->errs)) != NULL;
    size_t made = 0;
    for (; ok && made < n; made++)
        ok = (nodes[made] = pact__node_cb(loop, on_input, c, made)) != NULL;
    if (!ok) { /* nothing attached yet: undo without running anything */
        for (size_t i = 0; i + 1 < made; i++)
            pact__node_free(nodes[i]);
        if (c) {
            pact__list_unref(c->list);
            free(c->errs);
        }
        free(c);
        free(nodes);
        pact__unref(t);
        return NULL;
    }
    c->kind = kind;
    c->target = t;
    t->refs++; /* the caller's */
    c->n = c->remaining = c->nodes = n;
    for (size_t i = 0; i < n; i++) {
        if (c->list)
            c->list->items[i] = pact_promise_ref(ps[i]);
        pact__attach(ps[i], nodes[i]);
    }
    free(nodes);
    return t;
}

pact_promise *pact_all(pact_loop *loop, pact_promise *const *ps, size_t n)
{
    return combine(loop, ps, n, C_ALL, "pact_all");
}

pact_promise *pact_all_settled(pact_loop *loop, pact_promise *const *ps,
                               size_t n)
{
    return combine(loop, ps, n, C_SETTLED, "pact_all_settled");
}

pact_promise *pact_race(pact_loop *loop, pact_promise *const *ps, size_t n)
{
    return combine(loop, ps, n, C_RACE, "pact_race");
}

pact_promise *pact_any(pact_loop *loop, pact_promise *const *ps, size_t n)
{
    return combine(loop, ps, n, C_ANY, "pact_any");
}

/* ---- a deadline or an abort token around one promise -------------------- */

/* The race of @p p with a timer or an abort token. */
struct guard {
    pact_promise *target; /* a reference until settled */
    pact_handle timer;    /* pending while armed */
    pact_abort *abort;    /* a reference while listening */
    uint64_t listener;
    bool wrap; /* reject with ECANCELED caused by the reason, as timers do */
    int holds; /* the reaction, and the timer or the listener */
};

static void guard_drop(struct guard *g)
{
    if (--g->holds)
        return;
    pact__unref(g->target);
    free(g);
}

static void guard_input(pact_promise *src, void *ud, uintptr_t aux)
{
    struct guard *g = ud;
    (void)aux;
    if (src && g->target) {
        pact__settle_take(&g->target, pact__share(src));
        /* the other side will not fire now: its hold goes with this one */
        if (g->timer.id && pact_clear(src->loop, g->timer) == 0)
            g->holds--;
        if (g->abort && pact_abort_off(g->abort, g->listener) == 0) {
            pact_abort_unref(g->abort);
            g->abort = NULL;
            g->holds--;
        }
    }
    guard_drop(g);
}

static void guard_timer(pact_error *err, void *ud)
{
    struct guard *g = ud;
    g->timer.id = 0;
    if (!err && g->target)
        pact__settle_take(&g->target,
                          pact_throw(PACT_ERROR(PACT_ETIMEDOUT,
                                                "the promise did not settle in "
                                                "time")));
    guard_drop(g);
}

static pact_value aborted(const struct guard *g, pact_error *reason)
{
    if (g->wrap)
        return pact_throw(PACT_ERROR_CAUSE(reason, PACT_ECANCELED));
    return pact_throw(pact_error_ref(reason));
}

static void guard_abort(pact_error *reason, void *ud)
{
    struct guard *g = ud;
    pact_abort_unref(g->abort);
    g->abort = NULL;
    if (g->target)
        pact__settle_take(&g->target, aborted(g, reason));
    guard_drop(g);
}

static struct guard *guard_new(pact_promise *p, const char *fn,
                               pact_promise **node)
{
    if (!pact_promise_loop(p)) {
        pact__misuse(fn, PACT_EINVAL, "promise is NULL or freed");
        return NULL;
    }
    if (pact__misuse_thread(p->loop, fn))
        return NULL;
    struct guard *g = calloc(1, sizeof *g);
    if (g && (g->target = pact__promise_new(p->loop)) &&
        (*node = pact__node_cb(p->loop, guard_input, g, 0)))
        return g;
    if (g)
        pact__unref(g->target);
    free(g);
    return NULL;
}

pact_promise *pact_promise_timeout(pact_promise *p, uint64_t ms)
{
    pact_promise *node;
    struct guard *g = guard_new(p, "pact_promise_timeout", &node);
    if (!g)
        return NULL;
    int rc = pact_timeout(p->loop, ms, guard_timer, g, &g->timer);
    if (rc < 0) {
        pact__node_free(node);
        pact__unref(g->target);
        free(g);
        return NULL;
    }
    g->holds = 2;
    g->target->refs++;
    pact__attach(p, node);
    return g->target;
}

pact_promise *pact__abortable(pact_promise *p, pact_abort *abort, bool wrap,
                              const char *fn)
{
    if (!abort) {
        pact__misuse(fn, PACT_EINVAL, "abort is NULL");
        return NULL;
    }
    pact_promise *node;
    struct guard *g = guard_new(p, fn, &node);
    if (!g)
        return NULL;
    g->wrap = wrap;
    g->holds = 1;
    pact_promise *t = pact_promise_ref(g->target);
    if (pact_abort_aborted(abort)) {
        pact__settle_take(&g->target, aborted(g, pact_abort_reason(abort)));
    } else if (pact_abort_on(abort, guard_abort, g, &g->listener) == 0) {
        g->abort = pact_abort_ref(abort);
        g->holds++;
    } else {
        pact__settle_take(&g->target, pact_throw(pact__enomem()));
    }
    pact__attach(p, node);
    return t;
}

pact_promise *pact_promise_abortable(pact_promise *p, pact_abort *abort)
{
    return pact__abortable(p, abort, false, "pact_promise_abortable");
}
