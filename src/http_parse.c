/* A request's head, checked strictly by our own code (RFC 9112), then
 * handed to http-parser (Node's parser before llhttp) for the framing: the
 * Content-Length, chunked bodies with their sizes and extensions. What the
 * RFC says MUST is enforced here, before the parser sees the bytes, since
 * http-parser tolerates some of it (obs-fold, spaces in names): a head with
 * a folded line, a name that is not a token, a value with a control byte,
 * a malformed ("+5", "5, 6") or repeated Content-Length, Content-Length
 * with Transfer-Encoding, a coding other than chunked, HTTP/1.1 without
 * one Host, is refused with a status and the connection closes. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

/* RFC 9110 tchar */
static bool tchar(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return true;
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* field-vchar, SP, HTAB (obs-text allowed) */
static bool vchar(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static bool all_digits(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* ---- http-parser's callbacks --------------------------------------------- */

static int on_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->cur->keep_alive = http_should_keep_alive(p) != 0;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    pact_http_req *r = c->cur;
    if (len > c->srv->o.max_body - r->btotal)
        return 1; /* HPE_CB_body: 413 */
    r->btotal += len;
    if (pact__http_body_dropping(r))
        return 0; /* answered: the rest is read and dropped */
    if (r->blen + len + 1 > r->bcap) {
        size_t cap = r->bcap ? r->bcap : 256;
        while (cap < r->blen + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 1;
        r->body = b;
        r->bcap = cap;
    }
    memcpy(r->body + r->blen, at, len);
    r->blen += len;
    r->body[r->blen] = '\0';
    return 0;
}

/* a chunk's size is known before its bytes: refuse it at once */
static int on_chunk_header(http_parser *p)
{
    struct http_conn *c = p->data;
    return p->content_length > c->srv->o.max_body - c->cur->btotal;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->msg_done = true;
    http_parser_pause(p, 1); /* one message at a time: pipelining waits */
    return 0;
}

static const http_parser_settings settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

void pact__http_parser_init(struct http_conn *c)
{
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
}

static int status_of(enum http_errno e)
{
    switch (e) {
    case HPE_CB_body:
    case HPE_CB_chunk_header:
        return 413;
    case HPE_HEADER_OVERFLOW:
        return 431;
    case HPE_INVALID_METHOD:
        return 501;
    case HPE_INVALID_VERSION:
        return 505;
    default:
        return 400;
    }
}

/* Run the parser; 0, or a status. */
static int execute(struct http_conn *c, const char *buf, size_t len,
                   size_t *used)
{
    if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
        http_parser_pause(&c->parser, 0);
    size_t n = http_parser_execute(&c->parser, &settings, buf, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (used)
        *used = n;
    if (e != HPE_OK && e != HPE_PAUSED)
        return status_of(e);
    return 0;
}

int pact__http_body(struct http_conn *c, const char *buf, size_t len,
                    size_t *used)
{
    return execute(c, buf, len, used);
}

/* ---- the head ------------------------------------------------------------ */

/* The request line: method SP target SP HTTP/x.y CRLF; 0 or a status. */
static int request_line(pact_http_req *r, char **pp)
{
    char *p = *pp, *m = p;
    while (tchar((unsigned char)*p))
        p++;
    if (p == m || *p != ' ')
        return 400;
    *p++ = '\0';
    char *t = p;
    while ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
        p++;
    if (p == t || *p != ' ')
        return 400;
    *p++ = '\0';
    if (strncmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' ||
        p[6] != '.' || p[7] < '0' || p[7] > '9' || p[8] != '\r' || p[9] != '\n')
        return 400;
    r->major = (unsigned short)(p[5] - '0');
    r->minor = (unsigned short)(p[7] - '0');
    if (r->major != 1)
        return 505;
    if (t[0] != '/' && strcmp(t, "*") != 0 && strncmp(t, "http://", 7) != 0 &&
        strncmp(t, "https://", 8) != 0)
        return 400;
    r->method = m;
    char *q = strchr(t, '?');
    if (q)
        *q++ = '\0';
    r->path = t;
    r->query = q ? q : "";
    *pp = p + 10;
    return 0;
}

/* The header lines up to the empty one; 0 or a status. */
static int header_lines(pact_http_req *r, char *p, size_t max)
{
    size_t lines = 0;
    for (const char *q = p; (q = strchr(q, '\n')) != NULL; q++)
        lines++;
    if (lines > max + 2) /* the request line and the empty one */
        return 431;
    r->hnames = malloc((lines + 1) * 2 * sizeof *r->hnames);
    if (!r->hnames)
        return 503;
    r->hvalues = r->hnames + lines + 1;
    while (!(p[0] == '\r' && p[1] == '\n')) {
        if (*p == ' ' || *p == '\t')
            return 400; /* obs-fold (or whitespace before a name) */
        char *n = p;
        while (tchar((unsigned char)*p))
            p++;
        if (p == n || *p != ':')
            return 400; /* not a token, or whitespace before the colon */
        *p++ = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        char *v = p;
        while (*p != '\r' && *p != '\n' && *p && vchar((unsigned char)*p))
            p++;
        if (p[0] != '\r' || p[1] != '\n')
            return 400; /* a control byte, a bare CR or LF */
        char *e = p;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        r->hnames[r->nh] = n;
        r->hvalues[r->nh++] = v;
        p += 2;
    }
    return 0;
}

/* What the headers mean for the framing; 0 or a status. */
static int semantics(pact_http_req *r, const pact_http_opts *o)
{
    int hosts = 0, cls = 0, tes = 0;
    const char *te = NULL, *cl = NULL;
    for (size_t i = 0; i < r->nh; i++) {
        const char *n = r->hnames[i], *v = r->hvalues[i];
        if (!strcasecmp(n, "host"))
            hosts++;
        else if (!strcasecmp(n, "content-length")) {
            cls++;
            cl = v;
            if (!all_digits(v))
                return 400;
        } else if (!strcasecmp(n, "transfer-encoding")) {
            tes++;
            te = v;
        } else if (!strcasecmp(n, "expect")) {
            if (strcasecmp(v, "100-continue") != 0)
                return 417;
            r->expect = r->minor >= 1;
        }
    }
    if (hosts > 1 || (r->minor >= 1 && hosts == 0))
        return 400;
    if (cls > 1 || tes > 1 || (cls && tes))
        return 400;
    if (te) {
        if (r->minor == 0)
            return 400;
        if (strcasecmp(te, "chunked") != 0) {
            size_t n = strlen(te);
            return n >= 7 && !strcasecmp(te + n - 7, "chunked") ? 501 : 400;
        }
    }
    if (cl && strtoull(cl, NULL, 10) > o->max_body)
        return 413;
    return 0;
}

int pact__http_head(struct http_conn *c, const char *buf, size_t len,
                    pact_http_req **out)
{
    pact_http_req *r = pact__http_req_new(c);
    *out = r;
    if (!r)
        return 503;
    r->head = malloc(len + 1);
    if (!r->head)
        return 503;
    memcpy(r->head, buf, len);
    r->head[len] = '\0';
    if (memchr(buf, '\0', len))
        return 400;
    char *p = r->head;
    int st = request_line(r, &p);
    if (!st)
        st = header_lines(r, p, c->srv->o.max_headers);
    if (!st)
        st = semantics(r, &c->srv->o);
    if (st)
        return st;
    r->head_only = strcmp(r->method, "HEAD") == 0;
    c->cur = r;
    c->msg_done = false;
    size_t used = 0;
    st = execute(c, buf, len, &used);
    if (!st && used != len && !c->msg_done)
        st = 400;
    return st;
}
