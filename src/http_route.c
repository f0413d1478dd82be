/* Routes (method and path, `:name` parameters, a trailing `*`), the four
 * handler styles and pact_http_respond.
 *
 * A dispatched request is a pending-operation record (its `what` is
 * "http request"): pact_loop_close_all cancels it by aborting the
 * request's token, and the handler, which is still running, answers (a
 * callback handler's pact_http_respond, a promise's settling, a task's
 * end) and so ends the record. The token is ambient while a callback or
 * promise handler starts (so the timers, jobs and async functions it
 * starts are the request's) and is the task's token in the task style. */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "task_internal.h"

/* ---- routes -------------------------------------------------------------- */

static int add(pact_http_server *srv, const char *method, const char *pattern,
               enum http_style style, void *fn, void *ud)
{
    if (!srv || !pattern || pattern[0] != '/' || !fn)
        return PACT_EINVAL;
    struct http_route *rt = calloc(1, sizeof *rt);
    if (!rt)
        return PACT_ENOMEM;
    rt->method = method ? strdup(method) : NULL;
    rt->pattern = strdup(pattern);
    if ((method && !rt->method) || !rt->pattern) {
        free(rt->method);
        free(rt->pattern);
        free(rt);
        return PACT_ENOMEM;
    }
    rt->style = style;
    switch (style) {
    case H_CB:
        rt->fn.cb = (pact_http_handler)fn;
        break;
    case H_PROMISE:
        rt->fn.p = (pact_http_promise_handler)fn;
        break;
    case H_TASK:
        rt->fn.task = (pact_http_task_handler)fn;
        break;
    }
    rt->ud = ud;
    *srv->tail = rt;
    srv->tail = &rt->next;
    return 0;
}

int pact_http_route(pact_http_server *srv, const char *method,
                    const char *pattern, pact_http_handler fn, void *ud)
{
    return add(srv, method, pattern, H_CB, (void *)fn, ud);
}

int pact_http_route_p(pact_http_server *srv, const char *method,
                      const char *pattern, pact_http_promise_handler fn,
                      void *ud)
{
    return add(srv, method, pattern, H_PROMISE, (void *)fn, ud);
}

int pact_http_route_task(pact_http_server *srv, const char *method,
                         const char *pattern, pact_http_task_handler fn,
                         void *ud)
{
    return add(srv, method, pattern, H_TASK, (void *)fn, ud);
}

int pact_http_route_stream_body(pact_http_server *srv, const char *method,
                                const char *pattern)
{
    if (!srv || !pattern)
        return PACT_EINVAL;
    int n = 0;
    for (struct http_route *rt = srv->routes; rt; rt = rt->next) {
        if (strcmp(rt->pattern, pattern) != 0 ||
            (method ? !rt->method || strcmp(rt->method, method) != 0
                    : rt->method != NULL))
            continue;
        rt->stream_body = true;
        n++;
    }
    return n ? 0 : PACT_ENOENT;
}

/* Match @p path against @p pat; on a match the parameters go to @p r (its
 * names and values copied to r->pbuf). */
static bool match(pact_http_req *r, const char *pat, const char *path)
{
    size_t np = 0;
    const char *ns[HTTP_MAX_PARAMS], *vs[HTTP_MAX_PARAMS];
    size_t nl[HTTP_MAX_PARAMS], vl[HTTP_MAX_PARAMS];
    const char *p = pat, *q = path;
    while (*p == '/' && *q == '/') {
        p++, q++;
        size_t pl = strcspn(p, "/"), ql = strcspn(q, "/");
        if (pl == 1 && *p == '*' && !p[1])
            goto matched;
        if (*p == ':') {
            if (!ql || np == HTTP_MAX_PARAMS)
                return false;
            ns[np] = p + 1, nl[np] = pl - 1, vs[np] = q, vl[np++] = ql;
        } else if (pl != ql || memcmp(p, q, pl) != 0) {
            return false;
        }
        p += pl, q += ql;
    }
    if (*p || *q)
        return false;
matched:
    if (!np)
        return true;
    char *b = malloc(strlen(pat) + strlen(path) + 2 * np);
    if (!b)
        return false;
    free(r->pbuf);
    r->pbuf = b;
    for (size_t i = 0; i < np; i++) {
        memcpy(b, ns[i], nl[i]);
        b[nl[i]] = '\0';
        r->pnames[i] = b;
        b += nl[i] + 1;
        memcpy(b, vs[i], vl[i]);
        b[vl[i]] = '\0';
        r->pvalues[i] = b;
        b += vl[i] + 1;
    }
    r->np = np;
    return true;
}

