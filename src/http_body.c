/* Streamed request bodies (pact_http_req_read): a route marked with
 * pact_http_route_stream_body is dispatched as soon as its head is in, and
 * its handler takes the body in pieces.
 *
 * The connection feeds the parser only while the request holds less than
 * HTTP_RMARK unread bytes (http_server.c), and stops reading its socket
 * past it: memory per request is the mark plus one socket read whatever
 * the client sends, and the client is throttled by the handler. A read is
 * settled on a later tick (an immediate, outside the request's scope, so
 * that the request's token does not cancel it): with all the bytes held
 * (PACT_BYTES), else the body's failure, else the end (PACT_EOF), else,
 * once the response is complete and the rest is dropped, PACT_EPIPE. */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

bool pact__http_body_dropping(const pact_http_req *r)
{
    return r->bstream && r->answered && (!r->streaming || r->ended);
}

static size_t avail(const pact_http_req *r)
{
    if (r->bstream)
        return pact__http_body_dropping(r) ? 0 : r->blen;
    return r->blen - r->roff;
}

static bool ready(const pact_http_req *r)
{
    return r->berr || avail(r) || r->complete || !r->bstream || !r->rconn ||
           pact__http_body_dropping(r);
}

static void settle(pact_error *err, void *ud)
{
    (void)err; /* cancelled (close_all): settle with what there is */
    pact_http_req *r = ud;
    r->rsched = false;
    if (!r->rpending || !ready(r)) {
        pact__http_req_unref(r);
        return;
    }
    pact_value v = {0};
    pact_error *e = NULL;
    struct http_conn *c = NULL;
    size_t n = avail(r);
    if (r->berr) {
        e = PACT_ERROR(r->berr,
                       r->berr == PACT_EMSGSIZE    ? "the body is over max_body"
                       : r->berr == PACT_ETIMEDOUT ? "the body took too long"
                                                   : "the client went away");
    } else if (n) {
        v = pact_bytes_copy(r->body + (r->bstream ? 0 : r->roff), n);
        if (v.kind == PACT_ERROR) {
            e = v.u.error;
            v = (pact_value){0};
        } else if (r->bstream) {
            r->blen = 0;
            c = r->rconn;
        } else {
            r->roff = r->blen;
        }
    } else if (r->complete) {
        e = PACT_ERROR(PACT_EOF, "the body has ended");
    } else if (pact__http_body_dropping(r)) {
        e = PACT_ERROR(PACT_EPIPE, "the response is complete: the rest of "
                                   "the body is dropped");
    } else {
        e = PACT_ERROR(PACT_ECONNRESET, "the client went away");
    }
    pact_value_cb cb = r->rcb;
    void *cud = r->rud;
    r->rpending = false;
    r->rcb = NULL;
    cb(e, e ? NULL : &v, cud);
    pact_error_unref(e);
    pact_value_release(&v);
    if (c && r->rconn == c)
        pact__http_body_resume(c); /* room again: read on */
    pact__http_req_unref(r);
}

void pact__http_body_wake(pact_http_req *r)
{
    if (!r->rpending || r->rsched || !ready(r))
        return;
    r->rsched = true;
    r->refs++; /* the immediate's part */
    struct pact__ambient outer = pact__ambient_enter(r->loop, NULL, NULL);
    int rc = pact_immediate(r->loop, settle, r, NULL);
    pact__ambient_leave(r->loop, outer);
    if (rc < 0)
        settle(NULL, r); /* out of memory: settle now rather than never */
}

int pact_http_req_read(pact_http_req *r, pact_value_cb cb, void *ud)
{
    if (!r || !cb)
        return PACT_EINVAL;
    if (pact__misuse_thread(r->loop, __func__))
        return PACT_ETHREAD;
    if (r->retired)
        return PACT_EPIPE; /* its handler is done with it */
    if (r->rpending)
        return PACT_EBUSY;
    r->rpending = true;
    r->rcb = cb;
    r->rud = ud;
    if (r->rconn)
        pact__http_body_resume(r->rconn);
    pact__http_body_wake(r);
    return 0;
}

static int start_read(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    return pact_http_req_read(args, pact_deferred_value_cb, d);
}

pact_promise *pact_http_req_read_p(pact_http_req *r)
{
    if (!r)
        return NULL;
    return pact_promisify(r->loop, start_read, r);
}

size_t pact_http_req_buffered(const pact_http_req *r)
{
    if (!r)
        return 0;
    size_t n = avail(r);
    if (r->rconn)
        n += r->rconn->ilen;
    return n;
}
