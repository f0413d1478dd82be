/* File operations, the pool threads' side: each operation's job, which
 * makes the system calls and hands back a value that may cross threads
 * (bytes, owned pointers, JSON) or an error naming the call and the path
 * as Node's do. Nothing here touches a loop. A job that is cancelled while
 * it runs is not interrupted; the jobs of several steps stop at the next
 * one (pact_job_cancelled). fs_internal.h says which value each job makes;
 * fs.c submits them. */
#include "fs_internal.h"

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
 * behind (unless the process dies: doc/fs.md). Errors name the caller's
 * path, never the temporary one, which the caller never saw. */
static pact_error *write_atomic(pact_job *job, struct req *r)
{
    struct stat st;
    bool keep_mode =
        !r->mode && lstat(r->path, &st) == 0 && S_ISREG(st.st_mode);
    /* never more open than the file it replaces, even for a moment (the
     * umask may take bits away: fchmod puts them back) */
    unsigned mode = keep_mode ? st.st_mode & 0777 : mode_or(r, 0666);
    char *tmp = NULL;
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        free(tmp);
        if (!(tmp = temp_name(r->path)))
            return pact__enomem();
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    pact_error *err = NULL;
    if (fd < 0) {
        err = sys_error(errno, "open", r->path, NULL);
        free(tmp);
        return err;
    }
    if (keep_mode && fchmod(fd, st.st_mode & 07777) < 0)
        err = sys_error(errno, "fchmod", r->path, NULL);
    if (err)
        close(fd);
    else
        err = fill_and_close(fd, r, r->path, true);
    if (!err && pact_job_cancelled(job)) /* the old content stays */
        err = cancelled();
    bool excl = r->flags & PACT_FS_EXCL;
    if (!err && (excl ? link(tmp, r->path) : rename(tmp, r->path)) < 0)
        err = sys_error(errno, excl ? "link" : "rename", r->path, NULL);
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

/* Release of a descriptor's value (see pact__fs_fd). */
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

const pact_offload_fn pact__fs_jobs[] = {
    [OP_READ_FILE] = job_read_file, [OP_WRITE_FILE] = job_write_file,
    [OP_APPEND] = job_append,       [OP_READ_JSON] = job_read_json,
    [OP_STAT] = job_stat,           [OP_UNLINK] = job_unlink,
    [OP_RENAME] = job_rename,       [OP_MKDIR] = job_mkdir,
    [OP_RMDIR] = job_rmdir,         [OP_READDIR] = job_readdir,
    [OP_OPEN] = job_open,           [OP_READ] = job_read,
    [OP_WRITE] = job_write,         [OP_CLOSE] = job_close,
};
