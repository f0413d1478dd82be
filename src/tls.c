/* TLS (pact/tls.h): the contexts (OpenSSL's SSL_CTX with pact's defaults),
 * and pact_tls_start, a handshake on a stream the program holds, as a
 * pending-operation record: its callback runs once, on a later tick, with
 * the handshake's outcome, or with the cancellation (which destroys the
 * stream: half a handshake is of no use). tls_io.c runs the connection. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "promise_internal.h"
#include "tls_internal.h"

#define DEFAULT_HS_TIMEOUT_MS 120000

/* ---- contexts ------------------------------------------------------------ */

pact_tls_ctx *pact__tls_ctx_ref(pact_tls_ctx *ctx)
{
    if (ctx)
        __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
    return ctx;
}

void pact__tls_ctx_unref(pact_tls_ctx *ctx)
{
    if (!ctx || __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL))
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

void pact_tls_ctx_free(pact_tls_ctx *ctx)
{
    pact__tls_ctx_unref(ctx);
}

/* The error of a context's step @p what on @p file: PACT_ENOENT when the
 * file is not there, else PACT_EPROTO with OpenSSL's reason. */
static void ctx_error(pact_error **err, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e && ERR_reason_error_string(e)
                          ? ERR_reason_error_string(e)
                          : "OpenSSL error";
    ERR_clear_error();
    if (!err)
        return;
    if (file && access(file, R_OK) < 0)
        *err = PACT_ERROR(pact__sys_err(), "%s %s: %s", what, file,
                          pact_strerror(pact__sys_err()));
    else
        *err =
            PACT_ERROR(PACT_EPROTO, "%s %s: %s", what, file ? file : "", why);
    if (!*err)
        *err = pact__enomem();
}

static pact_tls_ctx *ctx_new(bool server, const pact_tls_opts *o,
                             pact_error **err)
{
    pact_tls_ctx *ctx = calloc(1, sizeof *ctx);
    ERR_clear_error();
    if (ctx)
        ctx->ssl =
            SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx || !ctx->ssl) {
        free(ctx);
        if (err)
            *err = pact__enomem();
        return NULL;
    }
    ctx->refs = 1;
    ctx->server = server;
    ctx->hs_timeout_ms = o && o->handshake_timeout_ms ? o->handshake_timeout_ms
                                                      : DEFAULT_HS_TIMEOUT_MS;
    SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION);
    /* renegotiation would let a read need a write and back: off */
    SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_RENEGOTIATION);
    /* the buffers of an idle connection are given back */
    SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

