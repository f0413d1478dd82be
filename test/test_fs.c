/* File operations on real files in a fresh temporary directory (removed at
 * teardown), in the three styles: callbacks, promises, and a task that
 * awaits. Failures come from the file system itself (ENOENT, EACCES, EISDIR,
 * ENOTDIR, EEXIST, ENOTEMPTY, EBADF), each checked for its code and for a
 * message that names the call and the path. Also: atomic replacement
 * against a concurrent reader, recursive mkdir, large files and large
 * directories, read_json, cancellation of queued operations behind a
 * blocking lane held full at a gate, and close_all/free with operations
 * pending. Callbacks here only record what they got; the test asserts after
 * the loop has run (and the EACCES checks, which may run in a child that
 * dropped root's privileges, assert nothing through Check there). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

/* ---- the temporary directory --------------------------------------------- */

static char tmpdir[256];
static pthread_t loop_thread;

/* @return tmpdir/<name> (printf-style), in one of a ring of buffers. */
static const char *P(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
    static char ring[16][512];
    static int next;
    char *out = ring[next++ % 16];
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(out, 512, "%s/%s", tmpdir, name);
    return out;
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    chmod(path, 0700); /* the EACCES test locks some */
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static void setup(void)
{
    t_setup();
    loop_thread = pthread_self();
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/pact-fs-XXXXXX",
             base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    rm_rf(tmpdir);
    t_teardown();
}

/* Synchronous helpers for setting up and checking. */
static void put(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void puts_(const char *path, const char *text)
{
    put(path, text, strlen(text));
}

/* The whole file (malloc'd, NUL after it), or NULL if it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t got;
    while (buf && (got = read(fd, buf + n, cap - n)) > 0)
        if ((n += (size_t)got) == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    close(fd);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The names in @p dir, sorted, joined with ',' (malloc'd). */
static char *listing(const char *dir)
{
    struct dirent **v;
    int n = scandir(dir, &v, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    size_t cap = 1, len = 0;
    char *s = calloc(1, 1);
    for (int i = 0; i < n; i++) {
        const char *name = v[i]->d_name;
        if (strcmp(name, ".") && strcmp(name, "..")) {
            size_t k = strlen(name);
            s = realloc(s, cap += k + 1);
            len += (size_t)sprintf(s + len, "%s%s", len ? "," : "", name);
        }
        free(v[i]);
    }
    free(v);
    return s;
}

static void run(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* ---- recording outcomes (no assertions inside: see the top) -------------- */

struct rec {
    int calls, off_thread;
    int code; /* 0: success */
    char *msg;
    pact_value v; /* read_file's data (moved), an fd or a count (PACT_INT),
                     a promise's value (a copy) */
    pact_stat st;
    char *names; /* readdir: "a,b" or, with types, "a:file,b:dir" */
    size_t n;
    json_t *json;
};

static void rec_err(struct rec *r, pact_error *err)
{
    r->calls++;
    if (!pthread_equal(pthread_self(), loop_thread))
        r->off_thread++;
    if (err) {
        r->code = pact_error_code(err);
        free(r->msg);
        r->msg = strdup(pact_error_message(err));
    }
}

static void rec_free(struct rec *r)
{
    free(r->msg);
    free(r->names);
    pact_value_release(&r->v);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static void rec_cb(pact_error *err, void *ud)
{
    rec_err(ud, err);
}

static void rec_data(pact_error *err, pact_value *data, void *ud)
{
    struct rec *r = ud;
    rec_err(r, err);
    r->v = *data; /* moved out: ours to release */
    *data = pact_nothing();
}

static void rec_stat(pact_error *err, const pact_stat *st, void *ud)
{
    struct rec *r = ud;
    rec_err(r, err);
    if (st)
        r->st = *st;
}

static void rec_dir(pact_error *err, const pact_dirent *v, size_t n, void *ud)
{
    struct rec *r = ud;
    rec_err(r, err);
    r->n = n;
    size_t cap = 1, len = 0;
    r->names = calloc(1, 1);
    for (size_t i = 0; i < n; i++) {
        const char *t = v[i].type ? pact_fs_type_name(v[i].type) : NULL;
        r->names = realloc(r->names, cap += strlen(v[i].name) + 12);
        len += (size_t)sprintf(r->names + len, "%s%s%s%s", i ? "," : "",
                               v[i].name, t ? ":" : "", t ? t : "");
    }
}

static void rec_fd(pact_error *err, int fd, void *ud)
{
    struct rec *r = ud;
    rec_err(r, err);
    r->v = pact_int(fd);
}

static void rec_size(pact_error *err, size_t n, void *ud)
{
    struct rec *r = ud;
    rec_err(r, err);
    r->v = pact_int((int64_t)n);
}

static void rec_json(pact_error *err, json_t *json, void *ud)
{
    struct rec *r = ud;
    rec_err(r, err);
    r->json = json_incref(json);
}

static void rec_promise(pact_error *err, const pact_value *v, void *ud)
{
    struct rec *r = ud;
    rec_err(r, err);
    if (!err)
        r->v = pact_value_copy(v);
}

/* Record @p p's outcome into @p r (marks it handled) and drop it. */
static void expect(pact_promise *p, struct rec *r)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_callback(p, rec_promise, r), 0);
    pact_promise_unref(p);
}

/* The message Node would give, without the code's name. */
static char *node_msg(const char *text, const char *call, const char *path)
{
    char *s;
    ck_assert_int_ge(asprintf(&s, "%s, %s '%s'", text, call, path), 0);
    return s;
}

#define ck_assert_failed(r, want_code, text, call, path)                       \
    do {                                                                       \
        ck_assert_int_eq((r)->calls, 1);                                       \
        ck_assert_str_eq(pact_err_name((r)->code), pact_err_name(want_code));  \
        char *m_ = node_msg((text), (call), (path));                           \
        ck_assert_str_eq((r)->msg, m_);                                        \
        free(m_);                                                              \
    } while (0)

/* ---- whole files, in each style ------------------------------------------ */

START_TEST(files_with_callbacks)
{
    struct rec w = {0}, a1 = {0}, a2 = {0}, rd = {0}, st = {0}, un = {0},
               gone = {0};
    const char *f = P("notes.txt");
    ck_assert_int_eq(
        pact_fs_write_file(t_loop, f, "hello", 5, NULL, rec_cb, &w), 0);
    ck_assert_int_eq(w.calls, 0); /* never inside the call */
    run();
    ck_assert_int_eq(w.calls, 1);
    ck_assert_int_eq(w.code, 0);
    /* appends in sequence: the second after the first's callback */
    ck_assert_int_eq(pact_fs_append(t_loop, f, ", ", 2, NULL, rec_cb, &a1), 0);
    run();
    ck_assert_int_eq(pact_fs_append(t_loop, f, "world", 5, NULL, rec_cb, &a2),
                     0);
    run();
    ck_assert_int_eq(a1.calls + a2.calls, 2);
    ck_assert_int_eq(a1.code | a2.code, 0);
    ck_assert_int_eq(pact_fs_read_file(t_loop, f, NULL, rec_data, &rd), 0);
    ck_assert_int_eq(pact_fs_stat(t_loop, f, NULL, rec_stat, &st), 0);
    run();
    ck_assert_int_eq(rd.calls, 1);
    ck_assert_int_eq(rd.off_thread, 0);
    ck_assert_int_eq(rd.v.kind, PACT_BYTES);
    ck_assert_uint_eq(rd.v.u.bytes.len, 12);
    ck_assert_str_eq(rd.v.u.bytes.data, "hello, world"); /* NUL after it */
    ck_assert_int_eq(st.calls, 1);
    ck_assert_int_eq(st.st.type, PACT_FILE_REGULAR);
    ck_assert_uint_eq(st.st.size, 12);
    struct stat want;
    ck_assert_int_eq(stat(f, &want), 0);
    ck_assert_uint_eq(st.st.mode, want.st_mode & 07777);
    ck_assert_uint_eq(st.st.ino, want.st_ino);
    ck_assert_int_eq(st.st.mtime_ns, (int64_t)want.st_mtim.tv_sec * 1000000000 +
                                         want.st_mtim.tv_nsec);
    ck_assert_uint_eq(st.st.nlink, 1);
    /* a copy of the path was taken: the caller's buffer may change at once */
    char path[512];
    snprintf(path, sizeof path, "%s", f);
    ck_assert_int_eq(pact_fs_unlink(t_loop, path, NULL, rec_cb, &un), 0);
    memset(path, 'x', 20);
    run();
    ck_assert_int_eq(un.calls, 1);
    ck_assert_int_eq(un.code, 0);
    ck_assert(!exists(f));
    ck_assert_int_eq(pact_fs_stat(t_loop, f, NULL, rec_stat, &gone), 0);
    run();
    ck_assert_failed(&gone, PACT_ENOENT, "no such file or directory", "stat",
                     f);
    struct rec *all[] = {&w, &a1, &a2, &rd, &st, &un, &gone};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}
END_TEST

START_TEST(files_with_promises)
{
    struct rec w = {0}, a = {0}, rd = {0}, st = {0}, mv = {0}, rd2 = {0},
               un = {0}, miss = {0};
    const char *f = P("p.txt"), *g = P("q.txt");
    char data[] = "promised";
    expect(pact_fs_write_file_p(t_loop, f, data, 8, NULL), &w);
    memset(data, 0, sizeof data); /* copied at submission */
    run();
    expect(pact_fs_append_p(t_loop, f, "!", 1, NULL), &a);
    run();
    expect(pact_fs_read_file_p(t_loop, f, NULL), &rd);
    expect(pact_fs_stat_p(t_loop, f, NULL), &st);
    run();
    ck_assert_int_eq(w.calls + a.calls + rd.calls + st.calls, 4);
    ck_assert_int_eq(w.code | a.code | rd.code | st.code, 0);
    ck_assert_int_eq(rd.v.kind, PACT_BYTES);
    ck_assert_str_eq(rd.v.u.bytes.data, "promised!");
    const pact_stat *s = pact_fs_stat_of(&st.v);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->size, 9);
    ck_assert_int_eq(s->type, PACT_FILE_REGULAR);
    ck_assert_ptr_null(pact_fs_stat_of(&rd.v));
    expect(pact_fs_rename_p(t_loop, f, g, NULL), &mv);
    run();
    ck_assert_int_eq(mv.code, 0);
    ck_assert(!exists(f));
    expect(pact_fs_read_file_p(t_loop, g, NULL), &rd2);
    expect(pact_fs_unlink_p(t_loop, f, NULL), &miss);
    run();
    ck_assert_str_eq(rd2.v.u.bytes.data, "promised!");
    ck_assert_failed(&miss, PACT_ENOENT, "no such file or directory", "unlink",
                     f);
    expect(pact_fs_unlink_p(t_loop, g, NULL), &un);
    run();
    ck_assert_int_eq(un.code, 0);
    char *l = listing(tmpdir);
    ck_assert_str_eq(l, "");
    free(l);
    struct rec *all[] = {&w, &a, &rd, &st, &mv, &rd2, &un, &miss};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}
END_TEST

/* A task does a little job with files, as straight-line code. */
static pact_error *files_task(void *arg, pact_value *result)
{
    (void)arg;
    pact_loop *loop = t_loop;
    pact_fs_opts rec = {.flags = PACT_FS_RECURSIVE};
    PACT_AWAIT_TRY(pact_fs_mkdir_p(loop, P("etc/app"), &rec), NULL);
    const char *cfg = P("etc/app/config.json");
    const char *text = "{\"name\": \"pact\", \"workers\": 4}";
    PACT_AWAIT_TRY(pact_fs_write_file_p(loop, cfg, text, strlen(text), NULL),
                   NULL);
    pact_value v;
    PACT_AWAIT_TRY(pact_fs_read_json_p(loop, cfg, NULL), &v);
    ck_assert_int_eq(v.kind, PACT_JSON);
    ck_assert_int_eq(json_integer_value(json_object_get(v.u.json, "workers")),
                     4);
    pact_value_release(&v);
    PACT_AWAIT_TRY(pact_fs_stat_p(loop, cfg, NULL), &v);
    ck_assert_uint_eq(pact_fs_stat_of(&v)->size, strlen(text));
    pact_value_release(&v);
    PACT_AWAIT_TRY(pact_fs_readdir_p(loop, P("etc"), NULL), &v);
    ck_assert_int_eq(v.kind, PACT_JSON);
    ck_assert_uint_eq(json_array_size(v.u.json), 1);
    ck_assert_str_eq(json_string_value(json_array_get(v.u.json, 0)), "app");
    pact_value_release(&v);
    PACT_AWAIT_TRY(pact_fs_rename_p(loop, cfg, P("etc/app/old.json"), NULL),
                   NULL);
    /* a failure comes back as an error to handle */
    pact_error *err = PACT_AWAIT_ERR(pact_fs_read_file_p(loop, cfg, NULL), &v);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(pact_error_code(err), PACT_ENOENT);
    pact_error_unref(err);
    err = PACT_AWAIT_ERR(pact_fs_rmdir_p(loop, P("etc/app"), NULL), NULL);
    ck_assert_int_eq(pact_error_code(err), PACT_ENOTEMPTY);
    pact_error_unref(err);
    PACT_AWAIT_TRY(pact_fs_unlink_p(loop, P("etc/app/old.json"), NULL), NULL);
    PACT_AWAIT_TRY(pact_fs_rmdir_p(loop, P("etc/app"), NULL), NULL);
    PACT_AWAIT_TRY(pact_fs_rmdir_p(loop, P("etc"), NULL), NULL);
    *result = pact_int(1);
    return NULL;
}

START_TEST(files_from_a_task)
{
    pact_promise *p = pact_task_spawn(t_loop, files_task, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    run();
    pact_error *err = pact_promise_error(p);
    if (err)
        pact_error_print(err, stderr);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
    char *l = listing(tmpdir);
    ck_assert_str_eq(l, "");
    free(l);
}
END_TEST

/* ---- failures ------------------------------------------------------------ */

START_TEST(failures_name_the_call_and_the_path)
{
    ck_assert_int_eq(mkdir(P("dir"), 0755), 0);
    ck_assert_int_eq(mkdir(P("full"), 0755), 0);
    ck_assert_int_eq(mkdir(P("other"), 0755), 0);
    puts_(P("full/x"), "x");
    puts_(P("other/y"), "y");
    puts_(P("file"), "content");
    struct rec enoent = {0}, isdir_read = {0}, isdir_unlink = {0},
               isdir_write = {0}, notdir_stat = {0}, notdir_readdir = {0},
               eexist_mkdir = {0}, eexist_excl = {0}, notempty_rmdir = {0},
               notempty_rename = {0}, rename_missing = {0}, open_missing = {0};
    pact_fs_opts excl = {.flags = PACT_FS_EXCL};
    ck_assert_int_eq(
        pact_fs_read_file(t_loop, P("missing"), NULL, rec_data, &enoent), 0);
    ck_assert_int_eq(
        pact_fs_read_file(t_loop, P("dir"), NULL, rec_data, &isdir_read), 0);
    ck_assert_int_eq(
        pact_fs_unlink(t_loop, P("dir"), NULL, rec_cb, &isdir_unlink), 0);
    ck_assert_int_eq(pact_fs_write_file(t_loop, P("dir"), "x", 1, NULL, rec_cb,
                                        &isdir_write),
                     0);
    ck_assert_int_eq(
        pact_fs_stat(t_loop, P("file/x"), NULL, rec_stat, &notdir_stat), 0);
    ck_assert_int_eq(
        pact_fs_readdir(t_loop, P("file"), NULL, rec_dir, &notdir_readdir), 0);
    ck_assert_int_eq(
        pact_fs_mkdir(t_loop, P("dir"), NULL, rec_cb, &eexist_mkdir), 0);
    ck_assert_int_eq(pact_fs_write_file(t_loop, P("file"), "new", 3, &excl,
                                        rec_cb, &eexist_excl),
                     0);
    ck_assert_int_eq(
        pact_fs_rmdir(t_loop, P("full"), NULL, rec_cb, &notempty_rmdir), 0);
    ck_assert_int_eq(pact_fs_rename(t_loop, P("other"), P("full"), NULL, rec_cb,
                                    &notempty_rename),
                     0);
    ck_assert_int_eq(pact_fs_rename(t_loop, P("nope"), P("nope2"), NULL, rec_cb,
                                    &rename_missing),
                     0);
    ck_assert_int_eq(pact_fs_open(t_loop, P("missing"), O_RDONLY, NULL, rec_fd,
                                  &open_missing),
                     0);
    run();
    ck_assert_failed(&enoent, PACT_ENOENT, "no such file or directory", "open",
                     P("missing"));
    ck_assert_int_eq(enoent.v.kind, PACT_NOTHING);
    ck_assert_failed(&isdir_read, PACT_EISDIR, "is a directory", "read",
                     P("dir"));
    ck_assert_failed(&isdir_unlink, PACT_EISDIR, "is a directory", "unlink",
                     P("dir"));
    ck_assert_failed(&isdir_write, PACT_EISDIR, "is a directory", "open",
                     P("dir"));
    ck_assert_failed(&notdir_stat, PACT_ENOTDIR, "not a directory", "stat",
                     P("file/x"));
    ck_assert_failed(&notdir_readdir, PACT_ENOTDIR, "not a directory",
                     "scandir", P("file"));
    ck_assert_uint_eq(notdir_readdir.n, 0);
    ck_assert_failed(&eexist_mkdir, PACT_EEXIST, "file exists", "mkdir",
                     P("dir"));
    ck_assert_failed(&eexist_excl, PACT_EEXIST, "file exists", "open",
                     P("file"));
    ck_assert_failed(&notempty_rmdir, PACT_ENOTEMPTY, "directory not empty",
                     "rmdir", P("full"));
    ck_assert_int_eq(notempty_rename.code, PACT_ENOTEMPTY);
    char want[1200];
    snprintf(want, sizeof want, "directory not empty, rename '%s' -> '%s'",
             P("other"), P("full"));
    ck_assert_str_eq(notempty_rename.msg, want);
    ck_assert_int_eq(rename_missing.code, PACT_ENOENT);
    ck_assert_int_eq(open_missing.code, PACT_ENOENT);
    ck_assert_int_eq(open_missing.v.u.i, -1);
    /* nothing changed */
    char *c = slurp(P("file"), NULL);
    ck_assert_str_eq(c, "content");
    free(c);
    ck_assert(exists(P("other/y")));
    /* pact_error_print gives Node's text: code, message */
    struct rec handled = {0};
    pact_promise *p = pact_fs_read_file_p(t_loop, P("missing"), NULL);
    ck_assert_int_eq(pact_promise_callback(p, rec_promise, &handled), 0);
    run();
    ck_assert_int_eq(handled.code, PACT_ENOENT);
    rec_free(&handled);
    char *text = t_error_text(pact_promise_error(p));
    char head[700];
    snprintf(head, sizeof head,
             "ENOENT: no such file or directory, open '%s' (at ", P("missing"));
    ck_assert_msg(strncmp(text, head, strlen(head)) == 0, "%s", text);
    free(text);
    pact_promise_unref(p);
    struct rec *all[] = {&enoent,          &isdir_read,     &isdir_unlink,
                         &isdir_write,     &notdir_stat,    &notdir_readdir,
                         &eexist_mkdir,    &eexist_excl,    &notempty_rmdir,
                         &notempty_rename, &rename_missing, &open_missing};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}
END_TEST

/* EACCES: checks that assert nothing through Check, so that they can run in
 * a child process that gave up root's privileges (root passes permission
 * checks). The first failure is kept in acc_fail. */
static char acc_fail[2048];

#define EXPECT(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond) && !acc_fail[0]) {                                         \
            int n_ = snprintf(acc_fail, sizeof acc_fail,                       \
                              "line %d: %s: ", __LINE__, #cond);               \
            snprintf(acc_fail + n_, sizeof acc_fail - (size_t)n_,              \
                     __VA_ARGS__);                                             \
        }                                                                      \
    } while (0)

static void expect_eacces(const struct rec *r, const char *call,
                          const char *path, int line)
{
    char want[700];
    snprintf(want, sizeof want, "permission denied, %s '%s'", call, path);
    EXPECT(r->calls == 1, "line %d: %d calls", line, r->calls);
    EXPECT(r->code == PACT_EACCES, "line %d: %s", line, pact_err_name(r->code));
    EXPECT(r->msg && (!path || !strcmp(r->msg, want)), "line %d: '%s'", line,
           r->msg ? r->msg : "(none)");
}

static pact_error *open_secret_task(void *arg, pact_value *result)
{
    pact_loop *loop = arg;
    pact_error *err = PACT_AWAIT_ERR(
        pact_fs_open_p(loop, P("acc/secret"), O_RDONLY, NULL), result);
    return err;
}

static void acc_checks(void)
{
    pact_loop *loop;
    EXPECT(pact_loop_new(&loop) == 0, "no loop");
    if (acc_fail[0])
        return;
    struct rec rd = {0}, wr = {0}, ls = {0}, st = {0}, mk = {0}, at = {0},
               un = {0}, op = {0};
    pact_fs_opts atomic = {.flags = PACT_FS_ATOMIC};
    pact_fs_read_file(loop, P("acc/secret"), NULL, rec_data, &rd);
    pact_promise *p = pact_fs_write_file_p(loop, P("acc/secret"), "x", 1, NULL);
    pact_promise_callback(p, rec_promise, &wr);
    pact_promise_unref(p);
    pact_fs_readdir(loop, P("acc/locked"), NULL, rec_dir, &ls);
    pact_fs_stat(loop, P("acc/locked/x"), NULL, rec_stat, &st);
    pact_fs_mkdir(loop, P("acc/ro/sub"), NULL, rec_cb, &mk);
    pact_fs_write_file(loop, P("acc/ro/file"), "new", 3, &atomic, rec_cb, &at);
    pact_fs_unlink(loop, P("acc/ro/file"), NULL, rec_cb, &un);
    pact_promise *t = pact_task_spawn(loop, open_secret_task, loop, NULL);
    pact_promise_callback(t, rec_promise, &op);
    pact_promise_unref(t);
    EXPECT(pact_loop_run(loop, PACT_RUN_DEFAULT) == 0, "run");
    expect_eacces(&rd, "open", P("acc/secret"), __LINE__);
    expect_eacces(&wr, "open", P("acc/secret"), __LINE__);
    expect_eacces(&ls, "scandir", P("acc/locked"), __LINE__);
    expect_eacces(&st, "stat", P("acc/locked/x"), __LINE__);
    expect_eacces(&mk, "mkdir", P("acc/ro/sub"), __LINE__);
    /* the temporary file could not be made: the caller's path is named */
    expect_eacces(&at, "open", P("acc/ro/file"), __LINE__);
    expect_eacces(&un, "unlink", P("acc/ro/file"), __LINE__);
    expect_eacces(&op, "open", P("acc/secret"), __LINE__);
    EXPECT(pact_loop_free(loop) == 0, "free");
    struct rec *all[] = {&rd, &wr, &ls, &st, &mk, &at, &un, &op};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}

START_TEST(eacces_even_for_root)
{
    ck_assert_int_eq(chmod(tmpdir, 0755), 0);
    ck_assert_int_eq(mkdir(P("acc"), 0755), 0);
    ck_assert_int_eq(mkdir(P("acc/locked"), 0755), 0);
    ck_assert_int_eq(mkdir(P("acc/ro"), 0755), 0);
    puts_(P("acc/secret"), "secret");
    puts_(P("acc/locked/x"), "x");
    puts_(P("acc/ro/file"), "old");
    ck_assert_int_eq(chmod(P("acc/secret"), 0), 0);
    ck_assert_int_eq(chmod(P("acc/locked"), 0), 0);
    ck_assert_int_eq(chmod(P("acc/ro"), 0555), 0);
    acc_fail[0] = '\0';
    if (geteuid() != 0) {
        acc_checks();
    } else {
        /* Root is not refused: check as nobody, in a child (before this
         * process has pool threads: the child has only the forking one). */
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
                setuid(65534) < 0)
                snprintf(acc_fail, sizeof acc_fail, "could not drop to 65534");
            else
                acc_checks();
            if (acc_fail[0])
                fprintf(stderr, "eacces (as uid 65534): %s\n", acc_fail);
            _exit(acc_fail[0] ? 1 : 0);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "the unprivileged checks failed (stderr says why)");
    }
    ck_assert_msg(!acc_fail[0], "%s", acc_fail);
    /* nothing changed, and the atomic write left no temporary file */
    char *l = listing(P("acc/ro"));
    ck_assert_str_eq(l, "file");
    free(l);
    char *c = slurp(P("acc/ro/file"), NULL);
    ck_assert_str_eq(c, "old");
    free(c);
}
END_TEST

