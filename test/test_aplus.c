/* The Promises/A+ 1.1 conformance suite: the cases of the official
 * promises-aplus-tests (2.1.2 to 2.3.4), clause by clause, in C terms.
 * JavaScript values become pact_values of every kind, thrown exceptions
 * become pact_throw and negative returns, and JavaScript thenables become
 * foreign thenables (pact_thenable_vt). Each test is named after its clause;
 * test/aplus-clauses.md maps every clause to its tests, or says why it has no
 * C meaning.
 *
 * JavaScript's three ways to get a settled promise (testThreeCases) are the
 * iterations of a loop test: already settled (pact_resolved/pact_rejected),
 * settled right after the handlers are attached, and settled from a timer.
 * The "via return from a fulfilled/rejected promise" pair of 2.3 are the
 * iterations 0 and 1 of its loop tests. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "suites.h"

/* ---- values -------------------------------------------------------------- */

/* Identities compared with ==, as promises-aplus-tests' strictEqual. */
static int dummy_obj, sentinel_obj, other_obj;
static pact_error *e_dummy, *e_sentinel, *e_sentinel2, *e_other;
static json_t *j_sentinel;

/* Rejection reasons of every shape (the "reasons" helper of the suite); the
 * last is NULL, which pact_throw and pact_deferred_reject turn into
 * PACT_ENOMEM. */
enum { RS_PLAIN, RS_MESSAGE, RS_CAUSE, RS_AGGREGATE, RS_TYPE, RS_NULL, RS_N };
static pact_error *reasons[RS_N];

/* Values of every kind a promise fulfils with. VK_NONE means "do not check". */
enum vk {
    VK_NONE,
    VK_NOTHING,
    VK_INT,
    VK_INT0,
    VK_DOUBLE,
    VK_PTR,
    VK_PTR_NULL,
    VK_OWNED,
    VK_JSON,
    VK_JSON_NULL,
    VK_JSON_FALSE,
    VK_JSON_TRUE,
    VK_BYTES,
    VK_N
};

#define BIG_INT ((int64_t)9007199254740993) /* 2^53 + 1: not a double */
#define OWNED_MAGIC 0x5e47
static const char bytes_sentinel[9] = "sen\0tinel";

/* Owned values (VK_OWNED) and the "other" values resolvers hand over after
 * the first settlement: each destructor must run exactly once. */
static int owned_made, owned_freed, other_made, other_freed;

static void owned_free(void *p)
{
    int *o = p;
    ck_assert_int_eq(*o, OWNED_MAGIC);
    *o = 0;
    free(o);
    owned_freed++;
}

static void other_free(void *p)
{
    int *o = p;
    ck_assert_int_eq(*o, OWNED_MAGIC + 1);
    *o = 0;
    free(o);
    other_freed++;
}

static pact_value make_other(void)
{
    int *o = malloc(sizeof *o);
    ck_assert_ptr_nonnull(o);
    *o = OWNED_MAGIC + 1;
    other_made++;
    return pact_owned(o, other_free);
}

static pact_value make_val(int k)
{
    switch (k) {
    case VK_NOTHING:
        return pact_nothing();
    case VK_INT:
        return pact_int(BIG_INT);
    case VK_INT0:
        return pact_int(0);
    case VK_DOUBLE:
        return pact_double(2.5);
    case VK_PTR:
        return pact_ptr(&sentinel_obj);
    case VK_PTR_NULL:
        return pact_ptr(NULL);
    case VK_OWNED: {
        int *o = malloc(sizeof *o);
        ck_assert_ptr_nonnull(o);
        *o = OWNED_MAGIC;
        owned_made++;
        return pact_owned(o, owned_free);
    }
    case VK_JSON:
        return pact_json(json_incref(j_sentinel));
    case VK_JSON_NULL:
        return pact_json(json_null());
    case VK_JSON_FALSE:
        return pact_json(json_false());
    case VK_JSON_TRUE:
        return pact_json(json_true());
    case VK_BYTES: {
        void *b = malloc(sizeof bytes_sentinel);
        ck_assert_ptr_nonnull(b);
        memcpy(b, bytes_sentinel, sizeof bytes_sentinel);
        return pact_bytes(b, sizeof bytes_sentinel);
    }
    }
    ck_abort_msg("no value kind %d", k);
    return pact_nothing();
}

static void check_val(int k, const pact_value *v)
{
    ck_assert_ptr_nonnull(v);
    switch (k) {
    case VK_NOTHING:
        ck_assert_int_eq(v->kind, PACT_NOTHING);
        break;
    case VK_INT:
        ck_assert_int_eq(v->kind, PACT_INT);
        ck_assert(v->u.i == BIG_INT);
        break;
    case VK_INT0:
        ck_assert_int_eq(v->kind, PACT_INT);
        ck_assert(v->u.i == 0);
        break;
    case VK_DOUBLE:
        ck_assert_int_eq(v->kind, PACT_DOUBLE);
        ck_assert(v->u.d == 2.5);
        break;
    case VK_PTR:
        ck_assert_int_eq(v->kind, PACT_PTR);
        ck_assert_ptr_eq(v->u.ptr, &sentinel_obj);
        break;
    case VK_PTR_NULL:
        ck_assert_int_eq(v->kind, PACT_PTR);
        ck_assert_ptr_null(v->u.ptr);
        break;
    case VK_OWNED:
        ck_assert_int_eq(v->kind, PACT_OWNED);
        ck_assert_ptr_nonnull(v->u.owned.ptr);
        ck_assert_int_eq(*(int *)v->u.owned.ptr, OWNED_MAGIC);
        ck_assert(v->u.owned.free == owned_free);
        break;
    case VK_JSON:
        ck_assert_int_eq(v->kind, PACT_JSON);
        ck_assert_ptr_eq(v->u.json, j_sentinel);
        break;
    case VK_JSON_NULL:
        ck_assert_int_eq(v->kind, PACT_JSON);
        ck_assert(json_is_null(v->u.json));
        break;
    case VK_JSON_FALSE:
        ck_assert_int_eq(v->kind, PACT_JSON);
        ck_assert(json_is_false(v->u.json));
        break;
    case VK_JSON_TRUE:
        ck_assert_int_eq(v->kind, PACT_JSON);
        ck_assert(json_is_true(v->u.json));
        break;
    case VK_BYTES:
        ck_assert_int_eq(v->kind, PACT_BYTES);
        ck_assert_uint_eq(v->u.bytes.len, sizeof bytes_sentinel);
        ck_assert_ptr_nonnull(v->u.bytes.data);
        ck_assert(memcmp(v->u.bytes.data, bytes_sentinel,
                         sizeof bytes_sentinel) == 0);
        break;
    default:
        ck_abort_msg("no value kind %d", k);
    }
}

static pact_value take(pact_value *v)
{
    pact_value r = *v;
    *v = pact_nothing();
    return r;
}

/* ---- recording handlers -------------------------------------------------- */

/* Handlers h_ok / h_fail take a struct h as ud: they count their calls,
 * trace name, check what they get against the want_ fields, and return ret
 * (moved out: a second call returns nothing). */
struct h {
    const char *name;
    int ok, fail;
    int vk;               /* the value ok must get (VK_NONE: any) */
    void *want_ptr;       /* the PACT_PTR ok must get (NULL: any) */
    pact_error *want_err; /* the error fail must get (NULL: any) */
    int want_code;        /* its code (0: any) */
    const bool *flag;     /* must be true when the handler runs */
    pact_value ret;
    pact_kind kind;  /* what ok got */
    pact_error *err; /* what fail got (compared, never used) */
    int code;
};

static pact_value h_ok(const pact_value *v, void *ud)
{
    struct h *h = ud;
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(v);
    h->ok++;
    h->kind = v->kind;
    if (h->name)
        trace("%s", h->name);
    if (h->flag)
        ck_assert_msg(*h->flag, "%s ran too early", h->name ? h->name : "ok");
    if (h->vk != VK_NONE)
        check_val(h->vk, v);
    if (h->want_ptr) {
        ck_assert_int_eq(v->kind, PACT_PTR);
        ck_assert_ptr_eq(v->u.ptr, h->want_ptr);
    }
    return take(&h->ret);
}

static pact_value h_fail(pact_error *err, void *ud)
{
    struct h *h = ud;
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(err);
    h->fail++;
    h->err = err;
    h->code = pact_error_code(err);
    if (h->name)
        trace("%s", h->name);
    if (h->flag)
        ck_assert_msg(*h->flag, "%s ran too early", h->name ? h->name : "fail");
    if (h->want_err)
        ck_assert_ptr_eq(err, h->want_err);
    if (h->want_code)
        ck_assert_int_eq(h->code, h->want_code);
    return take(&h->ret);
}

/* The reason a rejection must carry: @p r itself, or PACT_ENOMEM for NULL. */
static void want_reason(struct h *h, pact_error *r)
{
    h->want_err = r;
    h->want_code = r ? pact_error_code(r) : PACT_ENOMEM;
}

static void expect_ok(const struct h *h)
{
    ck_assert_int_eq(h->ok, 1);
    ck_assert_int_eq(h->fail, 0);
}

static void expect_fail(const struct h *h)
{
    ck_assert_int_eq(h->ok, 0);
    ck_assert_int_eq(h->fail, 1);
}

/* p.then(h, h), derived promise dropped (it fulfils: h must not throw). */
static void watch(pact_promise *p, struct h *h)
{
    pact_promise *q = pact_then(p, h_ok, h_fail, h);
    ck_assert_ptr_nonnull(q);
    pact_promise_unref(q);
}

static pact_promise *then_ok(pact_promise *p, struct h *h)
{
    pact_promise *q = pact_then(p, h_ok, NULL, h);
    ck_assert_ptr_nonnull(q);
    return q;
}

static pact_promise *then_fail(pact_promise *p, struct h *h)
{
    pact_promise *q = pact_then(p, NULL, h_fail, h);
    ck_assert_ptr_nonnull(q);
    return q;
}

static void run(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* ---- settling deferreds -------------------------------------------------- */

/* One settlement of @p d: 'f' fulfils with the sentinel pointer, 'd' with the
 * dummy, 'o' with an owned "other", 'r' rejects with e_sentinel, 'x' with
 * e_other. The first settlement returns 0, later ones PACT_EALREADY. */
static void settle_ops(pact_deferred *d, const char *ops, bool done)
{
    for (; *ops; ops++) {
        int rc = 0;
        switch (*ops) {
        case 'f':
            rc = pact_deferred_resolve(d, pact_ptr(&sentinel_obj));
            break;
        case 'd':
            rc = pact_deferred_resolve(d, pact_ptr(&dummy_obj));
            break;
        case 'o':
            rc = pact_deferred_resolve(d, make_other());
            break;
        case 'r':
            rc = pact_deferred_reject(d, pact_error_ref(e_sentinel));
            break;
        case 'x':
            rc = pact_deferred_reject(d, pact_error_ref(e_other));
            break;
        default:
            ck_abort_msg("bad op %c", *ops);
        }
        ck_assert_int_eq(rc, done ? PACT_EALREADY : 0);
        done = true;
        ck_assert(pact_deferred_done(d));
    }
}

/* settle_ops from a timer; then *flag = true and name is traced. */
struct tact {
    pact_deferred *d;
    const char *ops;
    bool done;
    bool *flag;
    const char *name;
};

static void tact_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct tact *a = ud;
    settle_ops(a->d, a->ops, a->done);
    if (a->flag)
        *a->flag = true;
    if (a->name)
        trace("%s", a->name);
    pact_deferred_unref(a->d);
    a->d = NULL;
}

static void tact_start(struct tact *a, pact_deferred *d, const char *ops,
                       bool done, unsigned ms)
{
    a->d = pact_deferred_ref(d);
    a->ops = ops;
    a->done = done;
    ck_assert_int_eq(pact_timeout(t_loop, ms, tact_cb, a, NULL), 0);
}

/* ---- foreign thenables --------------------------------------------------- */