pact_tls_ctx *pact_tls_client_ctx_new(const pact_tls_opts *opts,
                                      pact_error **err)
{
    if (err)
        *err = NULL;
    pact_tls_ctx *ctx = ctx_new(false, opts, err);
    if (!ctx)
        return NULL;
    ctx->verify = !(opts && opts->insecure_no_verify);
    SSL_CTX_set_verify(ctx->ssl,
                       ctx->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (ctx->verify && !(opts && opts->no_system_ca) &&
        !SSL_CTX_set_default_verify_paths(ctx->ssl)) {
        ctx_error(err, "the system's CA store", NULL);
        pact__tls_ctx_unref(ctx);
        return NULL;
    }
    if (opts && opts->ca_file &&
        !SSL_CTX_load_verify_locations(ctx->ssl, opts->ca_file, NULL)) {
        ctx_error(err, "CA file", opts->ca_file);
        pact__tls_ctx_unref(ctx);
        return NULL;
    }
    ERR_clear_error();
    return ctx;
}

pact_tls_ctx *pact_tls_server_ctx_new(const char *cert_file,
                                      const char *key_file,
                                      const pact_tls_opts *opts,
                                      pact_error **err)
{
    if (err)
        *err = NULL;
    if (!cert_file || !key_file) {
        if (err)
            *err = PACT_ERROR(PACT_EINVAL, "pact_tls_server_ctx_new: a "
                                           "certificate and a key are needed");
        return NULL;
    }
    pact_tls_ctx *ctx = ctx_new(true, opts, err);
    if (!ctx)
        return NULL;
    /* no tickets: no client here resumes, and a ticket sent after the
     * handshake would meet a client that closed already */
    SSL_CTX_set_num_tickets(ctx->ssl, 0);
    const char *what = "certificate", *file = cert_file;
    bool ok = SSL_CTX_use_certificate_chain_file(ctx->ssl, cert_file) == 1;
    if (ok) {
        what = "private key";
        file = key_file;
        ok = SSL_CTX_use_PrivateKey_file(ctx->ssl, key_file,
                                         SSL_FILETYPE_PEM) == 1;
    }
    if (ok) {
        what = "private key (does it match the certificate?)";
        ok = SSL_CTX_check_private_key(ctx->ssl) == 1;
    }
    if (!ok) {
        ctx_error(err, what, file);
        pact__tls_ctx_unref(ctx);
        return NULL;
    }
    ERR_clear_error();
    return ctx;
}

/* ---- pact_tls_start ------------------------------------------------------ */

struct start {
    struct pact__op op;
    struct due due;
    pact_stream *s; /* while the handshake runs */
    pact_cb cb;
    void *ud;
    pact_fn ud_drop; /* a twin's deferred */
    pact_error *err;
};

static void start_run(struct due *d)
{
    struct start *st = pact__list_entry(d, struct start, due);
    st->cb(st->err, st->ud);
    pact_error_unref(st->err);
    free(st);
}

static void start_drop(struct due *d)
{
    struct start *st = pact__list_entry(d, struct start, due);
    if (st->ud_drop)
        st->ud_drop(st->ud);
    pact_error_unref(st->err);
    free(st);
}

/* tls_io.c: the handshake is over */
static void started(void *arg, pact_stream *s, pact_error *err)
{
    (void)s;
    struct start *st = arg;
    st->s = NULL;
    pact_error *e;
    if (!pact__op_end(&st->op, &e))
        return; /* cancelled: the core calls back */
    pact_error_unref(e);
    st->err = err ? pact_error_ref(err) : NULL;
    pact__tcp_due(pact__tcp_svc(st->op.loop), &st->due);
}

static bool start_stop(struct pact__op *op)
{
    struct start *st = pact__list_entry(op, struct start, op);
    if (st->s) {
        pact__tls_forget(st->s);
        pact__stream_kill(st->s, pact_error_ref(op->err));
        st->s = NULL;
    }
    return true;
}

static void start_fail(struct pact__op *op, pact_error *err)
{
    struct start *st = pact__list_entry(op, struct start, op);
    st->cb(err, st->ud);
    pact_error_unref(st->err);
    free(st);
}

static void start_op_drop(struct pact__op *op)
{
    start_drop(&pact__list_entry(op, struct start, op)->due);
}

static void start_describe(const struct pact__op *op, char *buf, size_t len)
{
    const struct start *st = pact__list_entry(op, const struct start, op);
    char call[160];
    pact__describe_call(call, sizeof call, (void (*)(void))st->cb, st->ud);
    snprintf(buf, len, "TLS handshake on fd %d, calls %s",
             st->s ? pact_stream_fd(st->s) : -1, call);
}

static const struct pact__op_type start_type = {
    .what = "tls handshake",
    .stop = start_stop,
    .fail = start_fail,
    .drop = start_op_drop,
    .describe = start_describe,
};

static int start(pact_stream *s, pact_tls_ctx *ctx,
                 const pact_tls_start_opts *o, pact_cb cb, void *ud,
                 pact_fn ud_drop, const char *fn)
{
    if (!ctx)
        return pact__misuse(fn, PACT_EINVAL, "ctx is NULL");
    if (s->tls)
        return PACT_EALREADY;
    if (s->flags & (S_DEAD | S_ENDING | S_CLOSING))
        return pact__misuse(fn, PACT_EINVAL, "the stream is closed or ending");
    if (s->rreq || pact__out_pending(s))
        return PACT_EBUSY;
    const char *name = o ? o->servername : NULL;
    if (!ctx->server && ctx->verify && !name)
        return pact__misuse(fn, PACT_EINVAL,
                            "a client verifies the server against a "
                            "servername: none given");
    struct start *st = calloc(1, sizeof *st);
    if (!st)
        return PACT_ENOMEM;
    st->cb = cb;
    st->ud = ud;
    st->ud_drop = ud_drop;
    st->due.run = start_run;
    st->due.drop = start_drop;
    pact__list_init(&st->due.node);
    int rc = pact__op_start(s->loop, &st->op, &start_type, o ? o->abort : NULL,
                            PACT__OP_REF);
    if (rc < 0) {
        free(st);
        return rc;
    }
    if (st->op.state != PACT__OP_PENDING) { /* aborted already */
        pact__stream_kill(s, pact_error_ref(st->op.err));
        return 0;
    }
    rc = pact__tls_attach(s, ctx, name, started, st);
    if (rc < 0) {
        pact_error *e;
        if (pact__op_end(&st->op, &e))
            pact_error_unref(e);
        free(st);
        return rc;
    }
    st->s = s;
    return 0;
}

int pact_tls_start(pact_stream *s, pact_tls_ctx *ctx,
                   const pact_tls_start_opts *opts, pact_cb cb, void *ud)
{
    static const char fn[] = "pact_tls_start";
    if (!s)
        return pact__misuse(fn, PACT_EINVAL, "s is NULL");
    PACT_CHECK_THREAD(s->loop, fn);
    PACT_CHECK_ARG(cb, fn);
    return start(s, ctx, opts, cb, ud, NULL, fn);
}

static void settle(pact_error *err, void *d)
{
    if (err)
        pact_deferred_reject(d, pact_error_ref(err));
    else
        pact_deferred_resolve(d, pact_nothing());
    pact_deferred_unref(d);
}

static void unref_deferred(void *d)
{
    pact_deferred_unref(d);
}

struct start_args {
    pact_stream *s;
    pact_tls_ctx *ctx;
    const pact_tls_start_opts *opts;
};

static int start_twin(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    const struct start_args *a = args;
    return start(a->s, a->ctx, a->opts, settle, d, unref_deferred,
                 "pact_tls_start_p");
}

pact_promise *pact_tls_start_p(pact_stream *s, pact_tls_ctx *ctx,
                               const pact_tls_start_opts *opts)
{
    if (!s)
        return NULL;
    struct start_args a = {s, ctx, opts};
    return pact__promisify(s->loop, start_twin, &a, "pact_tls_start_p");
}

bool pact_stream_is_tls(const pact_stream *s)
{
    return s && s->tls;
}
