/* Promises beyond the Promises/A+ clauses (test_aplus.c) and the
 * combinators (test_combine.c): the value model (every pact_value kind
 * through fulfilment, pass-through and adoption, and who frees what when),
 * lifetimes in each state, the deferred, finally and the error-first
 * consumers, the callback adapter and its timer twins, and misuse. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "suites.h"

/* ---- shared helpers ------------------------------------------------------ */

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* A PACT_OWNED destructor: the pointer is the counter it bumps. */
static void count_free(void *p)
{
    ++*(int *)p;
}

static void ignore_cb(pact_error *err, const pact_value *v, void *ud)
{
    (void)err;
    (void)v;
    (void)ud;
}

static pact_value pass_copy(const pact_value *v, void *ud);

/* Mark @p p handled without a derived promise, so that a rejection the test
 * inspects is not reported as unhandled. */
static void observe(pact_promise *p)
{
    ck_assert_int_eq(pact_promise_callback(p, ignore_cb, NULL), 0);
}

/* What a handler saw. */
struct seen {
    int calls;
    pact_kind kind;
    int64_t i;
    int code;
    char msg[128];
    pact_error *err; /* borrowed pointer, compared only */
    uint64_t at_us;
};

static pact_value record_ok(const pact_value *v, void *ud)
{
    struct seen *s = ud;
    s->calls++;
    s->kind = v->kind;
    s->i = v->kind == PACT_INT ? v->u.i : 0;
    s->at_us = now_us();
    return pact_nothing();
}

static pact_value record_fail(pact_error *err, void *ud)
{
    struct seen *s = ud;
    s->calls++;
    s->err = err;
    s->code = pact_error_code(err);
    snprintf(s->msg, sizeof s->msg, "%s", pact_error_message(err));
    s->at_us = now_us();
    return pact_nothing();
}

static pact_value trace_ok(const pact_value *v, void *ud)
{
    (void)v;
    trace("%s", (const char *)ud);
    return pact_nothing();
}

static pact_value trace_fail(pact_error *err, void *ud)
{
    (void)err;
    trace("%s", (const char *)ud);
    return pact_nothing();
}

/* The error of a rejected promise, asserting that it is rejected. */
static pact_error *rejection(pact_promise *p)
{
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    ck_assert_ptr_null(pact_promise_value(p));
    pact_error *e = pact_promise_error(p);
    ck_assert_ptr_nonnull(e);
    return e;
}

static int64_t int_value(pact_promise *p)
{
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    const pact_value *v = pact_promise_value(p);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, PACT_INT);
    return v->u.i;
}

/* Misuse reports that did not name their function, for one message at the
 * end of a test. */
static char misnamed[2048];

static void check_named(const char *name, const char *out)
{
    if (out[0] == '\0' || strstr(out, name) != NULL)
        return;
    size_t n = strlen(misnamed);
    snprintf(misnamed + n, sizeof misnamed - n, "%s printed '%s'\n", name, out);
}

/* Run @p stmt with stderr captured: whatever is printed (debug builds print
 * every misuse; release builds only thread misuse) names the function. */
#define MISUSE(name, stmt)                                                     \
    do {                                                                       \
        struct capture cap_;                                                   \
        capture_begin(&cap_);                                                  \
        stmt;                                                                  \
        char *out_ = capture_end(&cap_);                                       \
        check_named(name, out_);                                               \
        free(out_);                                                            \
    } while (0)

/* A deferred the test keeps and settles from a timer. */
struct later {
    pact_deferred *d;
    pact_value v;    /* resolve with this, unless err */
    pact_error *err; /* reject with this (stolen) */
    const char *name;
};

static void settle_later(pact_error *e, void *ud)
{
    ck_assert_ptr_null(e);
    struct later *l = ud;
    if (l->name)
        trace("%s", l->name);
    if (l->err)
        ck_assert_int_eq(pact_deferred_reject(l->d, l->err), 0);
    else
        ck_assert_int_eq(pact_deferred_resolve(l->d, l->v), 0);
    pact_deferred_unref(l->d);
    l->d = NULL;
}

/* ---- the value model ----------------------------------------------------- */

struct box {
    int freed;    /* PACT_OWNED destructor runs */
    int target;   /* what PACT_PTR points at */
    json_t *json; /* the test's own reference */
};

static const pact_kind kinds[] = {PACT_NOTHING, PACT_INT,   PACT_DOUBLE,
                                  PACT_PTR,     PACT_OWNED, PACT_JSON,
                                  PACT_BYTES,   PACT_STRING};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

static pact_value make_value(pact_kind k, struct box *b)
{
    switch (k) {
    case PACT_NOTHING:
        return pact_nothing();
    case PACT_INT:
        return pact_int(INT64_C(-1234567890123));
    case PACT_DOUBLE:
        return pact_double(2.5);
    case PACT_PTR:
        return pact_ptr(&b->target);
    case PACT_OWNED:
        return pact_owned(&b->freed, count_free);
    case PACT_JSON:
        if (!b->json)
            b->json = json_pack("{s:i}", "k", 7);
        ck_assert_ptr_nonnull(b->json);
        return pact_json(json_incref(b->json));
    case PACT_BYTES: {
        char *s = malloc(5);
        ck_assert_ptr_nonnull(s);
        memcpy(s, "hello", 5);
        return pact_bytes(s, 5);
    }
    case PACT_STRING:
        return pact_string_fmt("%s, %d", "hello", 42);
    default:
        ck_abort_msg("no such kind %d", (int)k);
    }
    return pact_nothing();
}

static void check_value(pact_kind k, const struct box *b, const pact_value *v)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, k);
    switch (k) {
    case PACT_INT:
        ck_assert(v->u.i == INT64_C(-1234567890123));
        break;
    case PACT_DOUBLE:
        ck_assert(v->u.d == 2.5);
        break;
    case PACT_PTR:
        ck_assert_ptr_eq(v->u.ptr, &b->target);
        break;
    case PACT_OWNED:
        ck_assert_ptr_eq(v->u.owned.ptr, &b->freed);
        ck_assert(v->u.owned.free == count_free);
        ck_assert_int_eq(b->freed, 0);
        break;
    case PACT_JSON:
        ck_assert_ptr_eq(v->u.json, b->json);
        ck_assert_int_eq(json_integer_value(json_object_get(v->u.json, "k")),
                         7);
        break;
    case PACT_BYTES:
        ck_assert_uint_eq(v->u.bytes.len, 5);
        ck_assert_ptr_nonnull(v->u.bytes.data);
        ck_assert(memcmp(v->u.bytes.data, "hello", 5) == 0);
        break;
    case PACT_STRING:
        ck_assert_str_eq(v->u.str, "hello, 42");
        ck_assert_ptr_eq(pact_value_string(v), v->u.str);
        break;
    default:
        ck_assert_ptr_null(pact_value_string(v));
        break;
    }
}

struct kind_ctx {
    pact_kind kind;
    struct box *box;
    int calls;
};

static pact_value check_handler(const pact_value *v, void *ud)
{
    struct kind_ctx *c = ud;
    c->calls++;
    check_value(c->kind, c->box, v);
    return pact_nothing();
}

/* returns pact_promise_v of the promise in ud: the derived promise adopts it */
static pact_value adopt_handler(const pact_value *v, void *ud)
{
    (void)v;
    return pact_promise_v(pact_promise_ref(ud));
}

/* Each kind through fulfilment, a handler (borrowed), pass-through (then
 * without handlers), adoption, and a pass-through of the adopted; every
 * promise reads the same value. A PACT_OWNED value is shared, never copied:
 * its destructor runs once, after the last promise holding it is freed; JSON
 * references balance; bytes are freed (ASan/valgrind). */
