/* Streamed responses (pact_http_respond_start, pact_http_write,
 * pact_http_end): the head goes out first, then the body in pieces, framed
 * as chunks on HTTP/1.1 (Transfer-Encoding: chunked) and delimited by the
 * connection's close on HTTP/1.0.
 *
 * A piece is queued on its request until the request is at the head of its
 * connection's queue (responses go out in request order), then handed to
 * the stream with pact_stream_write_cb, whose callback (the kernel has
 * taken the bytes) is the piece's. So a handler that waits for each write
 * is throttled by its client, and one that writes while pact_http_write
 * says 1 holds at most HTTP_MARK bytes (plus a piece) in the server. When
 * the connection goes, every piece not written fails once with
 * PACT_ECONNRESET: those still queued from the connection's close event,
 * those handed to the stream from its write callbacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

/* What one streamed response may hold in the server before
 * pact_http_write says 0: as a stream's output high-water mark. */
#define HTTP_MARK (64 * 1024)

struct piece {
    struct pact__list node; /* r->pieces until handed to the stream */
    char *buf;              /* the framed bytes; freed once handed */
    size_t len;
    pact_cb cb; /* may be NULL */
    void *ud;
    pact_abort *abort; /* the request's, aborted first if the write fails */
};

/* The client has gone, or is going (a write failed: the token is aborted
 * before the close event comes). */
static bool gone(const pact_http_req *r)
{
    return !r->conn || r->conn->dead || pact_abort_aborted(r->abort);
}

static size_t held(const pact_http_req *r)
{
    size_t n = r->queued;
    if (r->conn && r->head_sent && !r->conn->dead)
        n += pact_stream_buffered(r->conn->s);
    return n;
}

size_t pact_http_buffered(const pact_http_req *r)
{
    return r ? held(r) : 0;
}

/* A piece of @p len bytes of @p data framed for @p r (a chunk), or the
 * last one (@p last: the empty chunk); NULL when out of memory. */
static struct piece *piece_new(pact_http_req *r, const void *data, size_t len,
                               bool last, pact_cb cb, void *ud)
{
    struct piece *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cb = cb;
    p->ud = ud;
    p->abort = pact_abort_ref(r->abort);
    if (!r->sbody || (!len && !last))
        return p; /* nothing to send (HEAD, 204): a callback in order */
    if (!r->chunked) {
        if (!len)
            return p;
        p->buf = malloc(len);
        if (!p->buf) {
            pact_abort_unref(p->abort);
            free(p);
            return NULL;
        }
        memcpy(p->buf, data, len);
        p->len = len;
        return p;
    }
    if (last) {
        p->buf = strdup("0\r\n\r\n");
        p->len = 5;
        if (!p->buf) {
            pact_abort_unref(p->abort);
            free(p);
            return NULL;
        }
        return p;
    }
    p->buf = malloc(len + 24);
    if (!p->buf) {
        pact_abort_unref(p->abort);
        free(p);
        return NULL;
    }
    int n = snprintf(p->buf, 24, "%zx\r\n", len);
    memcpy(p->buf + n, data, len);
    memcpy(p->buf + (size_t)n + len, "\r\n", 2);
    p->len = (size_t)n + len + 2;
    return p;
}

static void push(pact_http_req *r, struct piece *p)
{
    pact__list_push_back(&r->pieces, &p->node);
    r->queued += p->len;
}

/* The connection went: whatever closed it, the write did not reach the
 * client. The request's token is aborted before the callback runs, as the
 * close event would (once: an aborted token stays so). */
static void tell(struct piece *p, pact_error *cause)
{
    pact_cb cb = p->cb;
    void *ud = p->ud;
    pact_abort *a = p->abort;
    free(p->buf);
    free(p);
    pact_error *e =
        PACT_ERROR_CAUSE(cause, PACT_ECONNRESET, "the client went away");
    if (a && !pact_abort_aborted(a))
        pact_abort_abort(a, e);
    pact_abort_unref(a);
    if (cb)
        cb(e, ud);
    pact_error_unref(e);
}

static void wrote(pact_error *err, void *ud)
{
    struct piece *p = ud;
    if (err) {
        tell(p, err);
        return;
    }
    pact_cb cb = p->cb;
    void *cud = p->ud;
    pact_abort_unref(p->abort);
    free(p);
    if (cb)
        cb(NULL, cud);
}

int pact__http_stream_flush(struct http_conn *c, pact_http_req *r)
{
    int rc;
    if (!r->head_sent) {
        r->head_sent = true;
        rc = pact_stream_write(c->s, r->out, r->olen);
        free(r->out);
        r->out = NULL;
        if (rc < 0)
            return rc;
        if (rc == 0)
            c->full = true;
    }
    struct pact__list *n;
    while ((n = pact__list_first(&r->pieces))) {
        struct piece *p = pact__list_entry(n, struct piece, node);
        rc = pact_stream_write_cb(c->s, p->buf, p->len, wrote, p);
        if (rc < 0)
            return rc; /* the piece stays: the close event fails it */
        pact__list_remove(n);
        r->queued -= p->len;
        free(p->buf);
        p->buf = NULL;
        if (rc == 0)
            c->full = true;
    }
    return r->ended;
}

