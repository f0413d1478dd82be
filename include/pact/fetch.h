/** @file
 * Layer 5: an HTTP/1.1 client on pact's TCP streams, as the Fetch API of
 * Node and the browsers: pact_fetch(loop, url, opts) is a promise of a
 * response (await it in a task or a PACT_ASYNC function), and
 * pact_fetch_cb its error-first callback twin. The response comes whole:
 * status, headers (case-insensitive lookup, iteration), and the body as
 * bytes, text or JSON (jansson), bounded by opts.max_body.
 *
 * The client follows redirects (301, 302, 303, 307, 308, rewriting the
 * method as the Fetch standard does), keeps connections alive and reuses
 * them per origin (scheme, host, port) with an idle timeout, and bounds the
 * connections per origin (the fetches beyond wait in order). Names are
 * resolved as pact_tcp_connect does (getaddrinfo on the pool's blocking
 * lane). Every pending fetch is one pending-operation record (pact/op.h):
 * its abort token, the ambient scope's token (a group, a deadline),
 * pact_loop_close_all and opts.timeout_ms end it, and its callback runs
 * exactly once.
 *
 * https:// goes over TLS (pact/tls.h): the server's certificate is
 * verified against the system's CA store (plus opts.ca_file) and must name
 * the URL's host. Every call is made on the loop's thread.
 * doc/fetch.md is the guide. */
#ifndef PACT_FETCH_H
#define PACT_FETCH_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/fetch.h is layer 5 (services): a lower layer must not include it"
#endif

#include <stddef.h>
#include <stdint.h>

#include "pact/abort.h"
#include "pact/common.h"
#include "pact/error.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/** A response (opaque, reference-counted): status, headers and the whole
 *  body. */
typedef struct pact_fetch_res pact_fetch_res;

/** One request header: both strings borrowed for the call that takes them
 *  (copied). */
typedef struct pact_fetch_header {
    const char *name;  /**< a token ("Accept") */
    const char *value; /**< no CR, LF or NUL */
} pact_fetch_header;

/** What a fetch does with a redirect. */
typedef enum pact_fetch_redirect {
    PACT_FETCH_FOLLOW = 0, /**< follow it (up to max_redirects) */
    PACT_FETCH_MANUAL,     /**< hand the 3xx response back as it is */
} pact_fetch_redirect;

/** Progress of a response's body: @p received bytes so far, of @p total
 *  (the Content-Length, or -1 when unknown). Called on the loop's thread as
 *  bytes arrive; it may abort the fetch's token. */
typedef void (*pact_fetch_progress_fn)(size_t received, int64_t total,
                                       void *ud);

/** A fetch's options; zero-initialise and set what you need (NULL: all
 *  defaults). Read during the call only: strings, headers and the body are
 *  copied. */
typedef struct pact_fetch_opts {
    /** The method (a token; NULL: "GET"). GET, HEAD, POST, PUT, PATCH,
     *  DELETE and OPTIONS are upper-cased, as the Fetch standard does. */
    const char *method;
    /** Request headers (copied), @p nheaders of them. Host,
     *  Content-Length, Transfer-Encoding and Connection are the client's
     *  own: giving one is PACT_EINVAL. Without them the client sends
     *  "Accept: * / *" and "User-Agent: pact". */
    const pact_fetch_header *headers;
    /** How many entries @p headers has. */
    size_t nheaders;
    /** The body's bytes (copied; may be NULL with @p body_len 0). A body
     *  with GET or HEAD is PACT_EINVAL, as in Node. */
    const void *body;
    /** The body's length in bytes. */
    size_t body_len;
    /** A JSON body instead (borrowed; serialised compactly), sent with
     *  "Content-Type: application/json" unless a header sets it. With
     *  @p body too: PACT_EINVAL. */
    const struct json_t *json;
    /** The whole fetch (queueing, connects, redirects, the body) must end
     *  within this many milliseconds, else it fails with PACT_ETIMEDOUT
     *  (0: no limit). */
    uint64_t timeout_ms;
    /** Borrowed; may be NULL. Aborting it ends the fetch with
     *  PACT_ECANCELED caused by the reason, whatever it is doing. NULL:
     *  the ambient scope's token (a task's, a group's), if any. */
    pact_abort *abort;
    /** Follow redirects (the default) or hand them back. */
    pact_fetch_redirect redirect;
    /** The most redirects followed (0: 20, as the Fetch standard); one
     *  more fails with PACT_ELOOP. */
    unsigned max_redirects;
    /** The most bytes of a body (0: 64 MiB); a larger one fails with
     *  PACT_EMSGSIZE (known from Content-Length: before it is read). */
    size_t max_body;
    /** Called as the body arrives (NULL: not). */
    pact_fetch_progress_fn progress;
    /** The progress callback's data. */
    void *progress_ud;
    /** https://: a PEM file of CA certificates to trust besides the
     *  system's store (NULL: the system's only); copied, and loaded once
     *  per loop (the pool keeps the context). It applies to every https://
     *  hop of the fetch, redirects included. Connections are pooled per
     *  setting: one verified with a CA file never serves a fetch without
     *  it. */
    const char *ca_file;
    /** https://: do not verify the server's certificate nor its name at
     *  all. FOR TESTS ONLY: anyone in the middle can read and change
     *  everything. */
    bool insecure;
} pact_fetch_opts;

