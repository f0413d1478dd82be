/* Private to TLS: tls.c (contexts, pact_tls_start and its record, the
 * public calls) and tls_io.c (a stream's TLS connection: the handshake,
 * reading and writing through OpenSSL), and the hooks that stream.c,
 * stream_file.c, tcp.c and connect.c call on a stream that has one.
 *
 * Why memory buffers and not libevent's bufferevent_openssl, nor an SSL
 * on the socket: the stream keeps its own socket I/O, so a TLS stream
 * costs the same system calls as a plain one (one recv per readable
 * event, one send per write when nothing is queued) and keeps its
 * back-pressure, its timeouts, its events and its pending-operation
 * record, all written once in stream.c. OpenSSL only turns bytes into
 * records and back: ciphertext read from the socket is handed to it in a
 * memory BIO, and the records it makes land in an evbuffer (a BIO of our
 * own) that the stream sends as it sends its own output. A bufferevent
 * would bring a second set of buffers, watermarks and callbacks beside
 * the stream's, and five system calls per echo instead of two. */
#ifndef PACT_TLS_INTERNAL_H
#define PACT_TLS_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "tls_internal.h is layer 5 (services): a lower layer must not include it"
#endif

#include <sys/types.h>
#include <sys/uio.h>

#include "pact/tls.h"
#include "tcp_internal.h"

/* A context: OpenSSL's, and how its handshakes go. */
struct pact_tls_ctx {
    struct ssl_ctx_st *ssl; /* SSL_CTX */
    int refs;               /* atomic: loops of several threads share it */
    bool server;
    bool verify; /* a client verifies its peer */
    uint64_t hs_timeout_ms;
};

/* Take / drop a reference. */
pact_tls_ctx *pact__tls_ctx_ref(pact_tls_ctx *ctx);
void pact__tls_ctx_unref(pact_tls_ctx *ctx);

/* Told once when @p s's handshake ends: @p err NULL (done: the stream
 * speaks TLS) or the failure (borrowed; @p s is destroyed with it).
 * Called from inside the stream's callbacks, never inside
 * pact__tls_attach. */
typedef void (*pact__tls_done_fn)(void *arg, pact_stream *s, pact_error *err);

/* Give @p s a TLS connection of @p ctx's side and start its handshake
 * (on a later turn of the loop); @p servername a client's (may be NULL when
 * the context does not verify). Bytes in @p s's input are taken as the
 * handshake's. @return 0, PACT_ENOMEM, PACT_EINVAL (nothing changed). */
int pact__tls_attach(pact_stream *s, pact_tls_ctx *ctx, const char *servername,
                     pact__tls_done_fn done, void *arg);
/* @p s's handshake is under way. */
bool pact__tls_handshaking(const pact_stream *s);
/* The handshake's end is not told any more (its owner is gone). */
void pact__tls_forget(pact_stream *s);

/* stream.c's hooks, on a stream with TLS */
/* A readable event: recv, decrypt, deliver (the handshake first). */
void pact__tls_read(pact_stream *s);
/* Plaintext decrypted and not yet delivered (reading stopped): a readable
 * event is owed when the stream wants input again. */
bool pact__tls_more(const pact_stream *s);
/* Encrypt what of @p iov the connection takes now (nothing while records
 * made before are still unsent, nor during the handshake) and send it.
 * @return plaintext bytes taken (0: none now), or a negative error. */
ssize_t pact__tls_sendv(pact_stream *s, const struct iovec *iov, size_t n);
/* Send the records made and not yet sent. @return 1 when none is left,
 * 0 when the socket is full, or a negative error. */
int pact__tls_flush(pact_stream *s);
/* Records are waiting to be sent. */
bool pact__tls_pending(const pact_stream *s);
/* The end of @p s's side: close_notify made once, then sent. @return 1
 * when it is sent (the TCP end may follow), 0 when it waits for the
 * socket, or a negative error. */
int pact__tls_shut(pact_stream *s);
/* @p s is destroyed with @p why (borrowed; NULL: closed): a handshake
 * under way fails with it. */
void pact__tls_dead(pact_stream *s, pact_error *why);
/* Free @p s's TLS connection. */
void pact__tls_free(pact_stream *s);

#endif