/* ---- atomic replacement -------------------------------------------------- */

enum { A_LEN = 1000, B_LEN = 3000, REPLACEMENTS = 40 };

struct reader {
    const char *path;
    atomic_bool stop;
    atomic_int reads, torn, as, bs;
};

/* Read the file over and over while it is replaced: every read must be one
 * whole version. */
static void *read_while_replaced(void *arg)
{
    struct reader *r = arg;
    while (!atomic_load(&r->stop)) {
        size_t len;
        char *s = slurp(r->path, &len);
        if (!s) {
            atomic_fetch_add(&r->torn, 1); /* never missing either */
            continue;
        }
        char c = len ? s[0] : '?';
        bool whole = (c == 'a' && len == A_LEN) || (c == 'b' && len == B_LEN);
        for (size_t i = 0; whole && i < len; i++)
            whole = s[i] == c;
        atomic_fetch_add(whole ? (c == 'a' ? &r->as : &r->bs) : &r->torn, 1);
        atomic_fetch_add(&r->reads, 1);
        free(s);
    }
    return NULL;
}

struct replacer {
    const char *path;
    char *a, *b;
    int done, failed;
};

static void replace_next(pact_error *err, void *ud)
{
    struct replacer *w = ud;
    if (err)
        w->failed++;
    if (++w->done == REPLACEMENTS)
        return;
    bool a = w->done & 1;
    pact_fs_opts o = {.flags = PACT_FS_ATOMIC};
    if (pact_fs_write_file(t_loop, w->path, a ? w->a : w->b, a ? A_LEN : B_LEN,
                           &o, replace_next, w) < 0)
        w->failed++;
}

