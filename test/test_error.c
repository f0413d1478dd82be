/* The error codes table (pact_strerror, pact_err_name) and pact_error
 * objects: code, message, where they were made, the cause chain and its
 * reference counts, and the printed form. No loop is needed here. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CONFIG_H
#include "config.h" /* PACKAGE_VERSION */
#endif

#include "helpers.h"
#include "suites.h"

/* ---- the code table ---------------------------------------------------- */

struct code_row {
    int code;
    const char *name;
    const char *msg;
};

/* The table again, from the same X-macro, so every code is checked. */
static const struct code_row rows[] = {
#define ROW_(name, value, msg) {PACT_##name, #name, msg},
    PACT_ERRNO_MAP(ROW_)
#undef ROW_
};
static const size_t nrows = sizeof rows / sizeof rows[0];

START_TEST(every_code_has_name_and_message)
{
    for (size_t i = 0; i < nrows; i++) {
        ck_assert_msg(rows[i].code < 0, "%s is not negative", rows[i].name);
        ck_assert_pstr_eq(pact_err_name(rows[i].code), rows[i].name);
        ck_assert_pstr_eq(pact_strerror(rows[i].code), rows[i].msg);
    }
}
END_TEST

START_TEST(named_examples)
{
    ck_assert_str_eq(pact_err_name(PACT_EINVAL), "EINVAL");
    ck_assert_str_eq(pact_strerror(PACT_EINVAL), "invalid argument");
    ck_assert_str_eq(pact_err_name(PACT_ETHREAD), "ETHREAD");
    ck_assert_str_eq(pact_err_name(PACT_EOF), "EOF");
    ck_assert_str_eq(pact_strerror(PACT_EOF), "end of file");
    ck_assert_str_eq(pact_err_name(PACT_ECANCELED), "ECANCELED");
}
END_TEST

/* Two codes with one value would make name lookup ambiguous. */
START_TEST(codes_are_distinct)
{
    for (size_t i = 0; i < nrows; i++)
        for (size_t j = i + 1; j < nrows; j++)
            ck_assert_msg(rows[i].code != rows[j].code, "%s and %s share %d",
                          rows[i].name, rows[j].name, rows[i].code);
}
END_TEST

/* Codes outside the table: a description and some name, never NULL. Positive
 * errno values are not pact codes (pact's are negative). */
START_TEST(unknown_codes)
{
    const int unknown[] = {0, 1, EINVAL, -99999, -4000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ck_assert_pstr_eq(pact_strerror(unknown[i]), "unknown error");
        const char *name = pact_err_name(unknown[i]);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_gt((int)strlen(name), 0);
        ck_assert_str_ne(name, "EINVAL");
    }
}
END_TEST

/* ---- error objects ----------------------------------------------------- */

START_TEST(default_message_and_location)
{
    pact_error *e = PACT_ERROR(PACT_EIO);
    int line = __LINE__ - 1;
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(pact_error_code(e), PACT_EIO);
    ck_assert_str_eq(pact_error_message(e), "i/o error");
    ck_assert_pstr_eq(pact_error_file(e), __FILE__);
    ck_assert_int_eq(pact_error_line(e), line);
    ck_assert_ptr_null(pact_error_cause(e));
    pact_error_unref(e);
}
END_TEST

START_TEST(formatted_message)
{
    pact_error *e =
        PACT_ERROR(PACT_ENOENT, "no file %s (%d tries)", "a.txt", 3);
    ck_assert_int_eq(pact_error_code(e), PACT_ENOENT);
    ck_assert_str_eq(pact_error_message(e), "no file a.txt (3 tries)");
    pact_error_unref(e);
}
END_TEST

