/* A stream's requests (pact/stream.h): the read requests (some, a line,
 * exactly n bytes, up to a delimiter) served from the input buffer, the
 * writes with a callback (done once the kernel has taken their bytes), and
 * the promise twins of both. Each request is a pending-operation record:
 * an abort token or pact_loop_close_all cancels it, and a stream destroyed
 * under it fails it with the stream's error; its callback runs once, on a
 * later tick. */
#include <event2/buffer.h>

#include <stdlib.h>
#include <string.h>

#include "promise_internal.h"
#include "tcp_internal.h"

#define DEFAULT_MAX 65536

/* What the bytes' arrival reads (read_direct, read_done) is on the first
 * cache line, with the head of op: with a thousand streams a request is
 * cold when its bytes come, and each line it spreads over is a miss. */
struct read_req {
    _Alignas(64) int kind;
    bool at_once; /* a twin: settled at once */
    uint8_t dlen; /* of delim */
    size_t max;
    pact_stream_read_cb cb;
    union {
        void *ud;
        struct read_req *next_spare; /* in svc->spare */
    };
    struct pact__op op;
    /* the second line: the rest of what every request sets */
    pact_stream *s;  /* while pending */
    pact_fn ud_drop; /* a twin's deferred */
    size_t n;
    /* set when needed: a callback's outcome (a twin's is not kept), and
     * the delimiter */
    pact_error *err;
    pact_value v;
    struct due due;
    unsigned char delim[16];
};

struct write_req {
    struct pact__op op;
    struct due due;
    struct pact__list node; /* s->wreq while pending */
    uint64_t end;           /* done when s->sent reaches it */
    bool shut_wait;         /* and the side is shut (pact_stream_end_p) */
    pact_cb cb;
    void *ud;
    pact_fn ud_drop;
    pact_error *err;
};

/* ---- read requests ------------------------------------------------------- */

static void read_run(struct due *d)
{
    struct read_req *r = pact__list_entry(d, struct read_req, due);
    r->cb(r->err, r->err ? NULL : &r->v, r->ud);
    pact_value_release(&r->v);
    pact_error_unref(r->err);
    free(r);
}

static void read_drop(struct due *d)
{
    struct read_req *r = pact__list_entry(d, struct read_req, due);
    if (r->ud_drop)
        r->ud_drop(r->ud);
    pact_value_release(&r->v);
    pact_error_unref(r->err);
    free(r);
}

/* The read requests that twins (a task's read loop) end at once are kept
 * for the next one: malloc and free were a tenth of such a loop's cost. */
#define SPARES 64

static struct read_req *req_get(struct tcp_svc *svc)
{
    struct read_req *r = svc->spare;
    if (!r)
        return aligned_alloc(_Alignof(struct read_req), sizeof *r);
    svc->spare = r->next_spare;
    svc->nspare--;
    return r;
}

static void req_put(struct tcp_svc *svc, struct read_req *r)
{
    if (svc->nspare >= SPARES) {
        free(r);
        return;
    }
    r->next_spare = svc->spare;
    svc->spare = r;
    svc->nspare++;
}

void pact__read_spares_free(struct tcp_svc *svc)
{
    struct read_req *r;
    while ((r = svc->spare)) {
        svc->spare = r->next_spare;
        free(r);
    }
    svc->nspare = 0;
}

/* @p r is done with @p err (taken) or @p v (taken): its call is due. */
static void read_done(pact_stream *s, struct read_req *r, pact_error *err,
                      pact_value v)
{
    pact_error *e;
    bool mine = pact__op_end(&r->op, &e);
    assert(mine && !e); /* a cancelled one left s->rreq */
    (void)mine;
    s->rreq = NULL;
    /* a twin settles its deferred at once (its reactions are a microtask
     * away anyway), touching only the request's first line; a callback is
     * called on a later tick */
    if (r->at_once) {
        struct tcp_svc *svc = s->svc; /* the loop's: outlives the call */
        r->cb(err, err ? NULL : &v, r->ud);
        pact_value_release(&v);
        pact_error_unref(err);
        req_put(svc, r);
    } else {
        r->s = NULL;
        r->err = err;
        r->v = v;
        r->due.run = read_run;
        r->due.drop = read_drop;
        pact__list_init(&r->due.node);
        pact__tcp_due(s->svc, &r->due);
    }
}

