/* pact_fetch (pact/fetch.h): one fetch is one pending-operation record from
 * the call to its callback, across its wait for a connection, the connect,
 * the request, the response and each redirect. Its timeout is a cancellation
 * with PACT_ETIMEDOUT (one libevent timer, counted as the loop's own), so
 * the token, the ambient scope, close_all and the timeout all go one way:
 * `stop` lets go of the connection and the queue at once, and the callback
 * comes on a later tick. A completion detaches the fetch from its
 * connection (back to the pool, or closed) before the callback runs, so
 * the callback may fetch again, abort, or close everything.
 *
 * Redirects follow the Fetch standard: 303 becomes GET (unless HEAD), 301
 * and 302 turn a POST into a GET, 307 and 308 keep the method and body; a
 * body dropped takes its Content-* headers with it, and a hop to another
 * origin drops Authorization, Cookie and Proxy-Authorization. */
#include <event2/event.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch_internal.h"
#include "promise_internal.h"

#define DEFAULT_MAX_BODY ((size_t)64 << 20)
#define DEFAULT_MAX_REDIRECTS 20

/* ---- the end ------------------------------------------------------------- */

static void timer_clear(struct fetch *f)
{
    if (f->tmo_on) {
        event_del(f->tmo);
        pact__own_event_removed(f->loop);
        f->tmo_on = false;
    }
}

static void fetch_free(struct fetch *f)
{
    timer_clear(f);
    if (f->tmo)
        event_free(f->tmo);
    if (f->parsing)
        pact__fetch_parse_free(&f->parse);
    pact__fetch_url_free(&f->url);
    pact__fetch_req_free(&f->req);
    free(f->ca_file);
    free(f->wire);
    free(f);
}

/* Let go of everything the fetch holds in the pool. */
static void stop(struct fetch *f)
{
    f->stopped = true;
    timer_clear(f);
    pact__fetch_detach(f);
}

/* The fetch is over: @p err (taken) or @p res (taken). */
static void finish(struct fetch *f, pact_error *err, pact_fetch_res *res)
{
    pact_error *e = NULL;
    bool mine = pact__op_end(&f->op, &e);
    assert(mine && !e);
    (void)mine;
    stop(f);
    pact__label_refine(f->loop, PACT_STEP_POLL, (void (*)(void))f->cb, f->ud);
    f->cb(err, err ? NULL : res, f->ud);
    pact_error_unref(err);
    pact_fetch_res_unref(res);
    fetch_free(f);
}

static void fail(struct fetch *f, int code, const char *why)
{
    char *url = pact__fetch_url_string(&f->url);
    pact_error *e = PACT_ERROR(code, "fetch %s: %s", url ? url : "", why);
    free(url);
    pact__fetch_release(f, false);
    finish(f, e ? e : pact__enomem(), NULL);
}

static bool op_stop(struct pact__op *op)
{
    stop(pact__list_entry(op, struct fetch, op));
    return true;
}

static void op_fail(struct pact__op *op, pact_error *err)
{
    struct fetch *f = pact__list_entry(op, struct fetch, op);
    f->cb(err, NULL, f->ud);
    fetch_free(f);
}

static void op_drop(struct pact__op *op)
{
    struct fetch *f = pact__list_entry(op, struct fetch, op);
    if (f->ud_drop)
        f->ud_drop(f->ud);
    fetch_free(f);
}

static void op_describe(const struct pact__op *op, char *buf, size_t len)
{
    const struct fetch *f = pact__list_entry(op, const struct fetch, op);
    char call[160];
    pact__describe_call(call, sizeof call, (void (*)(void))f->cb, f->ud);
    snprintf(buf, len, "fetch %s http%s://%s:%d%s (%s), calls %s",
             f->req.method, f->url.https ? "s" : "", f->url.host, f->url.port,
             f->url.target,
             f->parsing ? "reading the response"
             : f->conn  ? "connecting"
                        : "waiting for a connection",
             call);
}