START_TEST(value_kinds_fulfil_pass_adopt)
{
    pact_kind k = kinds[_i];
    struct box b = {0, 0, NULL};
    pact_promise *p = NULL;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    ck_assert_ptr_null(pact_promise_value(p));
    ck_assert_ptr_null(pact_promise_error(p));
    ck_assert_ptr_eq(pact_promise_loop(p), t_loop);

    ck_assert_int_eq(pact_deferred_resolve(d, make_value(k, &b)), 0);
    /* a plain value fulfils at once (only reactions wait) */
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    check_value(k, &b, pact_promise_value(p));
    ck_assert_ptr_null(pact_promise_error(p));

    struct kind_ctx c = {k, &b, 0};
    pact_promise *pass = pact_then(p, NULL, NULL, NULL);
    pact_promise *seen = pact_then(p, check_handler, NULL, &c);
    pact_promise *start = pact_resolved(t_loop, pact_nothing());
    pact_promise *adopt = pact_then(start, adopt_handler, NULL, p);
    pact_promise *pass2 = pact_then(adopt, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(pass);
    ck_assert_ptr_nonnull(seen);
    ck_assert_ptr_nonnull(adopt);
    ck_assert_ptr_nonnull(pass2);
    /* reactions never run inside then */
    ck_assert_int_eq(c.calls, 0);
    ck_assert_int_eq(pact_promise_state(pass), PACT_PENDING);
    run_ok();

    ck_assert_int_eq(c.calls, 1);
    check_value(k, &b, pact_promise_value(pass));
    check_value(k, &b, pact_promise_value(adopt));
    check_value(k, &b, pact_promise_value(pass2));
    ck_assert_int_eq(pact_promise_value(seen)->kind, PACT_NOTHING);
    if (k == PACT_JSON)
        ck_assert_uint_ge(b.json->refcount, 2);

    pact_deferred_unref(d);
    pact_promise_unref(p);
    pact_promise_unref(pass);
    pact_promise_unref(seen);
    pact_promise_unref(start);
    pact_promise_unref(adopt);
    run_ok();
    ck_assert_int_eq(b.freed, 0); /* pass2 still shares the value */
    check_value(k, &b, pact_promise_value(pass2));
    pact_promise_unref(pass2);
    run_ok();
    ck_assert_int_eq(b.freed, k == PACT_OWNED ? 1 : 0);
    if (k == PACT_JSON) {
        ck_assert_uint_eq(b.json->refcount, 1); /* only the test's */
        json_decref(b.json);
    }
}
END_TEST

/* The same sharing when the original is the last holder. */
START_TEST(owned_freed_with_last_holder)
{
    int freed = 0;
    pact_promise *p = pact_resolved(t_loop, pact_owned(&freed, count_free));
    ck_assert_ptr_nonnull(p);
    pact_promise *q = pact_then(p, NULL, NULL, NULL);
    pact_promise *r = pact_then(q, NULL, NULL, NULL);
    run_ok();
    ck_assert_ptr_eq(pact_promise_value(r)->u.owned.ptr, &freed);
    pact_promise_unref(r);
    pact_promise_unref(q);
    run_ok();
    ck_assert_int_eq(freed, 0);
    ck_assert_ptr_eq(pact_promise_value(p)->u.owned.ptr, &freed);
    pact_promise_unref(p);
    run_ok();
    ck_assert_int_eq(freed, 1);
}
END_TEST

/* Promise.resolve(p) is p; a PACT_ERROR resolution rejects. */
START_TEST(resolved_with_promise_and_error)
{
    pact_promise *p = pact_resolved(t_loop, pact_int(3));
    pact_promise *same =
        pact_resolved(t_loop, pact_promise_v(pact_promise_ref(p)));
    ck_assert_ptr_eq(same, p);
    pact_promise_unref(same);
    ck_assert_int_eq(int_value(p), 3);

    pact_promise *r =
        pact_resolved(t_loop, pact_throw(PACT_ERROR(PACT_EIO, "via value")));
    ck_assert_ptr_nonnull(r);
    observe(r);
    run_ok();
    ck_assert_int_eq(pact_error_code(rejection(r)), PACT_EIO);
    ck_assert_str_eq(pact_error_message(rejection(r)), "via value");
    ck_assert_ptr_null(pact_promise_value(r));
    ck_assert_ptr_null(pact_promise_error(p));
    pact_promise_unref(r);
    pact_promise_unref(p);
}
END_TEST

struct thenable_obj {
    int thens, releases;
};

static int tn_then(void *obj, pact_deferred *resolver)
{
    struct thenable_obj *t = obj;
    t->thens++;
    return pact_deferred_resolve(resolver, pact_int(77));
}

static void tn_release(void *obj)
{
    ((struct thenable_obj *)obj)->releases++;
}

static const pact_thenable_vt tn_vt = {tn_then, tn_release};

/* pact_value_release frees what each kind owns, exactly once, and leaves
 * PACT_NOTHING (so a second release is harmless). */
START_TEST(value_release_each_kind)
{
    for (int i = 0; i < NKINDS; i++) {
        struct box b = {0, 0, NULL};
        pact_value v = make_value(kinds[i], &b);
        pact_value_release(&v);
        ck_assert_int_eq(v.kind, PACT_NOTHING);
        pact_value_release(&v);
        ck_assert_int_eq(b.freed, kinds[i] == PACT_OWNED ? 1 : 0);
        ck_assert_int_eq(b.target, 0);
        if (b.json) {
            ck_assert_uint_eq(b.json->refcount, 1);
            json_decref(b.json);
        }
    }
    /* a promise reference */
    pact_promise *p = pact_resolved(t_loop, pact_int(1));
    pact_value v = pact_promise_v(pact_promise_ref(p));
    pact_value_release(&v);
    ck_assert_int_eq(v.kind, PACT_NOTHING);
    ck_assert_int_eq(int_value(p), 1); /* ours is still there */
    pact_promise_unref(p);
    /* an error reference */
    pact_error *e = PACT_ERROR(PACT_EIO);
    v = pact_throw(pact_error_ref(e));
    pact_value_release(&v);
    ck_assert_int_eq(v.kind, PACT_NOTHING);
    ck_assert_int_eq(pact_error_code(e), PACT_EIO);
    pact_error_unref(e);
    /* a thenable: release, never then */
    struct thenable_obj t = {0, 0};
    v = pact_thenable(&t, &tn_vt);
    pact_value_release(&v);
    ck_assert_int_eq(t.releases, 1);
    ck_assert_int_eq(t.thens, 0);
    ck_assert_int_eq(v.kind, PACT_NOTHING);
    /* JSON null; NULL (a failed json_pack) is refused, not a silent null */
    v = pact_json(json_null());
    ck_assert_int_eq(v.kind, PACT_JSON);
    ck_assert(json_is_null(v.u.json));
    pact_value_release(&v);
    v = pact_json(NULL);
    ck_assert_int_eq(v.kind, PACT_ERROR);
    ck_assert_int_eq(pact_error_code(v.u.error), PACT_EINVAL);
    pact_value_release(&v);
    pact_value_release(NULL);
}
END_TEST

/* Adopting a thenable: then once (from a microtask), release once. */
START_TEST(thenable_adopted_and_released)
{
    struct thenable_obj t = {0, 0};
    pact_promise *p = pact_resolved(t_loop, pact_thenable(&t, &tn_vt));
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(t.thens, 0);
    run_ok();
    ck_assert_int_eq(t.thens, 1);
    ck_assert_int_eq(t.releases, 1);
    ck_assert_int_eq(int_value(p), 77);
    pact_promise_unref(p);
}
END_TEST

START_TEST(bytes_copy)
{
    char src[] = "abcdef";
    pact_value v = pact_bytes_copy(src, 6);
    ck_assert_int_eq(v.kind, PACT_BYTES);
    ck_assert_uint_eq(v.u.bytes.len, 6);
    ck_assert_ptr_ne(v.u.bytes.data, src);
    ck_assert(memcmp(v.u.bytes.data, "abcdef", 6) == 0);
    src[0] = 'z';
    ck_assert_int_eq(((char *)v.u.bytes.data)[0], 'a');
    /* a promise owns the copy from now on */
    pact_promise *p = pact_resolved(t_loop, v);
    const pact_value *pv = pact_promise_value(p);
    ck_assert_uint_eq(pv->u.bytes.len, 6);
    ck_assert(memcmp(pv->u.bytes.data, "abcdef", 6) == 0);
    pact_promise_unref(p);
}
END_TEST

/* The string constructors: steal, copy, printf; NULL and a failed copy are
 * error values, never a silent empty string; a promise shares its string
 * with pass-throughs (no copy) and a handler's pact_value_copy copies it. */
START_TEST(string_values)
{
    char src[] = "plain";
    pact_value v = pact_string_copy(src);
    ck_assert_int_eq(v.kind, PACT_STRING);
    ck_assert_ptr_ne(v.u.str, src);
    src[0] = 'X';
    ck_assert_str_eq(pact_value_string(&v), "plain");
    pact_value_release(&v);
    ck_assert_int_eq(v.kind, PACT_NOTHING);

    char *mine = malloc(4);
    ck_assert_ptr_nonnull(mine);
    memcpy(mine, "own", 4);
    v = pact_string(mine);
    ck_assert_ptr_eq(v.u.str, mine); /* stolen, not copied */
    pact_value_release(&v);          /* freed (ASan/valgrind) */

    v = pact_string_fmt("%d-%s", 7, "x");
    ck_assert_str_eq(v.u.str, "7-x");
    pact_value_release(&v);
    v = pact_string_fmt("%s", ""); /* empty is a string */
    ck_assert_int_eq(v.kind, PACT_STRING);
    ck_assert_str_eq(v.u.str, "");
    pact_value_release(&v);

    pact_value bad[] = {pact_string(NULL), pact_string_copy(NULL),
                        pact_string_fmt(NULL)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(bad[i].kind, PACT_ERROR);
        ck_assert_int_eq(pact_error_code(bad[i].u.error), PACT_EINVAL);
        ck_assert_ptr_null(pact_value_string(&bad[i]));
        pact_value_release(&bad[i]);
    }
    ck_assert_ptr_null(pact_value_string(NULL));

    /* a promise owns it; pass-through shares it; a copy is a new string */
    pact_promise *p = pact_resolved(t_loop, pact_string_copy("shared"));
    pact_promise *pass = pact_then(p, NULL, NULL, NULL);
    pact_promise *copied = pact_then(p, pass_copy, NULL, NULL);
    run_ok();
    const char *orig = pact_value_string(pact_promise_value(p));
    ck_assert_str_eq(orig, "shared");
    ck_assert_ptr_eq(pact_value_string(pact_promise_value(pass)), orig);
    ck_assert_str_eq(pact_value_string(pact_promise_value(copied)), "shared");
    ck_assert_ptr_ne(pact_value_string(pact_promise_value(copied)), orig);
    pact_promise_unref(p); /* pass still holds the string */
    ck_assert_str_eq(pact_value_string(pact_promise_value(pass)), "shared");
    pact_promise_unref(pass);
    pact_promise_unref(copied);
}
END_TEST

/* pact_all's list holds the input promises: read with pact_list_len/at; an
 * input's owned value lives as long as the list; pact_deferred_value_cb
 * shares the list by reference. */
START_TEST(list_from_all)
{
    int freed = 0;
    struct box b = {0, 0, NULL};
    pact_promise *in[3];
    in[0] = pact_resolved(t_loop, pact_int(1));
    in[1] = pact_resolved(t_loop, make_value(PACT_JSON, &b));
    in[2] = pact_resolved(t_loop, pact_owned(&freed, count_free));
    pact_promise *all = pact_all(t_loop, in, 3);
    ck_assert_ptr_nonnull(all);
    run_ok();
    const pact_value *v = pact_promise_value(all);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, PACT_LIST);
    const pact_list *list = v->u.list;
    ck_assert_uint_eq(pact_list_len(list), 3);
    ck_assert_int_eq(int_value(pact_list_at(list, 0)), 1);
    check_value(PACT_JSON, &b, pact_promise_value(pact_list_at(list, 1)));
    ck_assert_ptr_eq(pact_promise_value(pact_list_at(list, 2))->u.owned.ptr,
                     &freed);
    ck_assert_ptr_null(pact_list_at(list, 3));

    /* a second holder of the list */
    pact_promise *copy = NULL;
    pact_deferred *d = pact_deferred_new(t_loop, &copy);
    pact_deferred_value_cb(NULL, v, d); /* drops d */
    run_ok();
    ck_assert_int_eq(pact_promise_state(copy), PACT_FULFILLED);
    ck_assert_ptr_eq(pact_promise_value(copy)->u.list, list);

    for (int i = 0; i < 3; i++)
        pact_promise_unref(in[i]);
    pact_promise_unref(all);
    run_ok();
    ck_assert_int_eq(freed, 0);
    list = pact_promise_value(copy)->u.list;
    ck_assert_uint_eq(pact_list_len(list), 3);
    ck_assert_int_eq(int_value(pact_list_at(list, 0)), 1);
    check_value(PACT_JSON, &b, pact_promise_value(pact_list_at(list, 1)));
    pact_promise_unref(copy);
    run_ok();
    ck_assert_int_eq(freed, 1);
    ck_assert_uint_eq(b.json->refcount, 1);
    json_decref(b.json);
    ck_assert_uint_eq(pact_list_len(NULL), 0);
    ck_assert_ptr_null(pact_list_at(NULL, 0));
}
END_TEST

/* ---- lifetimes ----------------------------------------------------------- */