/* What a resolution (y) is, built when it is handed over: the thenables and
 * promises of the suite's "thenables" helper, fulfilled with the sentinel
 * pointer (or with @c inner, for a thenable for a thenable), or rejected with
 * e_sentinel (PACT_EPROTO for the thenable whose then fails). */
enum yt {
    YT_F_SYNC,       /* a synchronously-fulfilled custom thenable */
    YT_F_ASYNC,      /* an asynchronously-fulfilled custom thenable */
    YT_F_TWICE,      /* a thenable that tries to fulfill twice */
    YT_F_THEN_FAILS, /* a thenable that fulfills but then throws */
    YT_F_ALREADY,    /* an already-fulfilled promise */
    YT_F_EVENTUALLY, /* an eventually-fulfilled promise */
    YT_R_SYNC,       /* a synchronously-rejected custom thenable */
    YT_R_ASYNC,      /* an asynchronously-rejected custom thenable */
    YT_R_THEN_FAILS, /* a thenable that immediately throws in `then` */
    YT_R_ALREADY,    /* an already-rejected promise */
    YT_R_EVENTUALLY, /* an eventually-rejected promise */
    YT_N
};
#define YT_NF (YT_R_SYNC) /* the fulfilling kinds come first */

struct yspec {
    int kind;
    const struct yspec *inner; /* NULL: the sentinel pointer */
};

static pact_value build(const struct yspec *sp);

/* A thenable whose then runs a script, one letter per step: upper case runs
 * inside then, lower case from its own timer (holding a reference to the
 * resolver). 'Y'/'y' resolve with y (or the built yspec), 'O'/'o' with an
 * owned "other", 'R'/'r' reject with r, 'X'/'x' with e_other, 'S' keeps a
 * reference to the resolver in saved. Then returns rc. The first settlement
 * (or a negative rc) must be the one that counts: later ones must get
 * PACT_EALREADY. */
struct fthen;
struct later {
    struct fthen *t;
    char op;
    pact_deferred *d;
};
struct fthen {
    const char *script;
    const char *name; /* traced when then is called */
    pact_value y, y2;
    bool lazy;
    const struct yspec *yspec;
    pact_error *r;
    int rc;
    bool handed, settled;
    int then_calls, release_calls;
    pact_deferred *saved;
    struct later later[4];
    int nlater;
};

enum { NPOOL = 16 };
static struct fthen pool[NPOOL];
static int npool;

static void fthen_op(struct fthen *t, pact_deferred *d, char op)
{
    int rc = 0;
    switch (op) {
    case 'Y':
    case 'y':
        rc = pact_deferred_resolve(d, t->lazy ? build(t->yspec) : take(&t->y));
        break;
    case 'O':
    case 'o':
        rc = pact_deferred_resolve(d, take(&t->y2));
        break;
    case 'R':
    case 'r':
        rc = pact_deferred_reject(d, pact_error_ref(t->r));
        break;
    case 'X':
    case 'x':
        rc = pact_deferred_reject(d, pact_error_ref(e_other));
        break;
    default:
        ck_abort_msg("bad op %c", op);
    }
    ck_assert_int_eq(rc, t->settled ? PACT_EALREADY : 0);
    t->settled = true;
}

static void later_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct later *l = ud;
    fthen_op(l->t, l->d, l->op);
    pact_deferred_unref(l->d);
    l->d = NULL;
}

static int fthen_then(void *obj, pact_deferred *resolver)
{
    struct fthen *t = obj;
    ck_assert_ptr_nonnull(resolver);
    ck_assert(t->handed);
    ck_assert_int_eq(t->release_calls, 0);
    t->then_calls++;
    if (t->name)
        trace("%s", t->name);
    for (const char *s = t->script; *s; s++) {
        if (*s == 'S') {
            t->saved = pact_deferred_ref(resolver);
        } else if (*s >= 'a' && *s <= 'z') {
            ck_assert_int_lt(t->nlater, 4);
            struct later *l = &t->later[t->nlater++];
            l->t = t;
            l->op = *s;
            l->d = pact_deferred_ref(resolver);
            ck_assert_int_eq(pact_timeout(t_loop, 0, later_cb, l, NULL), 0);
        } else {
            fthen_op(t, resolver, *s);
        }
    }
    if (t->rc < 0)
        t->settled = true;
    return t->rc;
}

static void fthen_release(void *obj)
{
    struct fthen *t = obj;
    t->release_calls++;
}

static const pact_thenable_vt fthen_vt = {fthen_then, fthen_release};

static struct fthen *fthen_new(const char *script, pact_value y, int rc)
{
    ck_assert_int_lt(npool, NPOOL);
    struct fthen *t = &pool[npool++];
    memset(t, 0, sizeof *t);
    t->script = script;
    t->y = y;
    t->r = e_sentinel;
    t->rc = rc;
    if (strpbrk(script, "Oo"))
        t->y2 = make_other();
    return t;
}

static struct fthen *fthen_lazy(const char *script, const struct yspec *sp,
                                int rc)
{
    struct fthen *t = fthen_new(script, pact_nothing(), rc);
    t->lazy = true;
    t->yspec = sp;
    return t;
}

static pact_value fthen_v(struct fthen *t)
{
    t->handed = true;
    return pact_thenable(t, &fthen_vt);
}

/* ---- promise sources (testThreeCases) ------------------------------------ */

enum { ALREADY, IMMEDIATELY, EVENTUALLY, NMODES };

struct src {
    int mode;
    bool reject, lazy;
    pact_value v;
    const struct yspec *spec;
    pact_error *err; /* borrowed from the globals */
    pact_deferred *d;
    pact_promise *p; /* ours; dropped in teardown */
};

enum { NSRCS = 40 };
static struct src srcs[NSRCS];
static int nsrcs;

static pact_value src_value(struct src *s)
{
    return s->lazy ? build(s->spec) : take(&s->v);
}

static struct src *src_new(int mode, bool reject)
{
    ck_assert_int_lt(nsrcs, NSRCS);
    struct src *s = &srcs[nsrcs++];
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->reject = reject;
    return s;
}

static void src_open(struct src *s)
{
    if (s->mode != ALREADY) {
        s->d = pact_deferred_new(t_loop, &s->p);
        ck_assert_ptr_nonnull(s->d);
    } else if (!s->reject) {
        s->p = pact_resolved(t_loop, src_value(s));
    } else if (s->err) {
        s->p = pact_rejected(t_loop, pact_error_ref(s->err));
    } else {
        s->p = pact_resolved(t_loop, pact_throw(NULL));
    }
    ck_assert_ptr_nonnull(s->p);
}

static void src_settle(struct src *s)
{
    int rc = s->reject ? pact_deferred_reject(s->d, pact_error_ref(s->err))
                       : pact_deferred_resolve(s->d, src_value(s));
    ck_assert_int_eq(rc, 0);
    pact_deferred_unref(s->d);
    s->d = NULL;
}

static void src_timer(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    src_settle(ud);
}

/* Settle as the mode says: now (immediately) or in 5 ms (eventually). */
static void src_go(struct src *s)
{
    if (s->mode == IMMEDIATELY)
        src_settle(s);
    else if (s->mode == EVENTUALLY)
        ck_assert_int_eq(pact_timeout(t_loop, 5, src_timer, s, NULL), 0);
}

/* A promise fulfilled with @p v (stolen) in @p mode; call src_go after
 * attaching the handlers. */
static struct src *src_f(int mode, pact_value v)
{
    struct src *s = src_new(mode, false);
    s->v = v;
    src_open(s);
    return s;
}

static struct src *src_r(int mode, pact_error *err)
{
    struct src *s = src_new(mode, true);
    s->err = err;
    src_open(s);
    return s;
}

/* ---- [[Resolve]] via a handler (2.3's testPromiseResolution) ------------- */

struct via {
    pact_value x;
    pact_promise *base;
    int calls;
};

enum { NVIAS = 16 };
static struct via vias[NVIAS];
static int nvias;

static pact_value via_ok(const pact_value *v, void *ud)
{
    struct via *w = ud;
    ck_assert_int_eq(v->kind, PACT_PTR);
    ck_assert_ptr_eq(v->u.ptr, &dummy_obj);
    w->calls++;
    return take(&w->x);
}

static pact_value via_fail(pact_error *err, void *ud)
{
    struct via *w = ud;
    ck_assert_ptr_eq(err, e_dummy);
    w->calls++;
    return take(&w->x);
}

/* The promise a handler resolves with @p x (stolen): "via return from a
 * fulfilled promise" (@p which 0) or "from a rejected promise" (1). */
static pact_promise *via(int which, pact_value x)
{
    ck_assert_int_lt(nvias, NVIAS);
    struct via *w = &vias[nvias++];
    memset(w, 0, sizeof *w);
    w->x = x;
    pact_promise *p;
    if (which == 0) {
        w->base = pact_resolved(t_loop, pact_ptr(&dummy_obj));
        ck_assert_ptr_nonnull(w->base);
        p = pact_then(w->base, via_ok, NULL, w);
    } else {
        w->base = pact_rejected(t_loop, pact_error_ref(e_dummy));
        ck_assert_ptr_nonnull(w->base);
        p = pact_then(w->base, NULL, via_fail, w);
    }
    ck_assert_ptr_nonnull(p);
    return p;
}

static pact_value build(const struct yspec *sp)
{
    if (!sp)
        return pact_ptr(&sentinel_obj);
    switch (sp->kind) {
    case YT_F_SYNC:
        return fthen_v(fthen_lazy("Y", sp->inner, 0));
    case YT_F_ASYNC:
        return fthen_v(fthen_lazy("y", sp->inner, 0));
    case YT_F_TWICE:
        return fthen_v(fthen_lazy("YO", sp->inner, 0));
    case YT_F_THEN_FAILS:
        return fthen_v(fthen_lazy("Y", sp->inner, PACT_EIO));
    case YT_F_ALREADY: {
        pact_promise *p = pact_resolved(t_loop, build(sp->inner));
        ck_assert_ptr_nonnull(p);
        return pact_promise_v(p);
    }
    case YT_F_EVENTUALLY: {
        struct src *s = src_new(EVENTUALLY, false);
        s->lazy = true;
        s->spec = sp->inner;
        src_open(s);
        src_go(s);
        return pact_promise_v(pact_promise_ref(s->p));
    }
    case YT_R_SYNC:
        return fthen_v(fthen_new("R", pact_nothing(), 0));
    case YT_R_ASYNC:
        return fthen_v(fthen_new("r", pact_nothing(), 0));
    case YT_R_THEN_FAILS:
        return fthen_v(fthen_new("", pact_nothing(), PACT_EPROTO));
    case YT_R_ALREADY: {
        pact_promise *p = pact_rejected(t_loop, pact_error_ref(e_sentinel));
        ck_assert_ptr_nonnull(p);
        return pact_promise_v(p);
    }
    case YT_R_EVENTUALLY: {
        struct src *s = src_r(EVENTUALLY, e_sentinel);
        src_go(s);
        return pact_promise_v(pact_promise_ref(s->p));
    }
    }
    ck_abort_msg("no yspec kind %d", sp->kind);
    return pact_nothing();
}

/* What a promise resolved with @p kind ends as. */
static void want_yt(struct h *h, int kind)
{
    if (kind < YT_NF)
        h->want_ptr = &sentinel_obj;
    else if (kind == YT_R_THEN_FAILS)
        h->want_code = PACT_EPROTO;
    else
        want_reason(h, e_sentinel);
}

static void expect_yt(const struct h *h, int kind)
{
    if (kind < YT_NF)
        expect_ok(h);
    else
        expect_fail(h);
}

/* ---- fixture ------------------------------------------------------------- */