START_TEST(atomic_write_is_old_or_new)
{
    static struct reader r;
    static struct replacer w;
    memset(&r, 0, sizeof r);
    memset(&w, 0, sizeof w);
    const char *f = P("state");
    w.path = r.path = f;
    w.a = malloc(A_LEN);
    w.b = malloc(B_LEN);
    memset(w.a, 'a', A_LEN);
    memset(w.b, 'b', B_LEN);
    put(f, w.b, B_LEN);
    ck_assert_int_eq(chmod(f, 0640), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, read_while_replaced, &r), 0);
    w.done = -1;
    replace_next(NULL, &w); /* the first write */
    run();
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.done, REPLACEMENTS);
    ck_assert_int_eq(w.failed, 0);
    ck_assert_int_eq(atomic_load(&r.torn), 0);
    ck_assert_int_gt(atomic_load(&r.reads), 0);
    /* the last version is in place, with the old file's permissions, and
     * no temporary file stayed behind */
    size_t len;
    char *s = slurp(f, &len);
    ck_assert_uint_eq(len, (REPLACEMENTS - 1) & 1 ? A_LEN : B_LEN);
    free(s);
    struct stat st;
    ck_assert_int_eq(stat(f, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0640);
    char *l = listing(tmpdir);
    ck_assert_str_eq(l, "state");
    free(l);
    free(w.a);
    free(w.b);
}
END_TEST

