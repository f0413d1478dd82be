/** @file
 * The value a fulfilled promise owns, and the resolutions a handler hands
 * back. A pact_value is a small tagged union passed by value; who owns what
 * it points to is written beside each constructor. */
#ifndef PACT_VALUE_H
#define PACT_VALUE_H

#if defined(PACT__LAYER) && PACT__LAYER < 2
#error "pact/value.h is layer 2 (promise): a lower layer must not include it"
#endif

#include <stddef.h>
#include <stdint.h>

#include "pact/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;
/** A promise; see pact/promise.h. */
typedef struct pact_promise pact_promise;
/** The resolver of a pending promise; see pact/promise.h. */
typedef struct pact_deferred pact_deferred;
/** A list of settled promises: what the combinators fulfil with. */
typedef struct pact_list pact_list;

/**
 * A foreign "thenable": a future from another library that can report its
 * outcome to a resolver. pact calls @c then once, from a microtask, with a
 * resolver borrowed for the call (take a reference with pact_deferred_ref to
 * settle it later). The first settlement wins; later ones and a non-zero
 * return after a settlement are ignored; a negative return before one
 * rejects with that code. @c release (may be NULL) drops pact's hold on @p
 * obj once @c then has been called or the value is discarded.
 */
typedef struct pact_thenable_vt {
    /** Report @p obj's outcome to @p resolver (see above); 0 or a negative
     *  code. */
    int (*then)(void *obj, pact_deferred *resolver);
    /** Drop pact's hold on @p obj; may be NULL. */
    void (*release)(void *obj);
} pact_thenable_vt;

/** What a pact_value holds. */
typedef enum pact_kind {
    PACT_NOTHING = 0, /**< no value (undefined); the zero value */
    PACT_INT,         /**< u.i */
    PACT_DOUBLE,      /**< u.d */
    PACT_PTR,         /**< u.ptr, borrowed: its owner keeps it alive */
    PACT_OWNED,       /**< u.owned.ptr, freed by u.owned.free(ptr) */
    PACT_JSON,        /**< u.json: one jansson reference */
    PACT_BYTES,       /**< u.bytes: a malloc'd buffer, freed with free() */
    PACT_STRING,      /**< u.str: a malloc'd C string, freed with free() */
    PACT_LIST,        /**< u.list: one reference (the combinators' result) */
    /* Resolutions only: a handler or resolver may hand these over, but a
     * promise never fulfils with them. */
    PACT_PROMISE,  /**< u.promise, one reference: adopt its outcome */
    PACT_THENABLE, /**< u.thenable: adopt a foreign future's outcome */
    PACT_ERROR,    /**< u.error, one reference: reject with it */
} pact_kind;

/** A value or a resolution. Read the field that matches @c kind. */
typedef struct pact_value {
    pact_kind kind; /**< which member of @c u holds the value */
    /** The value: the member @c kind names. */
    union {
        int64_t i; /**< PACT_INT */
        double d;  /**< PACT_DOUBLE */
        void *ptr; /**< PACT_PTR (borrowed) */
        /** PACT_OWNED */
        struct {
            void *ptr;               /**< the owned object */
            void (*free)(void *ptr); /**< frees it; may be NULL */
        } owned;
        struct json_t *json; /**< PACT_JSON (one reference) */
        /** PACT_BYTES */
        struct {
            void *data; /**< malloc'd, freed with free() */
            size_t len; /**< bytes, not counting a trailing NUL */
        } bytes;
        char *str;             /**< PACT_STRING: malloc'd, NUL-terminated */
        pact_list *list;       /**< PACT_LIST (one reference) */
        pact_promise *promise; /**< PACT_PROMISE (one reference) */
        /** PACT_THENABLE */
        struct {
            void *obj;                  /**< the foreign future */
            const pact_thenable_vt *vt; /**< its functions */
        } thenable;
        pact_error *error; /**< PACT_ERROR (one reference) */
    } u;
} pact_value;

/* Constructors. Each returns a value that owns what the comment says; hand
 * it to a resolver or return it from a handler (which takes that ownership),
 * or drop it with pact_value_release. */

/** No value. */
static inline pact_value pact_nothing(void)
{
    pact_value v = {PACT_NOTHING, {0}};
    return v;
}
/** An integer. */
static inline pact_value pact_int(int64_t i)
{
    pact_value v = {PACT_INT, {0}};
    v.u.i = i;
    return v;
}
/** A double. */
static inline pact_value pact_double(double d)
{
    pact_value v = {PACT_DOUBLE, {0}};
    v.u.d = d;
    return v;
}
/** A borrowed pointer: pact never frees it. */
static inline pact_value pact_ptr(void *ptr)
{
    pact_value v = {PACT_PTR, {0}};
    v.u.ptr = ptr;
    return v;
}
/** Steals @p ptr: @p free_fn(ptr) runs when the last promise holding it is
 * freed (or the value is released). */
