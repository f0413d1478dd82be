/* File operations (pact/fs.h), the loop thread's side. Each operation is a
 * job on the offload pool's blocking lane (fs_jobs.c). A call copies what
 * it was given into one request (paths, and the data to write unless
 * PACT_FS_NOCOPY), submits the request's job, and the pool calls done() on
 * the loop thread, which hands the job's value to the operation's callback.
 * The promise twins are the same calls with a settling callback and the
 * deferred as ud (start_twin): nothing runs twice.
 *
 * A value the callback never sees (the operation was cancelled meanwhile)
 * is released by the pool: an opened descriptor is an owned value whose
 * release closes it.
 *
 * Ownership of a request: the job borrows it while it runs; done() frees it
 * after the callback, or, when pact_loop_free after pact_loop_close_all
 * drops the callback, drop_req() does (releasing the twin's deferred), once
 * no pool thread runs the job. */
#include "fs_internal.h"
#include "promise_internal.h"
#include "symbol.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* An operation as a call describes it; submit() copies it into a request. */
struct spec {
    enum op op;
    const char *path, *path2;
    const void *data; /* to write */
    void *buf;        /* to read into */
    size_t len;
    int fd, oflags;
    int64_t pos;
    const pact_fs_opts *opts;
    union fs_cb cb;
    const void *site; /* the program's call (PACT__CALLER in the entry) */
};

/* ---- the operations' table ----------------------------------------------- */

static const struct fs_op {
    const char *name, *twin; /* for misuse reports */
    enum result result;
} ops[] = {
    [OP_READ_FILE] = {"pact_fs_read_file", "pact_fs_read_file_p", R_DATA},
    [OP_WRITE_FILE] = {"pact_fs_write_file", "pact_fs_write_file_p", R_NONE},
    [OP_APPEND] = {"pact_fs_append", "pact_fs_append_p", R_NONE},
    [OP_READ_JSON] = {"pact_fs_read_json", "pact_fs_read_json_p", R_JSON},
    [OP_STAT] = {"pact_fs_stat", "pact_fs_stat_p", R_STAT},
    [OP_UNLINK] = {"pact_fs_unlink", "pact_fs_unlink_p", R_NONE},
    [OP_RENAME] = {"pact_fs_rename", "pact_fs_rename_p", R_NONE},
    [OP_MKDIR] = {"pact_fs_mkdir", "pact_fs_mkdir_p", R_NONE},
    [OP_RMDIR] = {"pact_fs_rmdir", "pact_fs_rmdir_p", R_NONE},
    [OP_READDIR] = {"pact_fs_readdir", "pact_fs_readdir_p", R_DIR},
    [OP_OPEN] = {"pact_fs_open", "pact_fs_open_p", R_FD},
    [OP_READ] = {"pact_fs_read", "pact_fs_read_p", R_SIZE},
    [OP_WRITE] = {"pact_fs_write", "pact_fs_write_p", R_SIZE},
    [OP_CLOSE] = {"pact_fs_close", "pact_fs_close_p", R_NONE},
};

/* ---- the loop thread's side ---------------------------------------------- */

/* Hand the job's outcome to the operation's callback, then free the
 * request. */
static void done(pact_error *err, pact_value *result, void *ud)
{
    struct req *r = ud;
    pact__error_site(err, r->site); /* "started at" the program's call */
    switch (ops[r->op].result) {
    case R_NONE:
        r->cb.none(err, r->ud);
        break;
    case R_DATA:
        r->cb.data(err, result, r->ud);
        break;
    case R_STAT:
        r->cb.stat(err, err ? NULL : result->u.bytes.data, r->ud);
        break;
    case R_DIR: {
        const struct dirlist *l = err ? NULL : result->u.owned.ptr;
        r->cb.dir(err, l ? l->v : NULL, l ? l->n : 0, r->ud);
        break;
    }
    case R_FD: {
        int fd = -1;
        if (!err) /* the callee's now */
            fd = pact__fs_fd(result);
        r->cb.fd(err, fd, r->ud);
        break;
    }
    case R_SIZE:
        r->cb.size(err, err ? 0 : (size_t)result->u.i, r->ud);
        break;
    case R_JSON:
        r->cb.json(err, err ? NULL : result->u.json, r->ud);
        break;
    }
    free(r);
}