START_TEST(atomic_write_failures_leave_nothing_behind)
{
    ck_assert_int_eq(mkdir(P("dir"), 0755), 0);
    puts_(P("keep"), "old");
    struct rec onto_dir = {0}, excl = {0}, no_parent = {0}, fresh = {0},
               excl_new = {0};
    pact_fs_opts atomic = {.flags = PACT_FS_ATOMIC};
    pact_fs_opts atomic_excl = {.flags = PACT_FS_ATOMIC | PACT_FS_EXCL};
    pact_fs_opts atomic_mode = {.flags = PACT_FS_ATOMIC, .mode = 0600};
    ck_assert_int_eq(pact_fs_write_file(t_loop, P("dir"), "new", 3, &atomic,
                                        rec_cb, &onto_dir),
                     0);
    ck_assert_int_eq(pact_fs_write_file(t_loop, P("keep"), "new", 3,
                                        &atomic_excl, rec_cb, &excl),
                     0);
    ck_assert_int_eq(pact_fs_write_file(t_loop, P("none/f"), "new", 3, &atomic,
                                        rec_cb, &no_parent),
                     0);
    ck_assert_int_eq(pact_fs_write_file(t_loop, P("fresh"), "new", 3,
                                        &atomic_mode, rec_cb, &fresh),
                     0);
    ck_assert_int_eq(pact_fs_write_file(t_loop, P("excl"), "", 0, &atomic_excl,
                                        rec_cb, &excl_new),
                     0);
    run();
    /* the rename (or link) failed after the temporary file was written */
    /* each names the caller's path, not the temporary one */
    char *want = NULL;
    ck_assert_int_ge(asprintf(&want, "rename '%s'", P("dir")), 0);
    ck_assert_ptr_nonnull(strstr(onto_dir.msg, want));
    free(want);
    ck_assert_int_eq(onto_dir.code, PACT_EISDIR);
    ck_assert_int_ge(asprintf(&want, "link '%s'", P("keep")), 0);
    ck_assert_ptr_nonnull(strstr(excl.msg, want));
    free(want);
    ck_assert_int_eq(excl.code, PACT_EEXIST);
    ck_assert_int_ge(asprintf(&want, "open '%s'", P("none/f")), 0);
    ck_assert_ptr_nonnull(strstr(no_parent.msg, want));
    free(want);
    ck_assert_int_eq(no_parent.code, PACT_ENOENT);
    ck_assert_ptr_null(strstr(onto_dir.msg, ".tmp"));
    ck_assert_int_eq(fresh.code, 0);
    ck_assert_int_eq(excl_new.code, 0);
    char *l = listing(tmpdir);
    ck_assert_str_eq(l, "dir,excl,fresh,keep");
    free(l);
    l = listing(P("dir"));
    ck_assert_str_eq(l, "");
    free(l);
    char *c = slurp(P("keep"), NULL);
    ck_assert_str_eq(c, "old");
    free(c);
    struct stat st;
    ck_assert_int_eq(stat(P("fresh"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(P("excl"), &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    struct rec *all[] = {&onto_dir, &excl, &no_parent, &fresh, &excl_new};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}
END_TEST

/* PACT_FS_SYNC cannot be seen to work without a crash; it must not fail. */
START_TEST(sync_writes)
{
    struct rec w = {0}, a = {0};
    pact_fs_opts sync = {.flags = PACT_FS_SYNC};
    ck_assert_int_eq(
        pact_fs_write_file(t_loop, P("s"), "ab", 2, &sync, rec_cb, &w), 0);
    run();
    ck_assert_int_eq(pact_fs_append(t_loop, P("s"), "c", 1, &sync, rec_cb, &a),
                     0);
    run();
    ck_assert_int_eq(w.code | a.code, 0);
    char *c = slurp(P("s"), NULL);
    ck_assert_str_eq(c, "abc");
    free(c);
    rec_free(&w);
    rec_free(&a);
}
END_TEST

/* ---- directories --------------------------------------------------------- */

START_TEST(mkdir_recursive)
{
    puts_(P("file"), "x");
    pact_fs_opts p = {.flags = PACT_FS_RECURSIVE, .mode = 0750};
    struct rec deep = {0}, again = {0}, slash = {0}, onto_file = {0},
               through_file = {0}, plain_missing = {0}, plain_ok = {0};
    ck_assert_int_eq(pact_fs_mkdir(t_loop, P("a/b/c/d"), &p, rec_cb, &deep), 0);
    run();
    ck_assert_int_eq(pact_fs_mkdir(t_loop, P("a/b/c/d"), &p, rec_cb, &again),
                     0);
    ck_assert_int_eq(pact_fs_mkdir(t_loop, P("a/b/e//f/"), &p, rec_cb, &slash),
                     0);
    ck_assert_int_eq(pact_fs_mkdir(t_loop, P("file"), &p, rec_cb, &onto_file),
                     0);
    ck_assert_int_eq(
        pact_fs_mkdir(t_loop, P("file/sub/x"), &p, rec_cb, &through_file), 0);
    ck_assert_int_eq(
        pact_fs_mkdir(t_loop, P("nowhere/n"), NULL, rec_cb, &plain_missing),
        0); /* its parent is never made: operations run in parallel */
    ck_assert_int_eq(pact_fs_mkdir(t_loop, P("m"), NULL, rec_cb, &plain_ok), 0);
    run();
    ck_assert_int_eq(deep.code, 0);
    ck_assert_int_eq(again.code, 0); /* exists already: fine, as Node */
    ck_assert_int_eq(slash.code, 0);
    struct stat st;
    ck_assert_int_eq(stat(P("a/b/c/d"), &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    mode_t mask = umask(0);
    umask(mask);
    ck_assert_uint_eq(st.st_mode & 0777, 0750 & ~mask);
    ck_assert(exists(P("a/b/e/f")));
    ck_assert_failed(&onto_file, PACT_EEXIST, "file exists", "mkdir",
                     P("file"));
    ck_assert_failed(&through_file, PACT_ENOTDIR, "not a directory", "mkdir",
                     P("file/sub/x"));
    ck_assert_failed(&plain_missing, PACT_ENOENT, "no such file or directory",
                     "mkdir", P("nowhere/n"));
    ck_assert_int_eq(plain_ok.code, 0);
    struct rec *all[] = {&deep,         &again,         &slash,   &onto_file,
                         &through_file, &plain_missing, &plain_ok};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}
END_TEST

enum { MANY = 3000 };

START_TEST(readdir_many_entries)
{
    ck_assert_int_eq(mkdir(P("many"), 0755), 0);
    for (int i = 0; i < MANY; i++) {
        int fd = open(P("many/f%05d", MANY - 1 - i), O_CREAT | O_WRONLY, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
    }
    ck_assert_int_eq(mkdir(P("many/zdir"), 0755), 0);
    ck_assert_int_eq(symlink("f00000", P("many/zlink")), 0);
    ck_assert_int_eq(mkfifo(P("many/zpipe"), 0644), 0);
    struct rec names = {0}, typed = {0}, pnames = {0}, ptyped = {0},
               empty = {0};
    pact_fs_opts types = {.flags = PACT_FS_TYPES};
    ck_assert_int_eq(pact_fs_readdir(t_loop, P("many"), NULL, rec_dir, &names),
                     0);
    ck_assert_int_eq(
        pact_fs_readdir(t_loop, P("many"), &types, rec_dir, &typed), 0);
    expect(pact_fs_readdir_p(t_loop, P("many"), NULL), &pnames);
    expect(pact_fs_readdir_p(t_loop, P("many"), &types), &ptyped);
    ck_assert_int_eq(
        pact_fs_readdir(t_loop, P("many/zdir"), NULL, rec_dir, &empty), 0);
    run();
    ck_assert_int_eq(names.code | typed.code | pnames.code | ptyped.code, 0);
    ck_assert_uint_eq(names.n, MANY + 3);
    /* sorted, no "." or "..", types where asked */
    ck_assert(strncmp(names.names, "f00000,f00001,", 14) == 0);
    ck_assert_ptr_nonnull(strstr(names.names, ",f02999,zdir,zlink,zpipe"));
    ck_assert(strncmp(typed.names, "f00000:file,f00001:file,", 24) == 0);
    ck_assert_ptr_nonnull(
        strstr(typed.names, ",f02999:file,zdir:dir,zlink:symlink,zpipe:fifo"));
    ck_assert_int_eq(pnames.v.kind, PACT_JSON);
    json_t *a = pnames.v.u.json;
    ck_assert_uint_eq(json_array_size(a), MANY + 3);
    ck_assert_str_eq(json_string_value(json_array_get(a, 0)), "f00000");
    ck_assert_str_eq(json_string_value(json_array_get(a, MANY)), "zdir");
    json_t *t = ptyped.v.u.json;
    ck_assert_uint_eq(json_array_size(t), MANY + 3);
    json_t *e = json_array_get(t, MANY + 1);
    ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "zlink");
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")), "symlink");
    ck_assert_int_eq(empty.code, 0);
    ck_assert_uint_eq(empty.n, 0);
    ck_assert_str_eq(empty.names, "");
    struct rec *all[] = {&names, &typed, &pnames, &ptyped, &empty};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}
END_TEST

/* ---- large files --------------------------------------------------------- */

enum { BIG = 8 * 1024 * 1024 + 12345 };

static char *random_bytes(size_t n, unsigned seed)
{
    char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (char)x;
    }
    return b;
}

START_TEST(large_files_intact)
{
    char *big = random_bytes(BIG, 1);
    struct rec w = {0}, wn = {0}, wa = {0}, r1 = {0}, r2 = {0}, r3 = {0};
    pact_fs_opts nocopy = {.flags = PACT_FS_NOCOPY};
    pact_fs_opts atomic = {.flags = PACT_FS_ATOMIC};
    ck_assert_int_eq(
        pact_fs_write_file(t_loop, P("copy"), big, BIG, NULL, rec_cb, &w), 0);
    ck_assert_int_eq(
        pact_fs_write_file(t_loop, P("nocopy"), big, BIG, &nocopy, rec_cb, &wn),
        0);
    expect(pact_fs_write_file_p(t_loop, P("atomic"), big, BIG, &atomic), &wa);
    run();
    ck_assert_int_eq(w.code | wn.code | wa.code, 0);
    ck_assert_int_eq(pact_fs_read_file(t_loop, P("copy"), NULL, rec_data, &r1),
                     0);
    ck_assert_int_eq(
        pact_fs_read_file(t_loop, P("nocopy"), NULL, rec_data, &r2), 0);
    expect(pact_fs_read_file_p(t_loop, P("atomic"), NULL), &r3);
    run();
    struct rec *reads[] = {&r1, &r2, &r3};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(reads[i]->code, 0);
        ck_assert_uint_eq(reads[i]->v.u.bytes.len, BIG);
        ck_assert(memcmp(reads[i]->v.u.bytes.data, big, BIG) == 0);
        ck_assert_int_eq(((char *)reads[i]->v.u.bytes.data)[BIG], '\0');
    }
    struct stat st;
    ck_assert_int_eq(stat(P("atomic"), &st), 0);
    ck_assert_int_eq(st.st_size, BIG);
    struct rec *all[] = {&w, &wn, &wa, &r1, &r2, &r3};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
    free(big);
}
END_TEST

/* A growing file that is not regular: read to its end all the same. */
static void *feed_pipe(void *arg)
{
    const char *path = arg;
    int fd = open(path, O_WRONLY);
    char chunk[4096];
    memset(chunk, 'p', sizeof chunk);
    for (int i = 0; fd >= 0 && i < 100; i++)
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
            break;
    if (fd >= 0)
        close(fd);
    return NULL;
}

START_TEST(read_file_of_a_pipe)
{
    ck_assert_int_eq(mkfifo(P("pipe"), 0600), 0);
    struct rec r = {0};
    ck_assert_int_eq(pact_fs_read_file(t_loop, P("pipe"), NULL, rec_data, &r),
                     0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, feed_pipe, (void *)P("pipe")),
                     0);
    run();
    pthread_join(th, NULL);
    ck_assert_int_eq(r.code, 0);
    ck_assert_uint_eq(r.v.u.bytes.len, 100 * 4096);
    rec_free(&r);
}
END_TEST

/* ---- descriptors --------------------------------------------------------- */

START_TEST(descriptors_with_callbacks)
{
    struct rec op = {0}, w1 = {0}, w2 = {0}, pw = {0}, pr = {0}, cur = {0},
               cl = {0}, again = {0}, bad_read = {0}, ro = {0}, ro_write = {0},
               ro_close = {0};
    const char *f = P("fd.txt");
    ck_assert_int_eq(
        pact_fs_open(t_loop, f, O_RDWR | O_CREAT | O_TRUNC, NULL, rec_fd, &op),
        0);
    run();
    ck_assert_int_eq(op.code, 0);
    int fd = (int)op.v.u.i;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    /* at the current position, one after the other */
    ck_assert_int_eq(pact_fs_write(t_loop, fd, "hello ", 6, PACT_FS_CURRENT,
                                   NULL, rec_size, &w1),
                     0);
    run();
    ck_assert_int_eq(pact_fs_write(t_loop, fd, "world", 5, PACT_FS_CURRENT,
                                   NULL, rec_size, &w2),
                     0);
    run();
    ck_assert_int_eq(w1.v.u.i + w2.v.u.i, 11);
    /* positional: the position is left at the end */
    ck_assert_int_eq(pact_fs_write(t_loop, fd, "W", 1, 6, NULL, rec_size, &pw),
                     0);
    run();
    char buf[64] = {0};
    ck_assert_int_eq(
        pact_fs_read(t_loop, fd, buf, sizeof buf - 1, 0, NULL, rec_size, &pr),
        0);
    run();
    ck_assert_int_eq(pr.v.u.i, 11);
    ck_assert_str_eq(buf, "hello World");
    char more[8];
    ck_assert_int_eq(pact_fs_read(t_loop, fd, more, sizeof more,
                                  PACT_FS_CURRENT, NULL, rec_size, &cur),
                     0);
    run();
    ck_assert_int_eq(cur.code, 0);
    ck_assert_int_eq(cur.v.u.i, 0); /* at the end: EOF */
    ck_assert_int_eq(pact_fs_close(t_loop, fd, NULL, rec_cb, &cl), 0);
    run();
    ck_assert_int_eq(cl.code, 0);
    ck_assert_int_eq(pact_fs_close(t_loop, fd, NULL, rec_cb, &again), 0);
    ck_assert_int_eq(
        pact_fs_read(t_loop, fd, buf, 4, 0, NULL, rec_size, &bad_read), 0);
    run();
    char want[64];
    snprintf(want, sizeof want, "bad file descriptor, close (fd %d)", fd);
    ck_assert_int_eq(again.code, PACT_EBADF);
    ck_assert_str_eq(again.msg, want);
    ck_assert_int_eq(bad_read.code, PACT_EBADF);
    ck_assert_int_eq(bad_read.v.u.i, 0);
    /* read-only: writing fails with EBADF */
    ck_assert_int_eq(pact_fs_open(t_loop, f, O_RDONLY, NULL, rec_fd, &ro), 0);
    run();
    int rfd = (int)ro.v.u.i;
    ck_assert_int_eq(pact_fs_write(t_loop, rfd, "x", 1, PACT_FS_CURRENT, NULL,
                                   rec_size, &ro_write),
                     0);
    run();
    ck_assert_int_eq(ro_write.code, PACT_EBADF);
    ck_assert_int_eq(pact_fs_close(t_loop, rfd, NULL, rec_cb, &ro_close), 0);
    run();
    ck_assert_int_eq(ro_close.code, 0);
    struct rec *all[] = {&op, &w1,    &w2,       &pw, &pr,       &cur,
                         &cl, &again, &bad_read, &ro, &ro_write, &ro_close};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}
END_TEST

/* Only PACT_FS_CURRENT (-1) means the current position: any other negative
 * position is refused with PACT_EINVAL, in both styles, and nothing is
 * written (it once wrote "B" at the current offset). */
START_TEST(negative_position_refused)
{
    const char *f = P("pos.txt");
    int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "abc", 3), 3);
    struct rec r = {0}, twin = {0}, twin2 = {0};
    char buf[8];
    const int64_t bad[] = {-12345, INT64_MIN, -2};
    struct capture cap;
    capture_begin(&cap);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(
            pact_fs_write(t_loop, fd, "B", 1, bad[i], NULL, rec_size, &r),
            PACT_EINVAL);
        ck_assert_int_eq(
            pact_fs_read(t_loop, fd, buf, 1, bad[i], NULL, rec_size, &r),
            PACT_EINVAL);
    }
    ck_assert_int_eq(
        pact_fs_write(t_loop, fd, "B", 1, INT64_MAX, NULL, rec_size, &r),
        PACT_EINVAL);
    expect(pact_fs_write_p(t_loop, fd, "B", 1, -12345, NULL), &twin);
    expect(pact_fs_read_p(t_loop, fd, buf, 1, INT64_MIN, NULL), &twin2);
    run();
    free(capture_end(&cap));
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(twin.code, PACT_EINVAL);
    ck_assert_int_eq(twin2.code, PACT_EINVAL);
    char got[8] = {0};
    ck_assert_int_eq(pread(fd, got, sizeof got - 1, 0), 3);
    ck_assert_str_eq(got, "abc");
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 3);
    close(fd);
    rec_free(&r);
    rec_free(&twin);
    rec_free(&twin2);
}
END_TEST