/* Dropped while pending with a reaction: the handler still runs when it
 * settles, and the promise is freed after (its owned value with it). */
START_TEST(pending_dropped_with_reactions)
{
    int freed = 0;
    struct seen s = {0};
    pact_promise *p;
    struct later l = {pact_deferred_new(t_loop, &p), pact_nothing(), NULL,
                      NULL};
    l.v = pact_owned(&freed, count_free);
    pact_promise *q = pact_then(p, record_ok, NULL, &s);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_timeout(t_loop, 5, settle_later, &l, NULL), 0);
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.kind, PACT_OWNED);
    ck_assert_int_eq(freed, 1); /* p is gone, q is not */
    ck_assert_int_eq(pact_promise_value(q)->kind, PACT_NOTHING);
    pact_promise_unref(q);
}
END_TEST

/* Dropped with only a rejection reaction: the handler gets the error. */
START_TEST(rejected_dropped_with_reaction)
{
    struct seen s = {0};
    pact_promise *p = pact_rejected(t_loop, PACT_ERROR(PACT_EIO, "dropped"));
    pact_promise *q = pact_catch(p, record_fail, &s);
    pact_promise_unref(p);
    pact_promise_unref(q);
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.code, PACT_EIO);
    ck_assert_str_eq(s.msg, "dropped");
}
END_TEST

/* Dropped in each state, without reactions: nothing leaks. */
START_TEST(dropped_in_each_state)
{
    int freed = 0;
    /* fulfilled */
    pact_promise_unref(pact_resolved(t_loop, pact_owned(&freed, count_free)));
    run_ok();
    ck_assert_int_eq(freed, 1);
    /* pending, resolved after the promise is gone */
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_owned(&freed, count_free)),
                     0);
    pact_deferred_unref(d);
    run_ok();
    ck_assert_int_eq(freed, 2);
    /* pending, with the deferred settled after a timer */
    struct later l = {pact_deferred_new(t_loop, &p), pact_nothing(), NULL,
                      NULL};
    l.v = pact_owned(&freed, count_free);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_timeout(t_loop, 2, settle_later, &l, NULL), 0);
    run_ok();
    ck_assert_int_eq(freed, 3);
    /* rejected, and pending with the deferred dropped (both report nothing
     * in this mode; leaks show under ASan/valgrind) */
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_NONE), 0);
    pact_promise_unref(pact_rejected(t_loop, PACT_ERROR(PACT_EIO)));
    d = pact_deferred_new(t_loop, &p);
    pact_promise_unref(p);
    pact_deferred_unref(d);
    d = pact_deferred_new(t_loop, NULL);
    ck_assert_ptr_nonnull(d);
    pact_deferred_unref(d);
    run_ok();
}
END_TEST

/* The deferred holds the promise when the caller does not want it. */
START_TEST(deferred_without_out)
{
    pact_deferred *d = pact_deferred_new(t_loop, NULL);
    ck_assert_ptr_nonnull(d);
    ck_assert(!pact_deferred_done(d));
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(1)), 0);
    ck_assert(pact_deferred_done(d));
    pact_deferred_unref(d);
    run_ok();
}
END_TEST

/* A deferred dropped unresolved breaks its promise: ECANCELED, "broken
 * promise"; only the last reference counts. */
START_TEST(deferred_dropped_is_broken_promise)
{
    struct seen s = {0};
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    pact_promise *c = pact_catch(p, record_fail, &s);
    ck_assert_ptr_eq(pact_deferred_ref(d), d);
    pact_deferred_unref(d);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    ck_assert_int_eq(s.calls, 0);
    pact_deferred_unref(d);
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.code, PACT_ECANCELED);
    ck_assert_msg(strstr(s.msg, "broken promise") != NULL, "message: '%s'",
                  s.msg);
    ck_assert_int_eq(pact_error_code(rejection(p)), PACT_ECANCELED);
    pact_promise_unref(p);
    pact_promise_unref(c);
}
END_TEST

/* A resolved deferred is not broken by its drop. */
START_TEST(deferred_resolved_then_dropped)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(5)), 0);
    pact_deferred_unref(d);
    run_ok();
    ck_assert_int_eq(int_value(p), 5);
    pact_promise_unref(p);
}
END_TEST

/* A deferred is the loop's, from its promise slabs (no allocation per
 * operation): pact_loop_free refuses while one is referenced, resolved or
 * not, as for a promise, and frees once it is dropped. */
START_TEST(deferred_keeps_loop)
{
    pact_loop *loop;
    pact_promise *p;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    pact_deferred *d = pact_deferred_new(loop, &p);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(1)), 0);
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    pact_promise_unref(p);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_free(loop);
    free(capture_end(&cap));
    ck_assert_int_eq(rc, PACT_EBUSY);
    pact_deferred_unref(d);
    ck_assert_int_eq(pact_loop_free(loop), 0);
}
END_TEST

/* A deferred shares its promise's node: either may be dropped first, the
 * node staying until both are gone, and a deferred used after its last
 * unref is reported, not obeyed. */
START_TEST(deferred_and_promise_part)
{
    pact_promise *p;
    struct capture cap;
    /* the promise goes first: the deferred still answers */
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(3)), 0);
    pact_promise_unref(p);
    run_ok();
    ck_assert(pact_deferred_done(d));
    ck_assert_ptr_eq(pact_deferred_ref(d), d);
    pact_deferred_unref(d);
    capture_begin(&cap);
    int rc = pact_deferred_resolve(d, pact_int(4));
    free(capture_end(&cap));
    ck_assert_int_eq(rc, PACT_EALREADY);
    pact_deferred_unref(d);
    /* now gone: a stale call is refused and says so */
    capture_begin(&cap);
    rc = pact_deferred_resolve(d, pact_int(5));
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EINVAL);
    ck_assert_ptr_nonnull(strstr(out, "already freed"));
    free(out);
    ck_assert(!pact_deferred_done(d));

    /* the deferred goes first: the promise keeps its value */
    d = pact_deferred_new(t_loop, &p);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(6)), 0);
    pact_deferred_unref(d);
    run_ok();
    ck_assert_int_eq(int_value(p), 6);
    pact_promise_unref(p);
}
END_TEST

/* done: once resolved, even while still adopting a pending promise. */
START_TEST(deferred_done)
{
    pact_promise *p, *inner;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    pact_deferred *di = pact_deferred_new(t_loop, &inner);
    ck_assert(!pact_deferred_done(d));
    ck_assert(!pact_deferred_done(NULL));
    ck_assert_int_eq(pact_deferred_resolve(d, pact_promise_v(inner)), 0);
    ck_assert(pact_deferred_done(d));
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    ck_assert_int_eq(pact_deferred_resolve(di, pact_int(8)), 0);
    run_ok();
    ck_assert_int_eq(int_value(p), 8);
    pact_deferred_unref(d);
    pact_deferred_unref(di);
    pact_promise_unref(p);

    d = pact_deferred_new(t_loop, &p);
    ck_assert_int_eq(pact_deferred_reject(d, PACT_ERROR(PACT_EIO)), 0);
    ck_assert(pact_deferred_done(d));
    observe(p);
    run_ok();
    ck_assert_int_eq(pact_error_code(rejection(p)), PACT_EIO);
    pact_deferred_unref(d);
    pact_promise_unref(p);
}
END_TEST

/* Kept by the program and resolved from a timer: the reaction runs after
 * the timer, in its drain. The immediate starts the timer, so that a paused
 * test cannot find the timer due before the immediate. */
static void start_settle_timer(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    trace("immediate");
    ck_assert_int_eq(pact_timeout(t_loop, 5, settle_later, ud, NULL), 0);
}

START_TEST(deferred_resolved_from_timer)
{
    pact_promise *p;
    struct later l = {pact_deferred_new(t_loop, &p), pact_int(42), NULL,
                      "timer"};
    pact_promise *q = pact_then(p, trace_ok, NULL, "then");
    ck_assert_int_eq(pact_immediate(t_loop, start_settle_timer, &l, NULL), 0);
    run_ok();
    ck_assert_str_eq(trace_text(), "immediate\ntimer\nthen\n");
    ck_assert_int_eq(int_value(p), 42);
    pact_promise_unref(p);
    pact_promise_unref(q);
}
END_TEST

/* ---- finally ------------------------------------------------------------- */

struct fin {
    int calls;
    pact_value ret; /* returned (moved) on the call */
};

static pact_value fin_fn(void *ud)
{
    struct fin *f = ud;
    f->calls++;
    trace("finally");
    pact_value r = f->ret;
    f->ret = pact_nothing();
    return r;
}

/* The value passes through (shared: the owned value is freed once); what
 * finally returns is ignored and released. */
START_TEST(finally_passes_value)
{
    int freed = 0, ignored = 0;
    struct fin f = {0, pact_owned(&ignored, count_free)};
    pact_promise *p = pact_resolved(t_loop, pact_owned(&freed, count_free));
    pact_promise *q = pact_finally(p, fin_fn, &f);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(f.calls, 0);
    run_ok();
    ck_assert_int_eq(f.calls, 1);
    ck_assert_int_eq(ignored, 1);
    ck_assert_int_eq(pact_promise_state(q), PACT_FULFILLED);
    ck_assert_ptr_eq(pact_promise_value(q)->u.owned.ptr, &freed);
    pact_promise_unref(p);
    run_ok();
    ck_assert_int_eq(freed, 0);
    pact_promise_unref(q);
    run_ok();
    ck_assert_int_eq(freed, 1);
}
END_TEST

START_TEST(finally_passes_error)
{
    struct fin f = {0, pact_int(9)};
    pact_error *e = PACT_ERROR(PACT_EIO, "kept");
    pact_promise *p = pact_rejected(t_loop, pact_error_ref(e));
    pact_promise *q = pact_finally(p, fin_fn, &f);
    observe(q);
    run_ok();
    ck_assert_int_eq(f.calls, 1);
    ck_assert_ptr_eq(rejection(q), e);
    pact_error_unref(e);
    pact_promise_unref(p);
    pact_promise_unref(q);
}
END_TEST

/* A promise from finally is waited for; the original outcome then passes,
 * not the promise's value. */
