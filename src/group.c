/* Task groups (include/pact/group.h): children counted, their outcomes
 * gathered, one abort token that cancels them all.
 *
 * A running child costs the group one reaction node on the child's promise
 * (ud: the group) and nothing else; only a child waiting for room (a limit)
 * has a record of its own, to start it later in spawn order. The group's
 * token is linked to its parent's by a listener, so a cancellation flows
 * down the tree of groups and scopes; what a child starts without a token
 * of its own takes it through the loop's ambient token (internal.h). */
#include "scope_internal.h"

#include <stdlib.h>
#include <string.h>

enum child_kind { C_TASK, C_GO };

/* A child waiting for room. */
struct queued {
    struct pact__list link;
    enum child_kind kind;
    union {
        struct {
            pact_task_fn fn;
            void *arg;
            pact_task_opts opts;
        } task;
        struct {
            pact_group_fn fn;
            void *ud;
        } go;
    } u;
    const char *file;
    int line;
};

/* A join set's outcome not yet taken. */
struct outcome {
    struct pact__list link;
    pact_error *err;
    pact_value v;
};

static void group_unref(pact_group *g);
static void start_queued(pact_group *g);

/* ---- cancellation -------------------------------------------------------- */

static void on_parent(pact_error *reason, void *ud)
{
    pact_group *g = ud;
    g->parent_id = 0; /* an aborted token drops its listeners */
    pact_abort_abort(g->token, reason);
}

static void on_deadline(pact_error *err, void *ud)
{
    pact_group *g = ud;
    g->timer.id = 0;
    if (err)
        return; /* cancelled (close_all): no deadline passed */
    g->expired = true;
    pact_error *reason =
        PACT_ERROR(PACT_ETIMEDOUT, "the group's deadline passed");
    pact_abort_abort(g->token, reason ? reason : pact__enomem());
    pact_error_unref(reason);
}

static void unlink_parent(pact_group *g)
{
    if (g->parent && g->parent_id)
        pact_abort_off(g->parent, g->parent_id);
    pact_abort_unref(g->parent);
    g->parent = NULL;
    g->parent_id = 0;
}

static void clear_deadline(pact_group *g)
{
    if (g->timer.id)
        pact_clear(g->loop, g->timer);
    g->timer.id = 0;
}

/* ---- the end ------------------------------------------------------------- */

static pact_error *outcome_error(pact_group *g)
{
    if (g->nfail)
        return pact_error_aggregate_at(__FILE__, __LINE__, g->failures,
                                       g->nfail,
                                       "%zu child(ren) of the group %s failed",
                                       g->nfail, g->name ? g->name : "");
    if (!pact_abort_aborted(g->token) || (g->expired && g->move_on))
        return NULL;
    if (g->expired)
        return PACT_ERROR(PACT_ETIMEDOUT, "the group's deadline passed");
    return pact__aborted_error(pact_abort_reason(g->token));
}

static void settle_nexts(pact_group *g)
{
    while (g->nnext > g->headnext) {
        pact_deferred *d = g->nexts[g->headnext++];
        pact_deferred_reject(d, PACT_ERROR(PACT_EOF, "no child is left"));
        pact_deferred_unref(d);
    }
    g->nnext = g->headnext = 0;
}

/* Every child has finished: settle the waits (if anyone waits). */
static void maybe_done(pact_group *g)
{
    if (g->running || g->nqueued)
        return;
    if (g->timer.id) /* a deadline alone keeps nothing alive */
        pact_unref(g->loop, g->timer);
    settle_nexts(g);
    if (!g->waited)
        return;
    g->finished = true;
    clear_deadline(g);
    unlink_parent(g);
    if (!g->nwaits)
        return;
    pact_error *err = outcome_error(g);
    for (size_t i = 0; i < g->nwaits; i++) {
        if (err)
            pact_deferred_reject(g->waits[i], pact_error_ref(err));
        else
            pact_deferred_resolve(g->waits[i], pact_nothing());
        pact_deferred_unref(g->waits[i]);
    }
    g->nwaits = 0;
    pact_error_unref(err);
}