/* Descriptors through promises, awaited by a task. */
static pact_error *descriptor_task(void *arg, pact_value *result)
{
    (void)arg;
    pact_loop *loop = t_loop;
    pact_fs_opts mode = {.mode = 0600};
    pact_value v;
    PACT_AWAIT_TRY(
        pact_fs_open_p(loop, P("t.bin"), O_RDWR | O_CREAT | O_EXCL, &mode), &v);
    int fd = (int)v.u.i;
    PACT_AWAIT_TRY(pact_fs_write_p(loop, fd, "0123456789", 10, 0, NULL), &v);
    ck_assert_int_eq(v.u.i, 10);
    char buf[16] = {0};
    PACT_AWAIT_TRY(pact_fs_read_p(loop, fd, buf, 4, 3, NULL), &v);
    ck_assert_int_eq(v.u.i, 4);
    ck_assert_str_eq(buf, "3456");
    PACT_AWAIT_TRY(pact_fs_close_p(loop, fd, NULL), NULL);
    pact_error *err = PACT_AWAIT_ERR(
        pact_fs_open_p(loop, P("t.bin"), O_RDWR | O_CREAT | O_EXCL, NULL), &v);
    ck_assert_int_eq(pact_error_code(err), PACT_EEXIST);
    pact_error_unref(err);
    *result = pact_int(fd);
    return NULL;
}