START_TEST(finally_waits_for_its_promise)
{
    for (int rejected = 0; rejected < 2; rejected++) {
        trace_reset();
        pact_promise *inner;
        struct later l = {pact_deferred_new(t_loop, &inner), pact_int(99), NULL,
                          "inner settles"};
        struct fin f = {0, pact_promise_v(inner)};
        pact_promise *p = rejected ? pact_rejected(t_loop, PACT_ERROR(PACT_EIO))
                                   : pact_resolved(t_loop, pact_int(7));
        pact_promise *q = pact_finally(p, fin_fn, &f);
        pact_promise *r = pact_then(q, trace_ok, trace_fail, "q settles");
        ck_assert_int_eq(pact_timeout(t_loop, 10, settle_later, &l, NULL), 0);
        run_ok();
        ck_assert_str_eq(trace_text(), "finally\ninner settles\nq settles\n");
        if (rejected)
            ck_assert_int_eq(pact_error_code(rejection(q)), PACT_EIO);
        else
            ck_assert_int_eq(int_value(q), 7);
        pact_promise_unref(p);
        pact_promise_unref(q);
        pact_promise_unref(r);
    }
}
END_TEST

/* An error from finally replaces either outcome, whether thrown or a
 * promise that rejects (at once or later). */
START_TEST(finally_failure_overrides)
{
    for (int how = 0; how < 3; how++)
        for (int rejected = 0; rejected < 2; rejected++) {
            pact_promise *inner = NULL;
            struct later l = {NULL, pact_nothing(), NULL, NULL};
            struct fin f = {0, pact_nothing()};
            if (how == 0) {
                f.ret = pact_throw(PACT_ERROR(PACT_EPIPE, "finally threw"));
            } else if (how == 1) {
                f.ret = pact_promise_v(pact_rejected(
                    t_loop, PACT_ERROR(PACT_EPIPE, "finally threw")));
            } else {
                l.d = pact_deferred_new(t_loop, &inner);
                l.err = PACT_ERROR(PACT_EPIPE, "finally threw");
                f.ret = pact_promise_v(inner);
                ck_assert_int_eq(
                    pact_timeout(t_loop, 3, settle_later, &l, NULL), 0);
            }
            pact_promise *p = rejected
                                  ? pact_rejected(t_loop, PACT_ERROR(PACT_EIO))
                                  : pact_resolved(t_loop, pact_int(7));
            pact_promise *q = pact_finally(p, fin_fn, &f);
            observe(q);
            run_ok();
            ck_assert_int_eq(f.calls, 1);
            pact_error *e = rejection(q);
            ck_assert_msg(pact_error_code(e) == PACT_EPIPE,
                          "how %d rejected %d: %s", how, rejected,
                          pact_err_name(pact_error_code(e)));
            ck_assert_str_eq(pact_error_message(e), "finally threw");
            pact_promise_unref(p);
            pact_promise_unref(q);
        }
}
END_TEST

/* ---- error-first consumers ----------------------------------------------- */

struct cbrec {
    int calls;
    int code;
    pact_kind kind;
    int64_t i;
    bool had_err, had_v;
    int mode; /* then_cb: 0 recover, 1 rethrow */
};

static pact_value settled_fn(pact_error *err, const pact_value *v, void *ud)
{
    struct cbrec *r = ud;
    r->calls++;
    r->had_err = err != NULL;
    r->had_v = v != NULL;
    if (err) {
        r->code = pact_error_code(err);
        if (r->mode == 1)
            return pact_throw(pact_error_ref(err));
        return pact_int(-1);
    }
    r->kind = v->kind;
    r->i = v->u.i;
    return pact_int(v->u.i * 2);
}

START_TEST(then_cb_both_outcomes)
{
    struct cbrec a = {0}, b = {0}, c = {0};
    c.mode = 1;
    pact_promise *ok = pact_resolved(t_loop, pact_int(21));
    pact_error *e = PACT_ERROR(PACT_EIO);
    pact_promise *bad = pact_rejected(t_loop, pact_error_ref(e));
    pact_promise *qa = pact_then_cb(ok, settled_fn, &a);
    pact_promise *qb = pact_then_cb(bad, settled_fn, &b);
    pact_promise *qc = pact_then_cb(bad, settled_fn, &c);
    observe(qc);
    ck_assert_int_eq(a.calls + b.calls + c.calls, 0);
    run_ok();
    ck_assert_int_eq(a.calls, 1);
    ck_assert(!a.had_err && a.had_v);
    ck_assert_int_eq(a.kind, PACT_INT);
    ck_assert_int_eq(a.i, 21);
    ck_assert_int_eq(int_value(qa), 42);
    ck_assert_int_eq(b.calls, 1);
    ck_assert(b.had_err && !b.had_v);
    ck_assert_int_eq(b.code, PACT_EIO);
    ck_assert_int_eq(int_value(qb), -1); /* recovered */
    ck_assert_int_eq(c.calls, 1);
    ck_assert_ptr_eq(rejection(qc), e);
    pact_error_unref(e);
    pact_promise_unref(ok);
    pact_promise_unref(bad);
    pact_promise_unref(qa);
    pact_promise_unref(qb);
    pact_promise_unref(qc);
}
END_TEST

static void value_cb(pact_error *err, const pact_value *v, void *ud)
{
    struct cbrec *r = ud;
    r->calls++;
    r->had_err = err != NULL;
    r->had_v = v != NULL;
    r->code = err ? pact_error_code(err) : 0;
    if (v) {
        r->kind = v->kind;
        r->i = v->kind == PACT_INT ? v->u.i : 0;
    }
    trace("callback");
}

/* callbackify: (NULL, value) or (err, NULL), as a microtask in queue order,
 * never inside the call; a rejection it consumes is handled. */
START_TEST(promise_callback)
{
    struct cbrec a = {0}, b = {0};
    pact_promise *ok = pact_resolved(t_loop, pact_int(5));
    pact_promise *bad = pact_rejected(t_loop, PACT_ERROR(PACT_EPIPE));
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m1"), 0);
    ck_assert_int_eq(pact_promise_callback(ok, value_cb, &a), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m2"), 0);
    ck_assert_int_eq(pact_promise_callback(bad, value_cb, &b), 0);
    ck_assert_int_eq(a.calls + b.calls, 0);
    run_ok(); /* 0: the rejection was handled */
    ck_assert_str_eq(trace_text(), "m1\ncallback\nm2\ncallback\n");
    ck_assert_int_eq(a.calls, 1);
    ck_assert(!a.had_err && a.had_v);
    ck_assert_int_eq(a.kind, PACT_INT);
    ck_assert_int_eq(a.i, 5);
    ck_assert_int_eq(b.calls, 1);
    ck_assert(b.had_err && !b.had_v);
    ck_assert_int_eq(b.code, PACT_EPIPE);
    pact_promise_unref(ok);
    pact_promise_unref(bad);
}
END_TEST

/* On a pending promise dropped by the caller: the callback still comes. */
START_TEST(promise_callback_pending)
{
    struct cbrec a = {0};
    pact_promise *p;
    struct later l = {pact_deferred_new(t_loop, &p), pact_int(3), NULL,
                      "timer"};
    ck_assert_int_eq(pact_promise_callback(p, value_cb, &a), 0);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_timeout(t_loop, 3, settle_later, &l, NULL), 0);
    run_ok();
    ck_assert_str_eq(trace_text(), "timer\ncallback\n");
    ck_assert_int_eq(a.i, 3);
}
END_TEST

/* ---- the adapter --------------------------------------------------------- */

struct op {
    int starts;
    void *args_seen;
    pact_loop *loop_seen;
    uint64_t ms;
    int fail;          /* return this without starting anything */
    bool no_cb;        /* start the timer without a callback: PACT_EINVAL */
    pact_abort *abort; /* for the timer */
    pact_deferred *d;  /* for the late failure */
    pact_handle timer;
};

static int start_timer(pact_loop *loop, void *args, pact_deferred *d)
{
    struct op *o = args;
    o->starts++;
    o->args_seen = args;
    o->loop_seen = loop;
    if (o->fail)
        return o->fail;
    pact_timer_opts opts = {.delay_ms = o->ms, .abort = o->abort};
    return pact_timer_start(loop, &opts, o->no_cb ? NULL : pact_deferred_cb, d,
                            NULL);
}

START_TEST(promisify_success)
{
    struct op o = {.ms = 10};
    uint64_t t0 = now_us();
    pact_promise *p = pact_promisify(t_loop, start_timer, &o);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(o.starts, 1); /* started at once */
    ck_assert_ptr_eq(o.args_seen, &o);
    ck_assert_ptr_eq(o.loop_seen, t_loop);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    run_ok();
    ck_assert_uint_ge(now_us() - t0, 10000);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_value(p)->kind, PACT_NOTHING);
    pact_promise_unref(p);
}
END_TEST

/* A synchronous failure rejects with its code; the operation never calls
 * back, and the adapter drops the deferred itself (ASan/valgrind). */
START_TEST(promisify_sync_failure)
{
    struct op o = {.no_cb = true}; /* PACT_EINVAL */
    pact_promise *p;
    MISUSE("pact_timer_start", p = pact_promisify(t_loop, start_timer, &o));
    ck_assert_ptr_nonnull(p);
    observe(p);
    struct op o2 = {.fail = PACT_ENOENT};
    pact_promise *p2 = pact_promisify(t_loop, start_timer, &o2);
    ck_assert_ptr_nonnull(p2);
    observe(p2);
    run_ok();
    ck_assert_int_eq(pact_error_code(rejection(p)), PACT_EINVAL);
    ck_assert_int_eq(pact_error_code(rejection(p2)), PACT_ENOENT);
    ck_assert_int_eq(o2.starts, 1);
    pact_promise_unref(p);
    pact_promise_unref(p2);
}
END_TEST

static void fail_late(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct op *o = ud;
    pact_error *e = PACT_ERROR(PACT_ECONNRESET, "late failure");
    pact_deferred_cb(e, o->d); /* borrowed; drops the reference to d */
    pact_error_unref(e);
    o->d = NULL;
}

static int start_fail_late(pact_loop *loop, void *args, pact_deferred *d)
{
    struct op *o = args;
    o->starts++;
    o->d = d;
    return pact_timeout(loop, 3, fail_late, o, NULL);
}

START_TEST(promisify_async_error)
{
    struct op o = {0};
    struct seen s = {0};
    pact_promise *p = pact_promisify(t_loop, start_fail_late, &o);
    pact_promise *c = pact_catch(p, record_fail, &s);
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.code, PACT_ECONNRESET);
    ck_assert_str_eq(s.msg, "late failure");
    pact_promise_unref(p);
    pact_promise_unref(c);
}
END_TEST

