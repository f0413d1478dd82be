/* Cancel scopes (include/pact/scope.h). A scope is an abort token that the
 * task follows while inside it (pact__task_swap_token), linked to the token
 * the task followed before unless shielded, with one timer for its
 * deadline. */
#include "scope_internal.h"

#include <stdlib.h>

static void on_outer(pact_error *reason, void *ud)
{
    pact_scope *s = ud;
    s->link_id = 0; /* an aborted token drops its listeners */
    pact_abort_abort(s->token, reason);
}

static void on_deadline(pact_error *err, void *ud)
{
    pact_scope *s = ud;
    s->timer.id = 0;
    if (err)
        return; /* cancelled (close_all): no deadline passed */
    s->expired = true;
    pact_error *reason =
        PACT_ERROR(PACT_ETIMEDOUT, "the scope's deadline passed");
    pact_abort_abort(s->token, reason ? reason : pact__enomem());
    pact_error_unref(reason);
}

static void scope_free(pact_scope *s)
{
    pact__list_remove(&s->link);
    if (s->timer.id)
        pact_clear(s->loop, s->timer);
    if (s->outer && s->link_id)
        pact_abort_off(s->outer, s->link_id);
    pact_abort_unref(s->outer);
    pact_abort_unref(s->token);
    free(s);
}

int pact_scope_enter(const pact_scope_opts *opts, pact_scope **out)
{
    if (!out)
        return pact__misuse("pact_scope_enter", PACT_EINVAL, "out is NULL");
    *out = NULL;
    pact_task *t = pact__task_current();
    if (!t)
        return pact__misuse_always("pact_scope_enter", PACT_ENOTASK,
                                   "called outside a task: in callback "
                                   "and promise code a group is the scope");
    if (opts && opts->timeout_ms < 0)
        return pact__misuse("pact_scope_enter", PACT_EINVAL,
                            "opts->timeout_ms is negative");
    pact_loop *loop = pact_task_loop(t);
    struct pact__groups *gs = pact__groups_of(loop);
    pact_scope *s = gs ? calloc(1, sizeof *s) : NULL;
    if (!s)
        return PACT_ENOMEM;
    pact__list_push_back(&gs->scopes, &s->link);
    s->loop = loop;
    s->shield = opts && opts->shield;
    s->task = t;
    s->move_on = opts && opts->move_on;
    int rc = pact_abort_new(loop, &s->token);
    if (rc < 0)
        goto fail;
    pact_abort *outer = pact__ambient(loop); /* the task's, as it runs */
    if (outer && !(opts && opts->shield)) {
        if (pact_abort_aborted(outer))
            pact_abort_abort(s->token, pact_abort_reason(outer));
        else if ((rc = pact_abort_on(outer, on_outer, s, &s->link_id)) < 0)
            goto fail;
    }
    s->outer = pact_abort_ref(outer);
    if (opts && opts->timeout_ms > 0) {
        /* the deadline is the scope's own: no scope cancels it */
        struct pact__ambient was = pact__ambient_enter(loop, NULL, t);
        rc = pact_timer_start(loop,
                              &(pact_timer_opts){.delay_ms = opts->timeout_ms},
                              on_deadline, s, &s->timer);
        pact__ambient_leave(loop, was);
        if (rc < 0)
            goto fail;
        s->deadline_at = pact_loop_now(loop) + (uint64_t)opts->timeout_ms;
    }
    pact_abort *old;
    if ((rc = pact__task_swap_token(t, s->token, &old)) < 0)
        goto fail;
    pact_abort_unref(old); /* `outer` again: we hold our own reference */
    *out = s;
    return 0;
fail:
    scope_free(s);
    return rc;
}

pact_error *pact_scope_leave(pact_scope *s, bool *expired)
{
    if (expired)
        *expired = false;
    if (!s) {
        pact__misuse("pact_scope_leave", PACT_EINVAL, "the scope is NULL");
        return NULL;
    }
    if (s->task != pact__task_current() || pact__ambient(s->loop) != s->token) {
        pact__misuse_always("pact_scope_leave", PACT_EINVAL,
                            "not the innermost scope of the running task: "
                            "leave scopes in the task that entered them, "
                            "innermost first");
        return NULL;
    }
    pact_abort *mine;
    if (pact__task_swap_token(s->task, s->outer, &mine) < 0) {
        /* no memory to listen to the outer token again: the task stays in
         * a cancelled copy of it rather than missing a cancellation */
        pact_abort_abort(s->token, NULL);
        pact__misuse_always("pact_scope_leave", PACT_ENOMEM,
                            "no memory to follow the outer scope again");
        return pact__enomem();
    }
    pact_abort_unref(mine);
    bool exp = s->expired;
    bool move_on = s->move_on;
    scope_free(s);
    if (expired)
        *expired = exp;
    if (exp && !move_on)
        return PACT_ERROR(PACT_ETIMEDOUT, "the scope's deadline passed");
    return NULL;
}

int pact_scope_cancel(pact_scope *s, pact_error *reason)
{
    if (!s)
        return pact__misuse("pact_scope_cancel", PACT_EINVAL,
                            "the scope is NULL");
    return pact_abort_abort(s->token, reason);
}

pact_abort *pact_scope_token(const pact_scope *s)
{
    return s ? s->token : NULL;
}

bool pact_scope_cancelled(const pact_scope *s)
{
    return s && pact_abort_aborted(s->token);
}