static const struct pact__op_type fetch_type = {
    .what = "fetch",
    .stop = op_stop,
    .fail = op_fail,
    .drop = op_drop,
    .describe = op_describe,
};

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct fetch *f = arg;
    pact_loop *loop = f->loop;
    bool was = pact__own_begin(loop);
    f->tmo_on = false; /* fired */
    pact__own_event_removed(loop);
    char *url = pact__fetch_url_string(&f->url);
    pact__op_cancel(
        &f->op, PACT_ERROR(PACT_ETIMEDOUT, "fetch %s timed out after %llu ms",
                           url ? url : "", (unsigned long long)f->timeout_ms));
    free(url);
    pact__drain(loop);
    pact__own_end(loop, was);
}

/* ---- the hops ------------------------------------------------------------ */

static bool idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") ||
           !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS");
}

/* Send @p f on: build its bytes and find it a connection. An https hop
 * makes its TLS context first, so that a CA file that does not load fails
 * here, with its reason in *@p why (a new reference), not at each connect. */
static int hop(struct fetch *f, pact_error **why)
{
    if (f->url.https) {
        pact_tls_ctx *ctx;
        int rc =
            pact__fetch_tls_ctx(f->svc, f->ca_file, f->insecure, &ctx, why);
        if (rc < 0)
            return rc;
    }
    free(f->wire);
    f->wire = NULL;
    int rc = pact__fetch_wire(&f->req, &f->url, &f->wire, &f->wlen);
    return rc < 0 ? rc : pact__fetch_acquire(f);
}

void pact__fetch_send(struct fetch *f, pact_stream *s)
{
    if (f->parsing)
        pact__fetch_parse_free(&f->parse);
    pact__fetch_parse_init(&f->parse, strcmp(f->req.method, "HEAD") == 0,
                           f->max_body);
    f->parsing = true;
    /* an error destroys the stream, whose error event then fails us */
    (void)pact_stream_write(s, f->wire, f->wlen);
}

static void drop_header(struct fetch_req *r, const char *name)
{
    for (size_t i = 0; i < r->nh;) {
        if (strcasecmp(r->hn[i], name) == 0) {
            free(r->hn[i]);
            free(r->hv[i]);
            memmove(&r->hn[i], &r->hn[i + 1], (r->nh - i - 1) * sizeof *r->hn);
            memmove(&r->hv[i], &r->hv[i + 1], (r->nh - i - 1) * sizeof *r->hv);
            r->nh--;
        } else {
            i++;
        }
    }
}

static bool is_redirect(int st)
{
    return st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
}

/* Follow the redirect @p res (borrowed) says, to @p loc. */
static void follow(struct fetch *f, const pact_fetch_res *res, const char *loc)
{
    if (++f->redirects > f->max_redirects) {
        char why[64];
        snprintf(why, sizeof why, "too many redirects (more than %u)",
                 f->max_redirects);
        fail(f, PACT_ELOOP, why);
        return;
    }
    struct fetch_url nu;
    int rc = pact__fetch_url_resolve(&f->url, loc, &nu);
    if (rc < 0) {
        fail(f, rc,
             rc == PACT_EINVAL ? "a redirect's Location is not a URL"
                               : "out of memory");
        return;
    }
    int st = res->status;
    bool to_get = (st == 303 && strcmp(f->req.method, "HEAD") != 0) ||
                  ((st == 301 || st == 302) && !strcmp(f->req.method, "POST"));
    if (to_get) {
        char *m = strdup("GET");
        if (!m) {
            pact__fetch_url_free(&nu);
            fail(f, PACT_ENOMEM, "out of memory");
            return;
        }
        free(f->req.method);
        f->req.method = m;
        free(f->req.body);
        f->req.body = NULL;
        f->req.blen = 0;
        f->req.has_body = false;
        static const char *const body_headers[] = {
            "Content-Type", "Content-Encoding", "Content-Language",
            "Content-Location"};
        for (size_t i = 0; i < sizeof body_headers / sizeof *body_headers; i++)
            drop_header(&f->req, body_headers[i]);
    }
    if (!pact__fetch_same_origin(&f->url, &nu)) {
        drop_header(&f->req, "Authorization");
        drop_header(&f->req, "Cookie");
        drop_header(&f->req, "Proxy-Authorization");
    }
    pact__fetch_url_free(&f->url);
    f->url = nu;
    f->retried = false;
    if (f->parsing) {
        pact__fetch_parse_free(&f->parse);
        f->parsing = false;
    }
    pact_error *why = NULL;
    rc = hop(f, &why);
    if (rc < 0)
        fail(f, rc, why ? pact_error_message(why) : pact_strerror(rc));
    pact_error_unref(why);
}

