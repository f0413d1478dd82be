/** @file
 * Layer 5: TCP and Unix-socket servers and clients, as Node's net. A server
 * listens on an IPv4 or IPv6 address, or a Unix socket path, and hands each
 * connection to its accept callback as a pact_stream (pact/stream.h); a
 * client connects by numeric address or by host name (resolved with
 * getaddrinfo on the offload pool's blocking lane, every address tried in
 * turn), with a timeout and an abort token.
 *
 * A listening server and a connect in progress are pending-operation
 * records (pact/op.h): an abort token, pact_loop_close_all and
 * pact_loop_free (PACT_EBUSY while one is open) treat them as everything
 * else. Descriptor exhaustion on accept (EMFILE, ENFILE) pauses accepting
 * for a back-off (logged once per episode) instead of spinning the loop.
 * Every call is made on the loop's thread. doc/tcp.md is the guide. */
#ifndef PACT_TCP_H
#define PACT_TCP_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/tcp.h is layer 5 (services): a lower layer must not include it"
#endif

#include <stdint.h>

#include "pact/abort.h"
#include "pact/common.h"
#include "pact/error.h"
#include "pact/stream.h"
#include "pact/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A listening server (opaque); the program's until its close callback. */
typedef struct pact_tcp_server pact_tcp_server;

/**
 * A server's accept callback: @p s is a new connection, the program's from
 * now on (set its events or start reading, and close or destroy it when
 * done). Called once per connection; when the server is cancelled (abort
 * token, pact_loop_close_all) it is called a last time with @p err
 * (borrowed) PACT_ECANCELED and @p s NULL, and the server has stopped
 * listening (pact_tcp_server_close still frees it).
 */
typedef void (*pact_tcp_accept_cb)(pact_error *err, pact_stream *s, void *ud);

/** Options of pact_tcp_listen and pact_unix_listen; zero-initialise. */
typedef struct pact_tcp_listen_opts {
    /** listen()'s backlog (0: 511, as Node). */
    int backlog;
    /** SO_REUSEPORT: several sockets (processes, threads) share the port
     *  and the kernel spreads connections among them. SO_REUSEADDR is
     *  always set. */
    bool reuseport;
    /** An IPv6 address accepts IPv6 only (IPV6_V6ONLY); by default "::"
     *  takes IPv4 too where the system allows. */
    bool ipv6_only;
    /** The most connections open at once (0: no limit); one accepted past
     *  it is closed at once, as Node's maxConnections. */
    size_t max_connections;
    /** Options of every accepted stream (copied; its abort is ignored);
     *  NULL: the defaults. */
    const pact_stream_opts *stream;
    /** Borrowed; may be NULL. Aborting stops the server (its accept
     *  callback's last call, PACT_ECANCELED caused by the reason). */
    pact_abort *abort;
    /** A server TLS context (pact/tls.h), or NULL: every connection
     *  makes its TLS handshake first and is handed to the accept callback
     *  once it is done; one whose handshake fails (or times out) is closed
     *  without a word to the program. The server keeps a reference. */
    pact_tls_ctx *tls;
} pact_tcp_listen_opts;

/**
 * Listen on @p host (a numeric IPv4 or IPv6 address; NULL: "::" where the
 * system has IPv6, else "0.0.0.0") and @p port (0: one the system picks,
 * see pact_tcp_server_port).
 * @param loop the loop.
 * @param host, port where to listen.
 * @param opts may be NULL.
 * @param cb, ud the accept callback and its data (the caller's).
 * @param out receives the server.
 * @return 0; PACT_EINVAL (a host that is not numeric, a port out of range,
 *   NULL cb or out); PACT_EADDRINUSE, PACT_EACCES, PACT_EADDRNOTAVAIL, or
 *   another socket error; PACT_ENOMEM; PACT_ETHREAD. Nothing is made then.
 */
PACT_API int pact_tcp_listen(pact_loop *loop, const char *host, int port,
                             const pact_tcp_listen_opts *opts,
                             pact_tcp_accept_cb cb, void *ud,
                             pact_tcp_server **out);
/** As pact_tcp_listen on a Unix stream socket at @p path (a file left by a
 *  previous run is an error: PACT_EADDRINUSE; the server unlinks its file
 *  when it closes). @return as pact_tcp_listen; PACT_ENAMETOOLONG. */
PACT_API int pact_unix_listen(pact_loop *loop, const char *path,
                              const pact_tcp_listen_opts *opts,
                              pact_tcp_accept_cb cb, void *ud,
                              pact_tcp_server **out);

/** @return the port @p srv listens on (0 for a Unix socket or NULL). */
PACT_API int pact_tcp_server_port(const pact_tcp_server *srv);
/** @return the connections @p srv accepted that are not closed yet. */
PACT_API size_t pact_tcp_server_connections(const pact_tcp_server *srv);

/**
 * Stop listening and free @p srv: @p cb(@p ud) (may be NULL) runs once, on
 * a later tick, after which @p srv is gone. Connections accepted already
 * stay open. The accept callback is not called again.
 * @return 0, PACT_EINVAL (NULL, or closed already), PACT_ETHREAD.
 */