static void group_free(pact_group *g)
{
    pact__list_remove(&g->link);
    clear_deadline(g);
    unlink_parent(g);
    pact_abort_unref(g->token);
    for (size_t i = 0; i < g->nfail; i++)
        pact_error_unref(g->failures[i]);
    free(g->failures);
    struct pact__list *n;
    while ((n = pact__list_first(&g->outcomes))) {
        struct outcome *o = pact__list_entry(n, struct outcome, link);
        pact__list_remove(n);
        pact_error_unref(o->err);
        pact_value_release(&o->v);
        free(o);
    }
    assert(!g->nwaits && g->nnext == g->headnext);
    free(g->waits);
    free(g->nexts);
    free(g);
}

static void group_unref(pact_group *g)
{
    assert(g->refs > 0);
    if (--g->refs == 0)
        group_free(g);
}

/* ---- children ------------------------------------------------------------ */

static bool push_ptr(void ***v, size_t *len, size_t *cap, void *p)
{
    if (*len == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        void **nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return false;
        *v = nv;
        *cap = c;
    }
    (*v)[(*len)++] = p;
    return true;
}

static void failed(pact_group *g, pact_error *err)
{
    if (!push_ptr((void ***)&g->failures, &g->nfail, &g->capfail, err)) {
        /* keep the first failures; this one is lost, but not the fact */
        pact_error_unref(err);
        err = NULL;
    }
    if (!pact_abort_aborted(g->token)) {
        pact_error *reason =
            err ? PACT_ERROR_CAUSE(err, PACT_ECANCELED,
                                   "a sibling in the group failed")
                : PACT_ERROR(PACT_ECANCELED, "a sibling in the group failed");
        pact_abort_abort(g->token, reason ? reason : pact__enomem());
        pact_error_unref(reason);
    }
}

static void deliver_outcome(pact_group *g, pact_error *err, pact_value v)
{
    if (g->nnext > g->headnext) {
        pact_deferred *d = g->nexts[g->headnext++];
        if (g->headnext == g->nnext)
            g->nnext = g->headnext = 0;
        if (err)
            pact_deferred_reject(d, err);
        else
            pact_deferred_resolve(d, v);
        pact_deferred_unref(d);
        return;
    }
    struct outcome *o = malloc(sizeof *o);
    if (!o) {
        pact_value_release(&v);
        err = err ? err : pact__enomem();
        pact_error_unref(err);
        return; /* out of memory: the outcome is lost */
    }
    o->err = err;
    o->v = v;
    pact__list_push_back(&g->outcomes, &o->link);
}

static void child_ended(pact_group *g, pact_error *err, pact_value v)
{
    assert(g->running > 0);
    g->running--;
    if (g->join)
        deliver_outcome(g, err, v);
    else if (err && pact_error_code(err) != PACT_ECANCELED)
        failed(g, err);
    else
        pact_error_unref(err);
    start_queued(g);
    maybe_done(g);
    group_unref(g);
}

/* A child's promise settled (src, a reference), or can never (NULL). */
static void child_done(pact_promise *src, void *ud, uintptr_t aux)
{
    (void)aux;
    pact_group *g = ud;
    pact_value v = pact_nothing();
    pact_error *err =
        src ? pact__await_take(src, g->join ? &v : NULL)
            : PACT_ERROR(PACT_ECANCELED, "a child's promise can never "
                                         "settle: nothing holds it");
    child_ended(g, err, v);
}

/* A task child ended: no promise, no microtask between. */
static void task_done(void *ud, pact_error *err, pact_value *result)
{
    pact_group *g = ud;
    pact_value v = pact_nothing();
    if (g->join && !err)
        v = *result;
    else
        pact_value_release(result);
    child_ended(g, err, v);
}