static void a_setup(void)
{
    t_setup();
    e_dummy = PACT_ERROR(PACT_EIO, "dummy");
    e_sentinel = PACT_ERROR(PACT_EPROTO, "sentinel");
    e_sentinel2 = PACT_ERROR(PACT_EPIPE, "sentinel2");
    e_other = PACT_ERROR(PACT_EINVAL, "other");
    ck_assert_ptr_nonnull(e_dummy);
    ck_assert_ptr_nonnull(e_sentinel);
    ck_assert_ptr_nonnull(e_sentinel2);
    ck_assert_ptr_nonnull(e_other);
    reasons[RS_PLAIN] = PACT_ERROR(PACT_ECONNRESET);
    reasons[RS_MESSAGE] = PACT_ERROR(PACT_EIO, "reason %d", 2);
    reasons[RS_CAUSE] = PACT_ERROR_CAUSE(e_dummy, PACT_EPIPE, "with a cause");
    pact_error *two[2] = {e_sentinel, e_other};
    reasons[RS_AGGREGATE] = PACT_ERROR_AGGREGATE(two, 2);
    reasons[RS_TYPE] = PACT_ERROR(PACT_ETYPE, "not a function");
    reasons[RS_NULL] = NULL;
    for (int r = 0; r < RS_NULL; r++)
        ck_assert_ptr_nonnull(reasons[r]);
    j_sentinel = json_pack("{s:s}", "sentinel", "sentinel");
    ck_assert_ptr_nonnull(j_sentinel);
    owned_made = owned_freed = other_made = other_freed = 0;
    npool = nsrcs = nvias = 0;
}

/* Drops what the helpers hold, checks every thenable was released once and
 * every via handler ran once, frees the loop, then checks every destructor
 * ran once and the JSON sentinel is back to our one reference. */
static void a_teardown(void)
{
    for (int i = 0; i < nvias; i++) {
        ck_assert_int_eq(vias[i].calls, 1);
        pact_value_release(&vias[i].x);
        pact_promise_unref(vias[i].base);
    }
    for (int i = 0; i < nsrcs; i++) {
        ck_assert_ptr_null(srcs[i].d);
        pact_value_release(&srcs[i].v);
        pact_promise_unref(srcs[i].p);
    }
    for (int i = 0; i < npool; i++) {
        pact_value_release(&pool[i].y);
        pact_value_release(&pool[i].y2);
    }
    for (int i = 0; i < npool; i++) {
        ck_assert_ptr_null(pool[i].saved);
        ck_assert_int_le(pool[i].then_calls, 1);
        if (pool[i].handed)
            ck_assert_int_eq(pool[i].release_calls, 1);
    }
    t_teardown();
    ck_assert_int_eq(owned_freed, owned_made);
    ck_assert_int_eq(other_freed, other_made);
    ck_assert_int_eq(j_sentinel->refcount, 1);
    json_decref(j_sentinel);
    for (int r = 0; r < RS_N; r++)
        pact_error_unref(reasons[r]);
    pact_error_unref(e_dummy);
    pact_error_unref(e_sentinel);
    pact_error_unref(e_sentinel2);
    pact_error_unref(e_other);
}

/* ==== 2.1.2: when fulfilled, a promise must not transition =============== */

/* 2.1.2.1 (testFulfilled): onRejected never runs; the state stays. */
START_TEST(aplus_2_1_2_1_fulfilled_stays_fulfilled)
{
    struct src *s = src_f(_i, pact_ptr(&dummy_obj));
    struct h h = {.want_ptr = &dummy_obj};
    watch(s->p, &h);
    src_go(s);
    run();
    expect_ok(&h);
    ck_assert_int_eq(pact_promise_state(s->p), PACT_FULFILLED);
    ck_assert_ptr_null(pact_promise_error(s->p));
    ck_assert_ptr_eq(pact_promise_value(s->p)->u.ptr, &dummy_obj);
}
END_TEST

/* 2.1.2.1 and 2.1.3.1: a deferred settled by ops now (@p now) and by
 * later_ops from a timer; the promise ends as the first op says. */
static void settle_twice(const char *now, const char *later_ops)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(p);
    bool fulfil = (*now ? *now : *later_ops) == 'f';
    struct h h = {0};
    if (fulfil)
        h.want_ptr = &sentinel_obj;
    else
        want_reason(&h, e_sentinel);
    watch(p, &h);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    settle_ops(d, now, false);
    struct tact a = {0};
    if (*later_ops)
        tact_start(&a, d, later_ops, *now != '\0', 5);
    pact_deferred_unref(d);
    run();
    if (fulfil) {
        expect_ok(&h);
        ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
        ck_assert_ptr_eq(pact_promise_value(p)->u.ptr, &sentinel_obj);
    } else {
        expect_fail(&h);
        ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
        ck_assert_ptr_eq(pact_promise_error(p), e_sentinel);
    }
    pact_promise_unref(p);
}

START_TEST(aplus_2_1_2_1_fulfill_then_reject_immediately)
{
    settle_twice("fr", "");
}
END_TEST

START_TEST(aplus_2_1_2_1_fulfill_then_reject_delayed)
{
    settle_twice("", "fr");
}
END_TEST

START_TEST(aplus_2_1_2_1_fulfill_immediately_reject_delayed)
{
    settle_twice("f", "r");
}
END_TEST

/* ==== 2.1.3: when rejected, a promise must not transition ================ */

START_TEST(aplus_2_1_3_1_rejected_stays_rejected)
{
    struct src *s = src_r(_i, e_sentinel);
    struct h h = {0};
    want_reason(&h, e_sentinel);
    watch(s->p, &h);
    src_go(s);
    run();
    expect_fail(&h);
    ck_assert_int_eq(pact_promise_state(s->p), PACT_REJECTED);
    ck_assert_ptr_null(pact_promise_value(s->p));
    ck_assert_ptr_eq(pact_promise_error(s->p), e_sentinel);
}
END_TEST

START_TEST(aplus_2_1_3_1_reject_then_fulfill_immediately)
{
    settle_twice("rf", "");
}
END_TEST

START_TEST(aplus_2_1_3_1_reject_then_fulfill_delayed)
{
    settle_twice("", "rf");
}
END_TEST

START_TEST(aplus_2_1_3_1_reject_immediately_fulfill_delayed)
{
    settle_twice("r", "f");
}
END_TEST

/* ==== 2.2.1: both handlers are optional (NULL) =========================== */

START_TEST(aplus_2_2_1_1_null_on_fulfilled_ignored_direct_reject)
{
    pact_promise *p = pact_rejected(t_loop, pact_error_ref(e_dummy));
    struct h h = {.want_err = e_dummy};
    pact_promise *q = then_fail(p, &h);
    run();
    expect_fail(&h);
    pact_promise_unref(q);
    pact_promise_unref(p);
}
END_TEST

START_TEST(aplus_2_2_1_1_null_on_fulfilled_ignored_chained)
{
    pact_promise *p = pact_rejected(t_loop, pact_error_ref(e_dummy));
    struct h first = {0}, h = {.want_err = e_dummy};
    pact_promise *q = then_ok(p, &first);
    pact_promise *q2 = then_fail(q, &h);
    run();
    ck_assert_int_eq(first.ok, 0);
    expect_fail(&h);
    pact_promise_unref(q2);
    pact_promise_unref(q);
    pact_promise_unref(p);
}
END_TEST

START_TEST(aplus_2_2_1_2_null_on_rejected_ignored_direct_fulfill)
{
    pact_promise *p = pact_resolved(t_loop, pact_ptr(&dummy_obj));
    struct h h = {.want_ptr = &dummy_obj};
    pact_promise *q = then_ok(p, &h);
    run();
    expect_ok(&h);
    pact_promise_unref(q);
    pact_promise_unref(p);
}
END_TEST

START_TEST(aplus_2_2_1_2_null_on_rejected_ignored_chained)
{
    pact_promise *p = pact_resolved(t_loop, pact_ptr(&dummy_obj));
    struct h first = {0}, h = {.want_ptr = &dummy_obj};
    pact_promise *q = then_fail(p, &first);
    pact_promise *q2 = then_ok(q, &h);
    run();
    ck_assert_int_eq(first.fail, 0);
    expect_ok(&h);
    pact_promise_unref(q2);
    pact_promise_unref(q);
    pact_promise_unref(p);
}
END_TEST

/* ==== 2.2.2: onFulfilled ================================================= */

/* 2.2.2.1: called with the fulfilment value, for a value of every kind. */
START_TEST(aplus_2_2_2_1_called_with_fulfillment_value)
{
    struct src *s[VK_N];
    struct h h[VK_N];
    memset(h, 0, sizeof h);
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        s[k] = src_f(_i, make_val(k));
        h[k].vk = k;
        watch(s[k]->p, &h[k]);
    }
    for (int k = VK_NONE + 1; k < VK_N; k++)
        src_go(s[k]);
    run();
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        expect_ok(&h[k]);
        check_val(k, pact_promise_value(s[k]->p));
    }
}
END_TEST

/* 2.2.2.2 fulfilled after a delay: not before. */
START_TEST(aplus_2_2_2_2_not_called_before_fulfilled)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    bool fulfilled = false;
    struct h h = {.flag = &fulfilled, .want_ptr = &sentinel_obj};
    watch(p, &h);
    struct tact a = {.flag = &fulfilled};
    tact_start(&a, d, "f", false, 5);
    pact_deferred_unref(d);
    run();
    expect_ok(&h);
    pact_promise_unref(p);
}
END_TEST

/* "never fulfilled": still not called 20 ms later; pact then drops the
 * resolver, which rejects with PACT_ECANCELED (a broken promise). */
struct never {
    pact_deferred *d;
    pact_promise *p;
    struct h *h;
};

static void never_check(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct never *n = ud;
    ck_assert_int_eq(n->h->ok, 0);
    ck_assert_int_eq(n->h->fail, 0);
    ck_assert_int_eq(pact_promise_state(n->p), PACT_PENDING);
    pact_deferred_unref(n->d);
    n->d = NULL;
}

static void never_settled(void)
{
    struct never n = {0};
    n.d = pact_deferred_new(t_loop, &n.p);
    ck_assert_ptr_nonnull(n.d);
    struct h h = {.want_code = PACT_ECANCELED};
    n.h = &h;
    watch(n.p, &h);
    ck_assert_int_eq(pact_timeout(t_loop, 20, never_check, &n, NULL), 0);
    run();
    expect_fail(&h);
    pact_promise_unref(n.p);
}

START_TEST(aplus_2_2_2_2_never_fulfilled)
{
    never_settled();
}
END_TEST

/* 2.2.2.3 / 2.2.3.3: handlers run once. */
START_TEST(aplus_2_2_2_3_already_fulfilled_once)
{
    pact_promise *p = pact_resolved(t_loop, pact_ptr(&dummy_obj));
    struct h h = {.want_ptr = &dummy_obj};
    watch(p, &h);
    run();
    expect_ok(&h);
    pact_promise_unref(p);
}
END_TEST

START_TEST(aplus_2_2_2_3_fulfill_twice_immediately)
{
    settle_twice("fo", "");
}
END_TEST

START_TEST(aplus_2_2_2_3_fulfill_twice_delayed)
{
    settle_twice("", "fo");
}
END_TEST

START_TEST(aplus_2_2_2_3_fulfill_twice_immediately_then_delayed)
{
    settle_twice("f", "o");
}
END_TEST

/* then calls at 0, 5 and 10 ms; settled at 15 ms: each handler once, in the
 * order attached. */
struct spaced {
    pact_promise *p;
    struct h *h;
};

static void attach_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct spaced *a = ud;
    watch(a->p, a->h);
}

static void then_spaced_in_time(bool reject)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    struct h h[3] = {{.name = "h1"}, {.name = "h2"}, {.name = "h3"}};
    for (int i = 0; i < 3; i++) {
        if (reject)
            want_reason(&h[i], e_sentinel);
        else
            h[i].want_ptr = &sentinel_obj;
    }
    watch(p, &h[0]);
    struct spaced a2 = {p, &h[1]}, a3 = {p, &h[2]};
    ck_assert_int_eq(pact_timeout(t_loop, 5, attach_cb, &a2, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 10, attach_cb, &a3, NULL), 0);
    struct tact a = {0};
    tact_start(&a, d, reject ? "r" : "f", false, 15);
    pact_deferred_unref(d);
    run();
    for (int i = 0; i < 3; i++) {
        if (reject)
            expect_fail(&h[i]);
        else
            expect_ok(&h[i]);
    }
    ck_assert_str_eq(trace_text(), "h1\nh2\nh3\n");
    pact_promise_unref(p);
}

