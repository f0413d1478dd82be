/* File operations (pact/fs.h): each is a job on the offload pool's blocking
 * lane. A call copies what it was given into one request (paths, and the
 * data to write unless PACT_FS_NOCOPY), submits the request's job, and the
 * pool calls done() on the loop thread, which hands the job's value to the
 * operation's callback. The promise twins are the same calls with a
 * settling callback and the deferred as ud (start_twin); nothing here runs
 * twice.
 *
 * Job functions run on pool threads: they make system calls and values
 * that may cross threads (bytes, owned pointers, JSON) and errors, and touch
 * nothing of the loop's. A value the callback never sees (the operation was
 * cancelled meanwhile) is released by the pool: an opened descriptor is an
 * owned value whose release closes it.
 *
 * Ownership of a request: the job borrows it while it runs; done() frees it
 * after the callback, or, when pact_loop_free after pact_loop_close_all
 * drops the callback, drop_req() does (releasing the twin's deferred), once
 * no pool thread runs the job. */
#include "promise_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What each operation gives its callback. */
enum result { R_NONE, R_DATA, R_STAT, R_DIR, R_FD, R_SIZE, R_JSON };

union fs_cb {
    pact_cb none;
    pact_fs_data_cb data;
    pact_fs_stat_cb stat;
    pact_fs_dir_cb dir;
    pact_fs_fd_cb fd;
    pact_fs_size_cb size;
    pact_fs_json_cb json;
};

/* The operations on a path come before OP_READ (submit() checks theirs). */
enum op {
    OP_READ_FILE,
    OP_WRITE_FILE,
    OP_APPEND,
    OP_READ_JSON,
    OP_STAT,
    OP_UNLINK,
    OP_RENAME,
    OP_MKDIR,
    OP_RMDIR,
    OP_READDIR,
    OP_OPEN,
    OP_READ,
    OP_WRITE,
    OP_CLOSE,
};

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
};

struct req {
    enum op op;
    unsigned flags, mode;
    int fd, oflags;
    int64_t pos;
    const char *path, *path2; /* in mem */
    const void *data;         /* in mem, or the caller's (PACT_FS_NOCOPY) */
    void *buf;
    size_t len;
    union fs_cb cb;
    void *ud;
    pact_fn ud_drop; /* releases ud if the callback never runs (twins) */
    char mem[];
};

/* ---- errors (any thread) ------------------------------------------------- */

/* libc's text for @p errnum, lower-cased as Node's: "no such file or
 * directory". */
static const char *describe(int errnum, char *buf, size_t size)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    const char *s = strerror_r(errnum, buf, size);
#else
    const char *s = strerror_r(errnum, buf, size) == 0 ? buf : "unknown error";
#endif
    if (s != buf)
        snprintf(buf, size, "%s", s);
    buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}

/* The error of a failed system call: code -@p errnum, message "<text>,
 * <call> '<path>'[ -> '<path2>']" as Node's. Never NULL. */
static pact_error *sys_error(int errnum, const char *call, const char *path,
                             const char *path2)
{
    char text[128];
    describe(errnum, text, sizeof text);
    pact_error *e = path2
                        ? PACT_ERROR(-errnum, "%s, %s '%s' -> '%s'", text, call,
                                     path, path2)
                        : PACT_ERROR(-errnum, "%s, %s '%s'", text, call, path);
    return e ? e : pact__enomem();
}

/* As sys_error for a call on a descriptor: "<text>, <call> (fd N)". */
static pact_error *fd_error(int errnum, const char *call, int fd)
{
    char text[128];
    describe(errnum, text, sizeof text);
    pact_error *e = PACT_ERROR(-errnum, "%s, %s (fd %d)", text, call, fd);
    return e ? e : pact__enomem();
}

static pact_error *cancelled(void)
{
    pact_error *e = PACT_ERROR(PACT_ECANCELED);
    return e ? e : pact__enomem();
}

/* ---- helpers for the jobs (pool threads) --------------------------------- */

static unsigned mode_or(const struct req *r, unsigned dflt)
{
    return r->mode ? r->mode : dflt;
}

/* Write all @p len bytes, at @p pos or (negative) the position.
 * @return 0 or an errno. */
static int write_all(int fd, const char *p, size_t len, int64_t pos)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = pos < 0 ? write(fd, p + off, len - off)
                            : pwrite(fd, p + off, len - off,
                                     (off_t)(pos + (int64_t)off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        off += (size_t)n;
    }
    return 0;
}

/* The directory part of @p path ("." for none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* fsync the directory holding @p path, making a new name in it durable.
 * File systems that cannot (EINVAL, ENOTSUP) are taken at their word. */