bool pact__read_direct(pact_stream *s, const void *buf, size_t n)
{
    struct read_req *r = s->rreq;
    if (!r || r->kind != RD_SOME || pact__stream_in_len(s))
        return false;
    size_t k = r->max && r->max < n ? r->max : n;
    unsigned char *b = malloc(k + 1);
    if (!b)
        return false;
    if (k < n) {
        if (evbuffer_add(s->in, (const char *)buf + k, n - k) < 0) {
            free(b);
            return false;
        }
        s->in_some = true;
    }
    memcpy(b, buf, k);
    b[k] = '\0';
    read_done(s, r, NULL, pact_bytes(b, k));
    return true;
}

/* Take @p n bytes of input (then drop @p skip more) as bytes. */
static pact_value take(pact_stream *s, size_t n, size_t skip, bool line)
{
    unsigned char *buf = malloc(n + 1);
    if (!buf)
        return pact_throw(pact__enomem());
    evbuffer_remove(s->in, buf, n);
    evbuffer_drain(s->in, skip);
    pact__stream_in_taken(s);
    if (line && n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return pact_bytes(buf, n);
}

/* Where @p r's delimiter ends in the input, or 0 (not there). */
static size_t find(pact_stream *s, const struct read_req *r)
{
    const char *d = r->kind == RD_LINE ? "\n" : (const char *)r->delim;
    size_t dl = r->kind == RD_LINE ? 1 : r->dlen;
    struct evbuffer_ptr p = evbuffer_search(s->in, d, dl, NULL);
    return p.pos < 0 ? 0 : (size_t)p.pos + dl;
}

void pact__read_try(pact_stream *s)
{
    struct read_req *r = s->rreq;
    if (!r)
        return;
    size_t len = pact__stream_in_len(s), end = 0;
    if (!len && !(s->flags & (S_EOF | S_DEAD)))
        return; /* nothing to take nor to fail: the common wait */
    bool over = false;
    switch (r->kind) {
    case RD_SOME:
        end = len < r->max || !r->max ? len : r->max;
        break;
    case RD_EXACT:
        end = len >= r->n ? r->n : 0;
        break;
    case RD_FRAME: /* a 4-byte big-endian length, then that many bytes */
        if (len >= 4) {
            unsigned char h[4];
            evbuffer_copyout(s->in, h, 4);
            r->n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 |
                   h[3];
            over = r->n > r->max;
            end = len - 4 >= r->n ? r->n + 4 : 0;
        }
        break;
    default: /* a line, or up to a delimiter */
        end = find(s, r);
        over = end ? end - (r->kind == RD_LINE) > r->max : len >= r->max;
        break;
    }
    if (over) {
        pact_error *err =
            r->kind == RD_FRAME
                ? PACT_ERROR(PACT_EMSGSIZE, "a frame of %zu bytes (over %zu)",
                             r->n, r->max)
                : PACT_ERROR(PACT_EMSGSIZE,
                             "over %zu bytes without the delimiter", r->max);
        err = err ? err : pact__enomem();
        read_done(s, r, pact_error_ref(err), pact_nothing());
        pact__stream_kill(s, err);
        return;
    }
    if (end) {
        if (r->kind == RD_FRAME) {
            evbuffer_drain(s->in, 4);
            end -= 4;
        }
        size_t skip = r->kind == RD_LINE;
        pact_value v = take(s, end - skip, skip, r->kind == RD_LINE);
        pact_error *err = v.kind == PACT_ERROR ? v.u.error : NULL;
        read_done(s, r, err, err ? pact_nothing() : v);
    } else if (s->flags & (S_EOF | S_DEAD)) {
        if (r->kind == RD_LINE && len)
            read_done(s, r, NULL, take(s, len, 0, true));
        else
            read_done(s, r, PACT_ERROR(PACT_EOF, "the peer ended the stream"),
                      pact_nothing());
    }
}

static bool read_stop(struct pact__op *op)
{
    struct read_req *r = pact__list_entry(op, struct read_req, op);
    pact_stream *s = r->s;
    if (s) {
        s->rreq = NULL;
        r->s = NULL;
        pact__stream_update(s);
    }
    return true;
}

static void read_fail(struct pact__op *op, pact_error *err)
{
    struct read_req *r = pact__list_entry(op, struct read_req, op);
    r->cb(err, NULL, r->ud);
    free(r);
}

static void read_op_drop(struct pact__op *op)
{
    struct read_req *r = pact__list_entry(op, struct read_req, op);
    r->err = NULL; /* not done: nothing came */
    r->v = pact_nothing();
    read_drop(&r->due);
}

static void read_describe(const struct pact__op *op, char *buf, size_t len)
{
    const struct read_req *r = pact__list_entry(op, const struct read_req, op);
    static const char *const kinds[] = {"some bytes", "a line", "n bytes",
                                        "a delimiter", "a frame"};
    char call[160];
    pact__describe_call(call, sizeof call, (void (*)(void))r->cb, r->ud);
    snprintf(buf, len, "stream fd %d: reads %s, calls %s", r->s ? r->s->fd : -1,
             kinds[r->kind], call);
}

static const struct pact__op_type read_type = {
    .what = "stream read",
    .stop = read_stop,
    .fail = read_fail,
    .drop = read_op_drop,
    .describe = read_describe,
};

struct rspec {
    int kind;
    size_t n;
    const void *delim;
    size_t dlen;
    const pact_read_opts *opts;
    bool later; /* called on a later tick even with ud_drop */
};

static int read_start(pact_stream *s, const struct rspec *sp,
                      pact_stream_read_cb cb, void *ud, pact_fn ud_drop,
                      const char *fn);

int pact__read_start(pact_stream *s, int kind, const pact_read_opts *opts,
                     pact_stream_read_cb cb, void *ud, pact_fn ud_drop,
                     bool at_once, const char *fn)
{
    struct rspec sp = {kind, 0, NULL, 0, opts, !at_once};
    return read_start(s, &sp, cb, ud, ud_drop, fn);
}

static int read_start(pact_stream *s, const struct rspec *sp,
                      pact_stream_read_cb cb, void *ud, pact_fn ud_drop,
                      const char *fn)
{
    if (!s)
        return pact__misuse(fn, PACT_EINVAL, "s is NULL");
    PACT_CHECK_THREAD(s->loop, fn);
    PACT_CHECK_ARG(cb, fn);
    PACT_CHECK_ARG(!s->ev.data, fn);
    PACT_CHECK_ARG(sp->kind != RD_UNTIL || (sp->dlen && sp->dlen <= 16), fn);
    if (s->rreq)
        return PACT_EBUSY;
    /* reused or malloc'd, never calloc'd: glibc's calloc skips the thread
     * cache, and with a thousand streams it cost more than the rest of the
     * request */
    struct read_req *r = req_get(s->svc);
    if (!r)
        return PACT_ENOMEM;
    /* each field set, not the whole zeroed: that was 30 stores a message */
    r->kind = sp->kind;
    r->n = sp->n;
    r->max = sp->opts && sp->opts->max ? sp->opts->max : 0;
    if (!r->max && sp->kind != RD_SOME)
        r->max = DEFAULT_MAX;
    if (sp->dlen)
        memcpy(r->delim, sp->delim, sp->dlen);
    r->dlen = (uint8_t)sp->dlen;
    r->cb = cb;
    r->ud = ud;
    r->ud_drop = ud_drop;
    r->at_once = ud_drop && !sp->later;
    r->s = NULL; /* err, v and due are set when it is done */
    int rc = pact__op_start(s->loop, &r->op, &read_type,
                            sp->opts ? sp->opts->abort : NULL, 0);
    if (rc < 0) {
        free(r);
        return rc;
    }
    if (r->op.state != PACT__OP_PENDING)
        return 0; /* aborted already: its cancellation is due */
    pact__stream_read_clock(s);
    r->s = s;
    s->rreq = r;
    s->flags |= S_STARTED;
    pact__read_try(s);
    pact__stream_update(s);
    return 0;
}

int pact_stream_read_some(pact_stream *s, const pact_read_opts *opts,
                          pact_stream_read_cb cb, void *ud)
{
    struct rspec sp = {RD_SOME, 0, NULL, 0, opts, false};
    return read_start(s, &sp, cb, ud, NULL, "pact_stream_read_some");
}

int pact_stream_read_line(pact_stream *s, const pact_read_opts *opts,
                          pact_stream_read_cb cb, void *ud)
{
    struct rspec sp = {RD_LINE, 0, NULL, 0, opts, false};
    return read_start(s, &sp, cb, ud, NULL, "pact_stream_read_line");
}

int pact_stream_read_exact(pact_stream *s, size_t n, const pact_read_opts *opts,
                           pact_stream_read_cb cb, void *ud)
{
    struct rspec sp = {RD_EXACT, n, NULL, 0, opts, false};
    return read_start(s, &sp, cb, ud, NULL, "pact_stream_read_exact");
}

int pact_stream_read_until(pact_stream *s, const void *delim, size_t dlen,
                           const pact_read_opts *opts, pact_stream_read_cb cb,
                           void *ud)
{
    PACT_CHECK_ARG(delim, "pact_stream_read_until");
    struct rspec sp = {RD_UNTIL, 0, delim, dlen, opts, false};
    return read_start(s, &sp, cb, ud, NULL, "pact_stream_read_until");
}

/* ---- writes with a callback ---------------------------------------------- */

static void write_run(struct due *d)
{
    struct write_req *w = pact__list_entry(d, struct write_req, due);
    if (w->cb)
        w->cb(w->err, w->ud);
    pact_error_unref(w->err);
    free(w);
}

static void write_drop(struct due *d)
{
    struct write_req *w = pact__list_entry(d, struct write_req, due);
    if (w->ud_drop)
        w->ud_drop(w->ud);
    pact_error_unref(w->err);
    free(w);
}

void pact__write_reqs_done(pact_stream *s)
{
    struct pact__list *n;
    while ((n = pact__list_first(&s->wreq))) {
        struct write_req *w = pact__list_entry(n, struct write_req, node);
        if (s->sent < w->end || (w->shut_wait && !(s->flags & S_SHUT)))
            return;
        pact__list_remove(n);
        pact_error *e;
        bool mine = pact__op_end(&w->op, &e);
        assert(mine && !e);
        (void)mine;
        if (w->ud_drop) /* a twin: settled at once, as a read's */
            write_run(&w->due);
        else
            pact__tcp_due(s->svc, &w->due);
    }
}

static bool write_stop(struct pact__op *op)
{
    struct write_req *w = pact__list_entry(op, struct write_req, op);
    pact__list_remove(&w->node);
    return true;
}

static void write_fail(struct pact__op *op, pact_error *err)
{
    struct write_req *w = pact__list_entry(op, struct write_req, op);
    if (w->cb)
        w->cb(err, w->ud);
    free(w);
}

static void write_op_drop(struct pact__op *op)
{
    write_drop(&pact__list_entry(op, struct write_req, op)->due);
}

static const struct pact__op_type write_type = {
    .what = "stream write",
    .stop = write_stop,
    .fail = write_fail,
    .drop = write_op_drop,
};

/* What a write with a callback writes: memory (fd < 0: data and len), or a
 * file part (fd, off and len). */
struct wsrc {
    const void *data;
    size_t len;
    int fd;
    int64_t off;
    bool written; /* queued already (a twin's quick path): only wait */
};

static int write_start(pact_stream *s, const struct wsrc *src, bool end,
                       pact_cb cb, void *ud, pact_fn ud_drop, const char *fn)
{
    if (!s)
        return pact__misuse(fn, PACT_EINVAL, "s is NULL");
    PACT_CHECK_THREAD(s->loop, fn);
    PACT_CHECK_ARG(src->fd >= 0 || src->data || !src->len, fn);
    if (src->fd >= 0 && src->off < 0)
        return pact__misuse(fn, PACT_EINVAL, "offset is negative");
    struct write_req *w = malloc(sizeof *w); /* not calloc: read_start */
    if (!w)
        return PACT_ENOMEM;
    *w = (struct write_req){0};
    pact__list_init(&w->node);
    w->cb = cb;
    w->ud = ud;
    w->ud_drop = ud_drop;
    w->shut_wait = end;
    w->due.run = write_run;
    w->due.drop = write_drop;
    pact__list_init(&w->due.node);
    int rc = pact__op_start(s->loop, &w->op, &write_type, NULL, 0);
    if (rc < 0) {
        free(w);
        return rc;
    }
    if (w->op.state != PACT__OP_PENDING)
        return 1; /* started in an aborted scope: its cancellation is due */
    rc = 1;
    if (!end && !src->written) {
        rc = src->fd >= 0
                 ? pact__stream_write_file(s, src->fd, src->off, src->len)
                 : pact__stream_write(s, src->data, src->len);
        if (rc < 0) {
            pact_error *e;
            pact__op_end(&w->op, &e);
            free(w);
            return rc;
        }
    }
    w->end = s->queued;
    pact__list_push_back(&s->wreq, &w->node);
    if (s->flags & S_DEAD) /* only an end finds it so */
        pact__op_cancel(&w->op, PACT_ERROR(PACT_EPIPE, "the stream is closed"));
    else if (end)
        pact__stream_end(s); /* EALREADY: it waits all the same */
    pact__write_reqs_done(s);
    return rc;
}

int pact_stream_write_cb(pact_stream *s, const void *data, size_t len,
                         pact_cb cb, void *ud)
{
    struct wsrc src = {data, len, -1, 0, false};
    return write_start(s, &src, false, cb, ud, NULL, "pact_stream_write_cb");
}

int pact_stream_sendfile(pact_stream *s, int fd, int64_t offset, size_t len,
                         pact_cb cb, void *ud)
{
    if (fd < 0)
        return pact__misuse("pact_stream_sendfile", PACT_EINVAL,
                            "fd is negative");
    struct wsrc src = {NULL, len, fd, offset, false};
    return write_start(s, &src, false, cb, ud, NULL, "pact_stream_sendfile");
}

/* ---- a destroyed stream's requests --------------------------------------- */

void pact__stream_fail_reqs(pact_stream *s, pact_error *why)
{
    pact_error *err = why ? pact_error_ref(why)
                      : s->flags & S_EOF
                          ? PACT_ERROR(PACT_EOF, "the peer ended the stream")
                          : PACT_ERROR(PACT_ECANCELED, "the stream was closed");
    if (s->rreq) {
        struct read_req *r = s->rreq;
        pact__op_cancel(&r->op, pact_error_ref(err)); /* takes it off */
    }
    struct pact__list *n;
    while ((n = pact__list_first(&s->wreq))) {
        struct write_req *w = pact__list_entry(n, struct write_req, node);
        pact__op_cancel(&w->op, pact_error_ref(err)); /* unlinks it */
        if (pact__list_first(&s->wreq) == n)
            pact__list_remove(n); /* not pending: cannot happen */
    }
    pact_error_unref(err);
}

/* ---- the promise twins --------------------------------------------------- */

static void unref_deferred(void *d)
{
    pact_deferred_unref(d);
}

/* A read twin's request settles its promise itself, holding a reference
 * to it, with no deferred between (a message costs one node less). */
static void settle_read(pact_error *err, pact_value *data, void *ud)
{
    pact_promise *p = ud;
    if (err) {
        pact__resolve(p, pact_throw(pact_error_ref(err)));
    } else {
        pact__resolve(p, *data); /* moved */
        *data = pact_nothing();
    }
    pact__unref(p);
}

/* The loop is freed before the request ended: as a dropped deferred's. */
static void drop_read(void *ud)
{
    pact_promise *p = ud;
    pact_error *err = PACT_ERROR(PACT_ECANCELED, "broken promise: the stream "
                                                 "read was dropped unresolved");
    pact__resolve(p, pact_throw(err ? err : pact__enomem()));
    pact__unref(p);
}

static pact_promise *read_twin(pact_stream *s, struct rspec sp, const char *fn)
{
    if (!s) {
        pact__misuse(fn, PACT_EINVAL, "s is NULL");
        return NULL;
    }
    if (!pact__on_thread(s->loop)) {
        pact__misuse(fn, PACT_ETHREAD, "called off the loop thread");
        return NULL;
    }
    pact_promise *p = pact__promise_new(s->loop);
    if (!p)
        return NULL;
    p->refs++; /* the request's */
    int rc = read_start(s, &sp, settle_read, p, drop_read, fn);
    if (rc < 0) { /* it will never call back: its reference is ours */
        pact_error *err = PACT_ERROR(rc);
        pact__resolve(p, pact_throw(err ? err : pact__enomem()));
        pact__unref(p);
    }
    return p;
}

pact_promise *pact_stream_read_some_p(pact_stream *s,
                                      const pact_read_opts *opts)
{
    struct rspec sp = {RD_SOME, 0, NULL, 0, opts, false};
    return read_twin(s, sp, "pact_stream_read_some_p");
}

pact_promise *pact_stream_read_line_p(pact_stream *s,
                                      const pact_read_opts *opts)
{
    struct rspec sp = {RD_LINE, 0, NULL, 0, opts, false};
    return read_twin(s, sp, "pact_stream_read_line_p");
}

pact_promise *pact_stream_read_exact_p(pact_stream *s, size_t n,
                                       const pact_read_opts *opts)
{
    struct rspec sp = {RD_EXACT, n, NULL, 0, opts, false};
    return read_twin(s, sp, "pact_stream_read_exact_p");
}

pact_promise *pact_stream_read_until_p(pact_stream *s, const void *delim,
                                       size_t dlen, const pact_read_opts *opts)
{
    struct rspec sp = {RD_UNTIL, 0, delim, dlen, opts, false};
    if (!delim) {
        pact__misuse("pact_stream_read_until_p", PACT_EINVAL, "delim is NULL");
        return NULL;
    }
    return read_twin(s, sp, "pact_stream_read_until_p");
}

struct write_args {
    pact_stream *s;
    struct wsrc src;
    bool end;
    const char *fn;
};

static int start_write(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    struct write_args *a = args;
    int rc = write_start(a->s, &a->src, a->end, pact_deferred_cb, d,
                         unref_deferred, a->fn);
    return rc > 0 ? 0 : rc;
}

static pact_promise *write_twin(struct write_args *a)
{
    if (!a->s) {
        pact__misuse(a->fn, PACT_EINVAL, "s is NULL");
        return NULL;
    }
    return pact__promisify(a->s->loop, start_write, a, a->fn);
}

/* A write twin's quick path: the bytes go to the kernel here, and when it
 * takes them all (the common case) the promise is a settled one, with no
 * request, record or deferred -- as the slow path would have settled it at
 * once. @return whether it is done, with *@p out the promise (NULL only
 * without memory); false when the slow path is to go on (with
 * a->src.written set if the bytes are queued already). */
static bool write_quick(struct write_args *a, pact_promise **out)
{
    pact_stream *s = a->s;
    pact_loop *loop = s->loop;
    if (!pact__on_thread(loop) || (!a->src.data && a->src.len) ||
        (s->flags & (S_DEAD | S_ENDING | S_CLOSING)) ||
        (loop->ambient && pact_abort_aborted(loop->ambient)))
        return false; /* the slow path reports or cancels it */
    int rc = pact__stream_write(s, a->src.data, a->src.len);
    if (rc < 0) {
        *out = pact_rejected(loop, PACT_ERROR(rc)); /* as promisify's */
        return true;
    }
    if (s->sent >= s->queued) {
        *out = pact_resolved(loop, pact_nothing());
        return true;
    }
    a->src.written = true; /* the rest waits for the socket */
    return false;
}

pact_promise *pact_stream_write_p(pact_stream *s, const void *data, size_t len)
{
    struct write_args a = {
        s, {data, len, -1, 0, false}, false, "pact_stream_write_p"};
    pact_promise *p;
    if (s && write_quick(&a, &p))
        return p;
    return write_twin(&a);
}

pact_promise *pact_stream_sendfile_p(pact_stream *s, int fd, int64_t offset,
                                     size_t len)
{
    if (fd < 0) {
        pact__misuse("pact_stream_sendfile_p", PACT_EINVAL, "fd is negative");
        return NULL;
    }
    struct write_args a = {
        s, {NULL, len, fd, offset, false}, false, "pact_stream_sendfile_p"};
    return write_twin(&a);
}

pact_promise *pact_stream_end_p(pact_stream *s)
{
    struct write_args a = {
        s, {NULL, 0, -1, 0, false}, true, "pact_stream_end_p"};
    return write_twin(&a);
}