START_TEST(aplus_2_2_2_3_then_calls_spaced_in_time)
{
    then_spaced_in_time(false);
}
END_TEST

static void then_interleaved(bool reject)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    struct h h1 = {.name = "h1"}, h2 = {.name = "h2"};
    watch(p, &h1);
    settle_ops(d, reject ? "r" : "f", false);
    watch(p, &h2);
    pact_deferred_unref(d);
    run();
    ck_assert_int_eq(reject ? h1.fail : h1.ok, 1);
    ck_assert_int_eq(reject ? h2.fail : h2.ok, 1);
    ck_assert_int_eq(reject ? h1.ok : h1.fail, 0);
    ck_assert_int_eq(reject ? h2.ok : h2.fail, 0);
    ck_assert_str_eq(trace_text(), "h1\nh2\n");
    pact_promise_unref(p);
}

START_TEST(aplus_2_2_2_3_then_interleaved_with_fulfillment)
{
    then_interleaved(false);
}
END_TEST

/* ==== 2.2.3: onRejected ================================================== */

/* 2.2.3.1: called with the reason, for reasons of every shape. */
START_TEST(aplus_2_2_3_1_called_with_rejection_reason)
{
    struct src *s[RS_N];
    struct h h[RS_N];
    memset(h, 0, sizeof h);
    for (int r = 0; r < RS_N; r++) {
        s[r] = src_r(_i, reasons[r]);
        want_reason(&h[r], reasons[r]);
        watch(s[r]->p, &h[r]);
    }
    for (int r = 0; r < RS_N; r++)
        src_go(s[r]);
    run();
    for (int r = 0; r < RS_N; r++) {
        expect_fail(&h[r]);
        if (reasons[r])
            ck_assert_ptr_eq(pact_promise_error(s[r]->p), reasons[r]);
    }
}
END_TEST

START_TEST(aplus_2_2_3_2_not_called_before_rejected)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    bool rejected = false;
    struct h h = {.flag = &rejected, .want_err = e_sentinel};
    watch(p, &h);
    struct tact a = {.flag = &rejected};
    tact_start(&a, d, "r", false, 5);
    pact_deferred_unref(d);
    run();
    expect_fail(&h);
    pact_promise_unref(p);
}
END_TEST

START_TEST(aplus_2_2_3_2_never_rejected)
{
    never_settled();
}
END_TEST

START_TEST(aplus_2_2_3_3_already_rejected_once)
{
    pact_promise *p = pact_rejected(t_loop, pact_error_ref(e_dummy));
    struct h h = {.want_err = e_dummy};
    watch(p, &h);
    run();
    expect_fail(&h);
    pact_promise_unref(p);
}
END_TEST

START_TEST(aplus_2_2_3_3_reject_twice_immediately)
{
    settle_twice("rx", "");
}
END_TEST

START_TEST(aplus_2_2_3_3_reject_twice_delayed)
{
    settle_twice("", "rx");
}
END_TEST

START_TEST(aplus_2_2_3_3_reject_twice_immediately_then_delayed)
{
    settle_twice("r", "x");
}
END_TEST

START_TEST(aplus_2_2_3_3_then_calls_spaced_in_time)
{
    then_spaced_in_time(true);
}
END_TEST

START_TEST(aplus_2_2_3_3_then_interleaved_with_rejection)
{
    then_interleaved(true);
}
END_TEST

/* ==== 2.2.4: handlers run only from the microtask queue ================== */

/* `then` returns before the handler runs; settling does not run it either
 * (testFulfilled / testRejected: iterations 0-2 fulfil, 3-5 reject). */
START_TEST(aplus_2_2_4_then_returns_before_handler)
{
    bool reject = _i >= NMODES;
    struct src *s =
        reject ? src_r(_i - NMODES, e_dummy) : src_f(_i, pact_ptr(&dummy_obj));
    bool returned = false;
    struct h h = {.flag = &returned};
    watch(s->p, &h);
    ck_assert_int_eq(h.ok + h.fail, 0);
    returned = true;
    src_go(s);
    ck_assert_int_eq(h.ok + h.fail, 0);
    run();
    ck_assert_int_eq(reject ? h.fail : h.ok, 1);
    ck_assert_int_eq(h.ok + h.fail, 1);
}
END_TEST

/* The handler is attached before (@p first_then) or after the settlement;
 * neither pact_then nor pact_deferred_resolve/reject runs it. */
static void clean_stack(bool reject, bool first_then)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    struct h h = {0};
    if (first_then)
        watch(p, &h);
    settle_ops(d, reject ? "r" : "d", false);
    ck_assert_int_eq(h.ok + h.fail, 0);
    if (!first_then) {
        watch(p, &h);
        ck_assert_int_eq(h.ok + h.fail, 0);
    }
    pact_deferred_unref(d);
    ck_assert_int_eq(h.ok + h.fail, 0);
    run();
    ck_assert_int_eq(h.ok + h.fail, 1);
    pact_promise_unref(p);
}

START_TEST(aplus_2_2_4_fulfill_handler_added_before_fulfilled)
{
    clean_stack(false, true);
}
END_TEST

START_TEST(aplus_2_2_4_fulfill_handler_added_after_fulfilled)
{
    clean_stack(false, false);
}
END_TEST

START_TEST(aplus_2_2_4_reject_handler_added_before_rejected)
{
    clean_stack(true, true);
}
END_TEST

START_TEST(aplus_2_2_4_reject_handler_added_after_rejected)
{
    clean_stack(true, false);
}
END_TEST

/* A handler attached inside another runs after the outer one returns. */
struct nest {
    pact_promise *p2;
    struct h *inner;
    bool finished;
    int calls;
};

static void nest_body(struct nest *n)
{
    n->calls++;
    watch(n->p2, n->inner);
    ck_assert_int_eq(n->inner->ok + n->inner->fail, 0);
    n->finished = true;
}

static pact_value nest_ok(const pact_value *v, void *ud)
{
    (void)v;
    nest_body(ud);
    return pact_nothing();
}

static pact_value nest_fail(pact_error *err, void *ud)
{
    (void)err;
    nest_body(ud);
    return pact_nothing();
}

/* outer: whether the outer promise rejects; inner: the inner one. Both
 * "same" cases attach to one promise, as the suite does. */
static void nested(bool outer_rejects, bool inner_rejects)
{
    pact_promise *p1 = outer_rejects
                           ? pact_rejected(t_loop, pact_error_ref(e_dummy))
                           : pact_resolved(t_loop, pact_nothing());
    pact_promise *p2 = outer_rejects == inner_rejects ? pact_promise_ref(p1)
                       : inner_rejects
                           ? pact_rejected(t_loop, pact_error_ref(e_dummy))
                           : pact_resolved(t_loop, pact_nothing());
    struct nest n = {.p2 = p2};
    struct h inner = {.flag = &n.finished};
    n.inner = &inner;
    pact_promise *q = outer_rejects ? pact_then(p1, NULL, nest_fail, &n)
                                    : pact_then(p1, nest_ok, NULL, &n);
    ck_assert_ptr_nonnull(q);
    run();
    ck_assert_int_eq(n.calls, 1);
    ck_assert_int_eq(inner_rejects ? inner.fail : inner.ok, 1);
    ck_assert_int_eq(inner.ok + inner.fail, 1);
    pact_promise_unref(q);
    pact_promise_unref(p2);
    pact_promise_unref(p1);
}

START_TEST(aplus_2_2_4_fulfill_handler_added_inside_fulfill_handler)
{
    nested(false, false);
}
END_TEST

START_TEST(aplus_2_2_4_fulfill_handler_added_inside_reject_handler)
{
    nested(true, false);
}
END_TEST

START_TEST(aplus_2_2_4_reject_handler_added_inside_fulfill_handler)
{
    nested(false, true);
}
END_TEST

START_TEST(aplus_2_2_4_reject_handler_added_inside_reject_handler)
{
    nested(true, true);
}
END_TEST

/* Settled from a timer: the timer callback finishes first. */
static void settled_async(bool reject)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    bool finished = false;
    struct tact a = {.flag = &finished};
    tact_start(&a, d, reject ? "r" : "f", false, 0);
    struct h h = {.flag = &finished};
    watch(p, &h);
    pact_deferred_unref(d);
    run();
    ck_assert_int_eq(reject ? h.fail : h.ok, 1);
    ck_assert_int_eq(h.ok + h.fail, 1);
    pact_promise_unref(p);
}

START_TEST(aplus_2_2_4_fulfilled_asynchronously)
{
    settled_async(false);
}
END_TEST

START_TEST(aplus_2_2_4_rejected_asynchronously)
{
    settled_async(true);
}
END_TEST

/* "Platform code" is pact's microtask queue, in Node's order: the nextTick
 * queue first, then microtasks in the order queued, handlers among them. */
START_TEST(aplus_2_2_4_handlers_run_as_microtasks)
{
    pact_promise *p = pact_resolved(t_loop, pact_nothing());
    pact_promise *r = pact_rejected(t_loop, pact_error_ref(e_dummy));
    struct h h = {.name = "then"}, hr = {.name = "catch"};
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m1"), 0);
    watch(p, &h);
    ck_assert_int_eq(pact_next_tick(t_loop, trace_fn, "tick"), 0);
    watch(r, &hr);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m2"), 0);
    ck_assert_str_eq(trace_text(), "");
    run();
    ck_assert_str_eq(trace_text(), "tick\nm1\nthen\ncatch\nm2\n");
    pact_promise_unref(r);
    pact_promise_unref(p);
}
END_TEST

/* Settled inside a macrotask: the handler runs once that callback returns,
 * before the next macrotask. */
START_TEST(aplus_2_2_4_handlers_run_after_callback_before_next_macrotask)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    struct h h = {.name = "handler"};
    watch(p, &h);
    struct tact a = {.name = "t1 end"};
    tact_start(&a, d, "f", false, 5);
    ck_assert_int_eq(pact_timeout(t_loop, 5, trace_cb, "t2", NULL), 0);
    pact_deferred_unref(d);
    run();
    ck_assert_str_eq(trace_text(), "t1 end\nhandler\nt2\n");
    pact_promise_unref(p);
}
END_TEST

/* ==== 2.2.5: called as functions (no this) =============================== */

/* C has no `this`: a handler gets exactly the ud given with it. */
static int ud_a, ud_b;

static pact_value ud_ok(const pact_value *v, void *ud)
{
    (void)v;
    ++*(int *)ud;
    return pact_nothing();
}

static pact_value ud_fail(pact_error *err, void *ud)
{
    (void)err;
    *(int *)ud += 10;
    return pact_nothing();
}

START_TEST(aplus_2_2_5_handlers_get_their_ud)
{
    ud_a = ud_b = 0;
    pact_promise *p = pact_resolved(t_loop, pact_nothing());
    pact_promise *r = pact_rejected(t_loop, pact_error_ref(e_dummy));
    pact_promise *q1 = pact_then(p, ud_ok, ud_fail, &ud_a);
    pact_promise *q2 = pact_then(r, ud_ok, ud_fail, &ud_b);
    run();
    ck_assert_int_eq(ud_a, 1);
    ck_assert_int_eq(ud_b, 10);
    pact_promise_unref(q2);
    pact_promise_unref(q1);
    pact_promise_unref(r);
    pact_promise_unref(p);
}
END_TEST

/* ==== 2.2.6: then may be called many times on one promise ================ */

