/* The client's response (pact/fetch.h): reference-counted, so that a
 * callback may keep the one it is lent and a promise may hold it as its
 * value; its headers in arrival order with a case-insensitive lookup; its
 * body as bytes, text or JSON. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch_internal.h"
#include "pact/promise.h"

pact_fetch_res *pact__fetch_res_new(void)
{
    pact_fetch_res *r = calloc(1, sizeof *r);
    if (r)
        r->refs = 1;
    return r;
}

static void res_free(pact_fetch_res *r)
{
    for (size_t i = 0; i < r->nh; i++) {
        free(r->hn[i]);
        free(r->hv[i]);
    }
    free(r->hn);
    free(r->hv);
    free(r->reason);
    free(r->body);
    free(r->url);
    free(r);
}

pact_fetch_res *pact_fetch_res_ref(pact_fetch_res *res)
{
    if (res)
        res->refs++;
    return res;
}

void pact_fetch_res_unref(pact_fetch_res *res)
{
    if (res && --res->refs == 0)
        res_free(res);
}

void pact__fetch_res_free_v(void *res)
{
    pact_fetch_res_unref(res);
}

pact_fetch_res *pact_fetch_res_of(const pact_value *v)
{
    if (!v || v->kind != PACT_OWNED ||
        v->u.owned.free != pact__fetch_res_free_v)
        return NULL;
    return v->u.owned.ptr;
}

/* @p *s grown by @p len bytes at @p at, NUL-terminated. */
static int str_append(char **s, const char *at, size_t len)
{
    size_t old = *s ? strlen(*s) : 0;
    char *n = realloc(*s, old + len + 1);
    if (!n)
        return PACT_ENOMEM;
    memcpy(n + old, at, len);
    n[old + len] = '\0';
    *s = n;
    return 0;
}

int pact__fetch_res_hpart(pact_fetch_res *r, bool value, const char *at,
                          size_t len)
{
    if (!value && (r->nh == 0 || r->hv[r->nh - 1])) { /* a new line */
        if (r->nh == r->hcap) {
            size_t cap = r->hcap ? r->hcap * 2 : 16;
            char **hn = realloc(r->hn, cap * sizeof *hn);
            if (!hn)
                return PACT_ENOMEM;
            r->hn = hn;
            char **hv = realloc(r->hv, cap * sizeof *hv);
            if (!hv)
                return PACT_ENOMEM;
            r->hv = hv;
            r->hcap = cap;
        }
        r->hn[r->nh] = NULL;
        r->hv[r->nh] = NULL;
        r->nh++;
    }
    if (r->nh == 0)
        return PACT_EINVAL;
    return str_append(value ? &r->hv[r->nh - 1] : &r->hn[r->nh - 1], at, len);
}

int pact__fetch_res_append(pact_fetch_res *r, const char *at, size_t len)
{
    if (r->blen + len + 1 > r->bcap) {
        size_t cap = r->bcap ? r->bcap : 1024;
        while (cap < r->blen + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return PACT_ENOMEM;
        r->body = b;
        r->bcap = cap;
    }
    memcpy(r->body + r->blen, at, len);
    r->blen += len;
    r->body[r->blen] = '\0';
    return 0;
}

int pact_fetch_res_status(const pact_fetch_res *res)
{
    return res ? res->status : 0;
}

const char *pact_fetch_res_reason(const pact_fetch_res *res)
{
    return res && res->reason ? res->reason : "";
}

bool pact_fetch_res_ok(const pact_fetch_res *res)
{
    return res && res->status >= 200 && res->status <= 299;
}

const char *pact_fetch_res_url(const pact_fetch_res *res)
{
    return res && res->url ? res->url : "";
}

unsigned pact_fetch_res_redirects(const pact_fetch_res *res)
{
    return res ? res->redirects : 0;
}

const char *pact_fetch_res_header(const pact_fetch_res *res, const char *name)
{
    if (!res || !name)
        return NULL;
    for (size_t i = 0; i < res->nh; i++)
        if (strcasecmp(res->hn[i], name) == 0)
            return res->hv[i] ? res->hv[i] : "";
    return NULL;
}

size_t pact_fetch_res_header_count(const pact_fetch_res *res)
{
    return res ? res->nh : 0;
}

int pact_fetch_res_header_at(const pact_fetch_res *res, size_t i,
                             const char **name, const char **value)
{
    if (!res || i >= res->nh)
        return PACT_EINVAL;
    if (name)
        *name = res->hn[i];
    if (value)
        *value = res->hv[i] ? res->hv[i] : "";
    return 0;
}

const void *pact_fetch_res_body(const pact_fetch_res *res, size_t *len)
{
    if (len)
        *len = res ? res->blen : 0;
    return res && res->body ? res->body : "";
}

const char *pact_fetch_res_text(const pact_fetch_res *res)
{
    return pact_fetch_res_body(res, NULL);
}

pact_error *pact_fetch_res_json(const pact_fetch_res *res, json_t **out)
{
    if (out)
        *out = NULL;
    if (!res || !out)
        return PACT_ERROR(PACT_EINVAL, "pact_fetch_res_json: NULL argument");
    json_error_t je;
    json_t *j =
        json_loadb(res->body ? res->body : "", res->blen, JSON_DECODE_ANY, &je);
    if (!j) {
        pact_error *e =
            PACT_ERROR(PACT_EINVAL,
                       "the body of %s (%d) is not JSON: %s at line %d, "
                       "column %d",
                       res->url ? res->url : "the response", res->status,
                       je.text, je.line, je.column);
        return e ? e : pact__enomem();
    }
    *out = j;
    return NULL;
}

pact_value pact_fetch_res_to_json(const pact_value *v, void *ud)
{
    (void)ud;
    pact_fetch_res *res = pact_fetch_res_of(v);
    if (!res)
        return pact_throw(
            PACT_ERROR(PACT_EINVAL, "pact_fetch_res_to_json: not a response"));
    json_t *j;
    pact_error *err = pact_fetch_res_json(res, &j);
    return err ? pact_throw(err) : pact_json(j);
}