/* The callback will never run (pact_loop_free after close_all). */
static void drop_req(void *ud)
{
    struct req *r = ud;
    if (r->ud_drop)
        r->ud_drop(r->ud);
    free(r);
}

static bool has_cb(const struct spec *s)
{
    switch (ops[s->op].result) {
    case R_NONE:
        return s->cb.none;
    case R_DATA:
        return s->cb.data;
    case R_STAT:
        return s->cb.stat;
    case R_DIR:
        return s->cb.dir;
    case R_FD:
        return s->cb.fd;
    case R_SIZE:
        return s->cb.size;
    case R_JSON:
        return s->cb.json;
    }
    return false;
}

/* Copy @p s into a request and submit its job to the blocking lane. */
static int submit(pact_loop *loop, const struct spec *s, void *ud,
                  pact_fn ud_drop, const char *name)
{
    PACT_CHECK_LOOP(loop, name);
    PACT_CHECK_ARG(has_cb(s), name);
    bool takes_path = s->op < OP_READ;
    PACT_CHECK_ARG(!takes_path || s->path, name);
    PACT_CHECK_ARG(s->op != OP_RENAME || s->path2, name);
    PACT_CHECK_ARG(s->data || s->buf || !s->len, name);
    /* Only -1 means "the current position": another negative value (a
     * computed offset gone wrong) once wrote at the current offset. */
    if (s->pos < 0 && s->pos != PACT_FS_CURRENT)
        return pact__misuse(name, PACT_EINVAL,
                            "negative position other than PACT_FS_CURRENT");
    if (s->pos > 0 && s->len > (uint64_t)(INT64_MAX - s->pos))
        return pact__misuse(name, PACT_EINVAL, "position + length overflow");
    unsigned flags = s->opts ? s->opts->flags : 0;
    size_t n1 = s->path ? strlen(s->path) + 1 : 0;
    size_t n2 = s->path2 ? strlen(s->path2) + 1 : 0;
    size_t nd = s->data && !(flags & PACT_FS_NOCOPY) ? s->len : 0;
    if (nd > SIZE_MAX - sizeof(struct req) - n1 - n2)
        return PACT_ENOMEM;
    struct req *r = malloc(sizeof *r + n1 + n2 + nd);
    if (!r)
        return PACT_ENOMEM;
    *r = (struct req){.op = s->op,
                      .flags = flags,
                      .mode = s->opts ? s->opts->mode : 0,
                      .fd = s->fd,
                      .oflags = s->oflags,
                      .pos = s->pos,
                      .data = s->data,
                      .buf = s->buf,
                      .len = s->len,
                      .cb = s->cb,
                      .ud = ud,
                      .ud_drop = ud_drop,
                      .site = s->site};
    char *p = r->mem;
    if (n1)
        r->path = memcpy(p, s->path, n1);
    if (n2)
        r->path2 = memcpy(p + n1, s->path2, n2);
    if (nd)
        r->data = memcpy(p + n1 + n2, s->data, nd);
    pact_offload_opts o = {.lane = PACT_LANE_BLOCKING,
                           .abort = s->opts ? s->opts->abort : NULL};
    int rc = pact__offload(loop, pact__fs_jobs[s->op], r, &o, done, r, drop_req,
                           name);
    if (rc < 0)
        free(r);
    return rc;
}

static int call(pact_loop *loop, const struct spec *s, void *ud)
{
    return submit(loop, s, ud, NULL, ops[s->op].name);
}

/* ---- the promise twins: the same calls, settling a deferred -------------- */

/* Settle @p d with @p err or else @p v (stolen), and drop the operation's
 * reference to it. */