/* Iterations 0-2 fulfil (2.2.6.1), the suites for 2.2.6.2 reject. */
static struct src *src_sentinel(int mode, bool reject)
{
    return reject ? src_r(mode, e_sentinel)
                  : src_f(mode, pact_ptr(&sentinel_obj));
}

static void want_sentinel(struct h *h, bool reject)
{
    if (reject)
        want_reason(h, e_sentinel);
    else
        h->want_ptr = &sentinel_obj;
}

/* Three handlers returning "other" (one of them failing, if @p throws), a
 * fourth that checks the first three ran, in order, and the spies never. */
static void multiple_handlers(int mode, bool reject, bool throws)
{
    struct src *s = src_sentinel(mode, reject);
    struct h h[4] = {
        {.name = "h1"}, {.name = "h2"}, {.name = "h3"}, {.name = "last"}};
    pact_promise *q[3];
    struct h caught = {.want_err = e_other};
    for (int i = 0; i < 4; i++) {
        want_sentinel(&h[i], reject);
        if (i < 3)
            h[i].ret = make_other();
    }
    if (throws) {
        pact_value_release(&h[1].ret);
        h[1].ret = pact_throw(pact_error_ref(e_other));
    }
    for (int i = 0; i < 3; i++)
        q[i] = pact_then(s->p, h_ok, h_fail, &h[i]);
    watch(s->p, &h[3]);
    pact_promise *c = then_fail(q[1], &caught);
    src_go(s);
    run();
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(reject ? h[i].fail : h[i].ok, 1);
        ck_assert_int_eq(h[i].ok + h[i].fail, 1);
    }
    ck_assert_str_eq(trace_text(), "h1\nh2\nh3\nlast\n");
    ck_assert_int_eq(caught.fail, throws ? 1 : 0);
    ck_assert_int_eq(pact_promise_state(q[1]),
                     throws ? PACT_REJECTED : PACT_FULFILLED);
    for (int i = 0; i < 3; i += 2) {
        ck_assert_int_eq(pact_promise_state(q[i]), PACT_FULFILLED);
        ck_assert(pact_promise_value(q[i])->u.owned.free == other_free);
    }
    pact_promise_unref(c);
    for (int i = 0; i < 3; i++)
        pact_promise_unref(q[i]);
}

START_TEST(aplus_2_2_6_1_multiple_fulfill_handlers)
{
    multiple_handlers(_i, false, false);
}
END_TEST

START_TEST(aplus_2_2_6_1_multiple_fulfill_handlers_one_fails)
{
    multiple_handlers(_i, false, true);
}
END_TEST

/* Three branches with their own outcomes: a value, a failure, a JSON. */
static void branching_chains(int mode, bool reject)
{
    struct src *s = src_sentinel(mode, reject);
    struct h b[3] = {0}, c[3] = {0};
    b[0].ret = pact_ptr(&sentinel_obj);
    b[1].ret = pact_throw(pact_error_ref(e_sentinel2));
    b[2].ret = make_val(VK_JSON);
    c[0].want_ptr = &sentinel_obj;
    c[1].want_err = e_sentinel2;
    c[2].vk = VK_JSON;
    for (int i = 0; i < 3; i++) {
        pact_promise *q =
            reject ? then_fail(s->p, &b[i]) : then_ok(s->p, &b[i]);
        watch(q, &c[i]);
        pact_promise_unref(q);
    }
    src_go(s);
    run();
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(reject ? b[i].fail : b[i].ok, 1);
        if (i == 1)
            expect_fail(&c[i]);
        else
            expect_ok(&c[i]);
    }
}

START_TEST(aplus_2_2_6_1_branching_chains_with_own_values)
{
    branching_chains(_i, false);
}
END_TEST

static void handlers_in_order(int mode, bool reject)
{
    struct src *s = src_sentinel(mode, reject);
    struct h h[3] = {{.name = "h1"}, {.name = "h2"}, {.name = "h3"}};
    for (int i = 0; i < 3; i++) {
        pact_promise *q =
            reject ? then_fail(s->p, &h[i]) : then_ok(s->p, &h[i]);
        pact_promise_unref(q);
    }
    src_go(s);
    run();
    ck_assert_str_eq(trace_text(), "h1\nh2\nh3\n");
}

START_TEST(aplus_2_2_6_1_multiple_fulfill_handlers_in_order)
{
    handlers_in_order(_i, false);
}
END_TEST

/* h1 attaches h3 from inside; h2 was attached before: h1, h2, h3. */
struct inside {
    pact_promise *p;
    struct h *h3;
    bool reject;
};

static void inside_body(struct inside *in)
{
    trace("h1");
    pact_promise *q =
        in->reject ? then_fail(in->p, in->h3) : then_ok(in->p, in->h3);
    pact_promise_unref(q);
}

static pact_value inside_ok(const pact_value *v, void *ud)
{
    (void)v;
    inside_body(ud);
    return pact_nothing();
}

static pact_value inside_fail(pact_error *err, void *ud)
{
    (void)err;
    inside_body(ud);
    return pact_nothing();
}

static void handler_added_inside(int mode, bool reject)
{
    struct src *s = src_sentinel(mode, reject);
    struct h h2 = {.name = "h2"}, h3 = {.name = "h3"};
    struct inside in = {s->p, &h3, reject};
    pact_promise *q1 = reject ? pact_then(s->p, NULL, inside_fail, &in)
                              : pact_then(s->p, inside_ok, NULL, &in);
    pact_promise *q2 = reject ? then_fail(s->p, &h2) : then_ok(s->p, &h2);
    src_go(s);
    run();
    ck_assert_str_eq(trace_text(), "h1\nh2\nh3\n");
    pact_promise_unref(q2);
    pact_promise_unref(q1);
}

START_TEST(aplus_2_2_6_1_handler_added_inside_handler_in_order)
{
    handler_added_inside(_i, false);
}
END_TEST

START_TEST(aplus_2_2_6_2_multiple_reject_handlers)
{
    multiple_handlers(_i, true, false);
}
END_TEST

START_TEST(aplus_2_2_6_2_multiple_reject_handlers_one_fails)
{
    multiple_handlers(_i, true, true);
}
END_TEST

START_TEST(aplus_2_2_6_2_branching_chains_with_own_values)
{
    branching_chains(_i, true);
}
END_TEST

START_TEST(aplus_2_2_6_2_multiple_reject_handlers_in_order)
{
    handlers_in_order(_i, true);
}
END_TEST

START_TEST(aplus_2_2_6_2_handler_added_inside_handler_in_order)
{
    handler_added_inside(_i, true);
}
END_TEST

/* ==== 2.2.7: then returns a promise ====================================== */

START_TEST(aplus_2_2_7_then_returns_a_promise)
{
    pact_promise *p1;
    pact_deferred *d = pact_deferred_new(t_loop, &p1);
    pact_promise *p2 = pact_then(p1, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(p2);
    ck_assert_ptr_ne(p2, p1);
    ck_assert_int_eq(pact_promise_state(p2), PACT_PENDING);
    ck_assert_ptr_eq(pact_promise_loop(p2), t_loop);
    struct h h = {.want_ptr = &sentinel_obj};
    watch(p2, &h); /* it has a then of its own */
    settle_ops(d, "f", false);
    pact_deferred_unref(d);
    run();
    expect_ok(&h);
    ck_assert_int_eq(pact_promise_state(p2), PACT_FULFILLED);
    pact_promise_unref(p2);
    pact_promise_unref(p1);
}
END_TEST

/* 2.2.7.2: a failing handler (pact_throw) rejects promise2 with its error,
 * for reasons of every shape; iterations 0-2 fail in onFulfilled, 3-5 in
 * onRejected. */
START_TEST(aplus_2_2_7_2_failing_handler_rejects_promise2)
{
    bool reject = _i >= NMODES;
    int mode = _i % NMODES;
    struct h thrower[RS_N], h[RS_N];
    pact_promise *q[RS_N];
    struct src *s[RS_N];
    memset(thrower, 0, sizeof thrower);
    memset(h, 0, sizeof h);
    for (int r = 0; r < RS_N; r++) {
        s[r] =
            reject ? src_r(mode, e_dummy) : src_f(mode, pact_ptr(&dummy_obj));
        thrower[r].ret = pact_throw(pact_error_ref(reasons[r]));
        q[r] = reject ? then_fail(s[r]->p, &thrower[r])
                      : then_ok(s[r]->p, &thrower[r]);
        want_reason(&h[r], reasons[r]);
        watch(q[r], &h[r]);
    }
    for (int r = 0; r < RS_N; r++)
        src_go(s[r]);
    run();
    for (int r = 0; r < RS_N; r++) {
        ck_assert_int_eq(thrower[r].ok + thrower[r].fail, 1);
        expect_fail(&h[r]);
        ck_assert_int_eq(pact_promise_state(q[r]), PACT_REJECTED);
        pact_promise_unref(q[r]);
    }
}
END_TEST

/* 2.2.7.3: no onFulfilled: promise2 fulfils with the same value, of every
 * kind. */
START_TEST(aplus_2_2_7_3_null_on_fulfilled_passes_value)
{
    struct src *s[VK_N];
    struct h spy[VK_N], h[VK_N];
    pact_promise *q[VK_N];
    memset(spy, 0, sizeof spy);
    memset(h, 0, sizeof h);
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        s[k] = src_f(_i, make_val(k));
        q[k] = then_fail(s[k]->p, &spy[k]);
        h[k].vk = k;
        watch(q[k], &h[k]);
    }
    for (int k = VK_NONE + 1; k < VK_N; k++)
        src_go(s[k]);
    run();
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        ck_assert_int_eq(spy[k].fail, 0);
        expect_ok(&h[k]);
        check_val(k, pact_promise_value(q[k]));
        pact_promise_unref(q[k]);
    }
}
END_TEST

/* The owned value passed through is shared: its destructor runs once, when
 * the last promise holding it is freed. */
START_TEST(aplus_2_2_7_3_owned_value_freed_after_last_promise)
{
    pact_promise *p1 = pact_resolved(t_loop, make_val(VK_OWNED));
    pact_promise *p2 = pact_then(p1, NULL, NULL, NULL);
    struct h h = {.vk = VK_OWNED};
    watch(p2, &h);
    run();
    expect_ok(&h);
    check_val(VK_OWNED, pact_promise_value(p1));
    check_val(VK_OWNED, pact_promise_value(p2));
    ck_assert_ptr_eq(pact_promise_value(p1)->u.owned.ptr,
                     pact_promise_value(p2)->u.owned.ptr);
    ck_assert_int_eq(owned_freed, 0);
    pact_promise_unref(p1);
    ck_assert_int_eq(owned_freed, 0);
    pact_promise_unref(p2);
    ck_assert_int_eq(owned_freed, 1);
    ck_assert_int_eq(owned_made, 1);
}
END_TEST

/* ...and in the other order of release. */
START_TEST(aplus_2_2_7_3_owned_value_freed_after_last_promise_reversed)
{
    pact_promise *p1 = pact_resolved(t_loop, make_val(VK_OWNED));
    pact_promise *p2 = pact_then(p1, NULL, NULL, NULL);
    run();
    check_val(VK_OWNED, pact_promise_value(p2));
    pact_promise_unref(p2);
    ck_assert_int_eq(owned_freed, 0);
    check_val(VK_OWNED, pact_promise_value(p1));
    pact_promise_unref(p1);
    ck_assert_int_eq(owned_freed, 1);
}
END_TEST

/* A JSON value passed through holds references, given back when the
 * promises are freed. */
START_TEST(aplus_2_2_7_3_json_refcount_follows_promises)
{
    json_t *j = json_pack("[i]", 1);
    ck_assert_ptr_nonnull(j);
    pact_promise *p1 = pact_resolved(t_loop, pact_json(json_incref(j)));
    ck_assert_int_eq(j->refcount, 2);
    pact_promise *p2 = pact_then(p1, NULL, NULL, NULL);
    run();
    ck_assert_int_eq(pact_promise_value(p2)->kind, PACT_JSON);
    ck_assert_ptr_eq(pact_promise_value(p2)->u.json, j);
    ck_assert_int_ge(j->refcount, 2);
    pact_promise_unref(p1);
    ck_assert_int_ge(j->refcount, 2);
    pact_promise_unref(p2);
    ck_assert_int_eq(j->refcount, 1);
    json_decref(j);
}
END_TEST