/* The operation's own cancellation reaches the promise (one stack). */
START_TEST(promisify_abort)
{
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    struct op o = {.ms = 3600000, .abort = a};
    pact_promise *p = pact_promisify(t_loop, start_timer, &o);
    observe(p);
    pact_error *why = PACT_ERROR(PACT_EPIPE, "stop");
    ck_assert_int_eq(pact_abort_abort(a, why), 0);
    pact_error_unref(why);
    run_ok();
    pact_error *e = rejection(p);
    ck_assert_int_eq(pact_error_code(e), PACT_ECANCELED);
    ck_assert_ptr_nonnull(pact_error_cause(e));
    ck_assert_int_eq(pact_error_code(pact_error_cause(e)), PACT_EPIPE);
    pact_promise_unref(p);
    pact_abort_unref(a);
}
END_TEST

START_TEST(deferred_cb)
{
    pact_promise *p, *q;
    pact_deferred_cb(NULL, pact_deferred_new(t_loop, &p));
    pact_error *e = PACT_ERROR(PACT_EIO);
    pact_deferred_cb(e, pact_deferred_new(t_loop, &q));
    pact_error_unref(e); /* borrowed by the callback */
    observe(q);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_value(p)->kind, PACT_NOTHING);
    ck_assert_int_eq(pact_error_code(rejection(q)), PACT_EIO);
    pact_promise_unref(p);
    pact_promise_unref(q);
}
END_TEST

/* The value callback keeps a copy: scalars and pointers as they are, a new
 * JSON reference, a copy of bytes; an owned value is refused (EINVAL) and
 * left to its owner. */
START_TEST(deferred_value_cb_copies)
{
    pact_promise *p[7];
    int target = 0, freed = 0;
    json_t *j = json_pack("[i,i]", 1, 2);
    char *buf = malloc(3);
    memcpy(buf, "xyz", 3);
    pact_value vi = pact_int(12), vd = pact_double(0.5), vp = pact_ptr(&target);
    pact_value vj = pact_json(j), vb = pact_bytes(buf, 3);
    pact_value vo = pact_owned(&freed, count_free);
    pact_deferred_value_cb(NULL, &vi, pact_deferred_new(t_loop, &p[0]));
    pact_deferred_value_cb(NULL, &vd, pact_deferred_new(t_loop, &p[1]));
    pact_deferred_value_cb(NULL, &vp, pact_deferred_new(t_loop, &p[2]));
    pact_deferred_value_cb(NULL, &vj, pact_deferred_new(t_loop, &p[3]));
    ck_assert_uint_eq(j->refcount, 2);
    pact_deferred_value_cb(NULL, &vb, pact_deferred_new(t_loop, &p[4]));
    pact_deferred_value_cb(NULL, &vo, pact_deferred_new(t_loop, &p[5]));
    pact_error *e = PACT_ERROR(PACT_EACCES);
    pact_deferred_value_cb(e, NULL, pact_deferred_new(t_loop, &p[6]));
    pact_error_unref(e);
    observe(p[5]);
    observe(p[6]);
    run_ok();
    ck_assert_int_eq(int_value(p[0]), 12);
    ck_assert(pact_promise_value(p[1])->u.d == 0.5);
    ck_assert_ptr_eq(pact_promise_value(p[2])->u.ptr, &target);
    ck_assert_ptr_eq(pact_promise_value(p[3])->u.json, j);
    const pact_value *b = pact_promise_value(p[4]);
    ck_assert_int_eq(b->kind, PACT_BYTES);
    ck_assert_uint_eq(b->u.bytes.len, 3);
    ck_assert_ptr_ne(b->u.bytes.data, buf);
    ck_assert(memcmp(b->u.bytes.data, "xyz", 3) == 0);
    ck_assert_int_eq(pact_error_code(rejection(p[5])), PACT_EINVAL);
    ck_assert_int_eq(freed, 0);
    ck_assert_int_eq(pact_error_code(rejection(p[6])), PACT_EACCES);
    for (int i = 0; i < 7; i++)
        pact_promise_unref(p[i]);
    run_ok();
    ck_assert_uint_eq(j->refcount, 1);
    ck_assert_int_eq(freed, 0);
    pact_value_release(&vj);
    pact_value_release(&vb);
    pact_value_release(&vo);
    ck_assert_int_eq(freed, 1);
}
END_TEST

/* ---- timers as promises -------------------------------------------------- */

START_TEST(delay_fires_no_earlier)
{
    struct seen s = {0};
    uint64_t t0 = now_us();
    pact_promise *p = pact_delay(t_loop, 20, NULL);
    ck_assert_ptr_nonnull(p);
    pact_promise *q = pact_then(p, record_ok, NULL, &s);
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.kind, PACT_NOTHING);
    ck_assert_uint_ge(s.at_us - t0, 20000);
    pact_promise_unref(p);
    pact_promise_unref(q);
}
END_TEST

static void abort_later(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    pact_error *why = PACT_ERROR(PACT_EPIPE, "stop");
    ck_assert_int_eq(pact_abort_abort(ud, why), 0);
    pact_error_unref(why);
}

/* Aborted while waiting: ECANCELED caused by the reason, and the timer is
 * gone (the loop returns long before the delay). */
START_TEST(delay_aborted)
{
    struct seen s = {0};
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_promise *p = pact_delay(t_loop, 3600000, a);
    pact_promise *q = pact_catch(p, record_fail, &s);
    ck_assert_int_eq(pact_timeout(t_loop, 5, abort_later, a, NULL), 0);
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.code, PACT_ECANCELED);
    pact_error *cause = pact_error_cause(rejection(p));
    ck_assert_ptr_nonnull(cause);
    ck_assert_int_eq(pact_error_code(cause), PACT_EPIPE);
    pact_promise_unref(p);
    pact_promise_unref(q);
    pact_abort_unref(a);
}
END_TEST

START_TEST(delay_already_aborted)
{
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_error *why = PACT_ERROR(PACT_EPIPE, "stop");
    ck_assert_int_eq(pact_abort_abort(a, why), 0);
    pact_error_unref(why);
    pact_promise *p = pact_delay(t_loop, 3600000, a);
    ck_assert_ptr_nonnull(p);
    pact_promise *ip = pact_immediate_p(t_loop, a);
    ck_assert_ptr_nonnull(ip);
    observe(p);
    observe(ip);
    pact_abort_unref(a);
    run_ok();
    /* ECANCELED caused by the reason, as every cancelled operation */
    ck_assert_int_eq(pact_error_code(rejection(p)), PACT_ECANCELED);
    ck_assert_int_eq(pact_error_code(pact_error_cause(rejection(p))),
                     PACT_EPIPE);
    ck_assert_int_eq(pact_error_code(rejection(ip)), PACT_ECANCELED);
    ck_assert_int_eq(pact_error_code(pact_error_cause(rejection(ip))),
                     PACT_EPIPE);
    pact_promise_unref(p);
    pact_promise_unref(ip);
}
END_TEST

/* In the check phase, in order with other immediates; its reaction runs in
 * the drain right after it. */
START_TEST(immediate_p_order)
{
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "i1", NULL), 0);
    pact_promise *p = pact_immediate_p(t_loop, NULL);
    ck_assert_ptr_nonnull(p);
    pact_promise *q = pact_then(p, trace_ok, NULL, "p");
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "i2", NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 0, trace_cb, "timeout", NULL), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "micro"), 0);
    run_ok();
    const char *t = trace_text();
    ck_assert_msg(strncmp(t, "micro\n", 6) == 0, "trace: %s", t);
    ck_assert_msg(strstr(t, "i1\np\ni2\n") != NULL, "trace: %s", t);
    ck_assert_int_eq(pact_promise_value(p)->kind, PACT_NOTHING);
    pact_promise_unref(p);
    pact_promise_unref(q);
}
END_TEST

/* p first: the timeout settles as p (value or error) and its timer no longer
 * holds the loop. */
START_TEST(timeout_p_first)
{
    int freed = 0;
    pact_promise *p, *p2;
    struct later l = {pact_deferred_new(t_loop, &p), pact_nothing(), NULL,
                      NULL};
    l.v = pact_owned(&freed, count_free);
    struct later l2 = {pact_deferred_new(t_loop, &p2), pact_nothing(),
                       PACT_ERROR(PACT_EIO, "inner"), NULL};
    pact_promise *t = pact_promise_timeout(p, 3600000);
    pact_promise *t2 = pact_promise_timeout(p2, 3600000);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(t2);
    observe(t2);
    ck_assert_int_eq(pact_timeout(t_loop, 5, settle_later, &l, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, settle_later, &l2, NULL), 0);
    run_ok();
    ck_assert_int_eq(pact_promise_state(t), PACT_FULFILLED);
    ck_assert_ptr_eq(pact_promise_value(t)->u.owned.ptr, &freed);
    ck_assert_ptr_eq(rejection(t2), rejection(p2));
    ck_assert_str_eq(pact_error_message(rejection(t2)), "inner");
    pact_promise_unref(p);
    pact_promise_unref(p2);
    pact_promise_unref(t);
    pact_promise_unref(t2);
    run_ok();
    ck_assert_int_eq(freed, 1);

    /* already settled: no wait at all */
    p = pact_resolved(t_loop, pact_int(4));
    t = pact_promise_timeout(p, 3600000);
    run_ok();
    ck_assert_int_eq(int_value(t), 4);
    pact_promise_unref(p);
    pact_promise_unref(t);
}
END_TEST

START_TEST(timeout_expires)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    uint64_t t0 = now_us(); /* before the timeout starts */
    pact_promise *t = pact_promise_timeout(p, 15);
    observe(t);
    run_ok();
    ck_assert_uint_ge(now_us() - t0, 15000);
    ck_assert_int_eq(pact_error_code(rejection(t)), PACT_ETIMEDOUT);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    /* p settling afterwards changes nothing */
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(1)), 0);
    pact_deferred_unref(d);
    run_ok();
    ck_assert_int_eq(pact_error_code(rejection(t)), PACT_ETIMEDOUT);
    pact_promise_unref(p);
    pact_promise_unref(t);
}
END_TEST

START_TEST(abortable)
{
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    pact_promise *q = pact_promise_abortable(p, a);
    ck_assert_ptr_nonnull(q);
    observe(q);
    ck_assert_int_eq(pact_timeout(t_loop, 5, abort_later, a, NULL), 0);
    run_ok();
    ck_assert_ptr_eq(rejection(q), pact_abort_reason(a));
    ck_assert_int_eq(pact_error_code(rejection(q)), PACT_EPIPE);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(1)), 0);
    pact_deferred_unref(d);
    run_ok();
    ck_assert_int_eq(pact_promise_state(q), PACT_REJECTED);
    pact_promise_unref(q);

    pact_promise_unref(p);

    /* already aborted: rejects at once with the reason */
    d = pact_deferred_new(t_loop, &p);
    q = pact_promise_abortable(p, a);
    observe(q);
    run_ok();
    ck_assert_ptr_eq(rejection(q), pact_abort_reason(a));
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(1)), 0);
    pact_deferred_unref(d);
    run_ok();
    pact_promise_unref(q);
    pact_promise_unref(p);
    pact_abort_unref(a);
}
END_TEST