START_TEST(descriptors_awaited)
{
    pact_promise *p = pact_task_spawn(t_loop, descriptor_task, NULL, NULL);
    run();
    if (pact_promise_error(p))
        pact_error_print(pact_promise_error(p), stderr);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
    struct stat st;
    ck_assert_int_eq(stat(P("t.bin"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_size, 10);
}
END_TEST

/* ---- read_json ----------------------------------------------------------- */

START_TEST(read_json)
{
    puts_(P("good.json"), "{\"port\": 8080, \"hosts\": [\"a\", \"b\"]}\n");
    puts_(P("bad.json"),
          "{\n  \"port\": 8080,\n  \"hosts\": [\"a\" \"b\"]\n}\n");
    puts_(P("empty.json"), "");
    puts_(P("scalar.json"), "42");
    struct rec good = {0}, bad = {0}, missing = {0}, empty = {0}, pgood = {0},
               scalar = {0};
    ck_assert_int_eq(
        pact_fs_read_json(t_loop, P("good.json"), NULL, rec_json, &good), 0);
    ck_assert_int_eq(
        pact_fs_read_json(t_loop, P("bad.json"), NULL, rec_json, &bad), 0);
    ck_assert_int_eq(
        pact_fs_read_json(t_loop, P("nope.json"), NULL, rec_json, &missing), 0);
    ck_assert_int_eq(
        pact_fs_read_json(t_loop, P("empty.json"), NULL, rec_json, &empty), 0);
    expect(pact_fs_read_json_p(t_loop, P("good.json"), NULL), &pgood);
    expect(pact_fs_read_json_p(t_loop, P("scalar.json"), NULL), &scalar);
    run();
    ck_assert_int_eq(good.code, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(good.json, "port")),
                     8080);
    ck_assert_uint_eq(json_array_size(json_object_get(good.json, "hosts")), 2);
    ck_assert_int_eq(bad.code, PACT_EINVAL);
    ck_assert_ptr_null(bad.json);
    char want[700];
    snprintf(want, sizeof want,
             "invalid JSON at line 3, column 19: ']' expected near '\"b\"', "
             "read_json '%s'",
             P("bad.json"));
    ck_assert_str_eq(bad.msg, want);
    ck_assert_failed(&missing, PACT_ENOENT, "no such file or directory", "open",
                     P("nope.json"));
    ck_assert_int_eq(empty.code, PACT_EINVAL);
    ck_assert_ptr_nonnull(strstr(empty.msg, "line 1"));
    ck_assert_int_eq(pgood.v.kind, PACT_JSON);
    ck_assert_int_eq(
        json_integer_value(json_object_get(pgood.v.u.json, "port")), 8080);
    ck_assert_int_eq(json_integer_value(scalar.v.u.json), 42);
    struct rec *all[] = {&good, &bad, &missing, &empty, &pgood, &scalar};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
}
END_TEST

/* ---- holding the blocking lane full -------------------------------------- */

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    atomic_int entered;
    int calls, errors;
};

