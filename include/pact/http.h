/** @file
 * Layer 5: an HTTP/1.1 server on pact's TCP streams (pact/stream.h) and
 * http-parser, as Node's http.createServer. Requests are parsed strictly
 * (RFC 9112: no obs-fold, token header names, one well-formed
 * Content-Length, never with Transfer-Encoding, Host on HTTP/1.1, bounded
 * headers with a total deadline, a body limit), kept alive and pipelined
 * (responses go out in request order), and routed by method and path
 * (with `:name` parameters) to a handler in one of four styles: a callback
 * that responds later (pact_http_respond), a function returning a promise
 * of a response (which is how a PACT_ASYNC handler is started), or a body
 * run as a task. A response is one buffer or streamed in pieces with
 * back-pressure (pact_http_respond_start, pact_http_write, pact_http_end);
 * a request body is buffered whole, or, on a route so marked, read in
 * pieces with back-pressure (pact_http_route_stream_body,
 * pact_http_req_read).
 * A failing handler gives a 500. Each request carries an
 * abort token, ambient while its handler starts, aborted when the client
 * disconnects: what the handler started (timers, jobs, awaits) is
 * cancelled. Every request is a pending-operation record (pact/op.h).
 * Every call is made on the loop's thread. doc/http.md is the guide. */
#ifndef PACT_HTTP_H
#define PACT_HTTP_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/http.h is layer 5 (services): a lower layer must not include it"
#endif

#include <stddef.h>
#include <stdint.h>

#include "pact/abort.h"
#include "pact/common.h"
#include "pact/error.h"
#include "pact/promise.h"
#include "pact/stream.h"
#include "pact/tls.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/** A listening HTTP server (opaque); the program's until its close
 *  callback. */
typedef struct pact_http_server pact_http_server;
/** A request (opaque): borrowed by its handler until it has responded
 *  (callback style) or its promise or task has ended. */
typedef struct pact_http_req pact_http_req;
/** A response being built (opaque): the program's until handed to
 *  pact_http_respond (or returned from a handler), which takes it. */
typedef struct pact_http_res pact_http_res;

/** A server's options and limits; zero-initialise (0: the default). */
typedef struct pact_http_opts {
    /** The most bytes of a request's head, request line and headers
     *  (0: 16 KiB): past it, 431. */
    size_t max_header_bytes;
    /** The most header lines (0: 100): past it, 431. */
    size_t max_headers;
    /** The most bytes of a body (0: 1 MiB): past it, 413. */
    size_t max_body;
    /** Total time for a request's head, from its first byte (0: 10 s):
     *  past it, 408 and the connection is closed (slowloris). */
    uint64_t header_timeout_ms;
    /** Time for a body once its head is in (0: 60 s): past it, 408. */
    uint64_t body_timeout_ms;
    /** An idle keep-alive connection is closed after this long (0: 5 s). */
    uint64_t idle_timeout_ms;
    /** A connection whose response waits to be sent while the client takes
     *  none of it for this long is closed (0: 60 s): a client that stops
     *  reading cannot hold a connection and its buffered response forever
     *  (pact_stream_opts.write_timeout_ms). */
    uint64_t send_timeout_ms;
    /** Requests read ahead on one connection while earlier ones are
     *  unanswered (0: 16); past it the connection stops reading. */
    size_t max_pipeline;
    /** The most connections at once (0: no limit), as
     *  pact_tcp_listen_opts.max_connections. */
    size_t max_connections;
    /** A server TLS context (pact/tls.h): HTTPS, as
     *  pact_tcp_listen_opts.tls (NULL: plain HTTP). The server keeps a
     *  reference. */
    pact_tls_ctx *tls;
} pact_http_opts;

/**
 * Listen on @p host (numeric; NULL: all addresses) and @p port (0: one
 * the system picks, pact_http_server_port says which).
 * @param loop the loop whose thread runs the server and its handlers.
 * @param host, port where to listen.
 * @param opts may be NULL (the defaults); copied.
 * @param out receives the server.
 * @return 0; what pact_tcp_listen returns; PACT_EINVAL; PACT_ENOMEM.
 */
PACT_API int pact_http_listen(pact_loop *loop, const char *host, int port,
                              const pact_http_opts *opts,
                              pact_http_server **out);