void pact__http_stream_fail(pact_http_req *r)
{
    struct pact__list gone;
    pact__list_init(&gone);
    while (!pact__list_empty(&r->pieces)) {
        struct pact__list *n = pact__list_first(&r->pieces);
        pact__list_remove(n);
        pact__list_push_back(&gone, n);
    }
    r->queued = 0;
    struct pact__list *n;
    while ((n = pact__list_first(&gone))) {
        pact__list_remove(n);
        tell(pact__list_entry(n, struct piece, node), NULL);
    }
}

int pact_http_respond_start(pact_http_req *r, pact_http_res *res)
{
    int rc = pact__http_respond_check(r, res, __func__);
    if (rc != 0)
        return rc;
    if (r->answered) {
        pact_http_res_free(res);
        pact__http_forced_release(r);
        return PACT_EALREADY;
    }
    r->answered = r->streaming = true;
    if (r->conn) {
        const void *body = NULL;
        size_t blen = 0;
        struct piece *p = NULL;
        if (pact__http_serialize_stream(r->conn->srv, r, res, &body, &blen) !=
                0 ||
            (blen && r->sbody && !(p = piece_new(r, body, blen, false, 0, 0))))
            pact_stream_destroy(r->conn->s, NULL);
        else if (p)
            push(r, p);
    }
    pact_http_res_free(res);
    pact__http_answered(r);
    return 0;
}

int pact_http_write(pact_http_req *r, const void *data, size_t len, pact_cb cb,
                    void *ud)
{
    if (!r || (!data && len))
        return PACT_EINVAL;
    if (pact__misuse_thread(r->loop, __func__))
        return PACT_ETHREAD;
    if (!r->streaming)
        return r->answered ? PACT_EPIPE : PACT_EINVAL;
    if (r->ended)
        return PACT_EPIPE;
    if (gone(r))
        return PACT_ECONNRESET;
    struct piece *p = piece_new(r, data, len, false, cb, ud);
    if (!p)
        return PACT_ENOMEM;
    push(r, p);
    pact__http_answered(r);
    return held(r) < HTTP_MARK ? 1 : 0;
}

int pact_http_end(pact_http_req *r, pact_cb cb, void *ud)
{
    if (!r)
        return PACT_EINVAL;
    if (pact__misuse_thread(r->loop, __func__))
        return PACT_ETHREAD;
    if (!r->streaming) {
        if (r->answered)
            pact__http_forced_release(r);
        return r->answered ? PACT_EALREADY : PACT_EINVAL;
    }
    if (r->ended)
        return PACT_EALREADY;
    r->ended = true;
    int rc = 0;
    if (gone(r)) {
        rc = PACT_ECONNRESET;
        if (r->conn && !r->conn->dead) /* the body is cut: no keep-alive */
            pact_stream_destroy(r->conn->s, NULL);
    } else {
        struct piece *p = piece_new(r, NULL, 0, true, cb, ud);
        if (p) {
            push(r, p);
        } else {
            rc = PACT_ENOMEM; /* the body cannot end well: cut it */
            pact_stream_destroy(r->conn->s, NULL);
        }
        pact__http_answered(r);
    }
    if (r->h.style == H_CB) {
        r->hpart = false;
        pact__http_req_unref(r); /* the handler's part */
    }
    return rc;
}

void pact__http_stream_settled(pact_http_req *r, bool failed)
{
    if (!r->streaming || r->ended)
        return;
    if (failed && r->conn)
        pact_stream_destroy(r->conn->s, NULL); /* no 500 after a head */
    if (failed || !r->conn)
        r->ended = true;
    else
        (void)pact_http_end(r, NULL, NULL);
}

/* ---- the promise twins --------------------------------------------------- */

struct wargs {
    pact_http_req *r;
    const void *data;
    size_t len;
    bool end;
};

static int start_write(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    struct wargs *a = args;
    int rc = a->end
                 ? pact_http_end(a->r, pact_deferred_cb, d)
                 : pact_http_write(a->r, a->data, a->len, pact_deferred_cb, d);
    return rc > 0 ? 0 : rc;
}

pact_promise *pact_http_write_p(pact_http_req *r, const void *data, size_t len)
{
    if (!r)
        return NULL;
    struct wargs a = {r, data, len, false};
    return pact_promisify(r->loop, start_write, &a);
}

pact_promise *pact_http_end_p(pact_http_req *r)
{
    if (!r)
        return NULL;
    struct wargs a = {r, NULL, 0, true};
    return pact_promisify(r->loop, start_write, &a);
}