static pact_error *wait_at_gate(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)result;
    struct gate *g = arg;
    atomic_fetch_add(&g->entered, 1);
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static void gate_cb(pact_error *err, pact_value *result, void *ud)
{
    (void)result;
    struct gate *g = ud;
    g->calls++;
    g->errors += err != NULL;
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void *open_gate_later(void *g)
{
    sleep_ms(30);
    gate_open(g);
    return NULL;
}

/* Occupy every thread of the blocking lane of @p loop with a job at the gate.
 * @return how many. */
static int fill_blocking_lane(pact_loop *loop, struct gate *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    int n = (int)pact_pool_threads(PACT_LANE_BLOCKING);
    pact_offload_opts o = {.lane = PACT_LANE_BLOCKING};
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pact_offload(loop, wait_at_gate, g, &o, gate_cb, g),
                         0);
    ck_assert_int_ge(pact_loop_run(loop, PACT_RUN_NOWAIT), 0); /* hand over */
    uint64_t t0 = now_us();
    while (atomic_load(&g->entered) < n) {
        ck_assert_msg(now_us() - t0 < 10000000, "jobs did not start");
        sleep_ms(1);
    }
    return n;
}

static void gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* ---- cancellation -------------------------------------------------------- */

static bool in_abort;
static int called_in_abort;

static void rec_cb_abort(pact_error *err, void *ud)
{
    called_in_abort += in_abort;
    rec_cb(err, ud);
}

static void abort_now(pact_abort *a, int reason)
{
    in_abort = true;
    pact_error *why = PACT_ERROR(reason, "the test gave up");
    ck_assert_int_eq(pact_abort_abort(a, why), 0);
    pact_error_unref(why);
    in_abort = false;
}

START_TEST(abort_removes_queued_operations)
{
    static struct gate g;
    int n = fill_blocking_lane(t_loop, &g);
    called_in_abort = 0;
    pact_abort *queued, *pending, *before;
    ck_assert_int_eq(pact_abort_new(t_loop, &queued), 0);
    ck_assert_int_eq(pact_abort_new(t_loop, &pending), 0);
    ck_assert_int_eq(pact_abort_new(t_loop, &before), 0);
    struct rec wq = {0}, mq = {0}, rp = {0}, pp = {0}, wb = {0}, ok = {0};
    pact_fs_opts oq = {.abort = queued}, op = {.abort = pending},
                 ob = {.abort = before};
    /* in the lane's queue, behind the jobs at the gate */
    ck_assert_int_eq(
        pact_fs_write_file(t_loop, P("never"), "x", 1, &oq, rec_cb_abort, &wq),
        0);
    ck_assert_int_eq(
        pact_fs_mkdir(t_loop, P("never.d"), &oq, rec_cb_abort, &mq), 0);
    ck_assert_int_eq(
        pact_fs_write_file(t_loop, P("ok"), "y", 1, NULL, rec_cb, &ok), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    /* submitted in this turn, not yet handed to the lane */
    ck_assert_int_eq(pact_fs_read_file(t_loop, P("ok"), &op, rec_data, &rp), 0);
    expect(pact_fs_stat_p(t_loop, P("ok"), &op), &pp);
    abort_now(pending, PACT_ETIMEDOUT);
    abort_now(queued, PACT_ETIMEDOUT);
    abort_now(before, PACT_ETIMEDOUT);
    /* a token aborted already: the submission succeeds, nothing runs */
    ck_assert_int_eq(
        pact_fs_write_file(t_loop, P("never2"), "z", 1, &ob, rec_cb_abort, &wb),
        0);
    pact_abort_unref(queued);
    pact_abort_unref(pending);
    pact_abort_unref(before);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    struct rec *cancelled[] = {&wq, &mq, &rp, &pp, &wb};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(cancelled[i]->calls, 1);
        ck_assert_int_eq(cancelled[i]->code, PACT_ECANCELED);
    }
    ck_assert_int_eq(called_in_abort, 0);
    ck_assert_int_eq(ok.calls, 0); /* still queued behind the gate */
    ck_assert_int_eq(g.calls, 0);
    gate_open(&g);
    run();
    ck_assert_int_eq(g.calls, n);
    ck_assert_int_eq(g.errors, 0);
    ck_assert_int_eq(ok.calls, 1);
    ck_assert_int_eq(ok.code, 0);
    ck_assert(!exists(P("never")));
    ck_assert(!exists(P("never.d")));
    ck_assert(!exists(P("never2")));
    struct rec *all[] = {&wq, &mq, &rp, &pp, &wb, &ok};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
    gate_destroy(&g);
}
END_TEST

/* A call that has started is not interrupted: an open blocked on a FIFO
 * with no writer. Aborted meanwhile, it still ends with ECANCELED once the
 * open returns, and the descriptor it got is closed, not leaked. */
struct fifo_writer {
    const char *path;
    int fd;
    uint64_t waited_us;
};

static void *open_writer_end(void *arg)
{
    struct fifo_writer *w = arg;
    uint64_t t0 = now_us();
    /* O_NONBLOCK fails with ENXIO until a reader (the job) has it open */
    while ((w->fd = open(w->path, O_WRONLY | O_NONBLOCK)) < 0 &&
           now_us() - t0 < 10000000)
        sleep_ms(1);
    w->waited_us = now_us() - t0;
    return NULL;
}

/* Whether a thread of this process is blocked in openat (Linux's
 * /proc/self/task/TID/syscall); true when that cannot be read. */
static bool a_thread_in_openat(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return true;
    bool found = false, readable = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[64] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/syscall", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        if (read(fd, buf, sizeof buf - 1) > 0)
            readable = true;
        close(fd);
        found = atol(buf) == SYS_openat;
    }
    closedir(d);
    return found || !readable;
}

struct abort_later {
    pact_abort *abort;
    struct fifo_writer *w;
};

static void abort_then_unblock(pact_error *err, void *ud)
{
    (void)err;
    struct abort_later *a = ud;
    uint64_t t0 = now_us();
    while (!a_thread_in_openat() && now_us() - t0 < 10000000)
        sleep_ms(1);
    ck_assert_int_eq(pact_abort_abort(a->abort, NULL), 0);
    /* now let the open return */
    open_writer_end(a->w);
}

START_TEST(abort_does_not_interrupt_a_running_call)
{
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(mkfifo(P("fifo"), 0600), 0);
    struct fifo_writer w = {.path = P("fifo"), .fd = -1};
    struct abort_later a = {.w = &w};
    ck_assert_int_eq(pact_abort_new(t_loop, &a.abort), 0);
    pact_fs_opts o = {.abort = a.abort};
    struct rec op = {0};
    ck_assert_int_eq(pact_fs_open(t_loop, P("fifo"), O_RDONLY, &o, rec_fd, &op),
                     0);
    /* a FIFO's open waits for a writer: abort while it does */
    ck_assert_int_eq(pact_timeout(t_loop, 1, abort_then_unblock, &a, NULL), 0);
    run();
    ck_assert_int_ge(w.fd, 0);
    ck_assert_int_eq(op.calls, 1);
    ck_assert_int_eq(op.code, PACT_ECANCELED);
    ck_assert_int_eq(op.v.u.i, -1);
    /* the reader end was closed: writing finds no reader */
    ck_assert_int_eq(write(w.fd, "x", 1), -1);
    ck_assert_int_eq(errno, EPIPE);
    close(w.fd);
    pact_abort_unref(a.abort);
    rec_free(&op);
}
END_TEST

/* ---- shutdown with operations pending ------------------------------------ */

static pact_error *awaiting_task(void *arg, pact_value *result)
{
    struct rec *r = arg;
    pact_error *err =
        PACT_AWAIT_ERR(pact_fs_read_file_p(t_loop, P("f"), NULL), result);
    rec_err(r, err);
    pact_error_unref(err);
    return NULL;
}

/* close_all, then the loop runs: every operation is called back with
 * ECANCELED (queued ones never ran), in every style. */
START_TEST(close_all_cancels_pending_operations)
{
    static struct gate g;
    puts_(P("f"), "data");
    int n = fill_blocking_lane(t_loop, &g);
    struct rec cb = {0}, pr = {0}, task = {0}, op = {0}, dir = {0};
    ck_assert_int_eq(
        pact_fs_write_file(t_loop, P("w"), "x", 1, NULL, rec_cb, &cb), 0);
    expect(pact_fs_read_file_p(t_loop, P("f"), NULL), &pr);
    ck_assert_int_eq(pact_fs_open(t_loop, P("f"), O_RDONLY, NULL, rec_fd, &op),
                     0);
    pact_fs_opts types = {.flags = PACT_FS_TYPES};
    expect(pact_fs_readdir_p(t_loop, tmpdir, &types), &dir);
    pact_promise *t = pact_task_spawn(t_loop, awaiting_task, &task, NULL);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(cb.calls, 0); /* not inside close_all */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, open_gate_later, &g), 0);
    run();
    pthread_join(th, NULL);
    struct rec *all[] = {&cb, &pr, &task, &op, &dir};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        ck_assert_int_eq(all[i]->calls, 1);
        ck_assert_int_eq(all[i]->code, PACT_ECANCELED);
    }
    ck_assert_int_eq(g.calls, n);
    ck_assert_int_eq(g.errors, n); /* running when cancelled */
    ck_assert(!exists(P("w")));
    pact_promise_unref(t);
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rec_free(all[i]);
    gate_destroy(&g);
}
END_TEST