/* NULL or "" formats fall back to pact_strerror; file may be NULL. */
START_TEST(new_at_without_location_or_format)
{
    pact_error *e = pact_error_new_at(NULL, 0, NULL, PACT_ETIMEDOUT, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(pact_error_message(e), "operation timed out");
    ck_assert_ptr_null(pact_error_file(e));
    /* "" is a documented input even though gcc flags it at compile time */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-zero-length"
    pact_error *f = pact_error_new_at("x.c", 7, NULL, PACT_EPIPE, "");
#pragma GCC diagnostic pop
    ck_assert_str_eq(pact_error_message(f), "broken pipe");
    ck_assert_str_eq(pact_error_file(f), "x.c");
    ck_assert_int_eq(pact_error_line(f), 7);
    pact_error_unref(e);
    pact_error_unref(f);
}
END_TEST

/* The message is the whole printf result, not a fixed-size prefix of it. */
START_TEST(long_message_is_not_truncated)
{
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pact_error *e = PACT_ERROR(PACT_EIO, "<%s>", big);
    const char *m = pact_error_message(e);
    ck_assert_uint_eq(strlen(m), sizeof big + 1);
    ck_assert_int_eq(m[0], '<');
    ck_assert_int_eq(m[sizeof big], '>');
    pact_error_unref(e);
}
END_TEST

/* The wrapper takes its own reference to the cause, so the cause outlives the
 * reference its creator dropped, and the wrapper's reference outlives the
 * wrapper's creator once someone else holds the cause. */
START_TEST(cause_chain_refcounts)
{
    pact_error *inner = PACT_ERROR(PACT_ECONNRESET, "peer %d", 9);
    pact_error *outer = PACT_ERROR_CAUSE(inner, PACT_EIO, "read failed");
    pact_error_unref(inner); /* only outer keeps it now */
    pact_error *cause = pact_error_cause(outer);
    ck_assert_ptr_eq(cause, inner);
    ck_assert_int_eq(pact_error_code(cause), PACT_ECONNRESET);
    ck_assert_str_eq(pact_error_message(cause), "peer 9");

    pact_error *kept = pact_error_ref(cause);
    ck_assert_ptr_eq(kept, cause);
    pact_error_unref(outer); /* the cause must survive: we hold it */
    ck_assert_int_eq(pact_error_code(kept), PACT_ECONNRESET);
    ck_assert_str_eq(pact_error_message(kept), "peer 9");
    pact_error_unref(kept); /* valgrind/ASan: freed exactly once here */
}
END_TEST

START_TEST(three_level_chain)
{
    pact_error *a = PACT_ERROR(PACT_EPIPE);
    pact_error *b = PACT_ERROR_CAUSE(a, PACT_EIO);
    pact_error *c = PACT_ERROR_CAUSE(b, PACT_ECANCELED, "gave up");
    pact_error_unref(a);
    pact_error_unref(b);
    ck_assert_ptr_eq(pact_error_cause(pact_error_cause(c)), a);
    ck_assert_int_eq(pact_error_code(pact_error_cause(pact_error_cause(c))),
                     PACT_EPIPE);
    ck_assert_ptr_null(pact_error_cause(a));
    pact_error_unref(c); /* frees the whole chain */
}
END_TEST

START_TEST(ref_unref_null_safe)
{
    ck_assert_ptr_null(pact_error_ref(NULL));
    pact_error_unref(NULL);
    pact_error *e = PACT_ERROR(PACT_EIO);
    ck_assert_ptr_eq(pact_error_ref(e), e);
    pact_error_unref(e);
    ck_assert_int_eq(pact_error_code(e), PACT_EIO); /* one reference left */
    pact_error_unref(e);
}
END_TEST

/* ---- printing ---------------------------------------------------------- */

START_TEST(print_single)
{
    pact_error *e = PACT_ERROR(PACT_ECANCELED);
    int line = __LINE__ - 1;
    char want[1024];
    snprintf(want, sizeof want, "ECANCELED: operation canceled (at %s:%d)\n",
             __FILE__, line);
    char *got = t_error_text(e);
    ck_assert_str_eq(got, want);
    free(got);
    pact_error_unref(e);
}
END_TEST

START_TEST(print_cause_chain)
{
    pact_error *a = PACT_ERROR(PACT_ECONNRESET);
    int la = __LINE__ - 1;
    pact_error *b = PACT_ERROR_CAUSE(a, PACT_EIO, "read %s", "sock");
    int lb = __LINE__ - 1;
    pact_error *c = PACT_ERROR_CAUSE(b, PACT_ECANCELED);
    int lc = __LINE__ - 1;
    char want[2048];
    snprintf(want, sizeof want,
             "ECANCELED: operation canceled (at %s:%d)\n"
             "  caused by: EIO: read sock (at %s:%d)\n"
             "  caused by: ECONNRESET: connection reset by peer (at %s:%d)\n",
             __FILE__, lc, __FILE__, lb, __FILE__, la);
    char *got = t_error_text(c);
    ck_assert_str_eq(got, want);
    free(got);
    pact_error_unref(a);
    pact_error_unref(b);
    pact_error_unref(c);
}
END_TEST

/* An aggregate's errors sit under it; under a "caused by:" line they sit
 * deeper than that line, so the nesting reads unambiguously. */
START_TEST(print_aggregate_nested)
{
    pact_error *e1 = pact_error_new_at(NULL, 0, NULL, PACT_EIO, "one");
    pact_error *e2 = pact_error_new_at(NULL, 0, NULL, PACT_EPIPE, "two");
    pact_error *errs[] = {e1, e2};
    pact_error *agg = pact_error_aggregate_at(NULL, 0, errs, 2, "all failed");
    pact_error *top = pact_error_new_at(NULL, 0, agg, PACT_EUNHANDLED, "top");
    ck_assert_uint_eq(pact_error_count(agg), 2);
    ck_assert_ptr_eq(pact_error_at(agg, 1), e2);
    ck_assert_ptr_null(pact_error_at(agg, 2));
    ck_assert_uint_eq(pact_error_count(top), 0);
    char *got = t_error_text(top);
    ck_assert_str_eq(got, "EUNHANDLED: top\n"
                          "  caused by: EAGGREGATE: all failed\n"
                          "    [0]:\n"
                          "      EIO: one\n"
                          "    [1]:\n"
                          "      EPIPE: two\n");
    free(got);
    pact_error_unref(e1);
    pact_error_unref(e2);
    pact_error_unref(agg);
    pact_error_unref(top); /* frees the aggregate and its errors */
}
END_TEST

/* Without a file there is no location to print, and no "(null)". */
START_TEST(print_without_location)
{
    pact_error *e = pact_error_new_at(NULL, 0, NULL, PACT_EPIPE, "gone");
    char *got = t_error_text(e);
    ck_assert_msg(strncmp(got, "EPIPE: gone", 11) == 0, "got '%s'", got);
    ck_assert_ptr_null(strstr(got, "(null)"));
    ck_assert_int_eq(got[strlen(got) - 1], '\n');
    free(got);
    pact_error_unref(e);
}
END_TEST

/* ---- atomic refcounts -------------------------------------------------- */

enum { REF_THREADS = 4, REF_ROUNDS = 100000 };

static void *ref_churn(void *p)
{
    pact_error *e = p;
    for (int i = 0; i < REF_ROUNDS; i++) {
        pact_error_ref(e);
        pact_error_unref(e);
    }
    return NULL;
}

/* Errors cross threads with pool results: a lost update would free the error
 * under the other threads (ASan/valgrind/TSan see it) or leak it. */
START_TEST(refcount_is_thread_safe)
{
    pact_error *e = PACT_ERROR(PACT_EIO, "shared");
    pthread_t th[REF_THREADS];
    for (int i = 0; i < REF_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, ref_churn, e), 0);
    for (int i = 0; i < REF_THREADS; i++)
        pthread_join(th[i], NULL);
    ck_assert_str_eq(pact_error_message(e), "shared");
    pact_error_unref(e);
}
END_TEST