/* 2.2.7.4: no onRejected: promise2 rejects with the same reason. */
START_TEST(aplus_2_2_7_4_null_on_rejected_passes_reason)
{
    struct src *s[RS_N];
    struct h spy[RS_N], h[RS_N];
    pact_promise *q[RS_N];
    memset(spy, 0, sizeof spy);
    memset(h, 0, sizeof h);
    for (int r = 0; r < RS_N; r++) {
        s[r] = src_r(_i, reasons[r]);
        q[r] = then_ok(s[r]->p, &spy[r]);
        want_reason(&h[r], reasons[r]);
        watch(q[r], &h[r]);
    }
    for (int r = 0; r < RS_N; r++)
        src_go(s[r]);
    run();
    for (int r = 0; r < RS_N; r++) {
        ck_assert_int_eq(spy[r].ok, 0);
        expect_fail(&h[r]);
        ck_assert_ptr_eq(pact_promise_error(q[r]), pact_promise_error(s[r]->p));
        pact_promise_unref(q[r]);
    }
}
END_TEST

/* ==== 2.3.1: promise and x are the same object: PACT_ETYPE =============== */

struct selfref {
    pact_promise *self;
    int calls;
};

static pact_value self_ok(const pact_value *v, void *ud)
{
    (void)v;
    struct selfref *s = ud;
    s->calls++;
    ck_assert_ptr_nonnull(s->self);
    return pact_promise_v(pact_promise_ref(s->self));
}

static pact_value self_fail(pact_error *err, void *ud)
{
    (void)err;
    return self_ok(NULL, ud);
}

static void returns_itself(bool reject)
{
    pact_promise *base = reject ? pact_rejected(t_loop, pact_error_ref(e_dummy))
                                : pact_resolved(t_loop, pact_ptr(&dummy_obj));
    struct selfref s = {0};
    s.self = reject ? pact_then(base, NULL, self_fail, &s)
                    : pact_then(base, self_ok, NULL, &s);
    ck_assert_ptr_nonnull(s.self);
    struct h h = {.want_code = PACT_ETYPE};
    watch(s.self, &h);
    run();
    ck_assert_int_eq(s.calls, 1);
    expect_fail(&h);
    ck_assert_int_eq(pact_promise_state(s.self), PACT_REJECTED);
    ck_assert_int_eq(pact_error_code(pact_promise_error(s.self)), PACT_ETYPE);
    pact_promise_unref(s.self);
    pact_promise_unref(base);
}

START_TEST(aplus_2_3_1_fulfill_handler_returns_own_promise)
{
    returns_itself(false);
}
END_TEST

START_TEST(aplus_2_3_1_reject_handler_returns_own_promise)
{
    returns_itself(true);
}
END_TEST

/* The same through a deferred resolved with its own promise. */
START_TEST(aplus_2_3_1_deferred_resolved_with_own_promise)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    struct h h = {.want_code = PACT_ETYPE};
    watch(p, &h);
    ck_assert_int_eq(
        pact_deferred_resolve(d, pact_promise_v(pact_promise_ref(p))), 0);
    pact_deferred_unref(d);
    run();
    expect_fail(&h);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    pact_promise_unref(p);
}
END_TEST

/* ...and through a thenable whose then resolves with the promise adopting
 * it (resolvePromise(promise)). */
START_TEST(aplus_2_3_1_thenable_resolves_with_adopting_promise)
{
    struct fthen *t = fthen_new("Y", pact_nothing(), 0);
    pact_promise *p = via(_i, fthen_v(t));
    t->y = pact_promise_v(pact_promise_ref(p));
    struct h h = {.want_code = PACT_ETYPE};
    watch(p, &h);
    run();
    ck_assert_int_eq(t->then_calls, 1);
    expect_fail(&h);
    pact_promise_unref(p);
}
END_TEST

/* ==== 2.3.2: x is a promise: adopt its state ============================= */

/* 2.3.2.1: while x is pending, so is promise; checked at 20 ms, after which
 * x is fulfilled. */
struct pending_x {
    pact_deferred *dx;
    pact_promise *p;
    struct h *h;
};

static void pending_check(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct pending_x *px = ud;
    ck_assert_int_eq(px->h->ok + px->h->fail, 0);
    ck_assert_int_eq(pact_promise_state(px->p), PACT_PENDING);
    settle_ops(px->dx, "f", false);
    pact_deferred_unref(px->dx);
    px->dx = NULL;
}

START_TEST(aplus_2_3_2_1_pending_x_keeps_promise_pending)
{
    struct pending_x px = {0};
    pact_promise *x;
    px.dx = pact_deferred_new(t_loop, &x);
    px.p = via(_i, pact_promise_v(x));
    struct h h = {.want_ptr = &sentinel_obj};
    px.h = &h;
    watch(px.p, &h);
    ck_assert_int_eq(pact_timeout(t_loop, 20, pending_check, &px, NULL), 0);
    run();
    expect_ok(&h);
    pact_promise_unref(px.p);
}
END_TEST

/* 2.3.2.2: x fulfilled (already or eventually): promise fulfils with the
 * same value, of every kind. */
static void adopt_fulfilled(int which, int mode)
{
    pact_promise *p[VK_N];
    struct h h[VK_N];
    memset(h, 0, sizeof h);
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        struct src *x = src_f(mode, make_val(k));
        src_go(x);
        p[k] = via(which, pact_promise_v(pact_promise_ref(x->p)));
        h[k].vk = k;
        watch(p[k], &h[k]);
    }
    run();
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        expect_ok(&h[k]);
        check_val(k, pact_promise_value(p[k]));
        pact_promise_unref(p[k]);
    }
}

START_TEST(aplus_2_3_2_2_already_fulfilled_x)
{
    adopt_fulfilled(_i, ALREADY);
}
END_TEST

START_TEST(aplus_2_3_2_2_eventually_fulfilled_x)
{
    adopt_fulfilled(_i, EVENTUALLY);
}
END_TEST

/* 2.3.2.3: x rejected: promise rejects with the same reason. */
static void adopt_rejected(int which, int mode)
{
    pact_promise *p[RS_N];
    struct h h[RS_N];
    memset(h, 0, sizeof h);
    for (int r = 0; r < RS_N; r++) {
        struct src *x = src_r(mode, reasons[r]);
        src_go(x);
        p[r] = via(which, pact_promise_v(pact_promise_ref(x->p)));
        want_reason(&h[r], reasons[r]);
        watch(p[r], &h[r]);
    }
    run();
    for (int r = 0; r < RS_N; r++) {
        expect_fail(&h[r]);
        pact_promise_unref(p[r]);
    }
}

START_TEST(aplus_2_3_2_3_already_rejected_x)
{
    adopt_rejected(_i, ALREADY);
}
END_TEST

START_TEST(aplus_2_3_2_3_eventually_rejected_x)
{
    adopt_rejected(_i, EVENTUALLY);
}
END_TEST

/* ==== 2.3.3: x is a thenable ============================================= */

/* 2.3.3.1: `then` is used once: vt->then is called exactly once, and release
 * once after it. */
START_TEST(aplus_2_3_3_1_then_called_once)
{
    struct fthen *t = fthen_new("Y", pact_nothing(), 0);
    pact_promise *p = via(_i, fthen_v(t));
    struct h h = {.vk = VK_NOTHING};
    watch(p, &h);
    run();
    expect_ok(&h);
    ck_assert_int_eq(t->then_calls, 1);
    pact_promise_unref(p);
    ck_assert_int_eq(t->release_calls, 1);
}
END_TEST

/* 2.3.3.3: then gets x (obj) and a resolver; it is called from a microtask
 * of its own, never inside the call that hands the thenable over. */
START_TEST(aplus_2_3_3_3_then_gets_obj_and_resolver)
{
    struct fthen *t = fthen_new("Y", pact_ptr(&sentinel_obj), 0);
    pact_promise *p = via(_i, fthen_v(t));
    struct h h = {.want_ptr = &sentinel_obj};
    watch(p, &h);
    run();
    ck_assert_int_eq(t->then_calls, 1); /* fthen_then checks obj and resolver */
    expect_ok(&h);
    pact_promise_unref(p);
}
END_TEST

START_TEST(aplus_2_3_3_3_then_not_called_synchronously)
{
    struct fthen *t1 = fthen_new("Y", pact_ptr(&sentinel_obj), 0);
    struct fthen *t2 = fthen_new("Y", pact_ptr(&sentinel_obj), 0);
    pact_promise *p1;
    pact_deferred *d = pact_deferred_new(t_loop, &p1);
    ck_assert_int_eq(pact_deferred_resolve(d, fthen_v(t1)), 0);
    ck_assert_int_eq(t1->then_calls, 0);
    pact_deferred_unref(d);
    pact_promise *p2 = pact_resolved(t_loop, fthen_v(t2));
    ck_assert_ptr_nonnull(p2);
    ck_assert_int_eq(t2->then_calls, 0);
    ck_assert_int_eq(pact_promise_state(p1), PACT_PENDING);
    ck_assert_int_eq(pact_promise_state(p2), PACT_PENDING);
    struct h h1 = {.want_ptr = &sentinel_obj}, h2 = {.want_ptr = &sentinel_obj};
    watch(p1, &h1);
    watch(p2, &h2);
    run();
    ck_assert_int_eq(t1->then_calls, 1);
    ck_assert_int_eq(t2->then_calls, 1);
    expect_ok(&h1);
    expect_ok(&h2);
    pact_promise_unref(p2);
    pact_promise_unref(p1);
}
END_TEST

/* A handler returning a thenable: its then runs in a microtask queued when
 * the handler returns, after the reactions queued before (as Node's
 * NewPromiseResolveThenableJob). */
START_TEST(aplus_2_3_3_3_then_called_in_later_microtask)
{
    struct fthen *t = fthen_new("Y", pact_ptr(&sentinel_obj), 0);
    t->name = "thenable.then";
    pact_promise *p = pact_resolved(t_loop, pact_nothing());
    struct h h1 = {.name = "h1", .ret = fthen_v(t)}, h2 = {.name = "h2"};
    struct h h3 = {.name = "h3", .want_ptr = &sentinel_obj};
    pact_promise *q = then_ok(p, &h1);
    pact_promise_unref(then_ok(p, &h2));
    watch(q, &h3);
    run();
    ck_assert_str_eq(trace_text(), "h1\nh2\nthenable.then\nh3\n");
    pact_promise_unref(q);
    pact_promise_unref(p);
}
END_TEST

/* 2.3.3.3.1, `y` is not a thenable: resolvePromise(y), synchronously or from a
 * timer, fulfils with y, of every kind. Iterations: bit 0 via, bit 1
 * async. */
START_TEST(aplus_2_3_3_3_1_y_not_thenable)
{
    int which = _i & 1;
    const char *script = _i & 2 ? "y" : "Y";
    pact_promise *p[VK_N];
    struct fthen *t[VK_N];
    struct h h[VK_N];
    memset(h, 0, sizeof h);
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        t[k] = fthen_new(script, make_val(k), 0);
        p[k] = via(which, fthen_v(t[k]));
        h[k].vk = k;
        watch(p[k], &h[k]);
    }
    run();
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        expect_ok(&h[k]);
        check_val(k, pact_promise_value(p[k]));
        ck_assert_int_eq(t[k]->then_calls, 1);
        pact_promise_unref(p[k]);
    }
}
END_TEST

/* Mapped: a resolver handed a PACT_ERROR value rejects with it (in
 * JavaScript, resolving with an Error object fulfils). */
