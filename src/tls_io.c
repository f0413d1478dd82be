/* A stream's TLS connection (tls_internal.h has the design): OpenSSL reads
 * ciphertext from a memory BIO that the stream's recv fills, and writes its
 * records into an evbuffer (a BIO of our own, no copy out of OpenSSL) that
 * is sent as the stream sends its output. The handshake runs on the
 * stream's own events, under a timeout; the plaintext is handed to the
 * stream's usual delivery (events or read requests).
 *
 * Back-pressure: plaintext is encrypted only while the records made before
 * have all been sent, at most CHUNK bytes a round, so at most one round of
 * records waits beside the stream's output; and decrypting stops as soon as
 * the stream wants no more input (the rest stays in OpenSSL, `more`, and a
 * readable event is made when the stream wants input again). */
#include <event2/buffer.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls_internal.h"

/* plaintext encrypted per round (four full records) */
#define CHUNK 65536

struct pact__tls {
    SSL *ssl;
    BIO *rbio;             /* ciphertext read, for OpenSSL (the SSL's) */
    struct evbuffer *cout; /* records made, to send */
    struct event *tmo;     /* the handshake's timeout */
    bool tmo_on;
    bool hs;       /* the handshake is under way */
    bool more;     /* input left in OpenSSL: read it before the socket */
    bool notified; /* close_notify made */
    bool client;
    bool verify;
    pact__tls_done_fn done;
    void *arg;
};

/* ---- the BIO that OpenSSL writes its records into ------------------------ */

static BIO_METHOD *out_method;
static pthread_once_t out_once = PTHREAD_ONCE_INIT;

static int out_write(BIO *b, const char *data, int len)
{
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (evbuffer_add(BIO_get_data(b), data, (size_t)len) < 0)
        return -1;
    return len;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    if (cmd == BIO_CTRL_FLUSH)
        return 1; /* sent by the stream, on its own terms */
    if (cmd == BIO_CTRL_WPENDING)
        return (long)evbuffer_get_length(BIO_get_data(b));
    return 0;
}

static int out_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* made once per process and kept (OpenSSL has no per-loop place for it) */
static void make_out_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "pact evbuffer");
    if (m &&
        (!BIO_meth_set_write(m, out_write) || !BIO_meth_set_ctrl(m, out_ctrl) ||
         !BIO_meth_set_create(m, out_create))) {
        BIO_meth_free(m);
        m = NULL;
    }
    out_method = m;
}

/* ---- errors -------------------------------------------------------------- */

/* OpenSSL's reason for the failure of @p what: the certificate's
 * verification when that failed, else the error queue's last. */
static pact_error *tls_error(pact_stream *s, const char *what)
{
    struct pact__tls *t = s->tls;
    long vr = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_last_error();
    pact_error *err;
    if (t->verify && vr != X509_V_OK)
        err = PACT_ERROR(PACT_EPROTO, "%s: certificate verify failed: %s", what,
                         X509_verify_cert_error_string(vr));
    else if (e)
        err = PACT_ERROR(PACT_EPROTO, "%s: %s", what,
                         ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                                    : "OpenSSL error");
    else
        err = PACT_ERROR(PACT_EPROTO, "%s: protocol error", what);
    ERR_clear_error();
    return err ? err : pact__enomem();
}

/* ---- sending ------------------------------------------------------------- */

bool pact__tls_pending(const pact_stream *s)
{
    return evbuffer_get_length(s->tls->cout) > 0;
}

int pact__tls_flush(pact_stream *s)
{
    struct evbuffer *b = s->tls->cout;
    if (evbuffer_get_length(b) && s->fd < 0)
        return PACT_EPIPE;
    while (evbuffer_get_length(b)) {
        struct evbuffer_iovec v[16];
        int nv = evbuffer_peek(b, -1, NULL, v, 16);
        struct msghdr m = {.msg_iov = (struct iovec *)v,
                           .msg_iovlen = (size_t)(nv > 16 ? 16 : nv)};
        ssize_t n = sendmsg(s->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return pact__sys_err();
        }
        evbuffer_drain(b, (size_t)n);
        if (pact__stream_timeouts(s))
            s->last_wr = pact__now_ms();
    }
    return 1;
}

/* Encrypt and send what of @p p the connection takes now. */
static ssize_t send_one(pact_stream *s, const unsigned char *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        int rc = pact__tls_flush(s);
        if (rc <= 0) {
            if (rc < 0)
                return rc;
            break;
        }
        size_t k = len - done > CHUNK ? CHUNK : len - done;
        ERR_clear_error();
        int w = SSL_write(s->tls->ssl, p + done, (int)k);
        if (w <= 0) {
            ERR_clear_error();
            return PACT_EPROTO;
        }
        done += (size_t)w;
    }
    int rc = pact__tls_flush(s);
    return rc < 0 ? rc : (ssize_t)done;
}

