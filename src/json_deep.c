/* Deep copy and release of jansson trees with explicit heap stacks instead
 * of recursion (see json_deep.h). A copy tracks the containers on its
 * current path in a small pointer set, to refuse cycles as jansson does. */
#include "json_deep.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- the containers on the current path: open addressing on pointers ---- */

struct pset {
    json_t **slot;
    size_t cap, len; /* cap: a power of two, kept at least twice len */
};

static size_t phash(const json_t *p, size_t cap)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 7) & (cap - 1);
}

static bool pset_has(const struct pset *s, const json_t *p)
{
    for (size_t i = phash(p, s->cap); s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (s->slot[i] == p)
            return true;
    return false;
}

static bool pset_add(struct pset *s, json_t *p);

static bool pset_grow(struct pset *s)
{
    struct pset n = {calloc(s->cap * 2, sizeof *n.slot), s->cap * 2, 0};
    if (!n.slot)
        return false;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i])
            pset_add(&n, s->slot[i]);
    free(s->slot);
    *s = n;
    return true;
}

static bool pset_add(struct pset *s, json_t *p)
{
    if (2 * (s->len + 1) > s->cap && !pset_grow(s))
        return false;
    size_t i = phash(p, s->cap);
    while (s->slot[i])
        i = (i + 1) & (s->cap - 1);
    s->slot[i] = p;
    s->len++;
    return true;
}

/* Linear probing's deletion: shift back the entries that probed past it. */
static void pset_del(struct pset *s, const json_t *p)
{
    size_t m = s->cap - 1, i = phash(p, s->cap);
    while (s->slot[i] != p)
        i = (i + 1) & m;
    s->slot[i] = NULL;
    s->len--;
    for (size_t j = (i + 1) & m; s->slot[j]; j = (j + 1) & m) {
        size_t h = phash(s->slot[j], s->cap);
        /* move it into the hole if its home is not in (i, j] */
        if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
            s->slot[i] = s->slot[j];
            s->slot[j] = NULL;
            i = j;
        }
    }
}

/* ---- copy ---------------------------------------------------------------- */

struct frame {
    json_t *src, *dst;
    size_t i;   /* array: the next index */
    void *iter; /* object: the next member */
};

static bool is_container(const json_t *j)
{
    return json_is_object(j) || json_is_array(j);
}

static json_t *empty_like(const json_t *j)
{
    return json_is_object(j) ? json_object() : json_array();
}

/* The next child of @p f's source (and its key for an object), or NULL. */
static json_t *next_child(struct frame *f, const char **key)
{
    if (json_is_array(f->src))
        return f->i < json_array_size(f->src) ? json_array_get(f->src, f->i++)
                                              : NULL;
    if (!f->iter)
        return NULL;
    *key = json_object_iter_key(f->iter);
    json_t *v = json_object_iter_value(f->iter);
    f->iter = json_object_iter_next(f->src, f->iter);
    return v;
}

/* Attach @p child (stolen) to @p dst under @p key or at its end. */
static bool attach(json_t *dst, const char *key, json_t *child)
{
    if (!child)
        return false;
    return (json_is_array(dst)
                ? json_array_append_new(dst, child)
                : json_object_set_new_nocheck(dst, key, child)) == 0;
}

json_t *pact__json_copy(json_t *src)
{
    if (!src || !is_container(src))
        return json_deep_copy(src); /* a scalar: no recursion */
    json_t *root = empty_like(src);
    struct pset on_path = {calloc(64, sizeof(json_t *)), 64, 0};
    size_t cap = 64, len = 0;
    struct frame *st = malloc(cap * sizeof *st);
    bool ok = root && on_path.slot && st && pset_add(&on_path, src);
    if (ok)
        st[len++] = (struct frame){src, root, 0, json_object_iter(src)};
    while (ok && len) {
        struct frame *f = &st[len - 1];
        const char *key = NULL;
        json_t *child = next_child(f, &key);
        if (!child) {
            pset_del(&on_path, f->src);
            len--;
        } else if (!is_container(child)) {
            ok = attach(f->dst, key, json_deep_copy(child));
        } else if (pset_has(&on_path, child)) {
            ok = false; /* a cycle */
        } else {
            json_t *dst = empty_like(child);
            ok = dst && json_incref(dst) && attach(f->dst, key, dst);
            if (ok && len == cap) {
                struct frame *n = realloc(st, 2 * cap * sizeof *st);
                ok = n != NULL;
                if (ok)
                    st = n, cap *= 2;
            }
            ok = ok && pset_add(&on_path, child);
            if (ok)
                st[len++] =
                    (struct frame){child, dst, 0, json_object_iter(child)};
            json_decref(dst); /* the parent holds it (or it goes now) */
        }
    }
    free(st);
    free(on_path.slot);
    if (!ok) {
        pact__json_release(root);
        return NULL;
    }
    return root;
}

/* ---- release ------------------------------------------------------------- */

/* Push each child of @p j (a reference each), so that freeing @p j frees
 * no more than itself. */
static bool push_children(json_t *j, json_t ***st, size_t *len, size_t *cap)
{
    size_t n = json_is_array(j) ? json_array_size(j) : json_object_size(j);
    if (*len + n > *cap) {
        size_t c = *cap;
        while (c < *len + n)
            c *= 2;
        json_t **s = realloc(*st, c * sizeof **st);
        if (!s)
            return false;
        *st = s;
        *cap = c;
    }
    if (json_is_array(j)) {
        for (size_t i = 0; i < n; i++)
            (*st)[(*len)++] = json_incref(json_array_get(j, i));
    } else {
        for (void *it = json_object_iter(j); it;
             it = json_object_iter_next(j, it))
            (*st)[(*len)++] = json_incref(json_object_iter_value(it));
    }
    return true;
}

/* Read as jansson's thread-safe refcounts are written (atomically). */
static size_t refcount(json_t *j)
{
    return __atomic_load_n(&j->refcount, __ATOMIC_ACQUIRE);
}

void pact__json_release(json_t *j)
{
    if (!j || !is_container(j) || refcount(j) != 1) {
        json_decref(j); /* a scalar, or still shared: nothing deep goes */
        return;
    }
    size_t cap = 64, len = 0;
    json_t **st = malloc(cap * sizeof *st);
    if (!st) {
        json_decref(j); /* out of memory: jansson's recursion it is */
        return;
    }
    st[len++] = j;
    while (len) {
        json_t *n = st[--len];
        /* the last holder of a container: take its children first */
        if (is_container(n) && refcount(n) == 1 &&
            !push_children(n, &st, &len, &cap)) {
            json_decref(n);
            continue;
        }
        json_decref(n);
    }
    free(st);
}