static void settle(void *d, pact_error *err, pact_value v)
{
    if (err) {
        pact_value_release(&v);
        v = pact_throw(pact_error_ref(err));
    }
    pact_deferred_resolve(d, v);
    pact_deferred_unref(d);
}

static void settle_none(pact_error *err, void *d)
{
    settle(d, err, pact_nothing());
}

static void settle_data(pact_error *err, pact_value *data, void *d)
{
    settle(d, err, *data); /* moved: a large file is not copied */
    *data = pact_nothing();
}

static void settle_stat(pact_error *err, const pact_stat *st, void *d)
{
    settle(d, err, err ? pact_nothing() : pact_bytes_copy(st, sizeof *st));
}

static json_t *dir_json(const pact_dirent *v, size_t n, bool types)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *e = types ? json_pack("{s:s, s:s}", "name", v[i].name, "type",
                                      pact_fs_type_name(v[i].type))
                          : json_string(v[i].name);
        if (json_array_append_new(a, e) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

/* The twin of readdir needs the flags to shape its JSON: its deferred
 * travels with them. */
struct dir_twin {
    pact_deferred *d;
    bool types;
};

/* A dropped readdir twin: its promise is broken (ECANCELED). */
static void drop_dir_twin(void *ud)
{
    struct dir_twin *t = ud;
    pact_deferred_unref(t->d);
    free(t);
}

static void settle_dir(pact_error *err, const pact_dirent *v, size_t n,
                       void *ud)
{
    struct dir_twin t = *(struct dir_twin *)ud;
    free(ud);
    json_t *a = err ? NULL : dir_json(v, n, t.types);
    settle(t.d, err,
           err ? pact_nothing()
           : a ? pact_json(a)
               : pact_throw(pact__enomem()));
}

static void settle_fd(pact_error *err, int fd, void *d)
{
    settle(d, err, pact_int(fd));
}

static void settle_size(pact_error *err, size_t n, void *d)
{
    settle(d, err, pact_int((int64_t)n));
}

static void settle_json(pact_error *err, json_t *json, void *d)
{
    settle(d, err, err ? pact_nothing() : pact_json(json_incref(json)));
}

static void drop_deferred(void *d)
{
    pact_deferred_unref(d); /* its promise is broken: ECANCELED */
}

static int start_twin(pact_loop *loop, void *args, pact_deferred *d)
{
    struct spec s = *(const struct spec *)args;
    void *ud = d;
    pact_fn ud_drop = drop_deferred;
    switch (ops[s.op].result) {
    case R_NONE:
        s.cb.none = settle_none;
        break;
    case R_DATA:
        s.cb.data = settle_data;
        break;
    case R_STAT:
        s.cb.stat = settle_stat;
        break;
    case R_DIR: {
        struct dir_twin *t = malloc(sizeof *t);
        if (!t)
            return PACT_ENOMEM;
        *t = (struct dir_twin){d, s.opts && (s.opts->flags & PACT_FS_TYPES)};
        s.cb.dir = settle_dir;
        ud = t;
        ud_drop = drop_dir_twin;
        break;
    }
    case R_FD:
        s.cb.fd = settle_fd;
        break;
    case R_SIZE:
        s.cb.size = settle_size;
        break;
    case R_JSON:
        s.cb.json = settle_json;
        break;
    }
    int rc = submit(loop, &s, ud, ud_drop, ops[s.op].twin);
    if (rc < 0 && ud != d)
        free(ud);
    return rc;
}

static pact_promise *twin(pact_loop *loop, const struct spec *s)
{
    return pact__promisify(loop, start_twin, (void *)s, ops[s->op].twin);
}

/* ---- the API: each operation, a spec and one call per style -------------- */

const char *pact_fs_type_name(pact_file_type type)
{
    static const char *const names[] = {
        [PACT_FILE_UNKNOWN] = "unknown", [PACT_FILE_REGULAR] = "file",
        [PACT_FILE_DIR] = "dir",         [PACT_FILE_SYMLINK] = "symlink",
        [PACT_FILE_FIFO] = "fifo",       [PACT_FILE_SOCKET] = "socket",
        [PACT_FILE_CHAR] = "char",       [PACT_FILE_BLOCK] = "block",
    };
    return (unsigned)type < sizeof names / sizeof *names ? names[type]
                                                         : "unknown";
}

const pact_stat *pact_fs_stat_of(const pact_value *v)
{
    return v && v->kind == PACT_BYTES && v->u.bytes.len == sizeof(pact_stat)
               ? v->u.bytes.data
               : NULL;
}

#define PATH_SPEC(o, p)                                                        \
    {                                                                          \
        .op = (o), .path = (p), .opts = opts, .site = PACT__CALLER()           \
    }
#define DATA_SPEC(o, p)                                                        \
    {                                                                          \
        .op = (o), .path = (p), .data = data, .len = len, .opts = opts,        \
        .site = PACT__CALLER()                                                 \
    }

int pact_fs_read_file(pact_loop *loop, const char *path,
                      const pact_fs_opts *opts, pact_fs_data_cb cb, void *ud)
{
    struct spec s = PATH_SPEC(OP_READ_FILE, path);
    s.cb.data = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_read_file_p(pact_loop *loop, const char *path,
                                  const pact_fs_opts *opts)
{
    struct spec s = PATH_SPEC(OP_READ_FILE, path);
    return twin(loop, &s);
}

int pact_fs_write_file(pact_loop *loop, const char *path, const void *data,
                       size_t len, const pact_fs_opts *opts, pact_cb cb,
                       void *ud)
{
    struct spec s = DATA_SPEC(OP_WRITE_FILE, path);
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_write_file_p(pact_loop *loop, const char *path,
                                   const void *data, size_t len,
                                   const pact_fs_opts *opts)
{
    struct spec s = DATA_SPEC(OP_WRITE_FILE, path);
    return twin(loop, &s);
}

int pact_fs_append(pact_loop *loop, const char *path, const void *data,
                   size_t len, const pact_fs_opts *opts, pact_cb cb, void *ud)
{
    struct spec s = DATA_SPEC(OP_APPEND, path);
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_append_p(pact_loop *loop, const char *path,
                               const void *data, size_t len,
                               const pact_fs_opts *opts)
{
    struct spec s = DATA_SPEC(OP_APPEND, path);
    return twin(loop, &s);
}

int pact_fs_read_json(pact_loop *loop, const char *path,
                      const pact_fs_opts *opts, pact_fs_json_cb cb, void *ud)
{
    struct spec s = PATH_SPEC(OP_READ_JSON, path);
    s.cb.json = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_read_json_p(pact_loop *loop, const char *path,
                                  const pact_fs_opts *opts)
{
    struct spec s = PATH_SPEC(OP_READ_JSON, path);
    return twin(loop, &s);
}

int pact_fs_stat(pact_loop *loop, const char *path, const pact_fs_opts *opts,
                 pact_fs_stat_cb cb, void *ud)
{
    struct spec s = PATH_SPEC(OP_STAT, path);
    s.cb.stat = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_stat_p(pact_loop *loop, const char *path,
                             const pact_fs_opts *opts)
{
    struct spec s = PATH_SPEC(OP_STAT, path);
    return twin(loop, &s);
}

int pact_fs_unlink(pact_loop *loop, const char *path, const pact_fs_opts *opts,
                   pact_cb cb, void *ud)
{
    struct spec s = PATH_SPEC(OP_UNLINK, path);
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_unlink_p(pact_loop *loop, const char *path,
                               const pact_fs_opts *opts)
{
    struct spec s = PATH_SPEC(OP_UNLINK, path);
    return twin(loop, &s);
}

int pact_fs_rename(pact_loop *loop, const char *from, const char *to,
                   const pact_fs_opts *opts, pact_cb cb, void *ud)
{
    struct spec s = {.op = OP_RENAME,
                     .path = from,
                     .path2 = to,
                     .opts = opts,
                     .site = PACT__CALLER()};
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_rename_p(pact_loop *loop, const char *from,
                               const char *to, const pact_fs_opts *opts)
{
    struct spec s = {.op = OP_RENAME,
                     .path = from,
                     .path2 = to,
                     .opts = opts,
                     .site = PACT__CALLER()};
    return twin(loop, &s);
}

int pact_fs_mkdir(pact_loop *loop, const char *path, const pact_fs_opts *opts,
                  pact_cb cb, void *ud)
{
    struct spec s = PATH_SPEC(OP_MKDIR, path);
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_mkdir_p(pact_loop *loop, const char *path,
                              const pact_fs_opts *opts)
{
    struct spec s = PATH_SPEC(OP_MKDIR, path);
    return twin(loop, &s);
}

int pact_fs_rmdir(pact_loop *loop, const char *path, const pact_fs_opts *opts,
                  pact_cb cb, void *ud)
{
    struct spec s = PATH_SPEC(OP_RMDIR, path);
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_rmdir_p(pact_loop *loop, const char *path,
                              const pact_fs_opts *opts)
{
    struct spec s = PATH_SPEC(OP_RMDIR, path);
    return twin(loop, &s);
}

int pact_fs_readdir(pact_loop *loop, const char *path, const pact_fs_opts *opts,
                    pact_fs_dir_cb cb, void *ud)
{
    struct spec s = PATH_SPEC(OP_READDIR, path);
    s.cb.dir = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_readdir_p(pact_loop *loop, const char *path,
                                const pact_fs_opts *opts)
{
    struct spec s = PATH_SPEC(OP_READDIR, path);
    return twin(loop, &s);
}

int pact_fs_open(pact_loop *loop, const char *path, int flags,
                 const pact_fs_opts *opts, pact_fs_fd_cb cb, void *ud)
{
    struct spec s = {.op = OP_OPEN,
                     .path = path,
                     .oflags = flags,
                     .opts = opts,
                     .site = PACT__CALLER()};
    s.cb.fd = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_open_p(pact_loop *loop, const char *path, int flags,
                             const pact_fs_opts *opts)
{
    struct spec s = {.op = OP_OPEN,
                     .path = path,
                     .oflags = flags,
                     .opts = opts,
                     .site = PACT__CALLER()};
    return twin(loop, &s);
}

#define FD_SPEC(o, b)                                                          \
    {                                                                          \
        .op = (o), .fd = fd, b, .len = len, .pos = pos, .opts = opts,          \
        .site = PACT__CALLER()                                                 \
    }

int pact_fs_read(pact_loop *loop, int fd, void *buf, size_t len, int64_t pos,
                 const pact_fs_opts *opts, pact_fs_size_cb cb, void *ud)
{
    struct spec s = FD_SPEC(OP_READ, .buf = buf);
    s.cb.size = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_read_p(pact_loop *loop, int fd, void *buf, size_t len,
                             int64_t pos, const pact_fs_opts *opts)
{
    struct spec s = FD_SPEC(OP_READ, .buf = buf);
    return twin(loop, &s);
}

int pact_fs_write(pact_loop *loop, int fd, const void *data, size_t len,
                  int64_t pos, const pact_fs_opts *opts, pact_fs_size_cb cb,
                  void *ud)
{
    struct spec s = FD_SPEC(OP_WRITE, .data = data);
    s.cb.size = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_write_p(pact_loop *loop, int fd, const void *data,
                              size_t len, int64_t pos, const pact_fs_opts *opts)
{
    struct spec s = FD_SPEC(OP_WRITE, .data = data);
    return twin(loop, &s);
}

int pact_fs_close(pact_loop *loop, int fd, const pact_fs_opts *opts, pact_cb cb,
                  void *ud)
{
    struct spec s = {
        .op = OP_CLOSE, .fd = fd, .opts = opts, .site = PACT__CALLER()};
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_close_p(pact_loop *loop, int fd, const pact_fs_opts *opts)
{
    struct spec s = {
        .op = OP_CLOSE, .fd = fd, .opts = opts, .site = PACT__CALLER()};
    return twin(loop, &s);
}