/**
 * A fetch's callback: @p res (borrowed for the call: pact_fetch_res_ref
 * to keep it) on success, which is any HTTP status (a 404 is a response,
 * not an error, as in Node); or NULL and @p err (borrowed): PACT_EINVAL (a
 * Location that is not a URL), PACT_ECONNREFUSED and the other connect errors,
 * PACT_ENOENT (the name does not resolve), PACT_ETIMEDOUT (opts.timeout_ms),
 * PACT_ECANCELED (the abort token, its cause the reason; pact_loop_close_all),
 * PACT_ELOOP (too many redirects), PACT_EMSGSIZE (over max_body), PACT_EPROTO
 * (a response that is not HTTP/1.x; for https://, a certificate that does not
 * verify or a server that does not speak TLS, with OpenSSL's reason in the
 * message), PACT_ECONNRESET (the server closed the connection before the
 * response's end, or during the TLS handshake).
 */
typedef void (*pact_fetch_res_cb)(pact_error *err, pact_fetch_res *res,
                                  void *ud);

/**
 * Fetch @p url (absolute: "http[s]://host[:port][/path][?query]"; a fragment
 * is dropped) and call @p cb once, on a later tick, with the response or
 * an error (see pact_fetch_res_cb). A GET or HEAD that finds a kept-alive
 * connection closed by the server before any byte of the answer is sent
 * again once on a new connection.
 * @param loop the loop (its thread runs the fetch and @p cb).
 * @param url the URL (copied).
 * @param opts may be NULL (the defaults).
 * @param cb, ud the callback and its data (the caller's).
 * @return 0; PACT_EINVAL (NULL @p loop, @p url or @p cb; a URL that is not
 *   an absolute http(s) URL, a method that is not a token, a bad header, a
 *   body with GET or HEAD, body and json both); for https://, PACT_ENOENT
 *   (opts.ca_file missing) or PACT_EPROTO (not PEM); PACT_ENOMEM;
 *   PACT_ETHREAD. On error @p cb is never called.
 */
PACT_API int pact_fetch_cb(pact_loop *loop, const char *url,
                           const pact_fetch_opts *opts, pact_fetch_res_cb cb,
                           void *ud);

/**
 * The promise of a fetch: fulfils with the response as a PACT_OWNED value
 * (read it with pact_fetch_res_of), or rejects as pact_fetch_cb's callback
 * would fail, and with pact_fetch_cb's synchronous errors. Await it in a
 * task (PACT_AWAIT) or a PACT_ASYNC function.
 * @return a new reference; NULL only for misuse (NULL @p loop, off the
 *   loop's thread).
 */
PACT_API pact_promise *pact_fetch(pact_loop *loop, const char *url,
                                  const pact_fetch_opts *opts);

/**
 * The essay's fetch(url).then(res => res.json()) in one call: fulfils
 * with the body parsed as JSON (PACT_JSON), whatever the status; rejects
 * as pact_fetch, or with PACT_EINVAL when the body is not JSON.
 * @return a new reference; NULL only for misuse.
 */
PACT_API pact_promise *pact_fetch_json(pact_loop *loop, const char *url,
                                       const pact_fetch_opts *opts);

/* ---- the response -------------------------------------------------------- */