/* Watch @p p (a reference, taken) as a running child. */
static int watch(pact_group *g, pact_promise *p)
{
    pact_promise *n = pact__node_cb(g->loop, child_done, g, 0);
    if (!n) {
        pact__unref(p);
        return PACT_ENOMEM;
    }
    n->flags |= P_TAKE;
    p->flags |= P_HANDLED; /* the group reports its failures */
    g->refs++;
    g->running++;
    pact__attach(p, n);
    pact__unref(p);
    return 0;
}

/* A child that could not start fails (as its own failure). */
static void start_failed(pact_group *g, pact_error *err)
{
    if (g->join)
        deliver_outcome(g, err, pact_nothing());
    else if (pact_error_code(err) != PACT_ECANCELED)
        failed(g, err);
    else
        pact_error_unref(err);
}

static void start_task(pact_group *g, pact_task_fn fn, void *arg,
                       const pact_task_opts *opts, const char *file, int line)
{
    pact_task_opts o = {.name = opts ? opts->name : NULL,
                        .stack_size = opts ? opts->stack_size : 0,
                        .abort = g->token};
    int rc =
        pact__task_spawn_done(g->loop, fn, arg, &o, file, line, task_done, g);
    if (rc == 0) {
        g->refs++;
        g->running++;
    } else if (rc == PACT_ECANCELED) {
        start_failed(g, pact__aborted_error(pact_abort_reason(g->token)));
    } else {
        start_failed(g, PACT_ERROR(rc, "a task child could not start"));
    }
}

static void start_go(pact_group *g, pact_group_fn fn, void *ud)
{
    pact_loop *loop = g->loop;
    pact_promise *p;
    if (pact_abort_aborted(g->token)) {
        p = fn(loop, pact_abort_reason(g->token), ud);
        if (p) /* told not to start, yet it did: the group waits for it */
            (void)watch(g, p);
        return;
    }
    /* what it starts is the group's */
    struct pact__ambient outer = pact__ambient_enter(loop, g->token, NULL);
    p = fn(loop, NULL, ud);
    pact__ambient_leave(loop, outer);
    if (!p) {
        start_failed(g, PACT_ERROR(PACT_ENOMEM, "a child of the group "
                                                "could not start"));
        return;
    }
    if (p->loop != loop) {
        pact_promise_unref(p);
        start_failed(g, PACT_ERROR(PACT_EINVAL, "a child's promise "
                                                "belongs to another loop"));
        return;
    }
    if (watch(g, p) < 0)
        start_failed(g, pact__enomem());
}

static bool has_room(const pact_group *g)
{
    return !g->limit || g->running < g->limit;
}

static void start_queued(pact_group *g)
{
    struct pact__list *n;
    /* a cancelled group starts the rest at once: they end at once */
    while ((has_room(g) || pact_abort_aborted(g->token)) &&
           (n = pact__list_first(&g->queue))) {
        struct queued *q = pact__list_entry(n, struct queued, link);
        pact__list_remove(n);
        g->nqueued--;
        g->refs++; /* the group outlives the start */
        if (q->kind == C_TASK)
            start_task(g, q->u.task.fn, q->u.task.arg, &q->u.task.opts, q->file,
                       q->line);
        else
            start_go(g, q->u.go.fn, q->u.go.ud);
        free(q);
        group_unref(g);
    }
}

static int check_open(pact_group *g, const char *fn)
{
    if (!g)
        return pact__misuse(fn, PACT_EINVAL, "the group is NULL");
    PACT_CHECK_THREAD(g->loop, fn);
    if (g->finished)
        return pact__misuse_always(fn, PACT_EINVAL,
                                   "the group has finished: nothing more "
                                   "can be added to it");
    if (g->timer.id) /* children coming: the deadline is theirs */
        pact_ref(g->loop, g->timer);
    return 0;
}

static int enqueue(pact_group *g, const struct queued *tmpl)
{
    struct queued *q = malloc(sizeof *q);
    if (!q)
        return PACT_ENOMEM;
    *q = *tmpl;
    pact__list_push_back(&g->queue, &q->link);
    g->nqueued++;
    return 0;
}

