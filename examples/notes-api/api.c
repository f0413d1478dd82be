/* notes-api's routes. Each handler is a task (pact_http_route_task): it
 * checks the request on the loop (parsing a body bounded by the server's
 * max_body is cheap), then runs its one query in a group of its own -- the
 * request's group -- whose deadline is the request's and whose parent is
 * the request's abort token. The group's child offloads the query to the
 * pool's blocking lane with no token of its own, so it takes the group's:
 * the deadline, a client that disconnects, and the server's drain deadline
 * all cancel it the same way, and the group's await returns only once the
 * job function has returned, so the query's results (in the task's frame)
 * are never written after the handler has gone. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"

static pact_http_res *error_res(int status, const char *msg)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    pact_http_res *res = j ? pact_http_res_new_json(status, j) : NULL;
    json_decref(j);
    return res ? res : pact_http_res_new(status);
}

/* The group's one child: the query, on the blocking lane. The ambient token
 * while this runs is the group's, and the job takes it. */
static pact_promise *start_query(pact_loop *loop, pact_error *cancelled,
                                 void *ud)
{
    if (cancelled)
        return NULL;
    pact_offload_opts o = {.lane = PACT_LANE_BLOCKING};
    return pact_offload_p(loop, notes_db_job, ud, &o);
}

/* Run @p q in the request's group; the response its outcome gives. */
static pact_http_res *run_query(notes_app *app, pact_http_req *req,
                                notes_query *q)
{
    q->db = app->db;
    q->status = 0;
    q->out = NULL;
    pact_group *g;
    pact_group_opts go = {.name = "notes request",
                          .timeout_ms = app->deadline_ms,
                          .abort = pact_http_req_abort(req)};
    if (pact_group_new(app->loop, &go, &g) < 0)
        return error_res(503, "out of memory");
    pact_error *err = NULL;
    int rc = pact_group_go(g, start_query, q);
    if (rc == 0)
        err = pact_group_await(g);
    pact_group_unref(g);
    if (rc < 0)
        return error_res(503, pact_strerror(rc));
    int code = pact_error_code(err);
    pact_error_unref(err);
    if (code == PACT_ETIMEDOUT) {
        app->timed_out++;
        json_decref(q->out);
        return error_res(504, "the request's deadline passed");
    }
    if (code == PACT_ECANCELED) {
        /* the client went (the answer is dropped), or the drain's deadline */
        app->cancelled++;
        json_decref(q->out);
        return error_res(503, "the request was cancelled");
    }
    if (code || !q->status) { /* the submission failed (PACT_EAGAIN...) */
        json_decref(q->out);
        return error_res(503, code ? pact_strerror(code) : "no answer");
    }
    pact_http_res *res = q->out ? pact_http_res_new_json(q->status, q->out)
                                : pact_http_res_new(q->status);
    json_decref(q->out);
    return res;
}

/* A decimal id in 1..INT64_MAX. */
static bool parse_id(const char *s, int64_t *id)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 1)
        return false;
    *id = v;
    return true;
}

/* The body's {"title": string, "body": string}; @p j keeps the strings. */
static const char *parse_note(pact_http_req *req, json_t **j, notes_query *q)
{
    *j = pact_http_req_json(req);
    if (!*j)
        return "the body is not JSON";
    if (!json_is_object(*j))
        return "the body is not a JSON object";
    json_t *title = json_object_get(*j, "title");
    json_t *body = json_object_get(*j, "body");
    if (!title || !body)
        return "\"title\" and \"body\" are required";
    if (!json_is_string(title) || !json_is_string(body))
        return "\"title\" and \"body\" must be strings";
    q->title = json_string_value(title);
    q->title_len = json_string_length(title);
    q->body = json_string_value(body);
    q->body_len = json_string_length(body);
    return NULL;
}