static pact_error *sync_dir(const char *path)
{
    char *dir = dir_of(path);
    if (!dir)
        return pact__enomem();
    pact_error *err = NULL;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        err = sys_error(errno, "open", dir, NULL);
    else if (fsync(fd) < 0 && errno != EINVAL && errno != ENOTSUP)
        err = sys_error(errno, "fsync", dir, NULL);
    if (fd >= 0)
        close(fd);
    free(dir);
    return err;
}

/* Write the request's data to the open @p fd (at its position), fsync it if
 * asked, and close it. @return the first failure, naming @p path. */
static pact_error *fill_and_close(int fd, const struct req *r, const char *path,
                                  bool sync)
{
    int e = write_all(fd, r->data, r->len, -1);
    const char *call = "write";
    if (!e && sync && fsync(fd) < 0) {
        e = errno;
        call = "fsync";
    }
    if (close(fd) < 0 && !e && errno != EINTR) {
        e = errno;
        call = "close";
    }
    return e ? sys_error(e, call, path, NULL) : NULL;
}

/* Read @p fd to its end into a malloc'd buffer with a NUL after the data,
 * stopping early if the job is cancelled. */
static pact_error *read_all(pact_job *job, int fd, const char *path, char **out,
                            size_t *len)
{
    struct stat st;
    size_t cap = 64 * 1024;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (uint64_t)st.st_size < SIZE_MAX - 1)
        cap = (size_t)st.st_size + 1; /* + 1: the read that finds the end */
    char *buf = malloc(cap + 1);
    size_t n = 0;
    for (;;) {
        if (!buf) {
            *out = NULL;
            return pact__enomem();
        }
        if (pact_job_cancelled(job)) {
            free(buf);
            return cancelled();
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            return sys_error(e, "read", path, NULL);
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n == cap) { /* full (it grew, or it is not a regular file) */
            char *more = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2 + 1) : NULL;
            if (!more)
                free(buf);
            buf = more;
            cap *= 2;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return NULL;
}

/* ---- the jobs (pool threads) --------------------------------------------- */

static pact_error *job_read_file(pact_job *job, void *arg, pact_value *result)
{
    struct req *r = arg;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_error(errno, "open", r->path, NULL);
    char *data = NULL;
    size_t len = 0;
    pact_error *err = read_all(job, fd, r->path, &data, &len);
    close(fd);
    if (!err)
        *result = pact_bytes(data, len);
    return err;
}

static pact_error *job_read_json(pact_job *job, void *arg, pact_value *result)
{
    struct req *r = arg;
    pact_error *err = job_read_file(job, arg, result);
    if (err)
        return err;
    json_error_t je;
    json_t *json = json_loadb(result->u.bytes.data, result->u.bytes.len,
                              JSON_DECODE_ANY, &je);
    pact_value_release(result);
    if (!json) {
        err = PACT_ERROR(PACT_EINVAL,
                         "invalid JSON at line %d, column %d: %s, read_json "
                         "'%s'",
                         je.line, je.column, je.text, r->path);
        return err ? err : pact__enomem();
    }
    *result = pact_json(json);
    return NULL;
}

/* A name for a temporary file beside @p path, unique in this process and,
 * with O_EXCL, among processes. */
static char *temp_name(const char *path)
{
    static atomic_uint seq;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned n = atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed);
    size_t size = strlen(path) + 64;
    char *tmp = malloc(size);
    if (tmp) /* the name's part is cut to leave room below NAME_MAX */
        snprintf(tmp, size, "%.*s.%.200s.%ld-%u-%lx.tmp", dirlen, path, base,
                 (long)getpid(), n, (unsigned long)ts.tv_nsec);
    return tmp;
}

/* write_file with PACT_FS_ATOMIC: temporary file, fsync, rename (or link,
 * with PACT_FS_EXCL), fsync the directory. The temporary file never stays
 * behind. */
