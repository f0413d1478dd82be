/** @file
 * Layer 5: TLS on pact's streams, through OpenSSL, as Node's tls. A context
 * (pact_tls_ctx) holds what every connection of one side shares: for a
 * client the certificates it trusts (the system's store, plus a CA file
 * if given), for a server its certificate and key. A stream becomes TLS by
 * a handshake: pact_tls_start on a connected stream (either side), or at
 * once through pact_tcp_connect_opts.tls and pact_tcp_listen_opts.tls
 * (pact/tcp.h), whose streams are TLS already when they are handed over.
 * After the handshake the stream API (pact/stream.h) works unchanged:
 * reads and writes carry the plaintext, with the same back-pressure and
 * timeouts; pact_stream_end sends TLS's close_notify and then the TCP end.
 *
 * OpenSSL runs over memory buffers, not over the socket: the stream keeps
 * its own socket I/O (one recv per readable event, writes straight to the
 * kernel when nothing is queued) and OpenSSL only encrypts and decrypts.
 * doc/tls.md is the guide. Every call is made on the loop's thread, except
 * the contexts', which may be shared by the loops of several threads. */
#ifndef PACT_TLS_H
#define PACT_TLS_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/tls.h is layer 5 (services): a lower layer must not include it"
#endif

#include <stdint.h>

#include "pact/abort.h"
#include "pact/common.h"
#include "pact/error.h"
#include "pact/promise.h"
#include "pact/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A TLS context, client or server (opaque): made by
 *  pact_tls_client_ctx_new or pact_tls_server_ctx_new, released by
 *  pact_tls_ctx_free. Streams, servers and connects that use it keep what
 *  they need, so it may be freed while they run. */
typedef struct pact_tls_ctx pact_tls_ctx;

/** A context's options; zero-initialise and set what you need. */
typedef struct pact_tls_opts {
    /** A PEM file of CA certificates to trust besides the system's store
     *  (a client's; NULL: the system's store only). */
    const char *ca_file;
    /** Trust only ca_file, not the system's store. */
    bool no_system_ca;
    /** Do not verify the peer at all: FOR TESTS ONLY (anyone in the
     *  middle can read and change everything). */
    bool insecure_no_verify;
    /** A handshake that has not finished after this long fails with
     *  PACT_ETIMEDOUT (0: 120 s, as Node's handshakeTimeout). */
    uint64_t handshake_timeout_ms;
} pact_tls_opts;

/**
 * Make a client context: peers are verified against the system's store of
 * CA certificates (and @p opts->ca_file), and their certificate must name
 * the host connected to (pact_tls_start_opts.servername). TLS 1.2 at
 * least.
 * @param opts may be NULL (the defaults).
 * @param err may be NULL; on failure receives a new reference to the error
 *   (PACT_ENOENT or PACT_EPROTO with OpenSSL's reason: a CA file missing or
 *   not PEM; PACT_ENOMEM).
 * @return a new context (release with pact_tls_ctx_free), or NULL.
 */
PACT_API pact_tls_ctx *pact_tls_client_ctx_new(const pact_tls_opts *opts,
                                               pact_error **err);

/**
 * Make a server context with the PEM certificate chain @p cert_file (the
 * server's certificate first) and its private key @p key_file. Clients are
 * not asked for certificates.
 * @param cert_file the PEM certificate chain.
 * @param key_file its PEM private key.
 * @param opts may be NULL; of it only handshake_timeout_ms applies.
 * @param err as pact_tls_client_ctx_new's (PACT_ENOENT, PACT_EPROTO: a
 *   file that is not PEM, a key that does not match the certificate).
 * @return a new context (release with pact_tls_ctx_free), or NULL.
 */
PACT_API pact_tls_ctx *pact_tls_server_ctx_new(const char *cert_file,
                                               const char *key_file,
                                               const pact_tls_opts *opts,
                                               pact_error **err);

/** Release the caller's reference to @p ctx (NULL: nothing); what uses it
 *  keeps its own until done. */
PACT_API void pact_tls_ctx_free(pact_tls_ctx *ctx);

/** Options of a handshake (pact_tls_start); NULL means none. */
typedef struct pact_tls_start_opts {
    /** A client's: the server's name, sent as SNI (unless an IP address)
     *  and checked against its certificate (a name, or an IP address
     *  against its IP entries). Required unless the context is
     *  insecure_no_verify. Copied. */
    const char *servername;
    /** Borrowed; may be NULL. Aborting cancels the handshake: the stream
     *  is destroyed (PACT_ECANCELED caused by the reason). */
    pact_abort *abort;
} pact_tls_start_opts;

/**
 * Start TLS on the connected stream @p s, as a client or a server as
 * @p ctx is (STARTTLS: bytes of the handshake already read ahead into the
 * stream's input are taken as the handshake's). @p cb(err, @p ud) is called
 * once, on a later tick: NULL once the handshake is done (reads and writes
 * are then in TLS), or the failure, after which @p s is destroyed with it
 * (its error and close events follow): PACT_EPROTO with OpenSSL's reason
 * (a certificate that does not verify, a peer that does not speak TLS),
 * PACT_ECONNRESET (the peer closed during the handshake), PACT_ETIMEDOUT,
 * PACT_ECANCELED (the abort token, pact_loop_close_all, the stream closed
 * or destroyed meanwhile). Writes made during the handshake are sent once
 * it is done. The handshake is a pending-operation record.
 * @param s the stream (the caller's, as before).
 * @param ctx a client or a server context (the stream keeps what it
 *   needs of it).
 * @param opts may be NULL (a client then needs an insecure context).
 * @param cb, ud the callback and its data.
 * @return 0; PACT_EINVAL (NULL @p s or @p ctx or @p cb, a client without
 *   servername, a stream closed or ending); PACT_EALREADY (TLS already);
 *   PACT_EBUSY (a read request pending or output not yet written);
 *   PACT_ENOMEM; PACT_ETHREAD. On error @p cb is never called.
 */
PACT_API int pact_tls_start(pact_stream *s, pact_tls_ctx *ctx,
                            const pact_tls_start_opts *opts, pact_cb cb,
                            void *ud);

/** The promise twin of pact_tls_start: fulfils with nothing once the
 *  handshake is done, or rejects as the callback would fail. @return a new
 *  reference; NULL for misuse (NULL @p s, off the loop's thread). */
PACT_API pact_promise *pact_tls_start_p(pact_stream *s, pact_tls_ctx *ctx,
                                        const pact_tls_start_opts *opts);

/** @return whether @p s speaks TLS (its handshake done or under way). */
PACT_API bool pact_stream_is_tls(const pact_stream *s);

/** @return the TLS version @p s negotiated ("TLSv1.3"...), a static
 *  string; NULL before its handshake is done or without TLS. */
PACT_API const char *pact_tls_version(const pact_stream *s);

#ifdef __cplusplus
}
#endif
#endif