ssize_t pact__tls_sendv(pact_stream *s, const struct iovec *iov, size_t n)
{
    struct pact__tls *t = s->tls;
    if (t->hs || t->notified)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        ssize_t k = send_one(s, iov[i].iov_base, iov[i].iov_len);
        if (k < 0)
            return k;
        total += (size_t)k;
        if ((size_t)k < iov[i].iov_len)
            break;
    }
    return (ssize_t)total;
}

int pact__tls_shut(pact_stream *s)
{
    struct pact__tls *t = s->tls;
    if (!t->notified) {
        t->notified = true;
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl); /* makes close_notify; the peer's is
                                       read as its end, not waited for */
        ERR_clear_error();
    }
    return pact__tls_flush(s);
}

/* ---- the handshake ------------------------------------------------------- */

static void handshake_over(pact_stream *s, pact_error *err)
{
    struct pact__tls *t = s->tls;
    t->hs = false;
    pact__stream_ev_off(s, t->tmo, &t->tmo_on);
    pact__tls_done_fn done = t->done;
    t->done = NULL;
    if (done)
        done(t->arg, s, err);
}

/* Send what the handshake made; when it is stuck on a full socket, the
 * writable event sends the rest. @return false when the stream died. */
static bool hs_send(pact_stream *s)
{
    int rc = pact__tls_flush(s);
    if (rc < 0) {
        pact__stream_kill(s, pact__sock_error(rc, "send"));
        return false;
    }
    if (rc == 0)
        pact__stream_ev_on(s, s->wev, &s->wr_on, NULL);
    return true;
}

/* One step of the handshake with what was read (@p eof: the peer closed).
 * @return true once it is done and the stream alive. */
static bool hs_step(pact_stream *s, bool eof)
{
    struct pact__tls *t = s->tls;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ &&
        e != SSL_ERROR_WANT_WRITE) {
        pact_error *err = tls_error(s, "TLS handshake");
        (void)pact__tls_flush(s); /* the alert, so the peer knows why */
        pact__stream_kill(s, err);
        return false;
    }
    if (!hs_send(s))
        return false;
    if (e != SSL_ERROR_NONE) {
        if (eof)
            pact__stream_kill(s, PACT_ERROR(PACT_ECONNRESET,
                                            "the peer closed the "
                                            "connection during the TLS "
                                            "handshake"));
        return false;
    }
    if (pact__out_pending(s)) /* written during the handshake */
        pact__stream_ev_on(s, s->wev, &s->wr_on, NULL);
    handshake_over(s, NULL);
    pact__stream_update(s);
    return !(s->flags & S_DEAD);
}

static void on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_stream *s = arg;
    s->tls->tmo_on = false; /* fired */
    pact__own_event_removed(s->loop);
    PACT__OWN_CALLBACK(
        s, pact__stream_kill(
               s, PACT_ERROR(PACT_ETIMEDOUT, "the TLS handshake timed out")));
}

/* ---- reading ------------------------------------------------------------- */

bool pact__tls_more(const pact_stream *s)
{
    return s->tls->more;
}

/* recv into @p buf and hand it to OpenSSL. @return 1 (read), 0 (nothing
 * now), 2 (the peer closed), or -1 (the stream died). */
static int take_input(pact_stream *s, unsigned char *buf)
{
    errno = 0;
    ssize_t n = recv(s->fd, buf, PACT__RBUF, 0);
    if (n == 0)
        return 2;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        pact__stream_kill(s, pact__sock_error(pact__sys_err(), "recv"));
        return -1;
    }
    if (pact__stream_timeouts(s))
        s->last_rd = pact__now_ms();
    if (BIO_write(s->tls->rbio, buf, (int)n) != (int)n) {
        pact__stream_kill(s, pact__enomem());
        return -1;
    }
    return 1;
}

/* Decrypt and deliver while the stream wants input. */
static void deliver(pact_stream *s, unsigned char *buf, bool eof)
{
    struct pact__tls *t = s->tls;
    while (!(s->flags & S_DEAD)) {
        if (!pact__stream_wants_read(s)) {
            t->more = SSL_pending(t->ssl) > 0 || BIO_pending(t->rbio) > 0;
            return;
        }
        ERR_clear_error();
        int r = SSL_read(t->ssl, buf, PACT__RBUF);
        if (r > 0) {
            pact__stream_got(s, buf, (size_t)r);
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (eof) /* closed without close_notify: an end all the same */
                pact__stream_eof(s);
            return;
        }
        if (e == SSL_ERROR_ZERO_RETURN) { /* the peer's close_notify */
            ERR_clear_error();
            pact__stream_eof(s);
            return;
        }
        pact__stream_kill(s, tls_error(s, "TLS read"));
        return;
    }
}