static pact_error *write_atomic(pact_job *job, struct req *r)
{
    struct stat st;
    bool keep_mode =
        !r->mode && lstat(r->path, &st) == 0 && S_ISREG(st.st_mode);
    char *tmp = NULL;
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        free(tmp);
        if (!(tmp = temp_name(r->path)))
            return pact__enomem();
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  mode_or(r, 0666));
        if (fd < 0 && errno != EEXIST)
            break;
    }
    pact_error *err = NULL;
    if (fd < 0) {
        err = sys_error(errno, "open", tmp, NULL);
        free(tmp);
        return err;
    }
    if (keep_mode && fchmod(fd, st.st_mode & 07777) < 0)
        err = sys_error(errno, "fchmod", tmp, NULL);
    if (err)
        close(fd);
    else
        err = fill_and_close(fd, r, tmp, true);
    if (!err && pact_job_cancelled(job)) /* the old content stays */
        err = cancelled();
    bool excl = r->flags & PACT_FS_EXCL;
    if (!err && (excl ? link(tmp, r->path) : rename(tmp, r->path)) < 0)
        err = sys_error(errno, excl ? "link" : "rename", tmp, r->path);
    if (err || excl)
        unlink(tmp);
    free(tmp);
    return err ? err : sync_dir(r->path);
}

static pact_error *job_write_file(pact_job *job, void *arg, pact_value *result)
{
    (void)result;
    struct req *r = arg;
    if (r->flags & PACT_FS_ATOMIC)
        return write_atomic(job, r);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC |
                (r->flags & PACT_FS_EXCL ? O_EXCL : O_TRUNC);
    int fd = open(r->path, flags, mode_or(r, 0666));
    if (fd < 0)
        return sys_error(errno, "open", r->path, NULL);
    bool sync = r->flags & PACT_FS_SYNC;
    pact_error *err = fill_and_close(fd, r, r->path, sync);
    return err || !sync ? err : sync_dir(r->path);
}

static pact_error *job_append(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)result;
    struct req *r = arg;
    int fd = open(r->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                  mode_or(r, 0666));
    if (fd < 0)
        return sys_error(errno, "open", r->path, NULL);
    bool sync = r->flags & PACT_FS_SYNC;
    pact_error *err = fill_and_close(fd, r, r->path, sync);
    return err || !sync ? err : sync_dir(r->path);
}

static pact_file_type type_of(mode_t m)
{
    return S_ISREG(m)    ? PACT_FILE_REGULAR
           : S_ISDIR(m)  ? PACT_FILE_DIR
           : S_ISLNK(m)  ? PACT_FILE_SYMLINK
           : S_ISFIFO(m) ? PACT_FILE_FIFO
           : S_ISSOCK(m) ? PACT_FILE_SOCKET
           : S_ISCHR(m)  ? PACT_FILE_CHAR
           : S_ISBLK(m)  ? PACT_FILE_BLOCK
                         : PACT_FILE_UNKNOWN;
}

static int64_t ns_of(struct timespec ts)
{
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static pact_error *job_stat(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    struct req *r = arg;
    bool lst = r->flags & PACT_FS_NOFOLLOW;
    struct stat st;
    if ((lst ? lstat(r->path, &st) : stat(r->path, &st)) < 0)
        return sys_error(errno, lst ? "lstat" : "stat", r->path, NULL);
    pact_stat *s = malloc(sizeof *s);
    if (!s)
        return pact__enomem();
    *s = (pact_stat){
        .type = type_of(st.st_mode),
        .mode = (uint32_t)(st.st_mode & 07777),
        .size = (uint64_t)st.st_size,
        .dev = (uint64_t)st.st_dev,
        .ino = (uint64_t)st.st_ino,
        .nlink = (uint64_t)st.st_nlink,
        .uid = (uint32_t)st.st_uid,
        .gid = (uint32_t)st.st_gid,
        .rdev = (uint64_t)st.st_rdev,
        .blksize = (uint64_t)st.st_blksize,
        .blocks = (uint64_t)st.st_blocks,
        .atime_ns = ns_of(st.st_atim),
        .mtime_ns = ns_of(st.st_mtim),
        .ctime_ns = ns_of(st.st_ctim),
    };
    *result = pact_bytes(s, sizeof *s);
    return NULL;
}

static pact_error *job_unlink(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)result;
    struct req *r = arg;
    return unlink(r->path) < 0 ? sys_error(errno, "unlink", r->path, NULL)
                               : NULL;
}

static pact_error *job_rmdir(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)result;
    struct req *r = arg;
    return rmdir(r->path) < 0 ? sys_error(errno, "rmdir", r->path, NULL) : NULL;
}

static pact_error *job_rename(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)result;
    struct req *r = arg;
    return rename(r->path, r->path2) < 0
               ? sys_error(errno, "rename", r->path, r->path2)
               : NULL;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p on @p path (writable: cut at its slashes while parents are made;
 * no trailing slash). @return 0 or an errno. */