/** @return the response a pact_fetch promise fulfilled with (borrowed from
 *  @p v: alive while the value is), or NULL when @p v holds none. */
PACT_API pact_fetch_res *pact_fetch_res_of(const pact_value *v);
/** Take a reference. @return @p res (NULL-safe). */
PACT_API pact_fetch_res *pact_fetch_res_ref(pact_fetch_res *res);
/** Drop a reference; at zero the response is freed. NULL-safe. */
PACT_API void pact_fetch_res_unref(pact_fetch_res *res);

/** @return the status (200), 0 for NULL. */
PACT_API int pact_fetch_res_status(const pact_fetch_res *res);
/** @return the reason phrase ("OK"; "" when the server sent none),
 *  borrowed. */
PACT_API const char *pact_fetch_res_reason(const pact_fetch_res *res);
/** @return whether the status is 200 to 299 (Response.ok). */
PACT_API bool pact_fetch_res_ok(const pact_fetch_res *res);
/** @return the URL the response came from, after redirects (borrowed). */
PACT_API const char *pact_fetch_res_url(const pact_fetch_res *res);
/** @return how many redirects were followed to get it. */
PACT_API unsigned pact_fetch_res_redirects(const pact_fetch_res *res);
/** @return the value of header @p name (case-insensitive; the first of
 *  that name), borrowed, or NULL. */
PACT_API const char *pact_fetch_res_header(const pact_fetch_res *res,
                                           const char *name);
/** @return how many header lines the response has. */
PACT_API size_t pact_fetch_res_header_count(const pact_fetch_res *res);
/** Header line @p i's @p name and @p value (borrowed), in the order they
 *  came. @return 0, PACT_EINVAL (NULL, @p i out of range). */
PACT_API int pact_fetch_res_header_at(const pact_fetch_res *res, size_t i,
                                      const char **name, const char **value);
/** @return the body's bytes (borrowed, a NUL byte after them; "" for
 *  none), @p len (may be NULL) their count. */
PACT_API const void *pact_fetch_res_body(const pact_fetch_res *res,
                                         size_t *len);
/** @return the body as a C string (borrowed; it ends at the first NUL
 *  byte, if it holds one). */
PACT_API const char *pact_fetch_res_text(const pact_fetch_res *res);
/**
 * Parse the body as JSON (Response.json()).
 * @param res the response.
 * @param out receives a new reference (json_decref), or NULL on error.
 * @return NULL, or a new error (pact_error_unref): PACT_EINVAL saying
 *   where the text stops being JSON, or PACT_ENOMEM.
 */
PACT_API pact_error *pact_fetch_res_json(const pact_fetch_res *res,
                                         struct json_t **out);
/** A pact_then handler: res => res.json(). @p v a pact_fetch fulfilment;
 *  @return the body as a PACT_JSON value, or an error value (rejects the
 *  derived promise) as pact_fetch_res_json's. @p ud is unused. */
PACT_API pact_value pact_fetch_res_to_json(const pact_value *v, void *ud);

/* ---- the connection pool ------------------------------------------------- */

/** The loop's connection pool's settings; zero-initialise (0: default). */
typedef struct pact_fetch_pool_opts {
    /** The most connections to one origin at once, open or being made
     *  (0: 64); fetches beyond it wait, in order, for one. */
    size_t max_per_origin;
    /** A kept-alive connection with no fetch for this long is closed
     *  (0: 4000 ms, as Node's). */
    uint64_t idle_timeout_ms;
} pact_fetch_pool_opts;

/**
 * Set @p loop's pool's settings for the fetches and connections from now
 * on (the connections open stay).
 * @return 0, PACT_EINVAL, PACT_ENOMEM, PACT_ETHREAD.
 */
PACT_API int pact_fetch_pool_set(pact_loop *loop,
                                 const pact_fetch_pool_opts *opts);
/**
 * Close @p loop's idle kept-alive connections now. Idle connections never
 * keep the loop alive, and pact_loop_free closes them too; this is for a
 * program that wants them gone sooner.
 * @return how many were closed.
 */
PACT_API size_t pact_fetch_pool_close_idle(pact_loop *loop);
/** @return the idle kept-alive connections of @p loop's pool. */
PACT_API size_t pact_fetch_pool_idle(pact_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