/* A response is in (@p res taken), its connection let go of. */
static void hop_done(struct fetch *f, pact_fetch_res *res)
{
    const char *loc = pact_fetch_res_header(res, "Location");
    if (f->redirect == PACT_FETCH_FOLLOW && is_redirect(res->status) && loc) {
        follow(f, res, loc);
        pact_fetch_res_unref(res);
        return;
    }
    free(res->url);
    res->url = pact__fetch_url_string(&f->url);
    res->redirects = f->redirects;
    if (!res->body && pact__fetch_res_append(res, "", 0) < 0) {
        pact_fetch_res_unref(res);
        fail(f, PACT_ENOMEM, "out of memory");
        return;
    }
    if (f->parsing) {
        pact__fetch_parse_free(&f->parse);
        f->parsing = false;
    }
    finish(f, NULL, res);
}

/* The response parsed whole: the connection goes back (or closes). */
static void complete(struct fetch *f, bool keep)
{
    pact_fetch_res *res = f->parse.res;
    f->parse.res = NULL;
    pact__fetch_release(f, keep);
    hop_done(f, res);
}

void pact__fetch_data(struct fetch *f, const char *buf, size_t len)
{
    size_t used, before = f->parse.res ? f->parse.res->blen : 0;
    int rc = pact__fetch_parse_feed(&f->parse, buf, len, &used);
    if (rc < 0) {
        pact_error *e = pact__fetch_parse_error(&f->parse, rc);
        pact__fetch_release(f, false);
        finish(f, e, NULL);
        return;
    }
    if (f->parse.done) {
        complete(f, f->parse.keep && used == len);
        return;
    }
    if (f->progress && f->parse.headers && f->parse.res->blen > before)
        f->progress(f->parse.res->blen, f->parse.total, f->progress_ud);
}

void pact__fetch_conn_lost(struct fetch *f, pact_error *err)
{
    int code = PACT_ECONNRESET;
    if (!err && f->parsing) {
        code = pact__fetch_parse_eof(&f->parse);
        if (code == 0) {
            complete(f, false);
            return;
        }
    }
    /* a kept-alive connection the server had closed: once more, anew */
    if (f->parsing && f->parse.got == 0 && pact__fetch_conn_reused(f) &&
        !f->retried && idempotent(f->req.method)) {
        f->retried = true;
        pact__fetch_release(f, false);
        pact__fetch_parse_free(&f->parse);
        f->parsing = false;
        int rc = pact__fetch_acquire(f);
        if (rc < 0)
            fail(f, rc, pact_strerror(rc));
        return;
    }
    pact_error *e;
    if (err) {
        char *url = pact__fetch_url_string(&f->url);
        e = PACT_ERROR_CAUSE(err, pact_error_code(err), "fetch %s: %s",
                             url ? url : "", pact_error_message(err));
        free(url);
    } else {
        e = pact__fetch_parse_error(&f->parse, code);
    }
    pact__fetch_release(f, false);
    finish(f, e ? e : pact__enomem(), NULL);
}

void pact__fetch_conn_failed(struct fetch *f, pact_error *err)
{
    char *url = pact__fetch_url_string(&f->url);
    pact_error *e = PACT_ERROR_CAUSE(err, pact_error_code(err), "fetch %s: %s",
                                     url ? url : "", pact_error_message(err));
    free(url);
    finish(f, e ? e : pact__enomem(), NULL);
}

/* ---- the request from the options ---------------------------------------- */

static bool value_ok(const char *v)
{
    for (; *v; v++)
        if (*v == '\r' || *v == '\n')
            return false;
    return true;
}

