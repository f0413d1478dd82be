/* The request's accessors, the response object and the bytes of a
 * response: status line, Date (one formatting per second), the program's
 * headers, Content-Length and Connection, then the body. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_internal.h"

struct pact_http_res {
    int status;
    char *hdrs; /* "Name: value\r\n"... */
    size_t hlen, hcap;
    char *body;
    size_t blen;
};

/* ---- the request --------------------------------------------------------- */

pact_http_req *pact__http_req_new(struct http_conn *c)
{
    pact_http_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = c;
    r->loop = c->srv->loop;
    r->refs = 1;
    r->query = "";
    pact__list_init(&r->node);
    pact__list_init(&r->pieces);
    if (pact_abort_new(r->loop, &r->abort) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

/* ---- the quarantine of retired requests -----------------------------------
 */

/* Shells kept whatever their age: a program that answers twice a little
 * later than the same turn is still told PACT_EALREADY at low load. */
#define HTTP_QUARANTINE 64

static void svc_free(pact_loop *loop, void *state)
{
    (void)loop;
    struct http_svc *svc = state;
    struct pact__list *n;
    while ((n = pact__list_first(&svc->shells))) {
        pact__list_remove(n);
        free(pact__list_entry(n, pact_http_req, node));
    }
    free(svc);
}

/* nothing of it is pending: a shell never keeps the loop */
static const struct pact__service_ops svc_ops = {.free = svc_free};

static void *svc_make(pact_loop *loop)
{
    (void)loop;
    struct http_svc *svc = calloc(1, sizeof *svc);
    if (svc)
        pact__list_init(&svc->shells);
    return svc;
}

struct http_svc *pact__http_svc(pact_loop *loop)
{
    return pact__service(loop, PACT__SVC_HTTP, &svc_ops, svc_make);
}

/* Free the shells retired two turns ago or more beyond the youngest
 * HTTP_QUARANTINE: a shell outlives at least the rest of its turn and the
 * next poll, so a second answer from the same handler, its timers and
 * promise reactions of that turn finds it. */
static void sweep(pact_loop *loop, struct http_svc *svc)
{
    struct pact__list *n;
    while (svc->nshells > HTTP_QUARANTINE &&
           (n = pact__list_first(&svc->shells))) {
        pact_http_req *r = pact__list_entry(n, pact_http_req, node);
        if (r->retired_at + 2 > loop->imm_epoch)
            break;
        pact__list_remove(n);
        svc->nshells--;
        free(r);
    }
}

/* Keep @p r's shell, answered and empty, in the quarantine. */
static bool retire(pact_http_req *r)
{
    pact_loop *loop = r->loop;
    struct http_svc *svc = pact__service_find(loop, PACT__SVC_HTTP);
    if (!svc)
        return false;
    sweep(loop, svc);
    pact_loop *keep = r->loop;
    memset(r, 0, sizeof *r);
    r->loop = keep;
    r->query = "";
    r->answered = r->complete = r->retired = true;
    r->retired_at = loop->imm_epoch;
    pact__list_push_back(&svc->shells, &r->node);
    svc->nshells++;
    return true;
}

void pact__http_req_unref(pact_http_req *r)
{
    if (!r || r->retired || --r->refs > 0)
        return;
    if (r->op) {
        pact_error *err = NULL;
        pact_op_end(r->op, &err);
        if (err)
            pact_error_unref(err);
    }
    pact_abort_unref(r->abort);
    free(r->head);
    free(r->hnames);
    free(r->pbuf);
    free(r->body);
    free(r->out);
    free(r->task_name);
    if (!r->dispatched || !retire(r))
        free(r);
}

const char *pact_http_req_method(const pact_http_req *r)
{
    return r && r->method ? r->method : "";
}

const char *pact_http_req_path(const pact_http_req *r)
{
    return r && r->path ? r->path : "";
}

const char *pact_http_req_query(const pact_http_req *r)
{
    return r ? r->query : "";
}

const char *pact_http_req_header(const pact_http_req *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->nh; i++)
        if (!strcasecmp(r->hnames[i], name))
            return r->hvalues[i];
    return NULL;
}

size_t pact_http_req_header_count(const pact_http_req *r)
{
    return r ? r->nh : 0;
}

int pact_http_req_header_at(const pact_http_req *r, size_t i, const char **name,
                            const char **value)
{
    if (!r || i >= r->nh || !name || !value)
        return PACT_EINVAL;
    *name = r->hnames[i];
    *value = r->hvalues[i];
    return 0;
}

const char *pact_http_req_param(const pact_http_req *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->np; i++)
        if (!strcmp(r->pnames[i], name))
            return r->pvalues[i];
    return NULL;
}

const void *pact_http_req_body(const pact_http_req *r, size_t *len)
{
    if (r && r->bstream) { /* read in pieces: not kept */
        if (len)
            *len = 0;
        return "";
    }
    if (len)
        *len = r ? r->blen : 0;
    return r && r->body ? r->body : "";
}

json_t *pact_http_req_json(const pact_http_req *r)
{
    if (!r || !r->body || r->bstream)
        return NULL;
    return json_loadb(r->body, r->blen, JSON_DECODE_ANY, NULL);
}

pact_abort *pact_http_req_abort(const pact_http_req *r)
{
    return r ? r->abort : NULL;
}

pact_loop *pact_http_req_loop(const pact_http_req *r)
{
    return r ? r->loop : NULL;
}

/* ---- the response -------------------------------------------------------- */

pact_http_res *pact_http_res_new(int status)
{
    if (status < 200 || status > 599)
        return NULL;
    pact_http_res *res = calloc(1, sizeof *res);
    if (res)
        res->status = status;
    return res;
}