int pact_group_spawn_at(pact_group *g, pact_task_fn fn, void *arg,
                        const pact_task_opts *opts, const char *file, int line)
{
    int rc = check_open(g, "pact_group_spawn");
    if (rc < 0)
        return rc;
    if (!fn)
        return pact__misuse("pact_group_spawn", PACT_EINVAL, "fn is NULL");
    g->last_file = file;
    g->last_line = line;
    if (pact_abort_aborted(g->token)) {
        start_task(g, fn, arg, opts, file, line); /* ends at once */
        maybe_done(g);
        return 0;
    }
    if (has_room(g)) {
        pact_task_opts o = {.name = opts ? opts->name : NULL,
                            .stack_size = opts ? opts->stack_size : 0,
                            .abort = g->token};
        int e = pact__task_spawn_done(g->loop, fn, arg, &o, file, line,
                                      task_done, g);
        if (e < 0)
            return e;
        g->refs++;
        g->running++;
        return 0;
    }
    struct queued q = {.kind = C_TASK, .file = file, .line = line};
    q.u.task.fn = fn;
    q.u.task.arg = arg;
    if (opts)
        q.u.task.opts = *opts;
    return enqueue(g, &q);
}

int pact_group_go_at(pact_group *g, pact_group_fn fn, void *ud,
                     const char *file, int line)
{
    int rc = check_open(g, "pact_group_go");
    if (rc < 0)
        return rc;
    if (!fn)
        return pact__misuse("pact_group_go", PACT_EINVAL, "fn is NULL");
    g->last_file = file;
    g->last_line = line;
    if (has_room(g) || pact_abort_aborted(g->token)) {
        g->refs++;
        start_go(g, fn, ud);
        maybe_done(g);
        group_unref(g);
        return 0;
    }
    struct queued q = {.kind = C_GO, .file = file, .line = line};
    q.u.go.fn = fn;
    q.u.go.ud = ud;
    return enqueue(g, &q);
}

int pact_group_add(pact_group *g, pact_promise *p)
{
    int rc = check_open(g, "pact_group_add");
    if (rc < 0 || !p || p->loop != g->loop) {
        if (p)
            pact_promise_unref(p);
        return rc < 0 ? rc
                      : pact__misuse("pact_group_add", PACT_EINVAL,
                                     "the promise is NULL or another "
                                     "loop's");
    }
    return watch(g, p);
}

/* ---- the group ------------------------------------------------------------
 */

int pact_group_new_at(pact_loop *loop, const pact_group_opts *opts,
                      pact_group **out, const char *file, int line)
{
    PACT_CHECK_LOOP(loop, "pact_group_new");
    PACT_CHECK_ARG(out, "pact_group_new");
    *out = NULL;
    if (opts && opts->timeout_ms < 0)
        return pact__misuse("pact_group_new", PACT_EINVAL,
                            "opts->timeout_ms is negative");
    struct pact__groups *gs = pact__groups_of(loop);
    pact_group *g = gs ? calloc(1, sizeof *g) : NULL;
    if (!g)
        return PACT_ENOMEM;
    pact__list_push_back(&gs->groups, &g->link);
    g->owner = pact__task_current();
    g->loop = loop;
    g->refs = 1;
    g->handle = true;
    pact__list_init(&g->queue);
    pact__list_init(&g->outcomes);
    g->file = file ? file : "?";
    g->line = line;
    if (opts) {
        g->name = opts->name;
        g->limit = opts->limit;
        g->join = opts->join;
        g->move_on = opts->move_on;
    }
    int rc = pact_abort_new(loop, &g->token);
    if (rc < 0) {
        pact__list_remove(&g->link);
        free(g);
        return rc;
    }
    pact_abort *parent =
        opts && opts->abort ? opts->abort : pact__ambient(loop);
    if (parent && pact_abort_aborted(parent)) {
        pact_abort_abort(g->token, pact_abort_reason(parent));
    } else if (parent) {
        rc = pact_abort_on(parent, on_parent, g, &g->parent_id);
        if (rc < 0)
            goto fail;
        g->parent = pact_abort_ref(parent);
    }
    if (opts && opts->timeout_ms > 0) {
        /* the deadline is the group's own, not its parent's operation */
        struct pact__ambient outer = pact__ambient_enter(loop, NULL, NULL);
        rc = pact_timer_start(loop,
                              &(pact_timer_opts){.delay_ms = opts->timeout_ms},
                              on_deadline, g, &g->timer);
        pact__ambient_leave(loop, outer);
        if (rc < 0)
            goto fail;
        g->deadline_at = pact_loop_now(loop) + (uint64_t)opts->timeout_ms;
    }
    *out = g;
    return 0;
fail:
    group_free(g);
    return rc;
}