/* ---- answering ----------------------------------------------------------- */

/* Answer with @p res (borrowed); 0 or PACT_EALREADY. */
static int answer(pact_http_req *r, const pact_http_res *res)
{
    if (r->answered)
        return PACT_EALREADY;
    r->answered = true;
    if (r->conn && pact__http_serialize(r->conn->srv, r, res) != 0)
        pact_stream_destroy(r->conn->s, NULL);
    pact__http_answered(r);
    return 0;
}

static void answer_status(pact_http_req *r, int status)
{
    pact_http_res *res = pact_http_res_new(status);
    if (!res) {
        r->answered = true;
        if (r->conn)
            pact_stream_destroy(r->conn->s, NULL);
        return;
    }
    const char *text = status == 404   ? "Not Found\n"
                       : status == 405 ? "Method Not Allowed\n"
                                       : "Internal Server Error\n";
    pact_http_res_header(res, "Content-Type", "text/plain");
    pact_http_res_body(res, text, strlen(text));
    answer(r, res);
    pact_http_res_free(res);
}

void pact__http_forced_release(pact_http_req *r)
{
    if (r->forced && r->hpart && r->h.style == H_CB) {
        r->hpart = false;
        pact__http_req_unref(r); /* the handler's part */
    }
}

int pact__http_respond_check(pact_http_req *r, pact_http_res *res,
                             const char *fn)
{
    if (!r || !res) {
        pact_http_res_free(res);
        return PACT_EINVAL;
    }
    if (pact__misuse_thread(r->loop, fn)) {
        pact_http_res_free(res);
        return PACT_ETHREAD;
    }
    return 0;
}

int pact_http_respond(pact_http_req *r, pact_http_res *res)
{
    int rc = pact__http_respond_check(r, res, __func__);
    if (rc != 0)
        return rc;
    rc = answer(r, res);
    pact_http_res_free(res);
    if (rc == 0 && r->h.style == H_CB) {
        r->hpart = false;
        pact__http_req_unref(r); /* the handler's part */
    } else if (rc == PACT_EALREADY) {
        pact__http_forced_release(r);
    }
    return rc;
}

int pact_http_reply(pact_http_req *r, int status, const char *content_type,
                    const void *body, size_t len)
{
    if (!r)
        return PACT_EINVAL;
    if (pact__misuse_thread(r->loop, __func__))
        return PACT_ETHREAD;
    if (r->answered) {
        pact__http_forced_release(r);
        return PACT_EALREADY;
    }
    pact_http_res *res = pact_http_res_new(status);
    if (!res)
        return PACT_EINVAL;
    if ((content_type &&
         pact_http_res_header(res, "Content-Type", content_type) != 0) ||
        pact_http_res_body(res, body, len) != 0) {
        pact_http_res_free(res);
        return PACT_ENOMEM;
    }
    return pact_http_respond(r, res);
}

/* ---- the pending-operation record ---------------------------------------- */

/* Cancelled (close_all): the handler still runs; tell it through the
 * token, and it ends the record when it answers. */
static bool req_cancel(void *ud)
{
    pact_http_req *r = ud;
    pact_error *why = PACT_ERROR(PACT_ECANCELED, "the server was cancelled");
    pact_abort_abort(r->abort, why);
    pact_error_unref(why);
    return false;
}

static void req_cancelled(pact_error *err, void *ud)
{
    (void)err, (void)ud; /* never: req_cancel always says it still runs */
}

static const pact_op_type req_type = {
    .what = "http request",
    .cancel = req_cancel,
    .cancelled = req_cancelled,
};

/* ---- the styles ---------------------------------------------------------- */

static void settled(pact_error *err, const pact_value *v, void *ud)
{
    pact_http_req *r = ud;
    pact__http_stream_settled(r, err != NULL);
    if (!r->answered) {
        if (!err && v && v->kind == PACT_OWNED && v->u.owned.ptr &&
            v->u.owned.free == pact__http_res_free_v)
            answer(r, v->u.owned.ptr);
        else
            answer_status(r, 500);
    }
    pact__http_req_unref(r);
}