START_TEST(abortable_p_first)
{
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_promise *p;
    struct later l = {pact_deferred_new(t_loop, &p), pact_int(6), NULL, NULL};
    pact_promise *q = pact_promise_abortable(p, a);
    ck_assert_int_eq(pact_timeout(t_loop, 2, settle_later, &l, NULL), 0);
    run_ok();
    ck_assert_int_eq(int_value(q), 6);
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0); /* too late: no effect */
    run_ok();
    ck_assert_int_eq(int_value(q), 6);
    pact_promise_unref(p);
    pact_promise_unref(q);
    pact_abort_unref(a);
}
END_TEST

/* ---- misuse -------------------------------------------------------------- */

static pact_value never_ok(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    ck_abort_msg("handler ran");
    return pact_nothing();
}

static pact_value never_finally(void *ud)
{
    (void)ud;
    ck_abort_msg("handler ran");
    return pact_nothing();
}

static int never_start(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    (void)args;
    (void)d;
    ck_abort_msg("start ran");
    return 0;
}

static bool never_hook(pact_loop *loop, pact_rejection_event ev,
                       pact_promise *p, void *ud)
{
    (void)loop;
    (void)ev;
    (void)p;
    (void)ud;
    return true;
}

START_TEST(null_arguments)
{
    misnamed[0] = '\0';
    int freed = 0;
    pact_promise *r = NULL, *out = NULL;
    pact_deferred *d = NULL;
    int rc = 0;
    MISUSE("pact_deferred_new", d = pact_deferred_new(NULL, &out));
    ck_assert_ptr_null(d);
    MISUSE("pact_deferred_resolve",
           rc = pact_deferred_resolve(NULL, pact_owned(&freed, count_free)));
    ck_assert_int_eq(rc, PACT_EINVAL);
    ck_assert_int_eq(freed, 1); /* stolen whatever the result */
    MISUSE("pact_deferred_reject",
           rc = pact_deferred_reject(NULL, PACT_ERROR(PACT_EIO)));
    ck_assert_int_eq(rc, PACT_EINVAL);
    bool done = true;
    MISUSE("pact_deferred_done", done = pact_deferred_done(NULL));
    ck_assert(!done);
    MISUSE("pact_deferred_ref", d = pact_deferred_ref(NULL));
    ck_assert_ptr_null(d);
    MISUSE("pact_deferred_unref", pact_deferred_unref(NULL));
    MISUSE("pact_resolved",
           r = pact_resolved(NULL, pact_owned(&freed, count_free)));
    ck_assert_ptr_null(r);
    ck_assert_int_eq(freed, 2);
    MISUSE("pact_rejected", r = pact_rejected(NULL, PACT_ERROR(PACT_EIO)));
    ck_assert_ptr_null(r);
    MISUSE("pact_then", r = pact_then(NULL, never_ok, NULL, NULL));
    ck_assert_ptr_null(r);
    MISUSE("pact_catch", r = pact_catch(NULL, record_fail, NULL));
    ck_assert_ptr_null(r);
    MISUSE("pact_finally", r = pact_finally(NULL, never_finally, NULL));
    ck_assert_ptr_null(r);
    MISUSE("pact_then_cb", r = pact_then_cb(NULL, settled_fn, NULL));
    ck_assert_ptr_null(r);
    MISUSE("pact_promise_callback",
           rc = pact_promise_callback(NULL, value_cb, NULL));
    ck_assert_int_eq(rc, PACT_EINVAL);
    MISUSE("pact_promise_ref", r = pact_promise_ref(NULL));
    ck_assert_ptr_null(r);
    MISUSE("pact_promise_unref", pact_promise_unref(NULL));
    pact_state st = PACT_FULFILLED;
    MISUSE("pact_promise_state", st = pact_promise_state(NULL));
    ck_assert_int_eq(st, PACT_PENDING);
    const pact_value *pv = &(pact_value){PACT_INT, {0}};
    MISUSE("pact_promise_value", pv = pact_promise_value(NULL));
    ck_assert_ptr_null(pv);
    pact_error *pe = NULL;
    MISUSE("pact_promise_error", pe = pact_promise_error(NULL));
    ck_assert_ptr_null(pe);
    pact_loop *pl = t_loop;
    MISUSE("pact_promise_loop", pl = pact_promise_loop(NULL));
    ck_assert_ptr_null(pl);
    MISUSE("pact_all", r = pact_all(NULL, NULL, 0));
    ck_assert_ptr_null(r);
    MISUSE("pact_promise_timeout", r = pact_promise_timeout(NULL, 5));
    ck_assert_ptr_null(r);
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    MISUSE("pact_promise_abortable", r = pact_promise_abortable(NULL, a));
    ck_assert_ptr_null(r);
    MISUSE("pact_promisify", r = pact_promisify(NULL, never_start, NULL));
    ck_assert_ptr_null(r);
    MISUSE("pact_promisify", r = pact_promisify(t_loop, NULL, NULL));
    ck_assert_ptr_null(r);
    MISUSE("pact_delay", r = pact_delay(NULL, 1, a));
    ck_assert_ptr_null(r);
    MISUSE("pact_immediate_p", r = pact_immediate_p(NULL, a));
    ck_assert_ptr_null(r);
    pact_abort_unref(a);
    pact_value v = pact_int(1);
    MISUSE("pact_deferred_cb", pact_deferred_cb(NULL, NULL));
    MISUSE("pact_deferred_value_cb", pact_deferred_value_cb(NULL, &v, NULL));
    MISUSE("pact_loop_set_unhandled",
           rc = pact_loop_set_unhandled(NULL, PACT_UNHANDLED_WARN));
    ck_assert_int_eq(rc, PACT_EINVAL);
    MISUSE("pact_loop_set_unhandled",
           rc = pact_loop_set_unhandled(t_loop, (pact_unhandled_mode)42));
    ck_assert_int_eq(rc, PACT_EINVAL);
    MISUSE("pact_loop_on_rejection",
           rc = pact_loop_on_rejection(NULL, never_hook, NULL));
    ck_assert_int_eq(rc, PACT_EINVAL);

    /* NULL handlers where one is required */
    pact_promise *p = pact_resolved(t_loop, pact_int(1));
    MISUSE("pact_promise_callback", rc = pact_promise_callback(p, NULL, NULL));
    ck_assert_int_eq(rc, PACT_EINVAL);
    MISUSE("pact_then_cb", r = pact_then_cb(p, NULL, NULL));
    ck_assert_ptr_null(r);
    pact_promise *arr[2] = {p, NULL};
    MISUSE("pact_all", r = pact_all(t_loop, NULL, 2));
    ck_assert_ptr_null(r);
    MISUSE("pact_all", r = pact_all(t_loop, arr, 2));
    ck_assert_ptr_null(r);
    pact_promise_unref(p);
    run_ok();
    ck_assert_msg(misnamed[0] == '\0', "misnamed:\n%s", misnamed);
}
END_TEST

/* Settling twice: EALREADY, the promise unchanged, the second value
 * released (its destructor runs, exactly once). */
START_TEST(settle_twice)
{
    misnamed[0] = '\0';
    int freed = 0, rc;
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(1)), 0);
    MISUSE("pact_deferred_resolve",
           rc = pact_deferred_resolve(d, pact_owned(&freed, count_free)));
    ck_assert_int_eq(rc, PACT_EALREADY);
    ck_assert_int_eq(freed, 1);
    MISUSE("pact_deferred_reject",
           rc = pact_deferred_reject(d, PACT_ERROR(PACT_EIO)));
    ck_assert_int_eq(rc, PACT_EALREADY);
    run_ok();
    ck_assert_int_eq(int_value(p), 1);
    ck_assert_int_eq(freed, 1);
    pact_deferred_unref(d);
    pact_promise_unref(p);

    /* while adopting a pending promise: already resolved too */
    pact_promise *inner;
    pact_deferred *di = pact_deferred_new(t_loop, &inner);
    d = pact_deferred_new(t_loop, &p);
    ck_assert_int_eq(
        pact_deferred_resolve(d, pact_promise_v(pact_promise_ref(inner))), 0);
    MISUSE("pact_deferred_resolve",
           rc = pact_deferred_resolve(d, pact_owned(&freed, count_free)));
    ck_assert_int_eq(rc, PACT_EALREADY);
    ck_assert_int_eq(freed, 2);
    ck_assert_int_eq(pact_deferred_resolve(di, pact_int(2)), 0);
    run_ok();
    ck_assert_int_eq(int_value(p), 2);
    pact_deferred_unref(d);
    pact_deferred_unref(di);
    pact_promise_unref(inner);
    pact_promise_unref(p);

    /* rejected first */
    d = pact_deferred_new(t_loop, &p);
    observe(p);
    ck_assert_int_eq(pact_deferred_reject(d, PACT_ERROR(PACT_EPIPE)), 0);
    MISUSE("pact_deferred_resolve",
           rc = pact_deferred_resolve(d, pact_owned(&freed, count_free)));
    ck_assert_int_eq(rc, PACT_EALREADY);
    ck_assert_int_eq(freed, 3);
    run_ok();
    ck_assert_int_eq(pact_error_code(rejection(p)), PACT_EPIPE);
    pact_deferred_unref(d);
    pact_promise_unref(p);
    ck_assert_msg(misnamed[0] == '\0', "misnamed:\n%s", misnamed);
}
END_TEST

static pact_value return_slot(const pact_value *v, void *ud)
{
    (void)v;
    pact_promise **slot = ud;
    return pact_promise_v(pact_promise_ref(*slot));
}

/* A promise resolved with itself rejects with a type error (A+ 2.3.1):
 * a handler returning its own derived promise, and a deferred resolved with
 * its own promise. Returning the promise the handler is attached to is not a
 * cycle: the derived promise adopts its value. */
START_TEST(resolved_with_itself_is_etype)
{
    pact_promise *p = pact_resolved(t_loop, pact_int(1));
    pact_promise *q = NULL;
    q = pact_then(p, return_slot, NULL, &q);
    observe(q);
    pact_promise *own = NULL;
    pact_deferred *d = pact_deferred_new(t_loop, &own);
    ck_assert_int_eq(
        pact_deferred_resolve(d, pact_promise_v(pact_promise_ref(own))), 0);
    observe(own);
    pact_promise *attached = pact_then(p, return_slot, NULL, &p);
    run_ok();
    ck_assert_int_eq(pact_error_code(rejection(q)), PACT_ETYPE);
    ck_assert_int_eq(pact_error_code(rejection(own)), PACT_ETYPE);
    ck_assert_int_eq(int_value(attached), 1);
    pact_deferred_unref(d);
    pact_promise_unref(p);
    pact_promise_unref(q);
    pact_promise_unref(own);
    pact_promise_unref(attached);
}
END_TEST

