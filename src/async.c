/* Stackless async functions: the driver behind the PACT_ASYNC macros.
 *
 * A frame is its header (pact_async) and the user's fields after it. Each
 * step calls the body, which either returns for good or returns from an
 * await after pact_async_await_ attached a callback node to the awaited
 * promise; that node's wake-up stores the settled promise in the header and
 * steps again, and the body's switch jumps to the await's line. Every
 * failure to await (a NULL promise, another loop's, no memory) still
 * suspends and resumes as a microtask, so the macros need no second path.
 * That resume job (one at a time) takes the microtask slot of the frame's
 * promise, which is pending and never queued while the frame lives.
 *
 * The await's node lives just after the frame's fields, in the same
 * allocation (the header's layout is public, so it cannot hold it): a frame
 * resumes only after its node ran or was discarded, so the node is idle at
 * each await and no await takes a node from the slabs. */
#include "task_internal.h"

#include <stdlib.h>

#include "promise_internal.h"

enum async_flags {
    A_STARTED = 1,
    A_SUSPENDED = 2,
    /* why the await has no settled promise to give */
    A_DISCARDED = 4, /* it can never settle: nothing holds it */
    A_NOMEM = 8,
    A_BADARG = 16,    /* NULL, or another loop's */
    A_CANCELLED = 32, /* pact_loop_close_all ran since the start */
    A_WHY = A_DISCARDED | A_NOMEM | A_BADARG | A_CANCELLED,
};

static pact_loop *loop_of(const pact_async *a)
{
    return a->promise->loop;
}

static pact_promise *node_of(pact_async *a)
{
    return (pact_promise *)(void *)((char *)a + a->node);
}

/* What follows the node: the token of the scope it was made in (a
 * reference, or NULL: the loop's ambient one while its body runs), and its
 * link in the loop's started functions (for the task dump). */
struct tail {
    pact_abort *token;
    struct pact__list link;
    pact_async *frame;
    const char *file; /* the body's, for the task dump */
};

static struct tail *tail_of(pact_async *a)
{
    return (struct tail *)(void *)((char *)a + a->node + sizeof(pact_promise));
}

static pact_abort **token_of(pact_async *a)
{
    return &tail_of(a)->token;
}

void pact__async_each(struct pact__tasks *ts,
                      void (*fn)(const struct pact__task_view *v, void *ud),
                      void *ud)
{
    struct pact__list *l, *tmp;
    pact__list_each(l, tmp, &ts->asyncs) {
        const struct tail *t = pact__list_entry(l, struct tail, link);
        const pact_async *a = t->frame;
        struct pact__task_view v = {
            .id = a,
            .fn = (void (*)(void))a->body,
            .state = a->flags & A_SUSPENDED ? "awaiting" : "running",
            .await_file = a->flags & A_SUSPENDED ? t->file : NULL,
            .await_line = a->flags & A_SUSPENDED ? a->resume : 0,
            .token = t->token,
        };
        fn(&v, ud);
    }
}

void *pact_async_new(pact_loop *loop, size_t size, pact_async_fn body)
{
    if (!loop || !body || size < sizeof(pact_async)) {
        pact__misuse("pact_async_new", PACT_EINVAL,
                     !loop   ? "loop is NULL"
                     : !body ? "body is NULL"
                             : "size is smaller than the frame header "
                               "(PACT_ASYNC_FRAME first in the struct)");
        return NULL;
    }
    if (pact__misuse_thread(loop, "pact_async_new"))
        return NULL;
    size_t al = _Alignof(pact_promise);
    size_t at = (size + al - 1) / al * al; /* the node, past the fields */
    if (at > UINT32_MAX - sizeof(pact_promise))
        return NULL;
    pact_async *a = calloc(1, at + sizeof(pact_promise) + sizeof(struct tail));
    if (!a)
        return NULL;
    a->node = (uint32_t)at;
    node_of(a)->state = PACT__NODE_IDLE;
    if (!(a->promise = pact__promise_new(loop))) {
        free(a);
        return NULL;
    }
    a->body = body;
    a->epoch = loop->close_epoch;
    *token_of(a) = pact_abort_ref(pact__ambient(loop));
    tail_of(a)->frame = a;
    pact__list_init(&tail_of(a)->link);
    return a;
}

/* Run the body once; settle the promise if it returned for good. */
static void step(pact_async *a)
{
    pact_value result = pact_nothing();
    pact_loop *loop = loop_of(a);
    struct pact__label_save save;
    save.on = false;
    if (PACT__UNLIKELY(loop->stall != NULL)) {
        /* for a stall watchdog: which body, resumed from which await */
        struct pact__label l = {.kind = PACT_STEP_ASYNC,
                                .fn = (void (*)(void))a->body,
                                .ud = a,
                                .at_line = a->resume};
        pact__label_push(loop, &l, &save);
    }
    a->flags &= ~A_SUSPENDED;
    struct pact__ambient outer = pact__ambient_enter(loop, *token_of(a), a);
    pact_error *err = a->body(a, &result);
    pact__ambient_leave(loop, outer);
    pact__label_pop(loop, &save);
    if (a->flags & A_SUSPENDED) {
        /* stored before an await (see the rules): tested here, as this runs
         * at every await */
        if (PACT__UNLIKELY(result.kind > PACT_PTR))
            pact_value_release(&result);
        if (PACT__UNLIKELY(err != NULL))
            pact_error_unref(err);
        return;
    }
    pact_promise *p = a->promise;
    bool closed = p->loop->close_epoch != a->epoch;
    pact__unref(a->settled); /* taken already, unless the body skipped it */
    pact_abort *tok = *token_of(a);
    pact__list_remove(&tail_of(a)->link);
    free(a);
    pact_abort_unref(tok);
    if (err) {
        pact_value_release(&result);
        /* ended by pact_loop_close_all: not an unhandled failure */
        if (closed && pact_error_code(err) == PACT_ECANCELED)
            p->flags |= P_HANDLED;
        pact__reject(p, err);
    } else {
        pact__resolve(p, result);
    }
    pact__unref(p);
}