/** @return the port @p srv listens on (0 for NULL). */
PACT_API int pact_http_server_port(const pact_http_server *srv);
/** @return the connections of @p srv open now. */
PACT_API size_t pact_http_server_connections(const pact_http_server *srv);
/**
 * Stop listening, close idle connections and the others once their
 * requests are answered; then @p cb(@p ud) (may be NULL) runs once and
 * @p srv is freed. Also the way to free a server after
 * pact_loop_close_all.
 * @return 0, PACT_EINVAL (NULL, or closing already), PACT_ETHREAD.
 */
PACT_API int pact_http_server_close(pact_http_server *srv, pact_fn cb,
                                    void *ud);
/**
 * A graceful shutdown with a deadline: as pact_http_server_close (stop
 * listening, close idle connections, let the requests in flight be
 * answered), and at @p deadline_ms the connections still open are
 * destroyed, which aborts their requests' tokens (their handlers'
 * operations end with PACT_ECANCELED). Then @p cb(err, @p ud) runs once,
 * on a later tick: NULL when every connection ended in time, PACT_ETIMEDOUT
 * when some were closed at the deadline; @p srv is freed before it.
 * @return 0; PACT_EINVAL (NULL, closing already); PACT_ETHREAD;
 *   PACT_ENOMEM (nothing changed).
 */
PACT_API int pact_http_server_shutdown(pact_http_server *srv,
                                       uint64_t deadline_ms, pact_cb cb,
                                       void *ud);

/* ---- handlers and routes ------------------------------------------------ */

/** A callback handler: respond once with pact_http_respond (now or later;
 *  also after the client has gone, when the response is dropped), or
 *  stream with pact_http_respond_start and end with pact_http_end. */
typedef void (*pact_http_handler)(pact_http_req *req, void *ud);
/** A promise handler: returns a promise (a new reference) that fulfils with
 *  a response (pact_http_res_value); a rejection, another value or NULL
 *  gives a 500. A PACT_ASYNC function's starter is one. */
typedef pact_promise *(*pact_http_promise_handler)(pact_http_req *req,
                                                   void *ud);
/** A task handler: runs in a task (it may PACT_AWAIT); stores the response
 *  in @p *res (taken) and returns NULL, or returns an error (stolen): 500. */
typedef pact_error *(*pact_http_task_handler)(pact_http_req *req,
                                              pact_http_res **res, void *ud);

/**
 * Route @p method (e.g. "GET"; NULL: any) and @p pattern (a path whose
 * segments are literal or `:name`, which matches one segment: a path
 * parameter; a last segment `*` matches the rest) to a callback handler.
 * Routes are tried in the order they were added; no match is a 404.
 * @return 0, PACT_EINVAL, PACT_ENOMEM.
 */
PACT_API int pact_http_route(pact_http_server *srv, const char *method,
                             const char *pattern, pact_http_handler fn,
                             void *ud);
/** As pact_http_route for a promise handler. */
PACT_API int pact_http_route_p(pact_http_server *srv, const char *method,
                               const char *pattern,
                               pact_http_promise_handler fn, void *ud);
/** As pact_http_route for a task handler (each request's task takes the
 *  request's abort token). */
PACT_API int pact_http_route_task(pact_http_server *srv, const char *method,
                                  const char *pattern,
                                  pact_http_task_handler fn, void *ud);

/**
 * Stream the request bodies of the routes added so far with @p method
 * (NULL: the routes added with NULL) and @p pattern (as given to the
 * route function): their handler starts as soon as a request's head is
 * in, and takes the body in pieces with pact_http_req_read (the body is
 * not buffered whole; pact_http_req_body gives "" and 0). See
 * pact_http_req_read for back-pressure, limits and a client that goes.
 * @return 0; PACT_ENOENT (no such route yet); PACT_EINVAL.
 */
PACT_API int pact_http_route_stream_body(pact_http_server *srv,
                                         const char *method,
                                         const char *pattern);

/* ---- the request -------------------------------------------------------- */

/** @return the method ("GET"), borrowed for the request's life. */
PACT_API const char *pact_http_req_method(const pact_http_req *req);
/** @return the path, the target before any "?" (not decoded). */
PACT_API const char *pact_http_req_path(const pact_http_req *req);
/** @return the query, after the "?" ("" without one; not decoded). */
PACT_API const char *pact_http_req_query(const pact_http_req *req);
/** @return the value of header @p name (case-insensitive; the first one),
 *  or NULL. */
PACT_API const char *pact_http_req_header(const pact_http_req *req,
                                          const char *name);
/** @return how many header lines @p req has. */
PACT_API size_t pact_http_req_header_count(const pact_http_req *req);
/** Header @p i's @p name and @p value (borrowed). @return 0, PACT_EINVAL. */
PACT_API int pact_http_req_header_at(const pact_http_req *req, size_t i,
                                     const char **name, const char **value);