void pact_group_unref(pact_group *g)
{
    if (!g || pact__misuse_thread(g->loop, "pact_group_unref"))
        return;
    if (!g->handle) {
        pact__misuse_always("pact_group_unref", PACT_EINVAL,
                            "the group's reference was dropped already");
        return;
    }
    g->handle = false;
    /* cancelled already: its children are ending, nothing outlives it */
    if ((g->running || g->nqueued) && !g->waited &&
        !pact_abort_aborted(g->token)) {
        char why[512];
        snprintf(why, sizeof why,
                 "the group made at %s:%d is dropped with %zu child(ren) "
                 "not finished (the last spawned at %s:%d) and nobody "
                 "waiting for it: a child cannot outlive its group, so they "
                 "are cancelled; await pact_group_wait first",
                 g->file, g->line, g->running + g->nqueued,
                 g->last_file ? g->last_file : "?", g->last_line);
        pact__misuse_always("pact_group_unref", PACT_EINVAL, why);
        g->waited = true; /* now it finishes, with nobody to tell */
        if (!pact_abort_aborted(g->token)) {
            pact_error *reason =
                PACT_ERROR(PACT_ECANCELED, "the group was dropped");
            pact_abort_abort(g->token, reason ? reason : pact__enomem());
            pact_error_unref(reason);
        }
        start_queued(g);
    }
    group_unref(g);
}

pact_abort *pact_group_token(const pact_group *g)
{
    return g ? g->token : NULL;
}

int pact_group_cancel(pact_group *g, pact_error *reason)
{
    if (!g)
        return pact__misuse("pact_group_cancel", PACT_EINVAL,
                            "the group is NULL");
    int rc = pact_abort_abort(g->token, reason);
    if (rc == 0) {
        g->refs++;
        start_queued(g);
        maybe_done(g);
        group_unref(g);
    }
    return rc;
}

pact_promise *pact_group_wait(pact_group *g)
{
    if (!g) {
        pact__misuse("pact_group_wait", PACT_EINVAL, "the group is NULL");
        return NULL;
    }
    if (pact__misuse_thread(g->loop, "pact_group_wait"))
        return NULL;
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(g->loop, &p);
    if (!d)
        return NULL;
    if (!push_ptr((void ***)&g->waits, &g->nwaits, &g->capwaits, d)) {
        pact_deferred_unref(d);
        pact_promise_unref(p);
        return NULL;
    }
    g->waited = true;
    if (g->finished) {
        /* finished before: the same outcome again */
        g->finished = false;
        maybe_done(g);
    } else {
        maybe_done(g);
    }
    return p;
}