/* ---- versions ------------------------------------------------------------ */

/* The linked library, the header's macros and configure's version agree. */
START_TEST(version_matches_header)
{
    ck_assert_uint_eq(pact_version(), PACT_VERSION_HEX);
    ck_assert_uint_eq(PACT_VERSION_HEX, (PACT_VERSION_MAJOR << 16) |
                                            (PACT_VERSION_MINOR << 8) |
                                            PACT_VERSION_PATCH);
    char text[32];
    snprintf(text, sizeof text, "%d.%d.%d", PACT_VERSION_MAJOR,
             PACT_VERSION_MINOR, PACT_VERSION_PATCH);
    ck_assert_str_eq(PACT_VERSION_STRING, text);
    ck_assert_str_eq(pact_version_string(), PACT_VERSION_STRING);
#ifdef PACKAGE_VERSION
    /* AC_INIT's version: the tarball, pact.pc and the CMake package */
    ck_assert_str_eq(PACKAGE_VERSION, PACT_VERSION_STRING);
#endif
}
END_TEST

Suite *suite_error(void)
{
    Suite *s = suite_create("error");
    TCase *codes = tcase_create("codes");
    tcase_add_test(codes, every_code_has_name_and_message);
    tcase_add_test(codes, named_examples);
    tcase_add_test(codes, codes_are_distinct);
    tcase_add_test(codes, unknown_codes);
    suite_add_tcase(s, codes);

    TCase *obj = tcase_create("objects");
    tcase_add_test(obj, default_message_and_location);
    tcase_add_test(obj, formatted_message);
    tcase_add_test(obj, new_at_without_location_or_format);
    tcase_add_test(obj, long_message_is_not_truncated);
    tcase_add_test(obj, cause_chain_refcounts);
    tcase_add_test(obj, three_level_chain);
    tcase_add_test(obj, ref_unref_null_safe);
    tcase_add_test(obj, refcount_is_thread_safe);
    suite_add_tcase(s, obj);

    TCase *print = tcase_create("print");
    tcase_add_test(print, print_single);
    tcase_add_test(print, print_cause_chain);
    tcase_add_test(print, print_aggregate_nested);
    tcase_add_test(print, print_without_location);
    suite_add_tcase(s, print);

    TCase *version = tcase_create("version");
    tcase_add_test(version, version_matches_header);
    suite_add_tcase(s, version);
    return s;
}
