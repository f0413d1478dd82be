/* group: one job in four styles -- fetch several records at once in a task
 * group, at most two at a time, with a deadline for the whole group. The
 * records come from examples/styles' scripted store (fetch.h: 10 ms a
 * fetch; record 2's first try times out, record 3 does not exist); one
 * "record" (HUNG) is a store that never answers, which only the deadline
 * ends. The group is a join set (each child's failure is its own) that
 * moves on at its deadline, so every style prints the same trace. */
#ifndef GROUP_EXAMPLE_H
#define GROUP_EXAMPLE_H

#include <stdio.h>

#include "../styles/fetch.h"

#define HUNG 7 /* never answers */
/* every real fetch is done by 30 ms, and still well within it under TSan
 * on a loaded machine */
#define DEADLINE_MS 1000

/* The children, in spawn order. */
static const int ids[] = {1, 2, HUNG, 3, 1};
#define NIDS (sizeof ids / sizeof ids[0])

static const pact_group_opts group_opts = {
    .name = "fetchers",
    .limit = 2,
    .timeout_ms = DEADLINE_MS,
    .move_on = true,
    .join = true,
};

/* One child's line, as it finishes. */
static inline void print_child(int id, pact_error *err,
                               const struct record *rec)
{
    if (rec)
        print_record(rec);
    else
        printf("  record %d: %s\n", id, pact_err_name(pact_error_code(err)));
}

static inline void print_group(pact_error *err)
{
    printf("group: %s\n", err ? pact_err_name(pact_error_code(err))
                              : "every child finished or was cancelled");
}

#endif