void pact_http_res_free(pact_http_res *res)
{
    if (!res)
        return;
    free(res->hdrs);
    free(res->body);
    free(res);
}

static bool token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch))
            return false;
    }
    return true;
}

int pact_http_res_header(pact_http_res *res, const char *name,
                         const char *value)
{
    if (!res || !name || !value || !token(name) || strpbrk(value, "\r\n") ||
        !strcasecmp(name, "content-length") ||
        !strcasecmp(name, "transfer-encoding") ||
        !strcasecmp(name, "connection"))
        return PACT_EINVAL;
    size_t n = strlen(name) + strlen(value) + 4;
    if (res->hlen + n + 1 > res->hcap) {
        size_t cap = res->hcap ? res->hcap * 2 : 128;
        while (cap < res->hlen + n + 1)
            cap *= 2;
        char *h = realloc(res->hdrs, cap);
        if (!h)
            return PACT_ENOMEM;
        res->hdrs = h;
        res->hcap = cap;
    }
    res->hlen += (size_t)snprintf(res->hdrs + res->hlen, res->hcap - res->hlen,
                                  "%s: %s\r\n", name, value);
    return 0;
}

int pact_http_res_body(pact_http_res *res, const void *data, size_t len)
{
    if (!res || (!data && len))
        return PACT_EINVAL;
    char *b = malloc(len + 1);
    if (!b)
        return PACT_ENOMEM;
    if (len)
        memcpy(b, data, len);
    free(res->body);
    res->body = b;
    res->blen = len;
    return 0;
}

int pact_http_res_json(pact_http_res *res, const json_t *json)
{
    if (!res || !json)
        return PACT_EINVAL;
    char *s = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return PACT_ENOMEM;
    free(res->body);
    res->body = s;
    res->blen = strlen(s);
    return pact_http_res_header(res, "Content-Type", "application/json");
}

pact_http_res *pact_http_res_new_json(int status, const json_t *json)
{
    pact_http_res *res = pact_http_res_new(status);
    if (res && pact_http_res_json(res, json) != 0) {
        pact_http_res_free(res);
        return NULL;
    }
    return res;
}

void pact__http_res_free_v(void *p)
{
    pact_http_res_free(p);
}

pact_value pact_http_res_value(pact_http_res *res)
{
    pact_value v = pact_nothing();
    if (!res)
        return v;
    v.kind = PACT_OWNED;
    v.u.owned.ptr = res;
    v.u.owned.free = pact__http_res_free_v;
    return v;
}

/* ---- the bytes ----------------------------------------------------------- */

static const char *reason(int st)
{
    switch (st) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static const char *date(pact_http_server *srv)
{
    time_t now = time(NULL);
    if (now != srv->date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        srv->date_at = now;
    }
    return srv->date;
}

int pact__http_serialize(pact_http_server *srv, pact_http_req *r,
                         const pact_http_res *res)
{
    bool close = !r->keep_alive || r->err_status || srv->closing;
    r->keep_alive = !close;
    bool body = !r->head_only && res->status != 204 && res->status != 304;
    size_t cap = 256 + res->hlen + (body ? res->blen : 0);
    char *o = malloc(cap);
    if (!o)
        return PACT_ENOMEM;
    char clen[48] = ""; /* none on a 204 (RFC 9110 8.6) */
    if (res->status != 204)
        snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", res->blen);
    int n = snprintf(o, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\n%.*s%s%s\r\n",
                     res->status, reason(res->status), date(srv),
                     (int)res->hlen, res->hdrs ? res->hdrs : "", clen,
                     close           ? "Connection: close\r\n"
                     : r->minor == 0 ? "Connection: keep-alive\r\n"
                                     : "");
    size_t len = (size_t)n;
    if (body && res->blen) {
        memcpy(o + len, res->body, res->blen);
        len += res->blen;
    }
    free(r->out);
    r->out = o;
    r->olen = len;
    return 0;
}

int pact__http_serialize_stream(pact_http_server *srv, pact_http_req *r,
                                const pact_http_res *res, const void **body,
                                size_t *blen)
{
    bool none = res->status == 204 || res->status == 304;
    r->sbody = !r->head_only && !none;
    r->chunked = r->minor >= 1 && !none;
    if (!r->chunked && r->sbody)
        r->keep_alive = false; /* HTTP/1.0: the close ends the body */
    bool close = !r->keep_alive || r->err_status || srv->closing;
    r->keep_alive = !close;
    size_t cap = 256 + res->hlen;
    char *o = malloc(cap);
    if (!o)
        return PACT_ENOMEM;
    int n = snprintf(o, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\n%.*s%s%s\r\n",
                     res->status, reason(res->status), date(srv),
                     (int)res->hlen, res->hdrs ? res->hdrs : "",
                     r->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                     close           ? "Connection: close\r\n"
                     : r->minor == 0 ? "Connection: keep-alive\r\n"
                                     : "");
    free(r->out);
    r->out = o;
    r->olen = (size_t)n;
    *body = res->body;
    *blen = res->blen;
    return 0;
}

int pact__http_error_out(pact_http_server *srv, pact_http_req *r, int status)
{
    pact_http_res res = {.status = status};
    char text[64];
    int n = snprintf(text, sizeof text, "%d %s\n", status, reason(status));
    res.body = text;
    res.blen = (size_t)n;
    char h[] = "Content-Type: text/plain\r\n";
    res.hdrs = h;
    res.hlen = sizeof h - 1;
    return pact__http_serialize(srv, r, &res);
}