pact_error *pact_group_await_at(pact_group *g, const char *file, int line)
{
    if (!pact__task_current()) {
        pact__misuse_always("pact_group_await", PACT_ENOTASK,
                            "called outside a task");
        return PACT_ERROR(PACT_ENOTASK, "pact_group_await outside a task");
    }
    if (!g)
        return PACT_ERROR(PACT_EINVAL, "pact_group_await of NULL");
    pact_promise *p = pact_group_wait(g);
    if (!p)
        return pact__enomem();
    pact_error *err = pact_await_at(pact_promise_ref(p), NULL, file, line);
    if (!err || pact_promise_state(p) != PACT_PENDING) {
        pact_promise_unref(p);
        return err; /* the group's own outcome */
    }
    /* the task was cancelled while the group runs: end the group, and
     * wait for its children before the task goes on */
    pact_group_cancel(g, pact_error_cause(err));
    pact_scope *shield;
    if (pact_scope_enter(&(pact_scope_opts){.shield = true}, &shield) < 0) {
        pact_promise_unref(p);
        return err; /* no memory: the best we can do */
    }
    pact_error *outcome = pact_await_at(p, NULL, file, line);
    pact_error_unref(pact_scope_leave(shield, NULL));
    if (outcome && pact_error_code(outcome) == PACT_EAGGREGATE) {
        pact_error_unref(err);
        return outcome;
    }
    pact_error_unref(outcome);
    return err;
}

int pact_group_wait_cb(pact_group *g, pact_value_cb cb, void *ud)
{
    if (!cb)
        return pact__misuse("pact_group_wait_cb", PACT_EINVAL, "cb is NULL");
    pact_promise *p = pact_group_wait(g);
    if (!p)
        return g ? PACT_ENOMEM : PACT_EINVAL;
    int rc = pact_promise_callback(p, cb, ud); /* callbackify */
    pact_promise_unref(p);
    return rc;
}

pact_promise *pact_group_next(pact_group *g)
{
    if (!g || !g->join) {
        pact__misuse("pact_group_next", PACT_EINVAL,
                     g ? "the group is not a join set (opts.join)"
                       : "the group is NULL");
        return NULL;
    }
    if (pact__misuse_thread(g->loop, "pact_group_next"))
        return NULL;
    struct pact__list *n = pact__list_first(&g->outcomes);
    if (n) {
        struct outcome *o = pact__list_entry(n, struct outcome, link);
        pact__list_remove(n);
        pact_promise *p = o->err ? pact_rejected(g->loop, o->err)
                                 : pact_resolved(g->loop, o->v);
        free(o);
        return p;
    }
    if (!g->running && !g->nqueued)
        return pact_rejected(g->loop, PACT_ERROR(PACT_EOF, "no child is left"));
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(g->loop, &p);
    if (!d)
        return NULL;
    if (g->nnext == g->capnext && g->headnext) {
        memmove(g->nexts, g->nexts + g->headnext,
                (g->nnext - g->headnext) * sizeof *g->nexts);
        g->nnext -= g->headnext;
        g->headnext = 0;
    }
    if (!push_ptr((void ***)&g->nexts, &g->nnext, &g->capnext, d)) {
        pact_deferred_unref(d);
        pact_promise_unref(p);
        return NULL;
    }
    return p;
}

size_t pact_group_size(const pact_group *g)
{
    return g ? g->running + g->nqueued : 0;
}

size_t pact_group_running(const pact_group *g)
{
    return g ? g->running : 0;
}

pact_promise *pact_group_run_at(pact_loop *loop, const pact_group_opts *opts,
                                pact_group_body body, void *ud,
                                const char *file, int line)
{
    if (!body) {
        pact__misuse("pact_group_run", PACT_EINVAL, "body is NULL");
        return NULL;
    }
    pact_group *g;
    if (pact_group_new_at(loop, opts, &g, file, line) < 0)
        return NULL;
    /* the wait's deferred first: once the body has spawned, nothing may
     * fail that would leave its children unwatched */
    pact_promise *p = NULL;
    pact_deferred *d = pact_deferred_new(loop, &p);
    if (!d || !push_ptr((void ***)&g->waits, &g->nwaits, &g->capwaits, d)) {
        pact_deferred_unref(d);
        pact_promise_unref(p);
        pact_group_unref(g);
        return NULL;
    }
    struct pact__ambient outer = pact__ambient_enter(loop, g->token, NULL);
    body(g, ud);
    pact__ambient_leave(loop, outer);
    g->waited = true;
    maybe_done(g);
    pact_group_unref(g);
    return p;
}