PACT_API int pact_tcp_server_close(pact_tcp_server *srv, pact_fn cb, void *ud);

/**
 * Shut @p srv down gracefully, as a daemon does on SIGTERM: on the next tick
 * it accepts what the kernel's queue still holds (each to the accept
 * callback: nothing the kernel accepted is lost), stops listening, and
 * aborts pact_tcp_server_shutdown_token; then it waits for the connections
 * it accepted to close (the program closes each when its work is done).
 * Those still open after @p deadline_ms (0: no deadline) are destroyed
 * with PACT_ECANCELED (their pending operations fail with it). Then, after
 * their close events, @p srv is freed and @p cb(err, @p ud) (may be NULL)
 * runs once: @p err NULL when
 * every connection closed in time, else PACT_ETIMEDOUT saying how many were
 * closed at the deadline (or PACT_ECANCELED when pact_loop_close_all had
 * stopped the server first).
 * @return 0, PACT_EINVAL (NULL, or closed or shutting down already),
 *   PACT_ENOMEM, PACT_ETHREAD (then @p cb is never called).
 */
PACT_API int pact_tcp_server_shutdown(pact_tcp_server *srv,
                                      uint64_t deadline_ms, pact_cb cb,
                                      void *ud);

/**
 * A token aborted when @p srv's shutdown begins (reason: PACT_ECANCELED,
 * "the server is shutting down"). Give it as the abort token of the read
 * that waits for a connection's next request (pact_read_opts.abort): an
 * idle connection then ends at once, while one handling a request finishes
 * it and answers first.
 * @return the token, borrowed (valid while @p srv is; take a reference to
 *   keep it longer); NULL for NULL or out of memory.
 */
PACT_API pact_abort *pact_tcp_server_shutdown_token(pact_tcp_server *srv);

/**
 * Shut @p srv down (pact_tcp_server_shutdown with @p deadline_ms, @p cb and
 * @p ud) on the first SIGTERM or SIGINT; a second one closes the remaining
 * connections at once. The signal watchers do not keep the loop alive and
 * stop when @p srv is freed. One loop per process may watch signals.
 * @return 0, PACT_EINVAL, PACT_EALREADY (watching already), PACT_ENOMEM,
 *   PACT_ETHREAD, or what pact_signal_start returns.
 */
PACT_API int pact_tcp_server_shutdown_on_signals(pact_tcp_server *srv,
                                                 uint64_t deadline_ms,
                                                 pact_cb cb, void *ud);

/** A connect's callback: @p s the connected stream (the program's), or
 *  NULL with @p err (borrowed): the last address's error (ECONNREFUSED,
 *  ETIMEDOUT...), PACT_ENOENT (the name does not resolve), PACT_ECANCELED. */
typedef void (*pact_stream_cb)(pact_error *err, pact_stream *s, void *ud);

/** Options of a connect; zero-initialise. */
typedef struct pact_tcp_connect_opts {
    /** Give up after this long with PACT_ETIMEDOUT (0: the system's
     *  timeout); covers the name's resolution and every attempt. */
    uint64_t timeout_ms;
    /** Borrowed; may be NULL. Aborting cancels the connect
     *  (PACT_ECANCELED caused by the reason); the stream it makes does not
     *  take the token. */
    pact_abort *abort;
    /** The stream's options (copied; its abort is honoured from the
     *  connection on); NULL: the defaults. */
    const pact_stream_opts *stream;
    /** A client TLS context (pact/tls.h), or NULL: the connect makes the
     *  TLS handshake too and settles with the stream once it is done, or
     *  with its error (pact_tls_start's). timeout_ms and abort cover it. */
    pact_tls_ctx *tls;
    /** With tls: the name sent as SNI and verified in the server's
     *  certificate (NULL: the host connected to). Copied. */
    const char *servername;
} pact_tcp_connect_opts;

/**
 * Connect to @p host (a numeric address, or a name resolved with
 * getaddrinfo on the pool's blocking lane) port @p port, trying each
 * address in turn until one connects. @p cb is called once, on a later
 * tick.
 * @return 0; PACT_EINVAL (NULL loop, host or cb, a port out of range);
 *   PACT_ENOMEM; PACT_ETHREAD; or what pact_offload returns for a name.
 *   On error @p cb is never called.
 */
PACT_API int pact_tcp_connect(pact_loop *loop, const char *host, int port,
                              const pact_tcp_connect_opts *opts,
                              pact_stream_cb cb, void *ud);
/** As pact_tcp_connect to the Unix socket at @p path. */
PACT_API int pact_unix_connect(pact_loop *loop, const char *path,
                               const pact_tcp_connect_opts *opts,
                               pact_stream_cb cb, void *ud);
/** The promise twin of pact_tcp_connect: fulfils with the stream as a
 *  PACT_PTR value (the program's, as the callback's), or rejects.
 *  @return a new reference; NULL for misuse. */
PACT_API pact_promise *pact_tcp_connect_p(pact_loop *loop, const char *host,
                                          int port,
                                          const pact_tcp_connect_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