struct offthread {
    pact_promise *p;
    pact_deferred *d;
    pact_abort *a;
    void *ptr[13];
    int rc[5];
};

/* As MISUSE for thread misuse, which every build prints. */
#define OFF_THREAD(name, stmt)                                                 \
    do {                                                                       \
        struct capture cap_;                                                   \
        capture_begin(&cap_);                                                  \
        stmt;                                                                  \
        char *out_ = capture_end(&cap_);                                       \
        check_named(name, out_[0] ? out_ : "(nothing)");                       \
        free(out_);                                                            \
    } while (0)

static void *off_thread(void *arg)
{
    struct offthread *w = arg;
    pact_promise *out = NULL;
    int n = 0, m = 0;
    OFF_THREAD("pact_deferred_new",
               w->ptr[n++] = pact_deferred_new(t_loop, &out));
    OFF_THREAD("pact_resolved",
               w->ptr[n++] = pact_resolved(t_loop, pact_int(1)));
    OFF_THREAD("pact_rejected",
               w->ptr[n++] = pact_rejected(t_loop, PACT_ERROR(PACT_EIO)));
    OFF_THREAD("pact_then",
               w->ptr[n++] = pact_then(w->p, never_ok, NULL, NULL));
    OFF_THREAD("pact_catch", w->ptr[n++] = pact_catch(w->p, record_fail, NULL));
    OFF_THREAD("pact_finally",
               w->ptr[n++] = pact_finally(w->p, never_finally, NULL));
    OFF_THREAD("pact_then_cb",
               w->ptr[n++] = pact_then_cb(w->p, settled_fn, NULL));
    OFF_THREAD("pact_all", w->ptr[n++] = pact_all(t_loop, &w->p, 1));
    OFF_THREAD("pact_promise_timeout",
               w->ptr[n++] = pact_promise_timeout(w->p, 1));
    OFF_THREAD("pact_promise_abortable",
               w->ptr[n++] = pact_promise_abortable(w->p, w->a));
    OFF_THREAD("pact_promisify",
               w->ptr[n++] = pact_promisify(t_loop, never_start, NULL));
    OFF_THREAD("pact_delay", w->ptr[n++] = pact_delay(t_loop, 1, NULL));
    OFF_THREAD("pact_immediate_p",
               w->ptr[n++] = pact_immediate_p(t_loop, NULL));
    OFF_THREAD("pact_deferred_resolve",
               w->rc[m++] = pact_deferred_resolve(w->d, pact_int(2)));
    OFF_THREAD("pact_deferred_reject",
               w->rc[m++] = pact_deferred_reject(w->d, PACT_ERROR(PACT_EIO)));
    OFF_THREAD("pact_promise_callback",
               w->rc[m++] = pact_promise_callback(w->p, value_cb, NULL));
    OFF_THREAD("pact_loop_set_unhandled", w->rc[m++] = pact_loop_set_unhandled(
                                              t_loop, PACT_UNHANDLED_NONE));
    OFF_THREAD("pact_loop_on_rejection",
               w->rc[m++] = pact_loop_on_rejection(t_loop, never_hook, NULL));
    return NULL;
}

/* From another thread: NULL or PACT_ETHREAD, the function named on stderr
 * in every build, and nothing changes. */
START_TEST(wrong_thread)
{
    misnamed[0] = '\0';
    struct offthread w = {0};
    w.d = pact_deferred_new(t_loop, &w.p);
    ck_assert_int_eq(pact_abort_new(t_loop, &w.a), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, off_thread, &w), 0);
    pthread_join(th, NULL);
    for (size_t i = 0; i < sizeof w.ptr / sizeof w.ptr[0]; i++)
        ck_assert_msg(w.ptr[i] == NULL, "call #%zu returned non-NULL", i);
    for (size_t i = 0; i < sizeof w.rc / sizeof w.rc[0]; i++)
        ck_assert_msg(w.rc[i] == PACT_ETHREAD, "call #%zu returned %d", i,
                      w.rc[i]);
    /* nothing changed: still pending, still the default mode */
    ck_assert(!pact_deferred_done(w.d));
    ck_assert_int_eq(pact_promise_state(w.p), PACT_PENDING);
    ck_assert_int_eq(pact_deferred_resolve(w.d, pact_int(3)), 0);
    run_ok();
    ck_assert_int_eq(int_value(w.p), 3);
    pact_deferred_unref(w.d);
    pact_promise_unref(w.p);
    pact_abort_unref(w.a);
    pact_promise *r = pact_rejected(t_loop, PACT_ERROR(PACT_EIO));
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    free(capture_end(&cap));
    ck_assert_int_eq(rc, PACT_EUNHANDLED);
    pact_promise_unref(r);
    ck_assert_msg(misnamed[0] == '\0', "misnamed:\n%s", misnamed);
}
END_TEST

/* pact_loop_close_all cancels the twins' handles: their promises reject
 * with ECANCELED on the next tick instead of being stranded. */
START_TEST(close_all_breaks_twins)
{
    struct seen a = {0}, b = {0};
    pact_promise *d = pact_delay(t_loop, 1000, NULL);
    pact_promise *i = pact_immediate_p(t_loop, NULL);
    pact_promise *dc = pact_catch(d, record_fail, &a);
    pact_promise *ic = pact_catch(i, record_fail, &b);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(pact_promise_state(d), PACT_PENDING);
    run_ok(); /* the cancellations, then the catch handlers */
    ck_assert_int_eq(pact_promise_state(d), PACT_REJECTED);
    ck_assert_int_eq(pact_error_code(pact_promise_error(d)), PACT_ECANCELED);
    ck_assert_int_eq(pact_promise_state(i), PACT_REJECTED);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.code, PACT_ECANCELED);
    ck_assert_int_eq(b.calls, 1);
    pact_promise_unref(d);
    pact_promise_unref(i);
    pact_promise_unref(dc);
    pact_promise_unref(ic);
}
END_TEST

static void record_cb(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    struct seen *s = ud;
    s->calls++;
    s->code = pact_error_code(err);
}

/* Two promises resolved with each other wait on each other forever, each
 * holding the other: close_all rejects them, so the loop can be freed (the
 * teardown asserts it), and leaves other pending promises alone. */
START_TEST(close_all_breaks_cycle)
{
    struct seen cb = {0}, other = {0};
    pact_promise *p2, *p1 = t_promise_cycle(&p2), *p3;
    pact_deferred *d3 = pact_deferred_new(t_loop, &p3);
    ck_assert_int_eq(pact_promise_callback(p1, record_cb, &cb), 0);
    pact_promise *x = pact_then(p3, record_ok, record_fail, &other);
    pact_promise_unref(p1);
    pact_promise_unref(p2);
    run_ok(); /* both adopted: nothing left to run */
    ck_assert_int_eq(cb.calls, 0);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_ok();
    ck_assert_int_eq(cb.calls, 1);
    ck_assert_int_eq(cb.code, PACT_ECANCELED);
    ck_assert_int_eq(pact_promise_state(x), PACT_PENDING);
    ck_assert_int_eq(other.calls, 0);
    ck_assert_int_eq(pact_deferred_resolve(d3, pact_int(1)), 0);
    run_ok();
    ck_assert_int_eq(other.calls, 1);
    ck_assert_int_eq(pact_promise_state(x), PACT_FULFILLED);
    pact_deferred_unref(d3);
    pact_promise_unref(p3);
    pact_promise_unref(x);
}
END_TEST

/* A promise resolved with its own then() (the adoption still queued when
 * close_all runs): its handler sees PACT_ECANCELED, nothing leaks. */
START_TEST(close_all_breaks_chain_cycle)
{
    struct seen s = {0};
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    pact_promise *q = pact_then(p, record_ok, record_fail, &s);
    pact_promise *r = pact_then(q, NULL, NULL, NULL);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_promise_v(r)), 0);
    pact_deferred_unref(d);
    pact_promise_unref(p);
    pact_promise_unref(q);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.code, PACT_ECANCELED);
}
END_TEST

/* pact_value_copy: what can be shared is, what has one owner is refused. */
START_TEST(value_copy_each_kind)
{
    pact_value c = pact_value_copy(&(pact_value){PACT_INT, {.i = 7}});
    ck_assert_int_eq(c.kind, PACT_INT);
    ck_assert_int_eq(c.u.i, 7);

    json_t *j = json_integer(1);
    pact_value jv = pact_json(j);
    c = pact_value_copy(&jv);
    ck_assert_ptr_eq(c.u.json, j);
    ck_assert_uint_eq(j->refcount, 2);
    pact_value_release(&c);
    ck_assert_uint_eq(j->refcount, 1);
    pact_value_release(&jv);

    pact_value bv = pact_bytes_copy("abc", 3);
    c = pact_value_copy(&bv);
    ck_assert_int_eq(c.kind, PACT_BYTES);
    ck_assert_ptr_ne(c.u.bytes.data, bv.u.bytes.data);
    ck_assert_mem_eq(c.u.bytes.data, "abc", 3);
    pact_value_release(&c);
    pact_value_release(&bv);

    pact_value sv = pact_string_copy("text");
    c = pact_value_copy(&sv);
    ck_assert_int_eq(c.kind, PACT_STRING);
    ck_assert_ptr_ne(c.u.str, sv.u.str);
    ck_assert_str_eq(c.u.str, "text");
    pact_value_release(&c);
    pact_value_release(&sv);

    int freed = 0;
    pact_value ov = pact_owned(&freed, count_free);
    c = pact_value_copy(&ov);
    ck_assert_int_eq(c.kind, PACT_ERROR);
    ck_assert_int_eq(pact_error_code(c.u.error), PACT_EINVAL);
    pact_value_release(&c);
    ck_assert_int_eq(freed, 0);
    pact_value_release(&ov);
    ck_assert_int_eq(freed, 1);

    c = pact_value_copy(NULL);
    ck_assert_int_eq(c.kind, PACT_NOTHING);
}
END_TEST

/* A handler passes its value on with pact_value_copy. */
static pact_value pass_copy(const pact_value *v, void *ud)
{
    (void)ud;
    return pact_value_copy(v);
}

