/* A response read with http-parser (as the server reads requests,
 * http_parse.c), fed the bytes as the connection hands them over: the
 * status line and headers (split anywhere), then the body framed by
 * Content-Length, chunked coding, or the connection's end; none after HEAD,
 * 204, 304 and 1xx. Interim 1xx responses are skipped. The body limit is
 * checked before a byte of it is stored, from Content-Length or a chunk's
 * size where the server gives one. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_internal.h"

static struct fetch_parse *fp_of(http_parser *p)
{
    return p->data;
}

static int on_status(http_parser *p, const char *at, size_t len)
{
    pact_fetch_res *r = fp_of(p)->res;
    size_t old = r->reason ? strlen(r->reason) : 0;
    char *n = realloc(r->reason, old + len + 1);
    if (!n)
        return fp_of(p)->err = PACT_ENOMEM, 1;
    memcpy(n + old, at, len);
    n[old + len] = '\0';
    r->reason = n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct fetch_parse *fp = fp_of(p);
    pact_fetch_res *r = fp->res;
    /* a name after a value (or after a name with an empty value, which
     * gets no value callback) starts a new line */
    if (!fp->in_field && r->nh && !r->hv[r->nh - 1] &&
        pact__fetch_res_hpart(r, true, "", 0) < 0)
        return fp->err = PACT_ENOMEM, 1;
    fp->in_field = true;
    if (pact__fetch_res_hpart(r, false, at, len) < 0)
        return fp->err = PACT_ENOMEM, 1;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct fetch_parse *fp = fp_of(p);
    fp->in_field = false;
    if (pact__fetch_res_hpart(fp->res, true, at, len) < 0)
        return fp->err = PACT_ENOMEM, 1;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct fetch_parse *fp = fp_of(p);
    pact_fetch_res *r = fp->res;
    if (r->nh && !r->hv[r->nh - 1] && pact__fetch_res_hpart(r, true, "", 0) < 0)
        return fp->err = PACT_ENOMEM, -1;
    r->status = p->status_code;
    if (p->http_major != 1 || r->status < 100 || r->status > 999) {
        fp->err = PACT_EPROTO;
        return -1;
    }
    if (r->status == 101) { /* never asked for */
        fp->err = PACT_EPROTO;
        return -1;
    }
    fp->headers = true;
    fp->total = -1;
    /* no body whatever the headers say (RFC 9112 6.3): http-parser would
     * wait for a 304's Content-Length */
    int st = r->status;
    if (fp->head || st == 204 || st == 304 || st / 100 == 1)
        return 1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length != ULLONG_MAX) {
        if (p->content_length > fp->max_body) {
            fp->err = PACT_EMSGSIZE;
            return -1;
        }
        fp->total = (int64_t)p->content_length;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct fetch_parse *fp = fp_of(p);
    if (len > fp->max_body - fp->res->blen) {
        fp->err = PACT_EMSGSIZE;
        return 1;
    }
    if (pact__fetch_res_append(fp->res, at, len) < 0)
        return fp->err = PACT_ENOMEM, 1;
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    struct fetch_parse *fp = fp_of(p);
    if (p->content_length > fp->max_body - fp->res->blen) {
        fp->err = PACT_EMSGSIZE;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct fetch_parse *fp = fp_of(p);
    fp->done = true;
    fp->keep = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* what follows is not this response's */
    return 0;
}

static const http_parser_settings settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

void pact__fetch_parse_init(struct fetch_parse *fp, bool head, size_t max_body)
{
    memset(fp, 0, sizeof *fp);
    http_parser_init(&fp->p, HTTP_RESPONSE);
    fp->p.data = fp;
    fp->head = head;
    fp->max_body = max_body;
    fp->total = -1;
}

void pact__fetch_parse_free(struct fetch_parse *fp)
{
    pact_fetch_res_unref(fp->res);
    fp->res = NULL;
    free(fp->why);
    fp->why = NULL;
}

static int fail(struct fetch_parse *fp, int rc, const char *why)
{
    if (!fp->why)
        fp->why = strdup(why);
    return rc;
}

/* An interim 1xx is done: start over for the final response. */
static int restart(struct fetch_parse *fp)
{
    pact_fetch_res_unref(fp->res);
    fp->res = pact__fetch_res_new();
    if (!fp->res)
        return PACT_ENOMEM;
    http_parser_init(&fp->p, HTTP_RESPONSE);
    fp->p.data = fp;
    fp->done = fp->headers = fp->in_field = false;
    return 0;
}

int pact__fetch_parse_feed(struct fetch_parse *fp, const char *buf, size_t len,
                           size_t *used)
{
    *used = 0;
    if (!fp->res && !(fp->res = pact__fetch_res_new()))
        return PACT_ENOMEM;
    while (*used < len && !fp->done) {
        size_t n =
            http_parser_execute(&fp->p, &settings, buf + *used, len - *used);
        *used += n;
        fp->got += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&fp->p);
        if (fp->done) {
            int st = fp->res->status;
            if (st >= 100 && st < 200) {
                int rc = restart(fp);
                if (rc < 0)
                    return rc;
                continue;
            }
            break;
        }
        if (e != HPE_OK && e != HPE_PAUSED) {
            if (fp->err == PACT_EMSGSIZE)
                return fail(fp, fp->err, "the body is larger than max_body");
            if (fp->err)
                return fail(fp, fp->err,
                            fp->err == PACT_EPROTO
                                ? "the response is not HTTP/1.x"
                                : "out of memory");
            return fail(fp, PACT_EPROTO, http_errno_description(e));
        }
        if (n == 0)
            return fail(fp, PACT_EPROTO, "the parser took no bytes");
    }
    return 0;
}

int pact__fetch_parse_eof(struct fetch_parse *fp)
{
    if (fp->done)
        return 0;
    if (!fp->res || !fp->headers)
        return fail(fp, PACT_ECONNRESET,
                    fp->got ? "the server closed the connection in the "
                              "response's head"
                            : "the server closed the connection without "
                              "answering");
    http_parser_execute(&fp->p, &settings, NULL, 0);
    if (fp->done) {
        fp->keep = false;
        return 0;
    }
    if (fp->err == PACT_EMSGSIZE)
        return fail(fp, fp->err, "the body is larger than max_body");
    return fail(fp, PACT_ECONNRESET,
                "the server closed the connection before the body's end");
}

pact_error *pact__fetch_parse_error(struct fetch_parse *fp, int rc)
{
    pact_error *e = PACT_ERROR(rc, "%s", fp->why ? fp->why : pact_strerror(rc));
    return e ? e : pact__enomem();
}
