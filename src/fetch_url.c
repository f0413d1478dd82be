/* URLs for the HTTP client: an absolute http(s) URL split into origin and
 * target, a redirect's Location resolved against the URL it came from (the
 * four forms servers send: absolute, scheme-relative, absolute path,
 * relative path), and a request's bytes. Only what HTTP/1.1 needs of RFC
 * 3986: userinfo is refused (credentials belong in a header), a fragment
 * is dropped, and bytes that cannot go on a request line (controls, space)
 * make the URL invalid rather than being sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch_internal.h"

bool pact__fetch_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= '0' && ch <= '9') ||
            ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'))
            continue;
        if (!strchr("!#$%&'*+-.^_`|~", ch))
            return false;
    }
    return true;
}

/* what may go on a request line: visible ASCII and obs-text */
static bool url_bytes_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

void pact__fetch_url_free(struct fetch_url *u)
{
    free(u->target);
    u->target = NULL;
}

/* The target from @p p (a path starting with '/', or a query, or empty),
 * up to a fragment. */
static int set_target(struct fetch_url *u, const char *p, size_t n)
{
    const char *hash = memchr(p, '#', n);
    if (hash)
        n = (size_t)(hash - p);
    if (!url_bytes_ok(p, n))
        return PACT_EINVAL;
    bool slash = n == 0 || p[0] != '/';
    char *t = malloc(n + 2);
    if (!t)
        return PACT_ENOMEM;
    size_t k = 0;
    if (slash)
        t[k++] = '/';
    memcpy(t + k, p, n);
    t[k + n] = '\0';
    free(u->target);
    u->target = t;
    return 0;
}

/* "host[:port]" or "[v6][:port]", @p n bytes at @p a. */
static int parse_authority(struct fetch_url *u, const char *a, size_t n)
{
    if (n == 0 || memchr(a, '@', n))
        return PACT_EINVAL; /* no host, or userinfo */
    const char *hend, *colon = NULL;
    const char *h = a;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (!close)
            return PACT_EINVAL;
        h = a + 1;
        hend = close;
        if (close + 1 < a + n) {
            if (close[1] != ':')
                return PACT_EINVAL;
            colon = close + 1;
        }
    } else {
        colon = memchr(a, ':', n);
        hend = colon ? colon : a + n;
    }
    size_t hl = (size_t)(hend - h);
    if (hl == 0 || hl > FETCH_MAX_HOST || !url_bytes_ok(h, hl))
        return PACT_EINVAL;
    for (size_t i = 0; i < hl; i++)
        if (strchr("/?#[]", h[i]) && a[0] != '[')
            return PACT_EINVAL;
    memcpy(u->host, h, hl);
    u->host[hl] = '\0';
    for (size_t i = 0; i < hl; i++) /* hosts are case-insensitive */
        if (u->host[i] >= 'A' && u->host[i] <= 'Z')
            u->host[i] = (char)(u->host[i] | 0x20);
    u->port = u->https ? 443 : 80;
    if (colon && colon + 1 < a + n) {
        long port = 0;
        for (const char *c = colon + 1; c < a + n; c++) {
            if (*c < '0' || *c > '9' || port > 65535)
                return PACT_EINVAL;
            port = port * 10 + (*c - '0');
        }
        if (port < 1 || port > 65535)
            return PACT_EINVAL;
        u->port = (int)port;
    }
    return 0;
}

int pact__fetch_url_parse(const char *url, struct fetch_url *out)
{
    memset(out, 0, sizeof *out);
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        out->https = true;
        rest = url + 8;
    } else {
        return PACT_EINVAL;
    }
    size_t an = strcspn(rest, "/?#");
    int rc = parse_authority(out, rest, an);
    if (rc == 0)
        rc = set_target(out, rest + an, strlen(rest + an));
    if (rc < 0)
        pact__fetch_url_free(out);
    return rc;
}

/* RFC 3986 5.2.4, on a path without its query. */
static void remove_dots(char *path)
{
    char *out = path, *in = path;
    while (*in) {
        if (in[0] == '/' && in[1] == '.' && (in[2] == '/' || !in[2])) {
            in += 2; /* "/./" or "/." */
            if (!*in)
                *out++ = '/';
        } else if (in[0] == '/' && in[1] == '.' && in[2] == '.' &&
                   (in[3] == '/' || !in[3])) {
            in += 3; /* "/../": drop the last segment written */
            while (out > path && *--out != '/')
                ;
            if (!*in)
                *out++ = '/';
        } else {
            do
                *out++ = *in++;
            while (*in && *in != '/');
        }
    }
    *out = '\0';
    if (out == path) {
        path[0] = '/';
        path[1] = '\0';
    }
}

