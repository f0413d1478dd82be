/* What the Node-oracle suites share: see jsish.h. */
#include "jsish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the JavaScript vocabulary, each call asserted to succeed ---------- */

pact_handle set_timeout(int64_t ms, pact_cb cb, void *ud)
{
    pact_handle h = {0};
    ck_assert_int_eq(pact_timeout(t_loop, ms, cb, ud, &h), 0);
    return h;
}

pact_handle set_interval(int64_t ms, pact_cb cb, void *ud)
{
    pact_handle h = {0};
    ck_assert_int_eq(pact_interval(t_loop, ms, cb, ud, &h), 0);
    return h;
}

pact_handle set_immediate(pact_cb cb, void *ud)
{
    pact_handle h = {0};
    ck_assert_int_eq(pact_immediate(t_loop, cb, ud, &h), 0);
    return h;
}

void clear(pact_handle h)
{
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
}

void next_tick(pact_fn fn, void *ud)
{
    ck_assert_int_eq(pact_next_tick(t_loop, fn, ud), 0);
}

void queue_microtask(pact_fn fn, void *ud)
{
    ck_assert_int_eq(pact_queue_microtask(t_loop, fn, ud), 0);
}

void expect_ok(pact_error *err)
{
    if (err)
        pact_error_print(err, stderr);
    ck_assert_ptr_null(err);
}

pact_value str(const char *s)
{
    return pact_ptr((void *)s);
}

const char *sv(const pact_value *v)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, PACT_PTR);
    return (const char *)v->u.ptr;
}

pact_error *new_error(const char *m)
{
    pact_error *e = PACT_ERROR(PACT_EIO, "%s", m);
    ck_assert_ptr_nonnull(e);
    return e;
}

const char *msg(pact_error *e)
{
    ck_assert_ptr_nonnull(e);
    return pact_error_message(e);
}

pact_promise *nonnull(pact_promise *p)
{
    ck_assert_ptr_nonnull(p);
    return p;
}

pact_promise *resolved(pact_value v)
{
    return nonnull(pact_resolved(t_loop, v));
}

pact_promise *rejected(const char *m)
{
    return nonnull(pact_rejected(t_loop, new_error(m)));
}

pact_promise *then(pact_promise *p, pact_on_fulfilled ok, pact_on_rejected fail,
                   void *ud)
{
    pact_promise *q = nonnull(pact_then(p, ok, fail, ud));
    pact_promise_unref(p);
    return q;
}

pact_promise *catch_(pact_promise *p, pact_on_rejected fail, void *ud)
{
    pact_promise *q = nonnull(pact_catch(p, fail, ud));
    pact_promise_unref(p);
    return q;
}

pact_promise *ref(pact_promise *p)
{
    return pact_promise_ref(p);
}

void drop(pact_promise *p)
{
    pact_promise_unref(p);
}

pact_deferred *defer(pact_promise **out)
{
    pact_deferred *d = pact_deferred_new(t_loop, out);
    ck_assert_ptr_nonnull(d);
    return d;
}

void resolve(pact_deferred **d, pact_value v)
{
    ck_assert_int_eq(pact_deferred_resolve(*d, v), 0);
    pact_deferred_unref(*d);
    *d = NULL;
}

/* ---- handlers ------------------------------------------------------------ */

pact_value ok_log(const pact_value *v, void *ud)
{
    (void)v;
    trace("%s", (const char *)ud);
    return pact_nothing();
}

pact_value ok_log_v(const pact_value *v, void *ud)
{
    trace("%s %s", (const char *)ud, sv(v));
    return pact_nothing();
}

pact_value fail_log_e(pact_error *e, void *ud)
{
    trace("%s %s", (const char *)ud, msg(e));
    return pact_nothing();
}

static pact_value turns_step(const pact_value *v, void *ud)
{
    (void)v;
    trace("turn %d", (int)(intptr_t)ud);
    return pact_nothing();
}

void turns(int n)
{
    pact_promise *p = resolved(pact_nothing());
    for (int i = 1; i <= n; i++)
        p = then(p, turns_step, NULL, (void *)(intptr_t)i);
    drop(p);
}

bool log_hook(pact_loop *loop, pact_rejection_event ev, pact_promise *p,
              void *ud)
{
    ck_assert_ptr_eq(loop, t_loop);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    if (ev == PACT_REJECTION_UNHANDLED)
        trace("unhandledRejection %s", msg(pact_promise_error(p)));
    else if (ud)
        trace("rejectionHandled %s", msg(pact_promise_error(p)));
    else
        trace("rejectionHandled");
    return true;
}

void on_rejection(pact_rejection_hook hook, void *ud)
{
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, hook, ud), 0);
}

/* ---- the driver ---------------------------------------------------------- */

char *js_read_fixture(const char *dir, const char *name, const char *ext)
{
    char rel[128];
    snprintf(rel, sizeof rel, "%s/%s.%s", dir, name, ext);
    return t_read_fixture(rel);
}

/* The 1-based number of the first line where @p a and @p b differ. */
static int first_diff_line(const char *a, const char *b)
{
    int line = 1;
    for (; *a && *a == *b; a++, b++)
        if (*a == '\n')
            line++;
    return line;
}