START_TEST(aplus_2_3_3_3_1_y_error_value_rejects)
{
    struct fthen *t = fthen_new(_i & 2 ? "y" : "Y",
                                pact_throw(pact_error_ref(e_sentinel)), 0);
    pact_promise *p = via(_i & 1, fthen_v(t));
    struct h h = {.want_err = e_sentinel};
    watch(p, &h);
    run();
    expect_fail(&h);
    pact_promise_unref(p);
}
END_TEST

/* 2.3.3.3.1, `y` is a thenable or promise of every kind of the suite's
 * thenables helper. Iterations: kind + YT_N * (via + 2 * async). */
START_TEST(aplus_2_3_3_3_1_y_thenable)
{
    int kind = _i % YT_N, which = (_i / YT_N) & 1, async = (_i / YT_N) >> 1;
    struct yspec y = {kind, NULL};
    struct fthen *x = fthen_lazy(async ? "y" : "Y", &y, 0);
    pact_promise *p = via(which, fthen_v(x));
    struct h h = {0};
    want_yt(&h, kind);
    watch(p, &h);
    run();
    expect_yt(&h, kind);
    ck_assert_int_eq(x->then_calls, 1);
    pact_promise_unref(p);
}
END_TEST

/* 2.3.3.3.1, `y` is a thenable for a thenable: every fulfilling outer kind
 * for every inner kind. Iterations: inner + YT_N * (outer + YT_NF * (via + 2 *
 * async)). */
START_TEST(aplus_2_3_3_3_1_y_thenable_for_thenable)
{
    int inner = _i % YT_N, rest = _i / YT_N;
    int outer = rest % YT_NF, which = (rest / YT_NF) & 1;
    int async = (rest / YT_NF) >> 1;
    struct yspec in = {inner, NULL}, out = {outer, &in};
    struct fthen *x = fthen_lazy(async ? "y" : "Y", &out, 0);
    pact_promise *p = via(which, fthen_v(x));
    struct h h = {0};
    want_yt(&h, inner);
    watch(p, &h);
    run();
    expect_yt(&h, inner);
    ck_assert_int_eq(x->then_calls, 1);
    pact_promise_unref(p);
}
END_TEST

/* 2.3.3.3.2: rejectPromise(r), synchronously or from a timer, rejects with r,
 * for reasons of every shape. */
START_TEST(aplus_2_3_3_3_2_reject_with_reason)
{
    int which = _i & 1;
    const char *script = _i & 2 ? "r" : "R";
    pact_promise *p[RS_N];
    struct h h[RS_N];
    memset(h, 0, sizeof h);
    for (int r = 0; r < RS_N; r++) {
        struct fthen *t = fthen_new(script, pact_nothing(), 0);
        t->r = reasons[r];
        p[r] = via(which, fthen_v(t));
        want_reason(&h[r], reasons[r]);
        watch(p[r], &h[r]);
    }
    run();
    for (int r = 0; r < RS_N; r++) {
        expect_fail(&h[r]);
        pact_promise_unref(p[r]);
    }
}
END_TEST

/* 2.3.3.3.3 and 2.3.3.3.4: a thenable running @p script (resolving with the
 * sentinel pointer, or with @p spec when not NULL) and returning @p rc;
 * @p outcome: 'f' fulfilled with the sentinel, 'r' rejected with e_sentinel,
 * 'c' rejected with the code PACT_EPROTO. */
static const struct yspec sp_f_eventually = {YT_F_EVENTUALLY, NULL};
static const struct yspec sp_r_eventually = {YT_R_EVENTUALLY, NULL};

static void thenable_case(int which, const char *script,
                          const struct yspec *spec, int rc, char outcome)
{
    struct fthen *t = spec ? fthen_lazy(script, spec, rc)
                           : fthen_new(script, pact_ptr(&sentinel_obj), rc);
    pact_promise *p = via(which, fthen_v(t));
    struct h h = {0};
    if (outcome == 'f')
        h.want_ptr = &sentinel_obj;
    else if (outcome == 'r')
        want_reason(&h, e_sentinel);
    else
        h.want_code = PACT_EPROTO;
    watch(p, &h);
    run();
    if (outcome == 'f')
        expect_ok(&h);
    else
        expect_fail(&h);
    ck_assert_int_eq(t->then_calls, 1);
    pact_promise_unref(p);
    ck_assert_int_eq(t->release_calls, 1);
}

#define THENABLE_CASE(name, script, spec, rc, outcome)                         \
    START_TEST(name)                                                           \
    {                                                                          \
        thenable_case(_i, script, spec, rc, outcome);                          \
    }                                                                          \
    END_TEST

/* 2.3.3.3.3: the first call wins; further calls are ignored. */
THENABLE_CASE(aplus_2_3_3_3_3_resolve_then_reject_sync, "YX", NULL, 0, 'f')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_sync_reject_async, "Yx", NULL, 0, 'f')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_then_reject_async, "yx", NULL, 0, 'f')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_eventually_fulfilled_then_reject, "YX",
              &sp_f_eventually, 0, 'f')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_eventually_rejected_then_reject, "YX",
              &sp_r_eventually, 0, 'r')
THENABLE_CASE(aplus_2_3_3_3_3_reject_then_resolve_sync, "RO", NULL, 0, 'r')
THENABLE_CASE(aplus_2_3_3_3_3_reject_sync_resolve_async, "Ro", NULL, 0, 'r')
THENABLE_CASE(aplus_2_3_3_3_3_reject_then_resolve_async, "ro", NULL, 0, 'r')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_twice_sync, "YO", NULL, 0, 'f')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_twice_sync_then_async, "Yo", NULL, 0, 'f')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_twice_async, "yo", NULL, 0, 'f')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_eventually_fulfilled_twice, "YO",
              &sp_f_eventually, 0, 'f')
THENABLE_CASE(aplus_2_3_3_3_3_resolve_eventually_rejected_twice, "YO",
              &sp_r_eventually, 0, 'r')
THENABLE_CASE(aplus_2_3_3_3_3_reject_twice_sync, "RX", NULL, 0, 'r')
THENABLE_CASE(aplus_2_3_3_3_3_reject_twice_sync_then_async, "Rx", NULL, 0, 'r')
THENABLE_CASE(aplus_2_3_3_3_3_reject_twice_async, "rx", NULL, 0, 'r')

/* "saving and abusing resolvePromise and rejectPromise": the resolver, kept,
 * is used four times 5 ms later; only the first counts. */
static void abuse_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct fthen *t = ud;
    ck_assert_ptr_nonnull(t->saved);
    ck_assert_int_eq(pact_deferred_resolve(t->saved, pact_ptr(&dummy_obj)), 0);
    ck_assert_int_eq(pact_deferred_resolve(t->saved, make_other()),
                     PACT_EALREADY);
    ck_assert_int_eq(pact_deferred_reject(t->saved, pact_error_ref(e_dummy)),
                     PACT_EALREADY);
    ck_assert_int_eq(pact_deferred_reject(t->saved, NULL), PACT_EALREADY);
    ck_assert(pact_deferred_done(t->saved));
    pact_deferred_unref(t->saved);
    t->saved = NULL;
}

START_TEST(aplus_2_3_3_3_3_saved_resolver_abused_later)
{
    struct fthen *t = fthen_new("S", pact_nothing(), 0);
    pact_promise *p = via(_i, fthen_v(t));
    struct h h = {.want_ptr = &dummy_obj};
    watch(p, &h);
    ck_assert_int_eq(pact_timeout(t_loop, 5, abuse_cb, t, NULL), 0);
    run();
    expect_ok(&h);
    ck_assert_int_eq(other_freed, 1);
    pact_promise_unref(p);
}
END_TEST

/* 2.3.3.3.4.1: then fails (a negative return) after resolving or rejecting:
 * ignored. */
THENABLE_CASE(aplus_2_3_3_3_4_1_resolved_then_fails, "Y", NULL, PACT_EIO, 'f')
THENABLE_CASE(aplus_2_3_3_3_4_1_resolved_eventually_fulfilled_then_fails, "Y",
              &sp_f_eventually, PACT_EIO, 'f')
THENABLE_CASE(aplus_2_3_3_3_4_1_resolved_eventually_rejected_then_fails, "Y",
              &sp_r_eventually, PACT_EIO, 'r')
THENABLE_CASE(aplus_2_3_3_3_4_1_rejected_then_fails, "R", NULL, PACT_EIO, 'r')
THENABLE_CASE(aplus_2_3_3_3_4_1_resolved_rejected_then_fails, "YX", NULL,
              PACT_EIO, 'f')
THENABLE_CASE(aplus_2_3_3_3_4_1_rejected_resolved_then_fails, "RO", NULL,
              PACT_EIO, 'r')

/* 2.3.3.3.4.2: otherwise the failure rejects with its code; later calls of
 * the resolver are ignored. */
THENABLE_CASE(aplus_2_3_3_3_4_2_then_fails, "", NULL, PACT_EPROTO, 'c')
THENABLE_CASE(aplus_2_3_3_3_4_2_then_fails_before_async_resolve, "o", NULL,
              PACT_EPROTO, 'c')
THENABLE_CASE(aplus_2_3_3_3_4_2_then_fails_before_async_reject, "x", NULL,
              PACT_EPROTO, 'c')

/* A thenable released without then: by pact_value_release, or by a resolver
 * that has already resolved (PACT_EALREADY). */
START_TEST(aplus_2_3_3_3_release_once_without_then)
{
    struct fthen *t1 = fthen_new("Y", pact_nothing(), 0);
    struct fthen *t2 = fthen_new("Y", pact_nothing(), 0);
    pact_value v = fthen_v(t1);
    pact_value_release(&v);
    ck_assert_int_eq(v.kind, PACT_NOTHING);
    ck_assert_int_eq(t1->release_calls, 1);
    ck_assert_int_eq(t1->then_calls, 0);
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    settle_ops(d, "f", false);
    ck_assert_int_eq(pact_deferred_resolve(d, fthen_v(t2)), PACT_EALREADY);
    ck_assert_int_eq(t2->release_calls, 1);
    pact_deferred_unref(d);
    run();
    ck_assert_int_eq(t2->then_calls, 0);
    ck_assert_int_eq(t2->release_calls, 1);
    pact_promise_unref(p);
}
END_TEST

/* A thenable whose then returns 0 without settling or keeping the resolver:
 * the resolver's last reference is gone, so the promise is broken
 * (PACT_ECANCELED) rather than pending forever. */
START_TEST(aplus_2_3_3_3_thenable_dropping_resolver_breaks_promise)
{
    struct fthen *t = fthen_new("", pact_nothing(), 0);
    pact_promise *p = via(_i, fthen_v(t));
    struct h h = {.want_code = PACT_ECANCELED};
    watch(p, &h);
    run();
    ck_assert_int_eq(t->then_calls, 1);
    expect_fail(&h);
    pact_promise_unref(p);
}
END_TEST

/* 2.3.3.4 ("then is not a function"): only PACT_PROMISE and PACT_THENABLE
 * values are adopted; a plain pointer to a promise or to a thenable, or a
 * JSON object with a "then" member, fulfils as it is. */
START_TEST(aplus_2_3_3_4_ptr_to_promise_not_adopted)
{
    pact_promise *x = pact_resolved(t_loop, pact_ptr(&other_obj));
    pact_promise *p = via(_i, pact_ptr(x));
    struct h h = {.want_ptr = x};
    watch(p, &h);
    run();
    expect_ok(&h);
    pact_promise_unref(p);
    pact_promise_unref(x);
}
END_TEST

START_TEST(aplus_2_3_3_4_ptr_to_thenable_not_called)
{
    struct fthen *t = fthen_new("Y", pact_nothing(), 0);
    pact_value tv = pact_thenable(t, &fthen_vt);
    pact_promise *p = via(_i, pact_ptr(&tv));
    struct h h = {.want_ptr = &tv};
    watch(p, &h);
    run();
    expect_ok(&h);
    ck_assert_int_eq(t->then_calls, 0);
    ck_assert_int_eq(t->release_calls, 0);
    pact_promise_unref(p);
}
END_TEST