static int make_dirs(pact_job *job, char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0)
        return 0;
    if (errno == EEXIST) /* a directory is what we wanted (maybe a racer's) */
        return is_dir(path) ? 0 : EEXIST;
    char *slash = strrchr(path, '/');
    if (errno != ENOENT || !slash || slash == path)
        return errno;
    if (pact_job_cancelled(job))
        return ECANCELED;
    *slash = '\0';
    int e = make_dirs(job, path, mode);
    *slash = '/';
    if (e)
        return e;
    if (mkdir(path, mode) == 0)
        return 0;
    return errno == EEXIST && is_dir(path) ? 0 : errno;
}

static pact_error *job_mkdir(pact_job *job, void *arg, pact_value *result)
{
    (void)result;
    struct req *r = arg;
    mode_t mode = (mode_t)mode_or(r, 0777);
    if (!(r->flags & PACT_FS_RECURSIVE))
        return mkdir(r->path, mode) < 0
                   ? sys_error(errno, "mkdir", r->path, NULL)
                   : NULL;
    char *path = strdup(r->path);
    if (!path)
        return pact__enomem();
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    int e = make_dirs(job, path, mode);
    free(path);
    return e == ECANCELED ? cancelled()
           : e            ? sys_error(e, "mkdir", r->path, NULL)
                          : NULL;
}

struct dirlist {
    size_t n, cap;
    pact_dirent *v;
};

static void dirlist_free(void *p)
{
    struct dirlist *l = p;
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->v[i].name);
    free(l->v);
    free(l);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const pact_dirent *)a)->name,
                  ((const pact_dirent *)b)->name);
}

static pact_file_type dtype(DIR *d, const struct dirent *e)
{
    switch (e->d_type) {
    case DT_REG:
        return PACT_FILE_REGULAR;
    case DT_DIR:
        return PACT_FILE_DIR;
    case DT_LNK:
        return PACT_FILE_SYMLINK;
    case DT_FIFO:
        return PACT_FILE_FIFO;
    case DT_SOCK:
        return PACT_FILE_SOCKET;
    case DT_CHR:
        return PACT_FILE_CHAR;
    case DT_BLK:
        return PACT_FILE_BLOCK;
    default: { /* the file system does not say: ask */
        struct stat st;
        return fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
                   ? type_of(st.st_mode)
                   : PACT_FILE_UNKNOWN;
    }
    }
}

/* Add @p e to @p l. @return false without memory. */
static bool dirlist_add(struct dirlist *l, DIR *d, const struct dirent *e,
                        bool types)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        pact_dirent *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    char *name = strdup(e->d_name);
    if (!name)
        return false;
    l->v[l->n++] = (pact_dirent){name, types ? dtype(d, e) : PACT_FILE_UNKNOWN};
    return true;
}

static pact_error *job_readdir(pact_job *job, void *arg, pact_value *result)
{
    struct req *r = arg;
    DIR *d = opendir(r->path);
    if (!d)
        return sys_error(errno, "scandir", r->path, NULL);
    struct dirlist *l = calloc(1, sizeof *l);
    pact_error *err = l ? NULL : pact__enomem();
    while (!err) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                err = sys_error(errno, "scandir", r->path, NULL);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!dirlist_add(l, d, e, r->flags & PACT_FS_TYPES))
            err = pact__enomem();
        else if (!(l->n & 1023) && pact_job_cancelled(job))
            err = cancelled();
    }
    closedir(d);
    if (err) {
        if (l)
            dirlist_free(l);
        return err;
    }
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, by_name);
    *result = pact_owned(l, dirlist_free);
    return NULL;
}

/* An open descriptor as an owned value (fd + 1: never a NULL pointer), so
 * that the pool closes it if the callback will not get it. */
static void close_fd_value(void *p)
{
    close((int)((intptr_t)p - 1));
}

static pact_error *job_open(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    struct req *r = arg;
    int fd = open(r->path, r->oflags | O_CLOEXEC, mode_or(r, 0666));
    if (fd < 0)
        return sys_error(errno, "open", r->path, NULL);
    *result = pact_owned((void *)((intptr_t)fd + 1), close_fd_value);
    return NULL;
}

static pact_error *job_read(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    struct req *r = arg;
    ssize_t n;
    do
        n = r->pos < 0 ? read(r->fd, r->buf, r->len)
                       : pread(r->fd, r->buf, r->len, (off_t)r->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return fd_error(errno, "read", r->fd);
    *result = pact_int(n);
    return NULL;
}

static pact_error *job_write(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    struct req *r = arg;
    int e = write_all(r->fd, r->data, r->len, r->pos);
    if (e)
        return fd_error(e, "write", r->fd);
    *result = pact_int((int64_t)r->len);
    return NULL;
}

static pact_error *job_close(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)result;
    struct req *r = arg;
    /* on Linux the descriptor is gone even after EINTR: never retry */
    return close(r->fd) < 0 && errno != EINTR ? fd_error(errno, "close", r->fd)
                                              : NULL;
}