/** @return the path parameter @p name (`:name` in the route), or NULL. */
PACT_API const char *pact_http_req_param(const pact_http_req *req,
                                         const char *name);
/** @return the body's bytes (borrowed; NUL after them), @p len its length. */
PACT_API const void *pact_http_req_body(const pact_http_req *req, size_t *len);
/** Parse the body as JSON. @return a new reference, or NULL (not JSON). */
PACT_API struct json_t *pact_http_req_json(const pact_http_req *req);
/**
 * Read the next piece of @p req's body: @p cb(err, v, @p ud) runs once, on
 * a later tick, with @p v a PACT_BYTES value (borrowed: copy what you
 * keep) holding every byte the server has of the body (chunked bodies
 * decoded), or with @p err (borrowed): PACT_EOF at the end (and again for
 * each read after it); PACT_EMSGSIZE past max_body (the server answers 413
 * if the handler has not answered, and the connection closes);
 * PACT_ETIMEDOUT past body_timeout_ms (408, likewise); PACT_ECONNRESET
 * when the client went mid-body (once; its token is aborted); PACT_EPIPE
 * once the response is complete before the body was read to its end (the
 * rest is read and dropped, up to max_body, so the next request on the
 * connection is read). On a route whose body is not streamed the buffered
 * body is one piece, then PACT_EOF. On a streamed route, the server reads
 * from the client only while it holds less than 64 KiB of the body not
 * read (pact_http_req_buffered): the client goes at the handler's pace.
 * `Expect: 100-continue` is answered when the head is in, not at the
 * first read.
 * @return 0, and @p cb will run; negative, and it will not: PACT_EBUSY (a
 *   read is pending: one at a time), PACT_EPIPE (@p req is retired),
 *   PACT_EINVAL (NULL), PACT_ETHREAD.
 */
PACT_API int pact_http_req_read(pact_http_req *req, pact_value_cb cb, void *ud);
/** The promise twin of pact_http_req_read: a new reference, fulfilled
 *  with the piece (PACT_BYTES), rejected with PACT_EOF at the end or with
 *  the error; NULL only for a NULL @p req. */
PACT_API pact_promise *pact_http_req_read_p(pact_http_req *req);
/** @return the bytes of @p req's body the server holds and the handler has
 *  not read: those parsed, and while the body is read, the connection's
 *  input not parsed yet (0 for NULL). */
PACT_API size_t pact_http_req_buffered(const pact_http_req *req);
/** @return the request's abort token (borrowed): aborted, with reason
 *  PACT_ECONNRESET, when the client disconnects before the response is
 *  written, or by pact_loop_close_all. */
PACT_API pact_abort *pact_http_req_abort(const pact_http_req *req);
/** @return the loop of @p req. */
PACT_API pact_loop *pact_http_req_loop(const pact_http_req *req);

/* ---- the response ------------------------------------------------------- */

/** @return a new response with @p status (200 to 599),
 *  or NULL (out of memory, a status out of range). */
PACT_API pact_http_res *pact_http_res_new(int status);
/** Free a response not handed over. NULL is harmless. */
PACT_API void pact_http_res_free(pact_http_res *res);
/** Add a header (both copied; Content-Length, Transfer-Encoding and
 *  Connection are the server's). @return 0, PACT_EINVAL (not a token, a
 *  value with CR, LF or NUL, a reserved name), PACT_ENOMEM. */
PACT_API int pact_http_res_header(pact_http_res *res, const char *name,
                                  const char *value);
/** Set the body (copied). @return 0, PACT_EINVAL, PACT_ENOMEM. */
PACT_API int pact_http_res_body(pact_http_res *res, const void *data,
                                size_t len);
/** Set the body to @p json (borrowed) compact, and Content-Type
 *  application/json. @return 0, PACT_EINVAL, PACT_ENOMEM. */
PACT_API int pact_http_res_json(pact_http_res *res, const struct json_t *json);
/** @return @p res as a PACT_OWNED value (freed with it), for a promise
 *  handler's resolution. */
PACT_API pact_value pact_http_res_value(pact_http_res *res);

/**
 * Answer @p req with @p res (taken, whatever the result). Once per
 * request; after it @p req is not the handler's any more (callback style).
 * Responses are written in the order the requests came.
 * @return 0 (also when the client has gone: the response is dropped);
 *   PACT_EALREADY (answered already, whole or streamed: also after the
 *   request was written and retired, within the quarantine doc/http.md
 *   describes); PACT_EINVAL; PACT_ETHREAD.
 */