START_TEST(handler_passes_copy)
{
    json_t *j = json_string("x");
    pact_promise *p = pact_resolved(t_loop, pact_json(j));
    pact_promise *q = pact_then(p, pass_copy, NULL, NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(q), PACT_FULFILLED);
    ck_assert_ptr_eq(pact_promise_value(q)->u.json, j);
    ck_assert_uint_eq(j->refcount, 2);
    pact_promise_unref(p);
    ck_assert_uint_eq(j->refcount, 1);
    pact_promise_unref(q);
}
END_TEST

/* ---- chains that steal their source, and one-call rejections ------------ */

static pact_value add_one(const pact_value *v, void *ud)
{
    trace("%s+1", (const char *)ud);
    return pact_int(v->u.i + 1);
}

static pact_value too_big(const pact_value *v, void *ud)
{
    trace("%s throw", (const char *)ud);
    return PACT_THROW(PACT_ERANGE, "%lld is too big", (long long)v->u.i);
}

static pact_value caught(pact_error *err, void *ud)
{
    trace("%s catch", (const char *)ud);
    return pact_string_fmt("caught %s: %s", pact_err_name(pact_error_code(err)),
                           pact_error_message(err));
}

static pact_value fin_trace(void *ud)
{
    trace("%s finally", (const char *)ud);
    return pact_nothing();
}

static pact_value settled_trace(pact_error *err, const pact_value *v, void *ud)
{
    trace("%s settled %s", (const char *)ud,
          err ? "rejected" : pact_value_string(v));
    return pact_value_copy(v);
}

/* a.then(f).then(g).catch(h).finally(i).then_cb(j) as one expression of
 * _take calls beside the same chain written with temporaries: the same
 * values, and the same microtask turns (the two chains' steps alternate,
 * as two Node chains on one promise do). The teardown's pact_loop_free
 * proves that no link was left referenced. */
START_TEST(take_chain_one_expression)
{
    pact_deferred *d;
    pact_promise *a = t_pending(&d);

    pact_promise *t1 = pact_then(a, add_one, NULL, "A");
    pact_promise *t2 = pact_then(t1, too_big, NULL, "A");
    pact_promise *t3 = pact_catch(t2, caught, "A");
    pact_promise *t4 = pact_finally(t3, fin_trace, "A");
    pact_promise *ra = pact_then_cb(t4, settled_trace, "A");
    pact_promise_unref(t1);
    pact_promise_unref(t2);
    pact_promise_unref(t3);
    pact_promise_unref(t4);

    pact_promise *rb = pact_then_cb_take(
        pact_finally_take(
            pact_catch_take(pact_then_take(pact_then_take(pact_promise_ref(a),
                                                          add_one, NULL, "B"),
                                           too_big, NULL, "B"),
                            caught, "B"),
            fin_trace, "B"),
        settled_trace, "B");
    ck_assert_ptr_nonnull(ra);
    ck_assert_ptr_nonnull(rb);
    pact_promise_unref(a); /* the deferred and the chains hold it */
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(41)), 0);
    pact_deferred_unref(d);
    run_ok();
    ck_assert_str_eq(trace_text(), "A+1\nB+1\nA throw\nB throw\nA catch\n"
                                   "B catch\nA finally\nB finally\n"
                                   "A settled caught ERANGE: 42 is too big\n"
                                   "B settled caught ERANGE: 42 is too big\n");
    ck_assert_str_eq(pact_value_string(pact_promise_value(rb)),
                     "caught ERANGE: 42 is too big");
    pact_promise_unref(ra);
    pact_promise_unref(rb);
}
END_TEST

/* The source's reference goes whatever happens: an owned value is freed
 * with the last holder, the chain's source included; a link that cannot be
 * made (a NULL handler where one is required) drops its source too. */
START_TEST(take_steals_source)
{
    int freed = 0;
    pact_promise *r =
        pact_then_take(pact_resolved(t_loop, pact_owned(&freed, count_free)),
                       NULL, NULL, NULL);
    ck_assert_ptr_nonnull(r);
    run_ok();
    ck_assert_int_eq(freed, 0); /* shared with r */
    pact_promise_unref(r);
    ck_assert_int_eq(freed, 1);

    freed = 0;
    MISUSE("pact_finally_take",
           ck_assert_ptr_null(pact_finally_take(
               pact_resolved(t_loop, pact_owned(&freed, count_free)), NULL,
               NULL)));
    ck_assert_int_eq(freed, 1);
    MISUSE("pact_then_cb_take",
           ck_assert_ptr_null(pact_then_cb_take(
               pact_resolved(t_loop, pact_owned(&freed, count_free)), NULL,
               NULL)));
    ck_assert_int_eq(freed, 2);
    ck_assert_str_eq(misnamed, "");
}
END_TEST

/* A NULL source (an earlier link that failed) flows to the end of the
 * chain as NULL: nothing runs, nothing is printed, nothing leaks. */
START_TEST(take_null_source)
{
    struct capture cap;
    capture_begin(&cap);
    pact_promise *r = pact_then_cb_take(
        pact_finally_take(
            pact_catch_take(pact_then_take(NULL, add_one, NULL, "N"), caught,
                            "N"),
            fin_trace, "N"),
        settled_trace, "N");
    char *out = capture_end(&cap);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(out, "");
    free(out);
    run_ok();
    ck_assert_str_eq(trace_text(), "");
}
END_TEST

/* A rejected source whose rejection the chain handles is not reported as
 * unhandled, though the caller never held the links between. */
START_TEST(take_chain_handles_rejection)
{
    pact_promise *r = pact_catch_take(
        pact_then_take(PACT_REJECTED(t_loop, PACT_ENOENT, "no %s", "config"),
                       add_one, NULL, "R"),
        caught, "R");
    run_ok(); /* THROW mode: an unhandled rejection would fail the run */
    ck_assert_str_eq(trace_text(), "R catch\n");
    ck_assert_str_eq(pact_value_string(pact_promise_value(r)),
                     "caught ENOENT: no config");
    pact_promise_unref(r);
}
END_TEST

/* Node's reject(new Error(...)) in one call: the code, the printf message
 * (or pact_strerror's for the code alone) and this file:line. */
START_TEST(reject_with_reason)
{
    pact_deferred *d;
    pact_promise *p = t_pending(&d);
    observe(p);
    int line = __LINE__ + 1;
    ck_assert_int_eq(PACT_REJECT(d, PACT_EACCES, "cannot read %s", "a.txt"), 0);
    pact_error *e = rejection(p);
    ck_assert_int_eq(pact_error_code(e), PACT_EACCES);
    ck_assert_str_eq(pact_error_message(e), "cannot read a.txt");
    ck_assert_str_eq(pact_error_file(e), __FILE__);
    ck_assert_int_eq(pact_error_line(e), line);
    /* a second settlement is refused; its error is released */
    MISUSE("pact_deferred_reject",
           ck_assert_int_eq(PACT_REJECT(d, PACT_EIO), PACT_EALREADY));
    pact_deferred_unref(d);
    pact_promise_unref(p);

    pact_promise *q = PACT_REJECTED(t_loop, PACT_ETIMEDOUT);
    observe(q);
    ck_assert_int_eq(pact_error_code(rejection(q)), PACT_ETIMEDOUT);
    ck_assert_str_eq(pact_error_message(rejection(q)),
                     pact_strerror(PACT_ETIMEDOUT));
    ck_assert_str_eq(pact_error_file(rejection(q)), __FILE__);
    pact_promise_unref(q);
    run_ok();
    ck_assert_str_eq(misnamed, "");
}
END_TEST

Suite *suite_promise(void)
{
    Suite *s = suite_create("promise");
    TCase *tc = tcase_create("value");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_loop_test(tc, value_kinds_fulfil_pass_adopt, 0, NKINDS);
    tcase_add_test(tc, owned_freed_with_last_holder);
    tcase_add_test(tc, resolved_with_promise_and_error);
    tcase_add_test(tc, value_release_each_kind);
    tcase_add_test(tc, thenable_adopted_and_released);
    tcase_add_test(tc, bytes_copy);
    tcase_add_test(tc, string_values);
    tcase_add_test(tc, list_from_all);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, pending_dropped_with_reactions);
    tcase_add_test(tc, rejected_dropped_with_reaction);
    tcase_add_test(tc, dropped_in_each_state);
    tcase_add_test(tc, deferred_without_out);
    tcase_add_test(tc, deferred_dropped_is_broken_promise);
    tcase_add_test(tc, deferred_resolved_then_dropped);
    tcase_add_test(tc, deferred_keeps_loop);
    tcase_add_test(tc, deferred_and_promise_part);
    tcase_add_test(tc, deferred_done);
    tcase_add_test(tc, deferred_resolved_from_timer);
    suite_add_tcase(s, tc);

    tc = tcase_create("consumers");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, finally_passes_value);
    tcase_add_test(tc, finally_passes_error);
    tcase_add_test(tc, finally_waits_for_its_promise);
    tcase_add_test(tc, finally_failure_overrides);
    tcase_add_test(tc, then_cb_both_outcomes);
    tcase_add_test(tc, promise_callback);
    tcase_add_test(tc, promise_callback_pending);
    suite_add_tcase(s, tc);

    tc = tcase_create("adapter");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, promisify_success);
    tcase_add_test(tc, promisify_sync_failure);
    tcase_add_test(tc, promisify_async_error);
    tcase_add_test(tc, promisify_abort);
    tcase_add_test(tc, deferred_cb);
    tcase_add_test(tc, deferred_value_cb_copies);
    tcase_add_test(tc, delay_fires_no_earlier);
    tcase_add_test(tc, delay_aborted);
    tcase_add_test(tc, delay_already_aborted);
    tcase_add_test(tc, immediate_p_order);
    tcase_add_test(tc, timeout_p_first);
    tcase_add_test(tc, timeout_expires);
    tcase_add_test(tc, abortable);
    tcase_add_test(tc, abortable_p_first);
    tcase_add_test(tc, close_all_breaks_twins);
    tcase_add_test(tc, close_all_breaks_cycle);
    tcase_add_test(tc, close_all_breaks_chain_cycle);
    tcase_add_test(tc, value_copy_each_kind);
    tcase_add_test(tc, handler_passes_copy);
    suite_add_tcase(s, tc);

    tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, take_chain_one_expression);
    tcase_add_test(tc, take_steals_source);
    tcase_add_test(tc, take_null_source);
    tcase_add_test(tc, take_chain_handles_rejection);
    tcase_add_test(tc, reject_with_reason);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, null_arguments);
    tcase_add_test(tc, settle_twice);
    tcase_add_test(tc, resolved_with_itself_is_etype);
    tcase_add_test(tc, wrong_thread);
    suite_add_tcase(s, tc);
    return s;
}
