/* stall: code that looks non-blocking but runs blocking, and the loop-stall
 * detector that says which code and for how long (doc/stall.md).
 *
 * A heartbeat ticks every 50 ms and says when it comes late. Meanwhile three
 * pieces of asynchronous-looking code block the loop thread:
 *
 *   - a timer callback that does CPU-heavy work itself (it should hand it
 *     to the offload pool);
 *   - a promise handler that calls a blocking function (a synchronous
 *     lookup that sleeps, as gethostbyname or a blocking read would);
 *   - a task that awaits as it should, then computes for a while before its
 *     next await.
 *
 * Run with --debug, as every example, to turn the detector on: a report
 * for each of the three on stderr, with the loop thread's stack. Or run any
 * program with PACT_STALL_MS=100 in its environment. The functions here are
 * static, as callbacks usually are: with pact built with libdw the reports
 * name each one with its file:line; without, they give its address in the
 * executable for addr2line (only exported functions, and in an executable
 * only with -rdynamic, are named then). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pact.h>

#include "../debug.h"

#define TRY(call)                                                              \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ < 0) {                                                         \
            fprintf(stderr, "stall: %s: %s\n", #call, pact_strerror(rc_));     \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static pact_loop *loop;
static pact_handle heartbeat;
static uint64_t last_beat;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Stands for real CPU-bound work done on the loop thread: parsing a large
 * document, hashing, compressing. Bounded by time so that the example takes
 * as long everywhere (valgrind included). */
static unsigned long burn_cpu(unsigned ms)
{
    unsigned long n = 0;
    for (uint64_t until = now_ms() + ms; now_ms() < until;)
        n += n % 7 + 1;
    return n;
}

static void on_heartbeat(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    uint64_t now = now_ms();
    if (last_beat && now - last_beat > 100)
        printf("  heartbeat: %llu ms since the last one (50 expected)\n",
               (unsigned long long)(now - last_beat));
    last_beat = now;
}

/* ---- 3: a task that computes between two awaits ------------------------- */

static pact_error *indexer(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    PACT_AWAIT_TRY(pact_delay(loop, 20, NULL), NULL);
    printf("task: indexing 300 ms between two awaits\n");
    burn_cpu(300); /* blocks: nothing else runs until the next await */
    PACT_AWAIT_TRY(pact_delay(loop, 20, NULL), NULL);
    printf("task: done\n");
    pact_clear(loop, heartbeat);
    return NULL;
}

/* ---- 2: a promise handler that calls a blocking function ---------------- */

static void lookup_blocking(const char *host)
{
    /* a synchronous name lookup, a read on a blocking descriptor... */
    struct timespec ts = {0, 250 * 1000000L};
    (void)host;
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static pact_value on_resolved(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    printf("promise handler: a blocking lookup of 250 ms\n");
    lookup_blocking("example.org");
    pact_task_opts opts = {.name = "indexer"};
    pact_promise *p = pact_task_spawn(loop, indexer, NULL, &opts);
    return p ? pact_promise_v(p) : pact_throw(NULL);
}

/* ---- 1: a timer callback doing CPU-heavy work --------------------------- */

static void on_report_due(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    printf("timer: building a report for 300 ms\n");
    burn_cpu(300);
    pact_promise *d = pact_delay(loop, 20, NULL);
    pact_promise *p = pact_then(d, on_resolved, NULL, NULL);
    /* the timer holds the delay, the delay its reaction: the chain lives */
    pact_promise_unref(d);
    pact_promise_unref(p);
}

int main(int argc, char **argv)
{
    TRY(pact_loop_new(&loop));
    TRY(example_debug(loop, argc, argv)); /* --debug */
    TRY(pact_interval(loop, 50, on_heartbeat, NULL, &heartbeat));
    TRY(pact_timeout(loop, 100, on_report_due, NULL, NULL));
    int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    TRY(rc);
    TRY(pact_loop_free(loop));
    return 0;
}