/* Copy line @p n (1-based) of @p s into @p buf, or "(end)" past the end. */
static void nth_line(const char *s, int n, char *buf, size_t len)
{
    for (; n > 1 && *s; s++)
        if (*s == '\n')
            n--;
    if (!*s) {
        snprintf(buf, len, "(end)");
        return;
    }
    size_t k = strcspn(s, "\n");
    snprintf(buf, len, "%.*s", (int)k, s);
}

/* 0 if pact's trace is @p want; otherwise print both and @return the line
 * where they part, that line of each in @p w and @p g. */
static int trace_differs(const char *dir, const char *name, const char *want,
                         char *w, char *g, size_t len)
{
    const char *got = trace_text();
    if (strcmp(want, got) == 0)
        return 0;
    int line = first_diff_line(want, got);
    fprintf(stderr,
            "%s/%s: pact's trace differs from Node's at line %d\n"
            "--- node\n%s--- pact\n%s---\n",
            dir, name, line, want, got);
    nth_line(want, line, w, len);
    nth_line(got, line, g, len);
    return line;
}

void js_expect_trace(const char *dir, const char *name, const char *want)
{
    char w[256], g[256];
    int line = trace_differs(dir, name, want, w, g, sizeof w);
    if (line)
        ck_abort_msg("%s: line %d: node '%s', pact '%s'", name, line, w, g);
}

void js_expect_fixture(const char *dir, const char *name)
{
    char w[256], g[256];
    char *want = js_read_fixture(dir, name, "txt");
    ck_assert_msg(want != NULL, "no fixture %s/%s.txt (is PACT_FIXTURES set?)",
                  dir, name);
    int line = trace_differs(dir, name, want, w, g, sizeof w);
    free(want);
    if (line)
        ck_abort_msg("%s: line %d: node '%s', pact '%s'", name, line, w, g);
}

int js_fixture_exit(const char *dir, const char *name)
{
    char *s = js_read_fixture(dir, name, "exit");
    if (!s)
        return 0;
    int status = atoi(s);
    free(s);
    return status;
}

/* Drop what the case still holds. */
static void release_held(struct js_case *s)
{
    for (size_t i = 0; i < sizeof s->p / sizeof s->p[0]; i++) {
        if (s->p[i])
            pact_promise_unref(s->p[i]);
        s->p[i] = NULL;
    }
    for (size_t i = 0; i < sizeof s->d / sizeof s->d[0]; i++) {
        if (s->d[i])
            pact_deferred_unref(s->d[i]);
        s->d[i] = NULL;
    }
}

/* JS_RUN_DEBUG_EALREADY: drop the debug build's lines for a deferred settled
 * twice from @p err. */
static void drop_debug_lines(char *err)
{
    static const char tag[] = "pact: pact_deferred_";
    char *line = err, *out = err;
    while (*line) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        bool skip = strncmp(line, tag, sizeof tag - 1) == 0 &&
                    strstr(line, "(EALREADY)") && strstr(line, "already");
        if (!skip) {
            memmove(out, line, len);
            out += len;
        }
        line += len;
    }
    *out = '\0';
}

void js_run(struct js_case *s, const char *dir, unsigned flags,
            const char *name, void (*main_turn)(void), const char *err1,
            const char *err2)
{
    memset(s, 0, sizeof *s);
    int want_exit = js_fixture_exit(dir, name);
    capture_begin(&s->cap);
    s->capturing = true;
    main_turn();
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    s->capturing = false;
    char *err = capture_end(&s->cap);
    if (flags & JS_RUN_DEBUG_EALREADY)
        drop_debug_lines(err);
    release_held(s);
    if (want_exit != 0) {
        t_shutdown = true;
        pact_loop_close_all(t_loop); /* the process ended there */
    }
    if (flags & JS_RUN_TASKS)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);

    int want_rc = want_exit == 0 ? 0 : PACT_EUNHANDLED;
    bool err_ok = err1 ? strstr(err, err1) && (!err2 || strstr(err, err2))
                       : err[0] == '\0';
    if (rc != want_rc || !err_ok)
        fprintf(stderr,
                "%s/%s: pact_loop_run returned %d (node exits %d); "
                "trace:\n%s--- stderr:\n%s---\n",
                dir, name, rc, want_exit, trace_text(), err);
    free(err);
    ck_assert_msg(want_exit == 0 || want_exit == 1, "%s: exit %d", name,
                  want_exit);
    ck_assert_int_eq(rc, want_rc);
    if (err1)
        ck_assert_msg(err_ok, "%s: pact's stderr lacks '%s'%s%s", name, err1,
                      err2 ? " or " : "", err2 ? err2 : "");
    else
        ck_assert_msg(err_ok, "%s: pact wrote to stderr, node did not", name);
    if (flags & JS_RUN_TASKS)
        ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
}

void js_teardown(struct js_case *s)
{
    if (s->capturing) { /* the case failed inside its run */
        s->capturing = false;
        char *err = capture_end(&s->cap);
        fputs(err, stderr);
        free(err);
    }
    release_held(s);
    t_teardown();
}