void pact__tls_read(pact_stream *s)
{
    struct pact__tls *t = s->tls;
    unsigned char *buf = s->svc->rbuf;
    int got = 0;
    if (!t->more) {
        got = take_input(s, buf);
        if (got <= 0)
            return;
    }
    t->more = false;
    if (t->hs && !hs_step(s, got == 2))
        return;
    deliver(s, buf, got == 2);
    /* reading can make records too (alerts, key updates) */
    if (!(s->flags & S_DEAD) && pact__tls_pending(s))
        (void)hs_send(s);
}

/* ---- its life ------------------------------------------------------------ */

bool pact__tls_handshaking(const pact_stream *s)
{
    return s->tls && s->tls->hs;
}

void pact__tls_forget(pact_stream *s)
{
    if (s->tls)
        s->tls->done = NULL;
}

void pact__tls_dead(pact_stream *s, pact_error *why)
{
    struct pact__tls *t = s->tls;
    t->more = false;
    evbuffer_drain(t->cout, evbuffer_get_length(t->cout));
    if (!t->hs) {
        pact__stream_ev_off(s, t->tmo, &t->tmo_on);
        return;
    }
    pact_error *e =
        why ? pact_error_ref(why)
            : PACT_ERROR(PACT_ECANCELED,
                         "the stream was closed during the TLS handshake");
    handshake_over(s, e ? e : pact__enomem());
    pact_error_unref(e);
}

void pact__tls_free(pact_stream *s)
{
    struct pact__tls *t = s->tls;
    pact__stream_ev_off(s, t->tmo, &t->tmo_on);
    event_free(t->tmo);
    SSL_free(t->ssl);
    evbuffer_free(t->cout);
    free(t);
    s->tls = NULL;
}

/* The client's name: SNI, and what the certificate must name. */
static int set_name(struct pact__tls *t, const char *name)
{
    unsigned char ip[16];
    bool is_ip =
        inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    if (!is_ip && !SSL_set_tlsext_host_name(t->ssl, name))
        return PACT_EINVAL;
    if (!t->verify)
        return 0;
    if (is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name)
                   ? 0
                   : PACT_EINVAL;
    return SSL_set1_host(t->ssl, name) ? 0 : PACT_EINVAL;
}

/* The stream's input read ahead: the handshake's first bytes. */
static int take_read_ahead(pact_stream *s, BIO *rbio)
{
    while (evbuffer_get_length(s->in)) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(s->in, -1, NULL, &v, 1) < 1)
            break;
        if (BIO_write(rbio, v.iov_base, (int)v.iov_len) != (int)v.iov_len)
            return PACT_ENOMEM;
        evbuffer_drain(s->in, v.iov_len);
    }
    pact__stream_in_taken(s);
    return 0;
}

int pact__tls_attach(pact_stream *s, pact_tls_ctx *ctx, const char *servername,
                     pact__tls_done_fn done, void *arg)
{
    pthread_once(&out_once, make_out_method);
    struct pact__tls *t = calloc(1, sizeof *t);
    if (!t || !out_method) {
        free(t);
        return PACT_ENOMEM;
    }
    t->client = !ctx->server;
    t->verify = ctx->verify;
    t->ssl = SSL_new(ctx->ssl);
    t->rbio = BIO_new(BIO_s_mem());
    BIO *w = BIO_new(out_method);
    t->cout = evbuffer_new();
    t->tmo = evtimer_new(s->loop->base, on_hs_timeout, s);
    int rc = t->ssl && t->rbio && w && t->cout && t->tmo ? 0 : PACT_ENOMEM;
    bool given = false; /* the BIOs are the SSL's */
    if (rc == 0) {
        BIO_set_mem_eof_return(t->rbio, -1); /* empty: retry, not EOF */
        BIO_set_data(w, t->cout);
        SSL_set_bio(t->ssl, t->rbio, w);
        given = true;
        if (ctx->server)
            SSL_set_accept_state(t->ssl);
        else
            SSL_set_connect_state(t->ssl);
        if (t->client && servername)
            rc = set_name(t, servername);
    }
    if (rc == 0)
        rc = take_read_ahead(s, t->rbio);
    if (rc < 0) {
        SSL_free(t->ssl); /* NULL is fine */
        if (!given) {
            BIO_free(t->rbio);
            BIO_free(w);
        }
        if (t->cout)
            evbuffer_free(t->cout);
        if (t->tmo)
            event_free(t->tmo);
        free(t);
        return rc;
    }
    t->hs = true;
    t->more = true; /* the first step on a readable event of its own */
    t->done = done;
    t->arg = arg;
    s->tls = t;
    uint64_t ms = ctx->hs_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    pact__stream_ev_on(s, t->tmo, &t->tmo_on, &tv);
    pact__stream_update(s);
    return 0;
}

const char *pact_tls_version(const pact_stream *s)
{
    if (!s || !s->tls || s->tls->hs || (s->flags & S_DEAD))
        return NULL;
    return SSL_get_version(s->tls->ssl);
}