static inline pact_value pact_owned(void *ptr, void (*free_fn)(void *))
{
    pact_value v = {PACT_OWNED, {0}};
    v.u.owned.ptr = ptr;
    v.u.owned.free = free_fn;
    return v;
}
/** Steals one reference to @p json. NULL (what a failed json_pack or
 * json_loads returns) is refused: the value is a PACT_EINVAL error (as
 * pact_throw), so a post or resolution with it fails instead of sending a
 * JSON null; pass json_null() for null. */
PACT_API pact_value pact_json(struct json_t *json);
/** Steals @p data, a malloc'd buffer of @p len bytes (freed with free()). */
static inline pact_value pact_bytes(void *data, size_t len)
{
    pact_value v = {PACT_BYTES, {0}};
    v.u.bytes.data = data;
    v.u.bytes.len = len;
    return v;
}
/** A copy of @p len bytes at @p data, followed by a NUL byte (not counted in
 * len: a copy of text is a C string); PACT_ERROR(PACT_ENOMEM) if that fails.
 * pact_value_copy copies bytes this way too. */
PACT_API pact_value pact_bytes_copy(const void *data, size_t len);
/** Steals @p str, a malloc'd NUL-terminated string (freed with free()).
 * NULL is refused as pact_json's: the value is a PACT_EINVAL error (as
 * pact_throw). Read it back with pact_value_string. */
PACT_API pact_value pact_string(char *str);
/** A copy of the C string @p str (the caller keeps @p str): a PACT_STRING
 * value, PACT_ERROR(PACT_EINVAL) for NULL, PACT_ERROR(PACT_ENOMEM) if the
 * copy fails. pact_value_copy copies strings this way too. */
PACT_API pact_value pact_string_copy(const char *str);
/** A PACT_STRING made with printf's @p fmt and arguments, or an error value
 * as pact_string_copy's (PACT_EINVAL too for an encoding error). */
PACT_API pact_value pact_string_fmt(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/** Adopt @p p's outcome. Steals one reference to @p p. */
static inline pact_value pact_promise_v(pact_promise *p)
{
    pact_value v = {PACT_PROMISE, {0}};
    v.u.promise = p;
    return v;
}
/** Adopt a foreign future's outcome; @p vt must outlive the adoption. */
static inline pact_value pact_thenable(void *obj, const pact_thenable_vt *vt)
{
    pact_value v = {PACT_THENABLE, {0}};
    v.u.thenable.obj = obj;
    v.u.thenable.vt = vt;
    return v;
}
/** Reject with @p err. Steals one reference (NULL means out of memory: the
 * rejection is then with PACT_ENOMEM). */
static inline pact_value pact_throw(pact_error *err)
{
    pact_value v = {PACT_ERROR, {0}};
    v.u.error = err;
    return v;
}

/** Release what @p v owns (its destructor, JSON, bytes, string, list, promise
 * or error reference; a thenable's release) and set it to PACT_NOTHING.
 * NULL-safe. */
PACT_API void pact_value_release(pact_value *v);

/**
 * A value of your own from a borrowed one, e.g. to pass a handler's value on:
 * scalars and pointers as they are, a new reference for JSON, lists, promises
 * and errors, a copy of bytes and strings. A PACT_OWNED or PACT_THENABLE value
 * has one owner and cannot be copied: the result is then
 * pact_throw(PACT_EINVAL) (to pass an owned value down a chain, let it pass
 * through: a NULL handler).
 */
PACT_API pact_value pact_value_copy(const pact_value *v);

/** @return the string @p v holds (borrowed: valid while @p v, or the
 * promise whose value it is, lives) if it is a PACT_STRING, else NULL
 * (NULL-safe). */
PACT_API const char *pact_value_string(const pact_value *v);

/** @return the number of promises in @p list. */
PACT_API size_t pact_list_len(const pact_list *list);
/** @return the @p i-th promise of @p list (borrowed, settled: its value or
 * error is what the combinator collected), or NULL past the end. */
PACT_API pact_promise *pact_list_at(const pact_list *list, size_t i);

#ifdef __cplusplus
}
#endif
#endif