static pact_error *task_body(void *arg, pact_value *result)
{
    (void)result;
    pact_http_req *r = arg;
    pact_http_res *res = NULL;
    pact__task_show((void (*)(void))r->h.fn.task, r->h.ud);
    pact_error *err = r->h.fn.task(r, &res, r->h.ud);
    pact__http_stream_settled(r, err != NULL);
    if (r->streaming) {
        if (err)
            pact_error_unref(err);
        pact_http_res_free(res);
        return NULL;
    }
    if (err || !res)
        answer_status(r, 500);
    else
        answer(r, res);
    if (err)
        pact_error_unref(err);
    pact_http_res_free(res);
    return NULL;
}

/* Name the user's handler to a stall watchdog while it runs: the step
 * stays of the kind it is (an I/O callback, a tick), but the function a
 * report names is the handler, not the server's parser that called it. */
static void label_handler(pact_loop *loop, void (*fn)(void), void *ud,
                          struct pact__label_save *save)
{
    save->on = false;
    if (PACT__UNLIKELY(loop->stall != NULL)) {
        struct pact__label l = {
            .kind = (int)atomic_load_explicit(
                &loop->stall->label[PACT__LW_KIND], memory_order_relaxed),
            .fn = fn,
            .ud = ud,
        };
        pact__label_push(loop, &l, save);
    }
}

/* The route of @p r (its parameters set), or NULL; @p other: the path
 * matches a route of another method. */
static const struct http_route *find(pact_http_req *r, bool *other)
{
    const struct http_route *rt = r->conn->srv->routes;
    *other = false;
    for (; rt; rt = rt->next) {
        bool m = !rt->method || !strcmp(rt->method, r->method) ||
                 (r->head_only && !strcmp(rt->method, "GET"));
        if (match(r, rt->pattern, r->path)) {
            if (m)
                break;
            *other = true;
        }
    }
    return rt;
}

bool pact__http_route_streams(pact_http_req *r)
{
    bool other;
    const struct http_route *rt = find(r, &other);
    return rt && rt->stream_body;
}

void pact__http_dispatch(pact_http_req *r)
{
    pact_http_server *srv = r->conn->srv;
    pact_loop *loop = srv->loop;
    bool other;
    const struct http_route *rt = find(r, &other);
    if (!rt) {
        answer_status(r, other ? 405 : 404);
        return;
    }
    r->h = *rt;
    r->dispatched = true;
    /* the record and what follows are this request's */
    struct pact__ambient outer = pact__ambient_enter(loop, NULL, NULL);
    pact_op_opts oo = {0};
    if (pact_op_start(loop, &req_type, r, &oo, &r->op) != 0) {
        pact__ambient_leave(loop, outer);
        r->op = NULL;
        answer_status(r, 500);
        return;
    }
    r->refs++; /* the handler's part */
    r->hpart = true;
    pact_promise *p = NULL;
    struct pact__label_save save;
    switch (rt->style) {
    case H_CB:
        (void)pact__ambient_enter(loop, r->abort, NULL);
        label_handler(loop, (void (*)(void))rt->fn.cb, rt->ud, &save);
        rt->fn.cb(r, rt->ud);
        pact__label_pop(loop, &save);
        break;
    case H_PROMISE:
        (void)pact__ambient_enter(loop, r->abort, NULL);
        label_handler(loop, (void (*)(void))rt->fn.p, rt->ud, &save);
        p = rt->fn.p(r, rt->ud);
        pact__label_pop(loop, &save);
        (void)pact__ambient_enter(loop, NULL, NULL);
        if (!p)
            p = pact_rejected(loop, PACT_ERROR(PACT_EINVAL, "no promise"));
        break;
    case H_TASK: {
        /* named by its route in stall reports and the task dump (the
         * request outlives the task's run) */
        size_t n =
            strlen(rt->method ? rt->method : "*") + strlen(rt->pattern) + 2;
        if ((r->task_name = malloc(n)))
            snprintf(r->task_name, n, "%s %s", rt->method ? rt->method : "*",
                     rt->pattern);
        pact_task_opts to = {.abort = r->abort,
                             .name =
                                 r->task_name ? r->task_name : "http handler"};
        p = pact_task_spawn(loop, task_body, r, &to);
        break;
    }
    }
    pact__ambient_leave(loop, outer);
    if (rt->style != H_CB) {
        if (!p || pact_promise_callback(p, settled, r) != 0) {
            answer_status(r, 500);
            pact__http_req_unref(r);
        }
        pact_promise_unref(p);
    }
}
