/** @file
 * Error objects: what asynchronous operations pass first to callbacks.
 * Reference-counted (atomically: errors may cross threads with pool results);
 * immutable once made. A callback's error is borrowed for the call: take a
 * reference (pact_error_ref) to keep it. */
#ifndef PACT_ERROR_H
#define PACT_ERROR_H

#include <stdio.h>

#include "pact/common.h"
#include "pact/errno.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Make an error. Prefer the PACT_ERROR macros, which fill in file and line.
 * @param file, line  where the error was made (static strings; may be NULL).
 * @param cause  borrowed: the new error takes its own reference; may be NULL.
 * @param code   a PACT_E* code (negative).
 * @param fmt    printf format of the message; NULL or "" uses
 *   pact_strerror(code).
 * @return a new reference, or NULL only when out of memory.
 */
PACT_API pact_error *pact_error_new_at(const char *file, int line,
                                       pact_error *cause, int code,
                                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/**
 * PACT_ERROR(code) or PACT_ERROR(code, "fmt", args...): a new reference made
 * here (file:line). The one-argument form uses pact_strerror(code).
 */
#define PACT_ERROR(...)                                                        \
    PACT_ERROR_PICK_(__VA_ARGS__, PACT_ERROR_FMT_, PACT_ERROR_FMT_,            \
                     PACT_ERROR_FMT_, PACT_ERROR_FMT_, PACT_ERROR_FMT_,        \
                     PACT_ERROR_FMT_, PACT_ERROR_FMT_, PACT_ERROR_FMT_,        \
                     PACT_ERROR_FMT_, PACT_ERROR_CODE_, unused)                \
    (NULL, __VA_ARGS__)
/** As PACT_ERROR, with a cause (borrowed: the new error takes a reference). */
#define PACT_ERROR_CAUSE(cause, ...)                                           \
    PACT_ERROR_PICK_(__VA_ARGS__, PACT_ERROR_FMT_, PACT_ERROR_FMT_,            \
                     PACT_ERROR_FMT_, PACT_ERROR_FMT_, PACT_ERROR_FMT_,        \
                     PACT_ERROR_FMT_, PACT_ERROR_FMT_, PACT_ERROR_FMT_,        \
                     PACT_ERROR_FMT_, PACT_ERROR_CODE_, unused)                \
    ((cause), __VA_ARGS__)
/* Picks the code-only or the format form by counting arguments (up to 9
 * format arguments), so the code-only form passes no empty format. */
#define PACT_ERROR_PICK_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, name, ...)   \
    name
#define PACT_ERROR_CODE_(cause, code)                                          \
    pact_error_new_at(__FILE__, __LINE__, (cause), (code), NULL)
#define PACT_ERROR_FMT_(cause, code, ...)                                      \
    pact_error_new_at(__FILE__, __LINE__, (cause), (code), __VA_ARGS__)

/**
 * Make a PACT_EAGGREGATE error (JavaScript's AggregateError) holding @p n
 * errors, in order. Prefer PACT_ERROR_AGGREGATE, which fills in file:line.
 * @param file, line  as pact_error_new_at.
 * @param errs  borrowed: the new error takes a reference to each (NULL
 *   entries are kept as NULL).
 * @param n     how many errors @p errs holds.
 * @param fmt   as pact_error_new_at.
 * @return a new reference, or NULL only when out of memory.
 */
PACT_API pact_error *pact_error_aggregate_at(const char *file, int line,
                                             pact_error *const *errs, size_t n,
                                             const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/** PACT_ERROR_AGGREGATE(errs, n): a new PACT_EAGGREGATE reference made
 * here. */
#define PACT_ERROR_AGGREGATE(errs, n)                                          \
    pact_error_aggregate_at(__FILE__, __LINE__, (errs), (n), NULL)
/** @return how many errors an aggregate holds (0 for any other error). */
PACT_API size_t pact_error_count(const pact_error *err);
/** @return the @p i-th error of an aggregate (borrowed), or NULL. */
PACT_API pact_error *pact_error_at(const pact_error *err, size_t i);

/** Take a reference. @return @p err (NULL-safe). */
PACT_API pact_error *pact_error_ref(pact_error *err);
/** Drop a reference; frees the error (and its cause's reference) at zero.
 * NULL-safe. */
PACT_API void pact_error_unref(pact_error *err);

/** @return the PACT_E* code; 0 for NULL, the error-first callbacks' "no
 * error", so `if (pact_error_code(err))` reads as `if (err)`. */
PACT_API int pact_error_code(const pact_error *err);
/** @return the message, owned by the error. */
PACT_API const char *pact_error_message(const pact_error *err);
/** @return the cause, borrowed, or NULL. */
PACT_API pact_error *pact_error_cause(const pact_error *err);
/** @return the file where the error was made (a static string; may be
 * NULL). */
PACT_API const char *pact_error_file(const pact_error *err);
/** @return the line where the error was made (0 for NULL). */
PACT_API int pact_error_line(const pact_error *err);

/**
 * @return where the program started the operation that failed with @p err:
 * the return address of its call of the pact function that started it
 * (pact_fs_read_file, pact_offload, pact_port_recv and their promise
 * twins...), or NULL (an error made by the program, or a build without
 * __builtin_return_address). pact_error_print names it.
 */
PACT_API const void *pact_error_site(const pact_error *err);

/**
 * Print the error and its cause chain, one line each:
 * "ECANCELED: operation canceled (at src/timer.c:120)" then
 * "  caused by: ..." lines. An aggregate's errors follow it, each under an
 * "[i]:" line two spaces deeper than the aggregate's text, and two more.
 * An error of an operation the program started (pact_error_site) says
 * where: "ENOENT: ... (at ../src/fs_jobs.c:218), started at
 * app/config.c:42 (load_config)", with file:line when pact is built with
 * libdw and the program with -g, else the executable and offset. Naming
 * the call reads debug information: never call this from a signal handler.
 */
PACT_API void pact_error_print(const pact_error *err, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
