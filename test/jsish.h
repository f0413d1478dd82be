/* What the Node-oracle suites share (test_order.c, test_porder.c,
 * test_aorder.c): the JavaScript vocabulary their cases are written in, each
 * call asserted to succeed, and the driver that runs a case and compares
 * pact's trace with what Node printed for the same scenario (the fixtures
 * under test/fixtures/<dir>/, made by regen.sh there).
 *
 * JS strings are pact_ptr values (static strings); new Error('x') is
 * PACT_ERROR(PACT_EIO, "x") and e.message its pact_error_message. */
#ifndef PACT_TEST_JSISH_H
#define PACT_TEST_JSISH_H

#include <stdbool.h>
#include <stdint.h>

#include "helpers.h"

/* ---- the JavaScript vocabulary, each call asserted to succeed ---------- */

/* setTimeout, setInterval, setImmediate, clearTimeout & co.; the handle is
 * for the cases that clear, refresh or unref it later. */
pact_handle set_timeout(int64_t ms, pact_cb cb, void *ud);
pact_handle set_interval(int64_t ms, pact_cb cb, void *ud);
pact_handle set_immediate(pact_cb cb, void *ud);
void clear(pact_handle h);
/* process.nextTick, queueMicrotask */
void next_tick(pact_fn fn, void *ud);
void queue_microtask(pact_fn fn, void *ud);

/* First thing in a macrotask callback: no scenario expects an error. */
void expect_ok(pact_error *err);

/* A JS string value, and the string a value holds. */
pact_value str(const char *s);
const char *sv(const pact_value *v);

/* new Error(m) (not `error`: glibc has a global of that name), and
 * e.message. */
pact_error *new_error(const char *m);
const char *msg(pact_error *e);

/* @p p, asserted not NULL. */
pact_promise *nonnull(pact_promise *p);

/* Promise.resolve(v), Promise.reject(new Error(m)). */
pact_promise *resolved(pact_value v);
pact_promise *rejected(const char *m);

/* p.then(ok, fail), p.catch(fail): each consumes @p p and returns the
 * derived promise (a chain link that JS leaves to the garbage collector is
 * dropped as soon as the next link is made). */
pact_promise *then(pact_promise *p, pact_on_fulfilled ok, pact_on_rejected fail,
                   void *ud);
pact_promise *catch_(pact_promise *p, pact_on_rejected fail, void *ud);

/* Keep and let go of a promise. */
pact_promise *ref(pact_promise *p);
void drop(pact_promise *p);

/* new Promise((resolve, reject) => ...): the resolver, and the promise in
 * *out. */
pact_deferred *defer(pact_promise **out);
/* resolve(v) once; then the case forgets the resolver (*d is dropped and
 * set to NULL). */
void resolve(pact_deferred **d, pact_value v);

/* ---- handlers ------------------------------------------------------------ */

/* () => log(ud) */
pact_value ok_log(const pact_value *v, void *ud);
/* (v) => log(ud + ' ' + v) */
pact_value ok_log_v(const pact_value *v, void *ud);
/* (e) => log(ud + ' ' + e.message) */
pact_value fail_log_e(pact_error *e, void *ud);

/* A plain chain: one line per microtask turn, to count turns by.
 *   let p = Promise.resolve();
 *   for (let i = 1; i <= n; i++) p = p.then(() => log('turn ' + i)); */
void turns(int n);

/* process.on('unhandledRejection', (e) => log('unhandledRejection ' +
 * e.message)) and process.on('rejectionHandled', (p) =>
 * log('rejectionHandled ' + names.get(p))), where a promise's name is its
 * reason's message; with ud NULL the rejectionHandled line has no name. */
bool log_hook(pact_loop *loop, pact_rejection_event ev, pact_promise *p,
              void *ud);
/* Install @p hook (log_hook or a case's own) on the fixture's loop. */
void on_rejection(pact_rejection_hook hook, void *ud);

/* ---- the driver ---------------------------------------------------------- */

/* test/fixtures/<dir>/<name>.<ext> (malloc'd; NULL if missing). */
char *js_read_fixture(const char *dir, const char *name, const char *ext);

/* pact's trace must be @p want (Node's, unless a case says otherwise);
 * otherwise both are printed and the test fails at the first line where
 * they part. @p dir and @p name name the case. */
void js_expect_trace(const char *dir, const char *name, const char *want);
/* The same with Node's trace, <dir>/<name>.txt. */
void js_expect_fixture(const char *dir, const char *name);

/* Node's exit status for the case: <dir>/<name>.exit, or 0 without one. */
int js_fixture_exit(const char *dir, const char *name);

/* What a promise case's callbacks share; zeroed before each case, and
 * whatever it still holds is dropped after the run. */
struct js_case {
    pact_promise *p[4];  /* promises a later callback uses */
    pact_deferred *d[4]; /* resolve/reject functions a later callback calls */
    struct capture cap;  /* stderr during the case */
    bool capturing;
};

/* How js_run differs between suites. */
enum {
    /* Ignore the lines a debug build (--enable-debug) prints for a deferred
     * settled twice: JavaScript's resolving functions ignore that silently,
     * pact returns PACT_EALREADY and, in debug builds only, says so. */
    JS_RUN_DEBUG_EALREADY = 1 << 0,
    /* The case has tasks: after the release, run the loop once more (what
     * the release let go of: a task's stale wake-ups), and no task may be
     * left. */
    JS_RUN_TASKS = 1 << 1,
};

/* Run one case of <dir>: zero @p s, then run its main turn and the loop
 * with stderr captured, and drop what @p s still holds. pact_loop_run must
 * return 0, or PACT_EUNHANDLED where Node exits with status 1
 * (<name>.exit); @p err1 and @p err2 (may be NULL) are what pact must print
 * on stderr; with both NULL, nothing. The trace is left for the caller to
 * compare (js_expect_fixture). */
void js_run(struct js_case *s, const char *dir, unsigned flags,
            const char *name, void (*main_turn)(void), const char *err1,
            const char *err2);

/* The fixture's teardown for js_run's cases: what a case that failed inside
 * its run captured goes to stderr, what it held is dropped, then
 * t_teardown. */
void js_teardown(struct js_case *s);

#endif
