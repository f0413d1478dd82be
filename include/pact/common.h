/** @file
 * Shared by every public header: the export marker and the core types that
 * more than one layer names. */
#ifndef PACT_COMMON_H
#define PACT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** @def PACT_API
 * Marks a declaration as part of the exported API (default visibility; the
 * library builds with everything else hidden). Not for users' own code. */
#if defined(_WIN32)
#define PACT_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#define PACT_API __attribute__((visibility("default")))
#else
#define PACT_API
#endif

/** @def PACT_NODISCARD
 * On functions whose result must be used: ignoring it leaks (an error
 * reference, say). */
#if defined(__GNUC__)
#define PACT_NODISCARD __attribute__((warn_unused_result))
#else
#define PACT_NODISCARD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** An event loop; see pact/loop.h. Owned by its creator (pact_loop_free). */
typedef struct pact_loop pact_loop;
/** A reference-counted error object; see pact/error.h. */
typedef struct pact_error pact_error;
/** An abort token (AbortController + AbortSignal); see pact/abort.h. */
typedef struct pact_abort pact_abort;

/**
 * A handle names a timer, immediate, signal watcher or fd poller by value.
 * It is a generation-checked id, not a pointer: using it after the handle
 * fired, was cleared or closed gives PACT_ENOENT instead of undefined
 * behaviour. The zero handle never names anything.
 */
typedef struct pact_handle {
    uint64_t id; /**< opaque; 0 in the zero handle */
} pact_handle;

/** Error-first completion: @p err is NULL on success, borrowed for the call. */
typedef void (*pact_cb)(pact_error *err, void *ud);
/** A plain job (ticks, microtasks, posts, close callbacks). */
typedef void (*pact_fn)(void *ud);

#ifdef __cplusplus
}
#endif
#endif
