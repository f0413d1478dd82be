/* Messages on a stream (pact/frame.h): length-prefixed frames are a kind of
 * read request of stream_read.c (RD_FRAME: the length is checked against
 * the maximum as soon as its 4 bytes are in), JSON lines are line requests
 * parsed here, and the frame events are one request after another. A
 * message that breaks the framing destroys its own stream with the error
 * its request fails with; nothing is shared between streams. */
#include <jansson.h>

#include <stdlib.h>
#include <string.h>

#include "pact/frame.h"
#include "promise_internal.h"
#include "tcp_internal.h"

/* A request on top of a read request: a JSON line, or one of the frame
 * events' reads. */
struct fread {
    pact_stream *s;
    int kind;    /* pact_frame_kind */
    bool events; /* pact_stream_on_frames: again after each message */
    pact_read_opts opts;
    pact_stream_read_cb cb; /* a request's */
    pact_frame_cb fcb;      /* the events' */
    void *ud;
    pact_deferred *d; /* a twin's */
};

static void fread_drop(void *p)
{
    struct fread *f = p;
    if (f->d)
        pact_deferred_unref(f->d);
    free(f);
}

/* Parse the line in @p v as JSON, in place. @return NULL or the error. */
static pact_error *parse_json(pact_value *v)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)v->u.bytes.data, v->u.bytes.len,
                           JSON_DECODE_ANY, &je);
    if (!j)
        return PACT_ERROR(PACT_EPROTO, "not a JSON line: %s (column %d)",
                          je.text, je.column);
    pact_value_release(v);
    *v = pact_json(j);
    return NULL;
}

static int start(struct fread *f);

/* The last call of the frame events: @p s may be freed after it. */
static void events_end(struct fread *f, pact_error *err)
{
    pact_stream *s = f->s;
    f->fcb(s, err, NULL, f->ud);
    s->in_cb--; /* held from pact_stream_on_frames */
    pact__stream_maybe_free(s);
}

/* The read request's callback: the message (parsed if JSON), to the
 * caller's callback, a twin's deferred or the frame callback. */
static void on_read(pact_error *err, pact_value *data, void *p)
{
    struct fread *f = p;
    pact_error *mine = NULL;
    if (!err && f->kind == PACT_FRAME_JSON && (mine = parse_json(data))) {
        err = mine;
        /* this connection only; the program still owns the stream */
        pact__stream_kill(f->s, pact_error_ref(err));
    }
    if (f->d) {
        if (err) {
            pact_deferred_reject(f->d, pact_error_ref(err));
        } else {
            pact_deferred_resolve(f->d, *data); /* moved */
            *data = pact_nothing();
        }
    } else if (f->events && err) {
        events_end(f, err);
    } else if (f->events) {
        f->fcb(f->s, NULL, data, f->ud);
        int rc = start(f);
        if (rc == 0)
            return; /* the next message; f goes on */
        /* the stream was closed in the callback, or out of memory */
        pact_error *e =
            rc == PACT_ECANCELED
                ? PACT_ERROR(PACT_ECANCELED, "the stream was closed")
                : PACT_ERROR(rc, "pact_stream_on_frames: the next read");
        events_end(f, e ? e : pact__enomem());
        pact_error_unref(e);
    } else {
        f->cb(err, err ? NULL : data, f->ud);
    }
    pact_error_unref(mine);
    fread_drop(f);
}

static int start(struct fread *f)
{
    if (f->events && f->s->flags & (S_DEAD | S_CLOSING))
        return PACT_ECANCELED;
    int kind = f->kind == PACT_FRAME_LENGTH ? RD_FRAME : RD_LINE;
    return pact__read_start(f->s, kind, &f->opts, on_read, f, fread_drop,
                            f->d != NULL,
                            f->events          ? "pact_stream_on_frames"
                            : kind == RD_FRAME ? "pact_stream_read_frame"
                                               : "pact_stream_read_json");
}

static struct fread *fread_new(pact_stream *s, int kind,
                               const pact_read_opts *opts)
{
    struct fread *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->s = s;
    f->kind = kind;
    if (opts)
        f->opts = *opts;
    return f;
}

static int read_cb(pact_stream *s, int kind, const pact_read_opts *opts,
                   pact_stream_read_cb cb, void *ud, const char *fn)
{
    if (!s || !cb)
        return pact__misuse(fn, PACT_EINVAL, "s or cb is NULL");
    PACT_CHECK_THREAD(s->loop, fn);
    struct fread *f = fread_new(s, kind, opts);
    if (!f)
        return PACT_ENOMEM;
    f->cb = cb;
    f->ud = ud;
    int rc = start(f);
    if (rc < 0)
        free(f);
    return rc;
}

int pact_stream_read_frame(pact_stream *s, const pact_read_opts *opts,
                           pact_stream_read_cb cb, void *ud)
{
    return read_cb(s, PACT_FRAME_LENGTH, opts, cb, ud,
                   "pact_stream_read_frame");
}

int pact_stream_read_json(pact_stream *s, const pact_read_opts *opts,
                          pact_stream_read_cb cb, void *ud)
{
    return read_cb(s, PACT_FRAME_JSON, opts, cb, ud, "pact_stream_read_json");
}