/* ---- the operations' table ----------------------------------------------- */

static const struct fs_op {
    const char *name, *twin; /* for misuse reports */
    pact_offload_fn job;
    enum result result;
} ops[] = {
    [OP_READ_FILE] = {"pact_fs_read_file", "pact_fs_read_file_p", job_read_file,
                      R_DATA},
    [OP_WRITE_FILE] = {"pact_fs_write_file", "pact_fs_write_file_p",
                       job_write_file, R_NONE},
    [OP_APPEND] = {"pact_fs_append", "pact_fs_append_p", job_append, R_NONE},
    [OP_READ_JSON] = {"pact_fs_read_json", "pact_fs_read_json_p", job_read_json,
                      R_JSON},
    [OP_STAT] = {"pact_fs_stat", "pact_fs_stat_p", job_stat, R_STAT},
    [OP_UNLINK] = {"pact_fs_unlink", "pact_fs_unlink_p", job_unlink, R_NONE},
    [OP_RENAME] = {"pact_fs_rename", "pact_fs_rename_p", job_rename, R_NONE},
    [OP_MKDIR] = {"pact_fs_mkdir", "pact_fs_mkdir_p", job_mkdir, R_NONE},
    [OP_RMDIR] = {"pact_fs_rmdir", "pact_fs_rmdir_p", job_rmdir, R_NONE},
    [OP_READDIR] = {"pact_fs_readdir", "pact_fs_readdir_p", job_readdir, R_DIR},
    [OP_OPEN] = {"pact_fs_open", "pact_fs_open_p", job_open, R_FD},
    [OP_READ] = {"pact_fs_read", "pact_fs_read_p", job_read, R_SIZE},
    [OP_WRITE] = {"pact_fs_write", "pact_fs_write_p", job_write, R_SIZE},
    [OP_CLOSE] = {"pact_fs_close", "pact_fs_close_p", job_close, R_NONE},
};

/* ---- the loop thread's side ---------------------------------------------- */

/* Hand the job's outcome to the operation's callback, then free the
 * request. */
static void done(pact_error *err, pact_value *result, void *ud)
{
    struct req *r = ud;
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
        if (!err) { /* the descriptor is the callee's now */
            fd = (int)((intptr_t)result->u.owned.ptr - 1);
            *result = pact_nothing();
        }
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
                      .ud_drop = ud_drop};
    char *p = r->mem;
    if (n1)
        r->path = memcpy(p, s->path, n1);
    if (n2)
        r->path2 = memcpy(p + n1, s->path2, n2);
    if (nd)
        r->data = memcpy(p + n1 + n2, s->data, nd);
    pact_offload_opts o = {.lane = PACT_LANE_BLOCKING,
                           .abort = s->opts ? s->opts->abort : NULL};
    int rc =
        pact__offload(loop, ops[s->op].job, r, &o, done, r, drop_req, name);
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
        .op = (o), .path = (p), .opts = opts                                   \
    }
#define DATA_SPEC(o, p)                                                        \
    {                                                                          \
        .op = (o), .path = (p), .data = data, .len = len, .opts = opts         \
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
    struct spec s = {.op = OP_RENAME, .path = from, .path2 = to, .opts = opts};
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_rename_p(pact_loop *loop, const char *from,
                               const char *to, const pact_fs_opts *opts)
{
    struct spec s = {.op = OP_RENAME, .path = from, .path2 = to, .opts = opts};
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
    struct spec s = {
        .op = OP_OPEN, .path = path, .oflags = flags, .opts = opts};
    s.cb.fd = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_open_p(pact_loop *loop, const char *path, int flags,
                             const pact_fs_opts *opts)
{
    struct spec s = {
        .op = OP_OPEN, .path = path, .oflags = flags, .opts = opts};
    return twin(loop, &s);
}

#define FD_SPEC(o, b)                                                          \
    {                                                                          \
        .op = (o), .fd = fd, b, .len = len, .pos = pos, .opts = opts           \
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
    struct spec s = {.op = OP_CLOSE, .fd = fd, .opts = opts};
    s.cb.none = cb;
    return call(loop, &s, ud);
}

pact_promise *pact_fs_close_p(pact_loop *loop, int fd, const pact_fs_opts *opts)
{
    struct spec s = {.op = OP_CLOSE, .fd = fd, .opts = opts};
    return twin(loop, &s);
}
