/** @file
 * The task dump (layer 4): the live tree of a loop as a program's author
 * needs it when a daemon seems stuck -- its groups, with their tasks and
 * nested groups; each task's name, spawn site, state, the await it is
 * suspended at and the cancel scopes it is in; and the pending operations
 * (timers with their delay, pool jobs with their lane, port receives...),
 * each under the task or async function that started it while that still
 * runs, else under the group whose token it was started with, the rest at
 * the top. Text for people, JSON (jansson) for tools; both forms are
 * stable: fields are only ever added. doc/structured.md shows an example.
 */
#ifndef PACT_DUMP_H
#define PACT_DUMP_H

#if defined(PACT__LAYER) && PACT__LAYER < 4
#error "pact/dump.h is layer 4 (scope): a lower layer must not include it"
#endif

#include <stdio.h>

#include "pact/common.h"
#include "pact/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/**
 * Print the live tree of @p loop on @p out, on the loop's thread: a first
 * line `pact: dump of loop: T task(s), G group(s), O operation(s)`, then one
 * line per group, task, scope and operation, indented two spaces per
 * level.
 * @return how many lines of things were printed (0 when there is nothing,
 *   or for misuse: NULL argument, another thread).
 */
PACT_API size_t pact_loop_dump(pact_loop *loop, FILE *out);

/**
 * The same tree as JSON: an object with "tasks", "groups" and "operations"
 * counts and the arrays "groups" (each: "name", "made_at", "running",
 * "queued", "limit", "cancelled", "deadline_in_ms" (or null), "tasks",
 * "groups", "operations"), "tasks" (each: "name", "spawned_at", "state",
 * "awaiting_at" (or null), "scopes", "groups", "operations") and
 * "operations" (each: "what", "detail") for what belongs to no group.
 * @return a new reference (json_decref), or NULL (misuse, no memory).
 */
PACT_API struct json_t *pact_loop_dump_json(pact_loop *loop);

/**
 * Print the dump (text, on stderr) whenever @p signum arrives, without
 * stopping anything: an unreferenced pact_signal watcher, so it never keeps
 * the loop alive. 0 turns it off. One loop per process may watch a given
 * signal (as pact_signal). Off by default; the environment variable
 * PACT_DUMP_SIGNAL (a number, or a name as USR1, USR2, SIGUSR2) turns it on
 * for every loop made afterwards.
 * @return 0, PACT_EINVAL (a bad signal), PACT_ETHREAD, PACT_ENOMEM, or as
 *   pact_signal_start.
 */
PACT_API int pact_loop_dump_on_signal(pact_loop *loop, int signum);

#ifdef __cplusplus
}
#endif

#endif