static bool reserved(const char *name)
{
    static const char *const names[] = {"Host", "Content-Length",
                                        "Transfer-Encoding", "Connection"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

static int add_header(struct fetch_req *r, const char *name, const char *value)
{
    char **hn = realloc(r->hn, (r->nh + 1) * sizeof *hn);
    if (!hn)
        return PACT_ENOMEM;
    r->hn = hn;
    char **hv = realloc(r->hv, (r->nh + 1) * sizeof *hv);
    if (!hv)
        return PACT_ENOMEM;
    r->hv = hv;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return PACT_ENOMEM;
    }
    r->hn[r->nh] = n;
    r->hv[r->nh] = v;
    r->nh++;
    return 0;
}

static char *method_of(const char *m, const char *fn)
{
    static const char *const norm[] = {"DELETE", "GET",  "HEAD", "OPTIONS",
                                       "PATCH",  "POST", "PUT"};
    if (!m)
        m = "GET";
    if (!pact__fetch_token(m)) {
        pact__misuse(fn, PACT_EINVAL, "the method is not a token");
        return NULL;
    }
    for (size_t i = 0; i < sizeof norm / sizeof *norm; i++)
        if (strcasecmp(m, norm[i]) == 0)
            return strdup(norm[i]);
    return strdup(m);
}

/* @p r from @p o; 0, PACT_EINVAL, PACT_ENOMEM. */
static int req_make(struct fetch_req *r, const pact_fetch_opts *o,
                    const char *fn)
{
    static const pact_fetch_opts none = {0};
    if (!o)
        o = &none;
    r->method = method_of(o->method, fn);
    if (!r->method)
        return pact__fetch_token(o->method ? o->method : "GET") ? PACT_ENOMEM
                                                                : PACT_EINVAL;
    bool ctype = false;
    if (o->nheaders && !o->headers)
        return pact__misuse(fn, PACT_EINVAL, "nheaders without headers");
    for (size_t i = 0; i < o->nheaders; i++) {
        const pact_fetch_header *h = &o->headers[i];
        if (!pact__fetch_token(h->name) || !h->value || !value_ok(h->value))
            return pact__misuse(fn, PACT_EINVAL,
                                "a header name is not a token, or its value "
                                "is NULL or holds CR or LF");
        if (reserved(h->name))
            return pact__misuse(fn, PACT_EINVAL,
                                "Host, Content-Length, Transfer-Encoding and "
                                "Connection are the client's own");
        ctype |= strcasecmp(h->name, "Content-Type") == 0;
        int rc = add_header(r, h->name, h->value);
        if (rc < 0)
            return rc;
    }
    if (o->json && (o->body || o->body_len))
        return pact__misuse(fn, PACT_EINVAL, "both a body and a JSON body");
    if (o->body_len && !o->body)
        return pact__misuse(fn, PACT_EINVAL, "body_len without a body");
    bool body = o->json || o->body;
    if (body && (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD")))
        return pact__misuse(fn, PACT_EINVAL, "a GET or HEAD with a body");
    if (o->json) {
        r->body = json_dumps(o->json, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!r->body)
            return pact__misuse(fn, PACT_EINVAL,
                                "the JSON body cannot be "
                                "serialised");
        r->blen = strlen(r->body);
        if (!ctype) {
            int rc = add_header(r, "Content-Type", "application/json");
            if (rc < 0)
                return rc;
        }
    } else if (o->body) {
        r->body = malloc(o->body_len ? o->body_len : 1);
        if (!r->body)
            return PACT_ENOMEM;
        memcpy(r->body, o->body, o->body_len);
        r->blen = o->body_len;
    }
    /* a POST or PUT without a body still says it has none */
    r->has_body = body || !strcmp(r->method, "POST") ||
                  !strcmp(r->method, "PUT") || !strcmp(r->method, "PATCH");
    return 0;
}

/* ---- the calls ----------------------------------------------------------- */

static int start(pact_loop *loop, const char *url, const pact_fetch_opts *o,
                 pact_fetch_res_cb cb, void *ud, pact_fn ud_drop,
                 const char *fn)
{
    struct fetch_svc *svc = pact__fetch_svc(loop);
    struct fetch *f = svc ? calloc(1, sizeof *f) : NULL;
    if (!f)
        return PACT_ENOMEM;
    f->svc = svc;
    f->loop = loop;
    f->cb = cb;
    f->ud = ud;
    f->ud_drop = ud_drop;
    pact__list_init(&f->wnode);
    f->max_body = o && o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    f->max_redirects =
        o && o->max_redirects ? o->max_redirects : DEFAULT_MAX_REDIRECTS;
    f->redirect = o ? o->redirect : PACT_FETCH_FOLLOW;
    f->timeout_ms = o ? o->timeout_ms : 0;
    f->progress = o ? o->progress : NULL;
    f->progress_ud = o ? o->progress_ud : NULL;
    int rc = pact__fetch_url_parse(url, &f->url);
    if (rc == PACT_EINVAL)
        pact__misuse(fn, rc, "not an absolute http:// or https:// URL");
    if (rc == 0 && o && o->ca_file && !(f->ca_file = strdup(o->ca_file)))
        rc = PACT_ENOMEM;
    f->insecure = o && o->insecure;
    if (rc == 0 && f->redirect != PACT_FETCH_FOLLOW &&
        f->redirect != PACT_FETCH_MANUAL)
        rc = pact__misuse(fn, PACT_EINVAL, "redirect is not a mode");
    if (rc == 0)
        rc = req_make(&f->req, o, fn);
    if (rc == 0 && f->timeout_ms &&
        !(f->tmo = evtimer_new(loop->base, on_timeout, f)))
        rc = PACT_ENOMEM;
    if (rc == 0)
        rc = pact__op_start(loop, &f->op, &fetch_type, o ? o->abort : NULL,
                            PACT__OP_REF);
    if (rc < 0) {
        fetch_free(f);
        return rc;
    }
    if (f->op.state != PACT__OP_PENDING)
        return 0; /* aborted already: its cancellation is due */
    pact_error *why = NULL;
    rc = hop(f, &why);
    if (why) {
        pact__misuse(fn, rc, pact_error_message(why));
        pact_error_unref(why);
    }
    if (rc < 0) {
        pact_error *e = NULL;
        pact__op_end(&f->op, &e);
        pact_error_unref(e);
        stop(f);
        fetch_free(f);
        return rc;
    }
    if (f->timeout_ms) {
        struct timeval tv = {(time_t)(f->timeout_ms / 1000),
                             (suseconds_t)(f->timeout_ms % 1000) * 1000};
        if (event_add(f->tmo, &tv) == 0) {
            pact__own_event_added(loop);
            f->tmo_on = true;
        }
    }
    return 0;
}

int pact_fetch_cb(pact_loop *loop, const char *url, const pact_fetch_opts *opts,
                  pact_fetch_res_cb cb, void *ud)
{
    static const char fn[] = "pact_fetch_cb";
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(url && cb, fn);
    return start(loop, url, opts, cb, ud, NULL, fn);
}

/* ---- the promise twins --------------------------------------------------- */

static void settle(pact_error *err, pact_fetch_res *res, void *d)
{
    if (err)
        pact_deferred_reject(d, pact_error_ref(err));
    else
        pact_deferred_resolve(
            d, pact_owned(pact_fetch_res_ref(res), pact__fetch_res_free_v));
    pact_deferred_unref(d);
}

static void unref_deferred(void *d)
{
    pact_deferred_unref(d);
}

struct fetch_args {
    const char *url;
    const pact_fetch_opts *opts;
};

static int start_twin(pact_loop *loop, void *args, pact_deferred *d)
{
    const struct fetch_args *a = args;
    static const char fn[] = "pact_fetch";
    PACT_CHECK_ARG(a->url, fn);
    return start(loop, a->url, a->opts, settle, d, unref_deferred, fn);
}

pact_promise *pact_fetch(pact_loop *loop, const char *url,
                         const pact_fetch_opts *opts)
{
    struct fetch_args a = {url, opts};
    return pact__promisify(loop, start_twin, &a, "pact_fetch");
}

pact_promise *pact_fetch_json(pact_loop *loop, const char *url,
                              const pact_fetch_opts *opts)
{
    return pact_then_take(pact_fetch(loop, url, opts), pact_fetch_res_to_json,
                          NULL, NULL);
}