/* close_all then pact_loop_free at once: free waits for the jobs at the
 * gate, drops the callbacks still owed (never calling them), and leaks
 * nothing: requests, copied data, the twins' promises. */
START_TEST(free_with_operations_pending)
{
    static struct gate g;
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    puts_(P("f"), "data");
    fill_blocking_lane(loop, &g);
    struct rec cb = {0}, rd = {0}, ls = {0};
    char *big = random_bytes(100000, 2);
    ck_assert_int_eq(
        pact_fs_write_file(loop, P("w"), big, 100000, NULL, rec_cb, &cb), 0);
    free(big); /* copied */
    ck_assert_int_eq(pact_fs_read_file(loop, P("f"), NULL, rec_data, &rd), 0);
    ck_assert_int_eq(pact_fs_readdir(loop, tmpdir, NULL, rec_dir, &ls), 0);
    pact_fs_opts types = {.flags = PACT_FS_TYPES};
    pact_promise *ps[] = {
        pact_fs_read_file_p(loop, P("f"), NULL),
        pact_fs_readdir_p(loop, tmpdir, &types),
        pact_fs_stat_p(loop, P("f"), NULL),
        pact_fs_read_json_p(loop, P("f"), NULL),
        pact_fs_open_p(loop, P("f"), O_RDONLY, NULL),
    };
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
        ck_assert_ptr_nonnull(ps[i]);
        pact_promise_unref(ps[i]); /* only the operations hold them now */
    }
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(pact_loop_free(loop), PACT_EBUSY);
    ck_assert_int_eq(pact_loop_close_all(loop), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, open_gate_later, &g), 0);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(cb.calls + rd.calls + ls.calls, 0);
    ck_assert_int_eq(g.calls, 0);
    ck_assert(!exists(P("w")));
    gate_destroy(&g);
}
END_TEST

/* ---- misuse -------------------------------------------------------------- */

struct off_thread {
    int rc;
    pact_promise *p;
};

static void *fs_from_thread(void *arg)
{
    struct off_thread *o = arg;
    o->rc = pact_fs_unlink(t_loop, "x", NULL, rec_cb, NULL);
    o->p = pact_fs_unlink_p(t_loop, "x", NULL);
    return NULL;
}

START_TEST(misuse)
{
    struct rec r = {0}, twin = {0};
    struct capture cap;
    capture_begin(&cap);
    ck_assert_int_eq(pact_fs_read_file(NULL, "x", NULL, rec_data, &r),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_fs_read_file(t_loop, NULL, NULL, rec_data, &r),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_fs_read_file(t_loop, "x", NULL, NULL, &r),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_fs_rename(t_loop, "x", NULL, NULL, rec_cb, &r),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_fs_write_file(t_loop, "x", NULL, 3, NULL, rec_cb, &r),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_fs_read(t_loop, 0, NULL, 3, 0, NULL, rec_size, &r),
                     PACT_EINVAL);
    expect(pact_fs_stat_p(t_loop, NULL, NULL), &twin);
    ck_assert_ptr_null(pact_fs_stat_p(NULL, "x", NULL));
    struct off_thread o = {0, NULL};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fs_from_thread, &o), 0);
    pthread_join(th, NULL);
    run();
    char *out = capture_end(&cap);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(twin.calls, 1);
    ck_assert_int_eq(twin.code, PACT_EINVAL);
    ck_assert_int_eq(o.rc, PACT_ETHREAD);
    ck_assert_ptr_null(o.p);
    ck_assert_int_eq(t_count(out, "pact_fs_unlink(): called off the loop"), 1);
    ck_assert_int_eq(t_count(out, "pact_fs_unlink_p(): called off the loop"),
                     1);
    free(out);
    ck_assert_str_eq(pact_fs_type_name(PACT_FILE_DIR), "dir");
    ck_assert_str_eq(pact_fs_type_name((pact_file_type)99), "unknown");
    ck_assert_ptr_null(pact_fs_stat_of(NULL));
    rec_free(&r);
    rec_free(&twin);
}
END_TEST

/* ---- where the program started a failed operation ------------------------ */

static pact_value swallow(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    return pact_nothing();
}

static void keep_err(pact_error *err, pact_value *data, void *ud)
{
    (void)data;
    *(pact_error **)ud = pact_error_ref(err);
}

/* @p text's "started at" part names @p line of this file (the call, when
 * pact is built with libdw), and never pact's own sources. */
static void check_started_at(const pact_error *err, int line)
{
    char *text = t_error_text(err);
    /* where it was made: pact's file, as before */
    ck_assert_msg(strstr(text, "fs_jobs.c:"), "%s", text);
#ifdef HAVE_BUILTIN_RETURN_ADDRESS
    ck_assert_ptr_nonnull(pact_error_site(err));
    const char *at = strstr(text, ", started at ");
    ck_assert_msg(at, "%s", text);
    ck_assert_msg(!strstr(at, "src/"), "%s", text);
#ifdef HAVE_LIBDW
    /* the call's line: clang-format may break it after the name */
    bool named = false;
    for (int l = line; l <= line + 3 && !named; l++) {
        char want[64];
        snprintf(want, sizeof want, "test/test_fs.c:%d (", l);
        named = strstr(at, want) != NULL;
    }
    ck_assert_msg(named, "line %d: %s", line, text);
    ck_assert_msg(strstr(at, "(errors_started_at_the_call"), "%s", text);
#else
    (void)line;
#endif
#else
    ck_assert_ptr_null(pact_error_site(err));
    ck_assert_msg(!strstr(text, "started at"), "%s", text);
    (void)line;
#endif
    free(text);
}

/* An fs error is made in pact (fs_jobs.c), but its printed form says where
 * the program started the operation: this test's calls, in the callback
 * style and through a promise twin. */
START_TEST(errors_started_at_the_call)
{
    pact_error *err = NULL;
    int line = __LINE__ + 1;
    ck_assert_int_eq(
        pact_fs_read_file(t_loop, P("missing"), NULL, keep_err, &err), 0);
    int line_p = __LINE__ + 1;
    pact_promise *p = pact_fs_read_file_p(t_loop, P("missing"), NULL);
    ck_assert_ptr_nonnull(p);
    pact_promise *handled = pact_catch(p, swallow, NULL);
    run();
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(pact_error_code(err), PACT_ENOENT);
    check_started_at(err, line);
    pact_error_unref(err);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    check_started_at(pact_promise_error(p), line_p);
    pact_promise_unref(handled);
    pact_promise_unref(p);
}
END_TEST

Suite *suite_fs(void)
{
    Suite *s = suite_create("fs");
    TCase *tc = tcase_create("fs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, files_with_callbacks);
    tcase_add_test(tc, files_with_promises);
    tcase_add_test(tc, files_from_a_task);
    tcase_add_test(tc, failures_name_the_call_and_the_path);
    tcase_add_test(tc, errors_started_at_the_call);
    tcase_add_test(tc, eacces_even_for_root);
    tcase_add_test(tc, atomic_write_is_old_or_new);
    tcase_add_test(tc, atomic_write_failures_leave_nothing_behind);
    tcase_add_test(tc, sync_writes);
    tcase_add_test(tc, mkdir_recursive);
    tcase_add_test(tc, readdir_many_entries);
    tcase_add_test(tc, large_files_intact);
    tcase_add_test(tc, read_file_of_a_pipe);
    tcase_add_test(tc, descriptors_with_callbacks);
    tcase_add_test(tc, descriptors_awaited);
    tcase_add_test(tc, negative_position_refused);
    tcase_add_test(tc, read_json);
    tcase_add_test(tc, abort_removes_queued_operations);
    tcase_add_test(tc, abort_does_not_interrupt_a_running_call);
    tcase_add_test(tc, close_all_cancels_pending_operations);
    tcase_add_test(tc, free_with_operations_pending);
    tcase_add_test(tc, misuse);
    suite_add_tcase(s, tc);
    return s;
}