pact_promise *pact_async_start(void *frame)
{
    pact_async *a = frame;
    if (!a || !a->promise) {
        pact__misuse("pact_async_start", PACT_EINVAL,
                     "frame is NULL or not from pact_async_new");
        return NULL;
    }
    if (pact__misuse_thread(loop_of(a), "pact_async_start"))
        return NULL;
    if (a->flags & A_STARTED) {
        pact__misuse_always("pact_async_start", PACT_EINVAL,
                            "the frame was started already");
        return NULL;
    }
    a->flags |= A_STARTED;
    struct pact__tasks *ts = pact__tasks_get(loop_of(a));
    if (ts) /* without memory it is only missing from the task dump */
        pact__list_push_back(&ts->asyncs, &tail_of(a)->link);
    pact_promise *p = a->promise;
    p->refs++; /* the caller's */
    step(a);
    return p;
}

void pact_async_drop(void *frame)
{
    pact_async *a = frame;
    if (!a)
        return;
    if (a->flags & A_STARTED) {
        pact__misuse_always("pact_async_drop", PACT_EINVAL,
                            "the frame was started: it frees itself");
        return;
    }
    pact__unref(a->promise);
    pact_abort_unref(*token_of(a));
    free(a);
}

pact_loop *pact_async_loop(const pact_async *a)
{
    return a && a->promise ? loop_of(a) : NULL;
}

static void resume_job(void *ud)
{
    step(ud);
}

static void wake(pact_promise *src, void *ud, uintptr_t aux)
{
    (void)aux;
    pact_async *a = ud;
    if (!src) {
        /* inside a promise's destruction, maybe before the body has even
         * returned from the await: step later */
        a->flags |= A_DISCARDED;
        pact__micro_must(loop_of(a), resume_job, a);
        return;
    }
    a->settled = src; /* the job's reference (P_TAKE) */
    step(a);
}

void pact_async_await_(pact_async *a, pact_promise *p, int line)
{
    pact_loop *loop = loop_of(a);
    a->resume = line;
    a->flags = (a->flags | A_SUSPENDED) & ~A_WHY;
    a->settled = NULL;
    if (!p || p->loop != loop) {
        pact__misuse_always("PACT_ASYNC_AWAIT", PACT_EINVAL,
                            p ? "the promise belongs to another loop"
                              : "promise is NULL");
        if (p)
            pact_promise_unref(p);
        a->flags |= A_BADARG;
        pact__micro_must(loop, resume_job, a);
        return;
    }
    pact_abort *tok = *token_of(a);
    if (loop->close_epoch != a->epoch ||
        PACT__UNLIKELY(tok != NULL && pact_abort_aborted(tok))) {
        p->flags |= P_HANDLED; /* awaited: its rejection is not unhandled */
        pact__unref(p);
        a->flags |= A_CANCELLED;
        pact__micro_must(loop, resume_job, a);
        return;
    }
    pact_promise *n = node_of(a);
    if (n->state != PACT__NODE_IDLE)
        n = pact__node_cb(loop, wake, a, 0); /* never, but cheap to allow */
    else if (pact__node_embed(loop, n, wake, a, 0) < 0)
        n = NULL;
    if (!n) {
        pact__unref(p);
        a->flags |= A_NOMEM;
        pact__micro_must(loop, resume_job, a);
        return;
    }
    n->flags |= P_TAKE;
    pact__attach(p, n);
    /* nothing else holding it: it can never settle, and the drop discards
     * the node, which resumes the body with PACT_ECANCELED */
    pact__unref(p);
}

pact_error *pact_async_take_(pact_async *a, pact_value *out)
{
    if (out)
        *out = pact_nothing();
    pact_promise *src = a->settled;
    a->settled = NULL;
    if (src)
        return pact__await_take(src, out);
    int why = a->flags & A_WHY;
    a->flags &= ~A_WHY;
    if (why & A_DISCARDED)
        return PACT_ERROR(PACT_ECANCELED, "the awaited promise can never "
                                          "settle: nothing holds it");
    if ((why & A_CANCELLED) && pact_abort_aborted(*token_of(a)))
        return pact__aborted_error(pact_abort_reason(*token_of(a)));
    if (why & A_CANCELLED)
        return PACT_ERROR(PACT_ECANCELED, "the async function's awaits were "
                                          "cancelled (pact_loop_close_all)");
    if (why & A_BADARG)
        return PACT_ERROR(PACT_EINVAL, "await of a NULL promise or of "
                                       "another loop's");
    return pact__enomem();
}

void pact_async_site_(pact_async *a, const char *file)
{
    tail_of(a)->file = file;
}

pact_error *pact_async_lost_(pact_async *a)
{
    pact__misuse_always("PACT_ASYNC_BEGIN", PACT_EINVAL,
                        "resumed at an await the body's switch cannot reach: "
                        "an await inside a switch statement of its own?");
    pact__unref(a->settled);
    a->settled = NULL;
    return PACT_ERROR(PACT_EINVAL,
                      "async body resumed at line %d, which is "
                      "not reachable from PACT_ASYNC_BEGIN (an "
                      "await inside a switch statement?)",
                      a->resume);
}