/* Each handler counts itself in flight around its work. */
static pact_http_res *serve(notes_app *app, pact_http_req *req, notes_op op)
{
    notes_query q = {.op = op, .delay_ms = app->delay_ms};
    json_t *j = NULL;
    const char *bad = NULL;
    if (op == NOTES_GET || op == NOTES_UPDATE || op == NOTES_DELETE) {
        if (!parse_id(pact_http_req_param(req, "id"), &q.id))
            bad = "the id is not a positive integer";
    }
    if (!bad && (op == NOTES_CREATE || op == NOTES_UPDATE))
        bad = parse_note(req, &j, &q);
    pact_http_res *res;
    if (bad)
        res = error_res(400, bad);
    else
        res = run_query(app, req, &q);
    json_decref(j); /* after the query: it borrowed the strings */
    return res;
}

/* ?limit=N (1..1000, default 100) and ?after=ID (default 0). */
static const char *parse_list(const char *query, notes_query *q)
{
    q->limit = 100;
    q->id = 0;
    for (const char *p = query; *p;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        if (eq) {
            size_t klen = (size_t)(eq - p);
            char val[24];
            size_t vlen = len - klen - 1;
            long long v = -1;
            if (vlen > 0 && vlen < sizeof val) {
                memcpy(val, eq + 1, vlen);
                val[vlen] = '\0';
                char *end;
                errno = 0;
                v = strtoll(val, &end, 10);
                if (errno || *end || val[0] == '-' || val[0] == '+')
                    v = -1;
            }
            if (klen == 5 && !memcmp(p, "limit", 5)) {
                if (v < 1 || v > 1000)
                    return "limit must be 1 to 1000";
                q->limit = v;
            } else if (klen == 5 && !memcmp(p, "after", 5)) {
                if (v < 0)
                    return "after must be an id";
                q->id = v;
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return NULL;
}

#define HANDLER(name, op)                                                      \
    static pact_error *name(pact_http_req *req, pact_http_res **res, void *ud) \
    {                                                                          \
        notes_app *app = ud;                                                   \
        app->requests++;                                                       \
        app->in_flight++;                                                      \
        *res = serve(app, req, op);                                            \
        app->in_flight--;                                                      \
        return NULL;                                                           \
    }
HANDLER(h_create, NOTES_CREATE)
HANDLER(h_get, NOTES_GET)
HANDLER(h_update, NOTES_UPDATE)
HANDLER(h_delete, NOTES_DELETE)

static pact_error *h_list(pact_http_req *req, pact_http_res **res, void *ud)
{
    notes_app *app = ud;
    app->requests++;
    app->in_flight++;
    notes_query q = {.op = NOTES_LIST, .delay_ms = app->delay_ms};
    const char *bad = parse_list(pact_http_req_query(req), &q);
    *res = bad ? error_res(400, bad) : run_query(app, req, &q);
    app->in_flight--;
    return NULL;
}

/* The store answers (a count, without --query-delay-ms), and the
 * handlers' counters; connections: those open now, this one included. */
static pact_error *h_health(pact_http_req *req, pact_http_res **res, void *ud)
{
    notes_app *app = ud;
    notes_query q = {.op = NOTES_COUNT};
    pact_http_res *r = run_query(app, req, &q);
    if (!r || q.status != 200) {
        *res = r;
        return NULL;
    }
    pact_http_res_free(r);
    json_t *j = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "status", "ok", "notes",
        (json_int_t)q.count, "requests", (json_int_t)app->requests, "in_flight",
        (json_int_t)app->in_flight, "timed_out", (json_int_t)app->timed_out,
        "cancelled", (json_int_t)app->cancelled, "connections",
        (json_int_t)pact_http_server_connections(app->srv), "draining",
        app->draining);
    *res = j ? pact_http_res_new_json(200, j) : error_res(503, "no memory");
    json_decref(j);
    return NULL;
}

int notes_api_routes(pact_http_server *srv, notes_app *app)
{
    int rc;
    if ((rc = pact_http_route_task(srv, "POST", "/notes", h_create, app)) ||
        (rc = pact_http_route_task(srv, "GET", "/notes", h_list, app)) ||
        (rc = pact_http_route_task(srv, "GET", "/notes/:id", h_get, app)) ||
        (rc = pact_http_route_task(srv, "PUT", "/notes/:id", h_update, app)) ||
        (rc = pact_http_route_task(srv, "DELETE", "/notes/:id", h_delete,
                                   app)) ||
        (rc = pact_http_route_task(srv, "GET", "/health", h_health, app)))
        return rc;
    return 0;
}