PACT_API int pact_http_respond(pact_http_req *req, pact_http_res *res);
/** pact_http_respond of a response made of @p status, a Content-Type
 *  (may be NULL) and a body (copied). @return as pact_http_respond, or
 *  PACT_ENOMEM. */
PACT_API int pact_http_reply(pact_http_req *req, int status,
                             const char *content_type, const void *body,
                             size_t len);
/** A response whose body is @p json (borrowed) as pact_http_res_json.
 *  @return a new response, or NULL. */
PACT_API pact_http_res *pact_http_res_new_json(int status,
                                               const struct json_t *json);

/* ---- a streamed response ------------------------------------------------ */

/**
 * Answer @p req with a response whose body is written in pieces, as Node's
 * res.writeHead then res.write and res.end: @p res (taken, whatever the
 * result) gives the status and headers, and its body, if set, is the first
 * piece. On HTTP/1.1 the body is sent chunked (Transfer-Encoding: chunked),
 * on HTTP/1.0 it ends with the connection; HEAD, 204 and 304 send no body
 * (the writes are accepted and dropped). The head goes out once every
 * earlier response on the connection has been written; pieces written
 * before then wait in the server (pact_http_write says 0 past 64 KiB).
 * The response is over with pact_http_end; in the callback style that is
 * when @p req stops being the handler's (not at this call). A promise or
 * task handler that settles with the response still open ends it (cuts
 * it, closing the connection, when it fails: a 500 cannot follow a head).
 * @return 0 (also when the client has gone: pact_http_write then says
 *   PACT_ECONNRESET); PACT_EALREADY (answered already, whole or streamed);
 *   PACT_EINVAL; PACT_ETHREAD.
 */
PACT_API int pact_http_respond_start(pact_http_req *req, pact_http_res *res);
/**
 * Write @p len bytes of @p data (copied) to @p req's streamed response;
 * then @p cb(err, @p ud) (may be NULL) once, on a later tick: NULL when the
 * kernel has taken them (so a handler that waits for each write goes at
 * its client's pace), PACT_ECONNRESET when the connection went first (the
 * request's token is aborted too). A write of 0 bytes sends nothing and
 * calls back in order.
 * @return 1 while the server holds less than 64 KiB of this response
 *   (pact_http_buffered), 0 at or past it (wait for this write's callback
 *   before writing more, as for a stream's `drain`), and @p cb will run;
 *   negative, and @p cb will not run: PACT_EINVAL (NULL, or not started
 *   with pact_http_respond_start), PACT_EPIPE (after pact_http_end, or the
 *   request was answered whole), PACT_ECONNRESET (the client has gone),
 *   PACT_ENOMEM, PACT_ETHREAD.
 */
PACT_API int pact_http_write(pact_http_req *req, const void *data, size_t len,
                             pact_cb cb, void *ud);
/** The promise twin of pact_http_write: a new reference, fulfilled (with
 *  nothing) when the kernel has taken the bytes, rejected with the error
 *  pact_http_write returns or calls back with; NULL only for a NULL
 *  @p req. */
PACT_API pact_promise *pact_http_write_p(pact_http_req *req, const void *data,
                                         size_t len);
/**
 * End @p req's streamed response (the last chunk), then @p cb(err, @p ud)
 * (may be NULL) once, on a later tick: NULL when all of the response is
 * with the kernel, PACT_ECONNRESET when the connection went first. In the
 * callback style @p req is not the handler's after it.
 * @return 0; PACT_EALREADY (ended already, or answered whole);
 *   PACT_EINVAL (NULL, or not started); PACT_ECONNRESET (the client has
 *   gone: the response is over all the same, @p cb will not run);
 *   PACT_ENOMEM (the connection is cut); PACT_ETHREAD.
 */
PACT_API int pact_http_end(pact_http_req *req, pact_cb cb, void *ud);
/** The promise twin of pact_http_end (a new reference; NULL only for a
 *  NULL @p req). */
PACT_API pact_promise *pact_http_end_p(pact_http_req *req);
/** @return the bytes of @p req's streamed response that the server holds:
 *  queued behind earlier responses, or in the connection's output buffer
 *  not yet taken by the kernel (0 for NULL). */
PACT_API size_t pact_http_buffered(const pact_http_req *req);

#ifdef __cplusplus
}
#endif
#endif