int pact__fetch_url_resolve(const struct fetch_url *base, const char *loc,
                            struct fetch_url *out)
{
    size_t n = strcspn(loc, ":/?#");
    if (loc[n] == ':' && n > 0)
        return pact__fetch_url_parse(loc, out); /* absolute */
    memset(out, 0, sizeof *out);
    out->https = base->https;
    if (loc[0] == '/' && loc[1] == '/') { /* scheme-relative */
        const char *a = loc + 2;
        size_t an = strcspn(a, "/?#");
        int rc = parse_authority(out, a, an);
        if (rc == 0)
            rc = set_target(out, a + an, strlen(a + an));
        if (rc < 0)
            pact__fetch_url_free(out);
        return rc;
    }
    memcpy(out->host, base->host, sizeof out->host);
    out->port = base->port;
    size_t bq = strcspn(base->target, "?");
    size_t ll = strcspn(loc, "#");
    size_t cap = bq + ll + 3;
    char *buf = malloc(cap);
    if (!buf)
        return PACT_ENOMEM;
    if (loc[0] == '/') {
        snprintf(buf, cap, "%.*s", (int)ll, loc);
    } else if (loc[0] == '?' || ll == 0) { /* the same path */
        snprintf(buf, cap, "%.*s%.*s", (int)bq, base->target, (int)ll, loc);
    } else { /* relative to the base's directory */
        size_t dir = bq;
        while (dir > 0 && base->target[dir - 1] != '/')
            dir--;
        snprintf(buf, cap, "%.*s%.*s", (int)dir, base->target, (int)ll, loc);
    }
    char *q = strchr(buf, '?');
    char *query = NULL;
    if (q) {
        query = strdup(q);
        *q = '\0';
    }
    if (q && !query) {
        free(buf);
        return PACT_ENOMEM;
    }
    remove_dots(buf);
    size_t pl = strlen(buf), ql = query ? strlen(query) : 0;
    char *t = malloc(pl + ql + 1);
    int rc = t ? 0 : PACT_ENOMEM;
    if (t) {
        memcpy(t, buf, pl);
        if (query)
            memcpy(t + pl, query, ql);
        t[pl + ql] = '\0';
        rc = set_target(out, t, pl + ql);
    }
    free(t);
    free(buf);
    free(query);
    return rc;
}

bool pact__fetch_same_origin(const struct fetch_url *a,
                             const struct fetch_url *b)
{
    return a->https == b->https && a->port == b->port &&
           strcmp(a->host, b->host) == 0;
}

/* "host", "host:port", "[v6]:port": the Host header's value */
static void host_value(const struct fetch_url *u, char *buf, size_t len)
{
    bool v6 = strchr(u->host, ':') != NULL;
    bool dflt = u->port == (u->https ? 443 : 80);
    if (dflt)
        snprintf(buf, len, v6 ? "[%s]" : "%s", u->host);
    else
        snprintf(buf, len, v6 ? "[%s]:%d" : "%s:%d", u->host, u->port);
}

char *pact__fetch_url_string(const struct fetch_url *u)
{
    char host[FETCH_MAX_HOST + 16];
    host_value(u, host, sizeof host);
    size_t n = strlen(host) + strlen(u->target) + 16;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s://%s%s", u->https ? "https" : "http", host,
                 u->target);
    return s;
}

static bool has_header(const struct fetch_req *r, const char *name)
{
    for (size_t i = 0; i < r->nh; i++)
        if (strcasecmp(r->hn[i], name) == 0)
            return true;
    return false;
}

int pact__fetch_wire(const struct fetch_req *r, const struct fetch_url *u,
                     char **out, size_t *len)
{
    char host[FETCH_MAX_HOST + 16];
    host_value(u, host, sizeof host);
    size_t cap =
        strlen(r->method) + strlen(u->target) + strlen(host) + 128 + r->blen;
    for (size_t i = 0; i < r->nh; i++)
        cap += strlen(r->hn[i]) + strlen(r->hv[i]) + 4;
    char *b = malloc(cap);
    if (!b)
        return PACT_ENOMEM;
    size_t n = (size_t)snprintf(b, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n",
                                r->method, u->target, host);
    if (!has_header(r, "accept"))
        n += (size_t)snprintf(b + n, cap - n, "Accept: */*\r\n");
    if (!has_header(r, "user-agent"))
        n += (size_t)snprintf(b + n, cap - n, "User-Agent: pact\r\n");
    for (size_t i = 0; i < r->nh; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s: %s\r\n", r->hn[i], r->hv[i]);
    if (r->has_body)
        n += (size_t)snprintf(b + n, cap - n, "Content-Length: %zu\r\n",
                              r->blen);
    n += (size_t)snprintf(b + n, cap - n, "\r\n");
    if (r->blen)
        memcpy(b + n, r->body, r->blen);
    *out = b;
    *len = n + r->blen;
    return 0;
}

void pact__fetch_req_free(struct fetch_req *r)
{
    free(r->method);
    for (size_t i = 0; i < r->nh; i++) {
        free(r->hn[i]);
        free(r->hv[i]);
    }
    free(r->hn);
    free(r->hv);
    free(r->body);
    memset(r, 0, sizeof *r);
}
