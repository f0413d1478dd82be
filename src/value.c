/* The value model: releasing what a pact_value owns, the constructors that
 * need jansson or malloc, and the combinators' lists. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_deep.h"
#include "promise_internal.h"

pact_value pact_json(json_t *json)
{
    pact_value v = {PACT_JSON, {0}};
    if (!json) /* a failed json_pack/json_loads: never a silent null */
        return pact_throw(PACT_ERROR(PACT_EINVAL, "pact_json(NULL): no JSON "
                                                  "value (a failed json_* "
                                                  "call?)"));
    v.u.json = json;
    return v;
}

pact_value pact_bytes_copy(const void *data, size_t len)
{
    /* a NUL after the bytes: text can be used as a C string (value.h) */
    char *copy = len < SIZE_MAX ? malloc(len + 1) : NULL;
    if (!copy)
        return pact_throw(pact__enomem());
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return pact_bytes(copy, len);
}

pact_value pact_string(char *str)
{
    pact_value v = {PACT_STRING, {0}};
    if (!str) /* a failed strdup: never a silent empty string */
        return pact_throw(PACT_ERROR(PACT_EINVAL, "pact_string(NULL): no "
                                                  "string (a failed "
                                                  "allocation?)"));
    v.u.str = str;
    return v;
}

pact_value pact_string_copy(const char *str)
{
    if (!str)
        return pact_throw(
            PACT_ERROR(PACT_EINVAL, "pact_string_copy(NULL): no string"));
    char *copy = strdup(str);
    return copy ? pact_string(copy) : pact_throw(pact__enomem());
}

pact_value pact_string_fmt(const char *fmt, ...)
{
    if (!fmt)
        return pact_throw(
            PACT_ERROR(PACT_EINVAL, "pact_string_fmt(NULL): no format"));
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    if (s)
        return pact_string(s);
    return pact_throw(n < 0 ? PACT_ERROR(PACT_EINVAL,
                                         "pact_string_fmt: the format "
                                         "could not be printed")
                            : pact__enomem());
}

const char *pact_value_string(const pact_value *v)
{
    return v && v->kind == PACT_STRING ? v->u.str : NULL;
}

pact_value pact_value_copy(const pact_value *v)
{
    if (!v)
        return pact_nothing();
    pact_value c = *v;
    switch ((int)v->kind) {
    case PACT_JSON:
        json_incref(c.u.json);
        return c;
    case PACT_LIST:
        c.u.list->refs++;
        return c;
    case PACT_BYTES:
        return pact_bytes_copy(v->u.bytes.data, v->u.bytes.len);
    case PACT_STRING:
        return pact_string_copy(v->u.str);
    case PACT_PROMISE:
        pact_promise_ref(c.u.promise);
        return c;
    case PACT_ERROR:
        pact_error_ref(c.u.error);
        return c;
    case PACT_OWNED:
    case PACT_THENABLE:
    case PACT__LINK:
        return pact_throw(
            PACT_ERROR(PACT_EINVAL,
                       "a%s value has one owner and cannot be "
                       "copied",
                       v->kind == PACT_THENABLE ? " thenable" : "n owned"));
    default:
        return c;
    }
}

void pact_value_release(pact_value *v)
{
    if (!v)
        return;
    switch ((int)v->kind) {
    case PACT_OWNED:
        if (v->u.owned.free)
            v->u.owned.free(v->u.owned.ptr);
        break;
    case PACT_JSON:
        pact__json_release(v->u.json); /* any depth: no recursion */
        break;
    case PACT_BYTES:
        free(v->u.bytes.data);
        break;
    case PACT_STRING:
        free(v->u.str);
        break;
    case PACT_LIST:
        pact__list_unref(v->u.list);
        break;
    case PACT_PROMISE:
    case PACT__LINK:
        pact__unref(v->u.promise);
        break;
    case PACT_THENABLE:
        if (v->u.thenable.vt && v->u.thenable.vt->release)
            v->u.thenable.vt->release(v->u.thenable.obj);
        break;
    case PACT_ERROR:
        pact_error_unref(v->u.error);
        break;
    }
    *v = pact_nothing();
}

pact_list *pact__list_new(size_t len)
{
    if (len > (SIZE_MAX - sizeof(pact_list)) / sizeof(pact_promise *))
        return NULL;
    pact_list *l = malloc(sizeof *l + len * sizeof l->items[0]);
    if (l) {
        l->refs = 1;
        l->len = len;
        memset(l->items, 0, len * sizeof l->items[0]);
    }
    return l;
}

void pact__list_unref(pact_list *l)
{
    if (!l || --l->refs)
        return;
    for (size_t i = 0; i < l->len; i++)
        pact__unref(l->items[i]);
    free(l);
}

size_t pact_list_len(const pact_list *list)
{
    return list ? list->len : 0;
}

pact_promise *pact_list_at(const pact_list *list, size_t i)
{
    return list && i < list->len ? list->items[i] : NULL;
}