int pact_stream_on_frames(pact_stream *s, pact_frame_kind kind,
                          const pact_read_opts *opts, pact_frame_cb cb,
                          void *ud)
{
    const char *fn = "pact_stream_on_frames";
    if (!s || !cb)
        return pact__misuse(fn, PACT_EINVAL, "s or cb is NULL");
    PACT_CHECK_THREAD(s->loop, fn);
    PACT_CHECK_ARG(kind >= PACT_FRAME_LINE && kind <= PACT_FRAME_JSON, fn);
    struct fread *f = fread_new(s, kind, opts);
    if (!f)
        return PACT_ENOMEM;
    f->events = true;
    f->fcb = cb;
    f->ud = ud;
    int rc = start(f);
    if (rc < 0)
        free(f);
    else
        s->in_cb++; /* s outlives the last call */
    return rc;
}

/* ---- the read twins ------------------------------------------------------ */

struct twin_args {
    pact_stream *s;
    int kind;
    const pact_read_opts *opts;
};

static int start_twin(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    struct twin_args *a = args;
    struct fread *f = fread_new(a->s, a->kind, a->opts);
    if (!f)
        return PACT_ENOMEM;
    f->d = d;
    int rc = start(f);
    if (rc < 0)
        free(f);
    return rc;
}

static pact_promise *read_twin(pact_stream *s, int kind,
                               const pact_read_opts *opts, const char *fn)
{
    if (!s) {
        pact__misuse(fn, PACT_EINVAL, "s is NULL");
        return NULL;
    }
    struct twin_args a = {s, kind, opts};
    return pact__promisify(s->loop, start_twin, &a, fn);
}

pact_promise *pact_stream_read_frame_p(pact_stream *s,
                                       const pact_read_opts *opts)
{
    return read_twin(s, PACT_FRAME_LENGTH, opts, "pact_stream_read_frame_p");
}

pact_promise *pact_stream_read_json_p(pact_stream *s,
                                      const pact_read_opts *opts)
{
    return read_twin(s, PACT_FRAME_JSON, opts, "pact_stream_read_json_p");
}

/* ---- writes -------------------------------------------------------------- */

#define SMALL 4096

/* The bytes of one message: @p len of @p data after a 4-byte length
 * (frame), or @p json's compact encoding and "\n". @p buf (SMALL bytes) is
 * used when it fits, else *out is malloc'd. @return the length, or a
 * negative code. */
static long encode(const void *data, size_t len, const json_t *json,
                   unsigned char *buf, unsigned char **out)
{
    size_t n;
    if (json) {
        n = json_dumpb(json, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!n)
            return PACT_EINVAL;
        n++;
    } else {
        if (len > 0xffffffffu)
            return PACT_EMSGSIZE;
        n = len + 4;
    }
    *out = n <= SMALL ? buf : malloc(n);
    if (!*out)
        return PACT_ENOMEM;
    if (json) {
        json_dumpb(json, (char *)*out, n - 1, JSON_COMPACT | JSON_ENCODE_ANY);
        (*out)[n - 1] = '\n';
    } else {
        unsigned char *b = *out;
        b[0] = (unsigned char)(len >> 24);
        b[1] = (unsigned char)(len >> 16);
        b[2] = (unsigned char)(len >> 8);
        b[3] = (unsigned char)len;
        if (len)
            memcpy(b + 4, data, len);
    }
    return (long)n;
}

static int write_msg(pact_stream *s, const void *data, size_t len,
                     const json_t *json, const char *fn)
{
    if (!s)
        return pact__misuse(fn, PACT_EINVAL, "s is NULL");
    PACT_CHECK_THREAD(s->loop, fn);
    unsigned char small[SMALL], *b;
    long n = encode(data, len, json, small, &b);
    if (n < 0)
        return (int)n;
    int rc = pact_stream_write(s, b, (size_t)n);
    if (b != small)
        free(b);
    return rc;
}

int pact_stream_write_frame(pact_stream *s, const void *data, size_t len)
{
    if (!data && len)
        return pact__misuse("pact_stream_write_frame", PACT_EINVAL,
                            "data is NULL");
    return write_msg(s, data, len, NULL, "pact_stream_write_frame");
}

int pact_stream_write_json(pact_stream *s, const json_t *json)
{
    if (!json)
        return pact__misuse("pact_stream_write_json", PACT_EINVAL,
                            "json is NULL");
    return write_msg(s, NULL, 0, json, "pact_stream_write_json");
}

static pact_promise *write_twin(pact_stream *s, const void *data, size_t len,
                                const json_t *json, const char *fn)
{
    if (!s || (!data && len && !json)) {
        pact__misuse(fn, PACT_EINVAL, "s or data is NULL");
        return NULL;
    }
    unsigned char small[SMALL], *b;
    long n = encode(data, len, json, small, &b);
    if (n < 0) {
        pact_promise *p;
        pact_deferred *d = pact_deferred_new(s->loop, &p);
        if (!d)
            return NULL;
        pact_deferred_reject(d, PACT_ERROR((int)n, "%s", fn));
        pact_deferred_unref(d);
        return p;
    }
    pact_promise *p = pact_stream_write_p(s, b, (size_t)n);
    if (b != small)
        free(b);
    return p;
}

pact_promise *pact_stream_write_frame_p(pact_stream *s, const void *data,
                                        size_t len)
{
    return write_twin(s, data, len, NULL, "pact_stream_write_frame_p");
}

pact_promise *pact_stream_write_json_p(pact_stream *s, const json_t *json)
{
    if (!json) {
        pact__misuse("pact_stream_write_json_p", PACT_EINVAL, "json is NULL");
        return NULL;
    }
    return write_twin(s, NULL, 0, json, "pact_stream_write_json_p");
}