START_TEST(aplus_2_3_3_4_json_with_then_member_fulfills_as_is)
{
    json_t *j = json_pack("{s:s}", "then", "function");
    ck_assert_ptr_nonnull(j);
    pact_promise *p = via(_i, pact_json(json_incref(j)));
    struct h h = {0};
    watch(p, &h);
    run();
    expect_ok(&h);
    ck_assert_int_eq(h.kind, PACT_JSON);
    ck_assert_ptr_eq(pact_promise_value(p)->u.json, j);
    pact_promise_unref(p);
    ck_assert_int_eq(j->refcount, 1);
    json_decref(j);
}
END_TEST

/* ==== 2.3.4: x is not an object: fulfil with x =========================== */

/* A handler returns a value of every kind (iterations 0-2: onFulfilled of a
 * fulfilled promise, 3-5: onRejected of a rejected one). */
START_TEST(aplus_2_3_4_fulfill_with_plain_value)
{
    bool reject = _i >= NMODES;
    struct src *s =
        reject ? src_r(_i - NMODES, e_dummy) : src_f(_i, pact_ptr(&dummy_obj));
    struct h ret[VK_N], h[VK_N];
    pact_promise *q[VK_N];
    memset(ret, 0, sizeof ret);
    memset(h, 0, sizeof h);
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        ret[k].ret = make_val(k);
        q[k] = reject ? then_fail(s->p, &ret[k]) : then_ok(s->p, &ret[k]);
        h[k].vk = k;
        watch(q[k], &h[k]);
    }
    src_go(s);
    run();
    for (int k = VK_NONE + 1; k < VK_N; k++) {
        ck_assert_int_eq(ret[k].ok + ret[k].fail, 1);
        expect_ok(&h[k]);
        check_val(k, pact_promise_value(q[k]));
        pact_promise_unref(q[k]);
    }
}
END_TEST

/* ---- the suite ----------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, a_setup, a_teardown);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return tc;
}

#define ADD(t) tcase_add_test(tc, t)
#define LOOP(t, n) tcase_add_loop_test(tc, t, 0, n)

Suite *suite_aplus(void)
{
    Suite *s = suite_create("aplus");

    TCase *tc = tcase(s, "2.1");
    LOOP(aplus_2_1_2_1_fulfilled_stays_fulfilled, NMODES);
    ADD(aplus_2_1_2_1_fulfill_then_reject_immediately);
    ADD(aplus_2_1_2_1_fulfill_then_reject_delayed);
    ADD(aplus_2_1_2_1_fulfill_immediately_reject_delayed);
    LOOP(aplus_2_1_3_1_rejected_stays_rejected, NMODES);
    ADD(aplus_2_1_3_1_reject_then_fulfill_immediately);
    ADD(aplus_2_1_3_1_reject_then_fulfill_delayed);
    ADD(aplus_2_1_3_1_reject_immediately_fulfill_delayed);

    tc = tcase(s, "2.2.1-3");
    ADD(aplus_2_2_1_1_null_on_fulfilled_ignored_direct_reject);
    ADD(aplus_2_2_1_1_null_on_fulfilled_ignored_chained);
    ADD(aplus_2_2_1_2_null_on_rejected_ignored_direct_fulfill);
    ADD(aplus_2_2_1_2_null_on_rejected_ignored_chained);
    LOOP(aplus_2_2_2_1_called_with_fulfillment_value, NMODES);
    ADD(aplus_2_2_2_2_not_called_before_fulfilled);
    ADD(aplus_2_2_2_2_never_fulfilled);
    ADD(aplus_2_2_2_3_already_fulfilled_once);
    ADD(aplus_2_2_2_3_fulfill_twice_immediately);
    ADD(aplus_2_2_2_3_fulfill_twice_delayed);
    ADD(aplus_2_2_2_3_fulfill_twice_immediately_then_delayed);
    ADD(aplus_2_2_2_3_then_calls_spaced_in_time);
    ADD(aplus_2_2_2_3_then_interleaved_with_fulfillment);
    LOOP(aplus_2_2_3_1_called_with_rejection_reason, NMODES);
    ADD(aplus_2_2_3_2_not_called_before_rejected);
    ADD(aplus_2_2_3_2_never_rejected);
    ADD(aplus_2_2_3_3_already_rejected_once);
    ADD(aplus_2_2_3_3_reject_twice_immediately);
    ADD(aplus_2_2_3_3_reject_twice_delayed);
    ADD(aplus_2_2_3_3_reject_twice_immediately_then_delayed);
    ADD(aplus_2_2_3_3_then_calls_spaced_in_time);
    ADD(aplus_2_2_3_3_then_interleaved_with_rejection);

    tc = tcase(s, "2.2.4-5");
    LOOP(aplus_2_2_4_then_returns_before_handler, 2 * NMODES);
    ADD(aplus_2_2_4_fulfill_handler_added_before_fulfilled);
    ADD(aplus_2_2_4_fulfill_handler_added_after_fulfilled);
    ADD(aplus_2_2_4_reject_handler_added_before_rejected);
    ADD(aplus_2_2_4_reject_handler_added_after_rejected);
    ADD(aplus_2_2_4_fulfill_handler_added_inside_fulfill_handler);
    ADD(aplus_2_2_4_fulfill_handler_added_inside_reject_handler);
    ADD(aplus_2_2_4_reject_handler_added_inside_fulfill_handler);
    ADD(aplus_2_2_4_reject_handler_added_inside_reject_handler);
    ADD(aplus_2_2_4_fulfilled_asynchronously);
    ADD(aplus_2_2_4_rejected_asynchronously);
    ADD(aplus_2_2_4_handlers_run_as_microtasks);
    ADD(aplus_2_2_4_handlers_run_after_callback_before_next_macrotask);
    ADD(aplus_2_2_5_handlers_get_their_ud);

    tc = tcase(s, "2.2.6-7");
    LOOP(aplus_2_2_6_1_multiple_fulfill_handlers, NMODES);
    LOOP(aplus_2_2_6_1_multiple_fulfill_handlers_one_fails, NMODES);
    LOOP(aplus_2_2_6_1_branching_chains_with_own_values, NMODES);
    LOOP(aplus_2_2_6_1_multiple_fulfill_handlers_in_order, NMODES);
    LOOP(aplus_2_2_6_1_handler_added_inside_handler_in_order, NMODES);
    LOOP(aplus_2_2_6_2_multiple_reject_handlers, NMODES);
    LOOP(aplus_2_2_6_2_multiple_reject_handlers_one_fails, NMODES);
    LOOP(aplus_2_2_6_2_branching_chains_with_own_values, NMODES);
    LOOP(aplus_2_2_6_2_multiple_reject_handlers_in_order, NMODES);
    LOOP(aplus_2_2_6_2_handler_added_inside_handler_in_order, NMODES);
    ADD(aplus_2_2_7_then_returns_a_promise);
    LOOP(aplus_2_2_7_2_failing_handler_rejects_promise2, 2 * NMODES);
    LOOP(aplus_2_2_7_3_null_on_fulfilled_passes_value, NMODES);
    ADD(aplus_2_2_7_3_owned_value_freed_after_last_promise);
    ADD(aplus_2_2_7_3_owned_value_freed_after_last_promise_reversed);
    ADD(aplus_2_2_7_3_json_refcount_follows_promises);
    LOOP(aplus_2_2_7_4_null_on_rejected_passes_reason, NMODES);

    tc = tcase(s, "2.3.1-2");
    ADD(aplus_2_3_1_fulfill_handler_returns_own_promise);
    ADD(aplus_2_3_1_reject_handler_returns_own_promise);
    ADD(aplus_2_3_1_deferred_resolved_with_own_promise);
    LOOP(aplus_2_3_1_thenable_resolves_with_adopting_promise, 2);
    LOOP(aplus_2_3_2_1_pending_x_keeps_promise_pending, 2);
    LOOP(aplus_2_3_2_2_already_fulfilled_x, 2);
    LOOP(aplus_2_3_2_2_eventually_fulfilled_x, 2);
    LOOP(aplus_2_3_2_3_already_rejected_x, 2);
    LOOP(aplus_2_3_2_3_eventually_rejected_x, 2);

    tc = tcase(s, "2.3.3");
    LOOP(aplus_2_3_3_1_then_called_once, 2);
    LOOP(aplus_2_3_3_3_then_gets_obj_and_resolver, 2);
    ADD(aplus_2_3_3_3_then_not_called_synchronously);
    ADD(aplus_2_3_3_3_then_called_in_later_microtask);
    LOOP(aplus_2_3_3_3_1_y_not_thenable, 4);
    LOOP(aplus_2_3_3_3_1_y_error_value_rejects, 4);
    LOOP(aplus_2_3_3_3_1_y_thenable, 4 * YT_N);
    LOOP(aplus_2_3_3_3_1_y_thenable_for_thenable, 4 * YT_NF * YT_N);
    LOOP(aplus_2_3_3_3_2_reject_with_reason, 4);
    LOOP(aplus_2_3_3_3_3_resolve_then_reject_sync, 2);
    LOOP(aplus_2_3_3_3_3_resolve_sync_reject_async, 2);
    LOOP(aplus_2_3_3_3_3_resolve_then_reject_async, 2);
    LOOP(aplus_2_3_3_3_3_resolve_eventually_fulfilled_then_reject, 2);
    LOOP(aplus_2_3_3_3_3_resolve_eventually_rejected_then_reject, 2);
    LOOP(aplus_2_3_3_3_3_reject_then_resolve_sync, 2);
    LOOP(aplus_2_3_3_3_3_reject_sync_resolve_async, 2);
    LOOP(aplus_2_3_3_3_3_reject_then_resolve_async, 2);
    LOOP(aplus_2_3_3_3_3_resolve_twice_sync, 2);
    LOOP(aplus_2_3_3_3_3_resolve_twice_sync_then_async, 2);
    LOOP(aplus_2_3_3_3_3_resolve_twice_async, 2);
    LOOP(aplus_2_3_3_3_3_resolve_eventually_fulfilled_twice, 2);
    LOOP(aplus_2_3_3_3_3_resolve_eventually_rejected_twice, 2);
    LOOP(aplus_2_3_3_3_3_reject_twice_sync, 2);
    LOOP(aplus_2_3_3_3_3_reject_twice_sync_then_async, 2);
    LOOP(aplus_2_3_3_3_3_reject_twice_async, 2);
    LOOP(aplus_2_3_3_3_3_saved_resolver_abused_later, 2);
    LOOP(aplus_2_3_3_3_4_1_resolved_then_fails, 2);
    LOOP(aplus_2_3_3_3_4_1_resolved_eventually_fulfilled_then_fails, 2);
    LOOP(aplus_2_3_3_3_4_1_resolved_eventually_rejected_then_fails, 2);
    LOOP(aplus_2_3_3_3_4_1_rejected_then_fails, 2);
    LOOP(aplus_2_3_3_3_4_1_resolved_rejected_then_fails, 2);
    LOOP(aplus_2_3_3_3_4_1_rejected_resolved_then_fails, 2);
    LOOP(aplus_2_3_3_3_4_2_then_fails, 2);
    LOOP(aplus_2_3_3_3_4_2_then_fails_before_async_resolve, 2);
    LOOP(aplus_2_3_3_3_4_2_then_fails_before_async_reject, 2);
    ADD(aplus_2_3_3_3_release_once_without_then);
    LOOP(aplus_2_3_3_3_thenable_dropping_resolver_breaks_promise, 2);
    LOOP(aplus_2_3_3_4_ptr_to_promise_not_adopted, 2);
    LOOP(aplus_2_3_3_4_ptr_to_thenable_not_called, 2);
    LOOP(aplus_2_3_3_4_json_with_then_member_fulfills_as_is, 2);

    tc = tcase(s, "2.3.4");
    LOOP(aplus_2_3_4_fulfill_with_plain_value, 2 * NMODES);
    return s;
}
