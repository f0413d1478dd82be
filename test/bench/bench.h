/* make bench: the driver's interface to the benchmark files. A benchmark
 * measures one pact figure and the same work done by the layer below (raw
 * libevent) and by its peers (libuv, Node), all in one run of this program,
 * and prints one line per anchor (see README.md for the line form). */
#ifndef PACT_BENCH_H
#define PACT_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <pact.h>

/* Warm-up runs, then measured runs of which the best is reported: a shared
 * machine only ever adds time, so the minimum is the least noisy figure. */
#define BENCH_WARMUP 1
#define BENCH_RUNS 3

/* The most figures one run function reports (timer.add_fire: CPU and wall). */
#define BENCH_MAX_FIGS 2

/* One benchmark in the registry: `bench NAME` runs the one named NAME. */
typedef struct bench_def {
    const char *name;
    void (*run)(void);
} bench_def;

/* The registries, each terminated by a zero entry: the loop core
 * (bench_core.c), the promises (bench_promise.c), the await layer
 * (bench_task.c), the offload pool (bench_pool.c), the workers
 * (bench_worker.c), the TCP streams (bench_tcp.c), the HTTP server
 * (bench_http.c) and client (bench_fetch.c). */
extern const bench_def bench_core[];
extern const bench_def bench_promise[];
extern const bench_def bench_task[];
extern const bench_def bench_group[];
extern const bench_def bench_pool[];
extern const bench_def bench_worker[];
extern const bench_def bench_tcp[];
extern const bench_def bench_http[];
extern const bench_def bench_fetch[];

/* One system's result for one figure; value < 0 means "not measured". */
typedef struct bench_anchor {
    const char *sys;
    double value;
} bench_anchor;

/* One measured run: fills figs[0..BENCH_MAX_FIGS) (unused ones may stay 0). */
typedef void (*bench_run_fn)(void *ctx, double figs[BENCH_MAX_FIGS]);

/* ---- timing -------------------------------------------------------------- */

/** @return a monotonic wall clock in ns. */
double bench_wall_ns(void);
/** @return CPU time used by the whole process (user + system) in ns. */
double bench_cpu_ns(void);
/**
 * Run @p fn BENCH_WARMUP times unmeasured, then BENCH_RUNS times, and keep
 * the least value of each figure in @p best.
 */
void bench_best(bench_run_fn fn, void *ctx, double best[BENCH_MAX_FIGS]);

/* ---- output -------------------------------------------------------------- */

/**
 * Print the lines for one figure: one per anchor that has a value (>= 0),
 * with its ratio, or one line without anchor fields if none has.
 * Lower is better for every figure here (all are costs: ns, or B of memory).
 */
void bench_print(const char *name, const char *unit, double value,
                 const bench_anchor *anchors, size_t nanchors);

/** Keep the calling thread on core @p cpu (modulo the cores there are; a
 * no-op on one core), so that a server and its load client run side by
 * side; bench_unpin lets it run anywhere again. */
void bench_pin(int cpu);
void bench_unpin(void);
/** Print a message to stderr and exit(1): a benchmark whose check failed. */
void bench_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/** Abort with the call's text when @p rc (a pact or libuv code) is negative. */
#define BENCH_CHECK(rc) bench_check_((rc), #rc, __FILE__, __LINE__)
void bench_check_(long rc, const char *what, const char *file, int line);

/* ---- pact, each call checked ----------------------------------------------
 * Inline: they stand in the timed loops, where a call each would add to
 * the figures. */

static inline pact_loop *bench_new_loop(void)
{
    pact_loop *loop = NULL;
    BENCH_CHECK(pact_loop_new(&loop));
    return loop;
}

/* Run until no work is left: a pending promise is not work, nor a task or
 * function suspended on one, as in Node. */
static inline void bench_run_loop(pact_loop *loop)
{
    int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    BENCH_CHECK(rc);
    if (rc != 0)
        bench_fail("pact_loop_run returned %d, expected 0", rc);
}

/* @p p, or fail naming @p what when it is NULL. */
static inline pact_promise *bench_must(pact_promise *p, const char *what)
{
    if (!p)
        bench_fail("%s returned NULL", what);
    return p;
}

static inline pact_deferred *bench_new_deferred(pact_loop *loop,
                                                pact_promise **out)
{
    pact_deferred *d = pact_deferred_new(loop, out);
    if (!d || !*out)
        bench_fail("pact_deferred_new failed");
    return d;
}

/* ---- memory -------------------------------------------------------------- */

/** @return resident bytes of the whole process (/proc/self/statm). */
double bench_rss_bytes(void);
/**
 * @return heap bytes in use as the allocator counts them (mallinfo2:
 *   uordblks + hblkhd, so slabs and mmap'd blocks count whole, not the
 *   number of mallocs); without mallinfo2 (glibc before 2.33), the resident
 *   bytes.
 */
double bench_heap_bytes(void);

/* ---- anchors run elsewhere -------------------------------------------------
 */

/**
 * Run the Node anchor script @p script ($PACT_BENCH_JS/script with
 * $PACT_BENCH_NODE) and read the numbers it prints into @p out.
 * @return how many were read (then exactly @p n), or 0 when Node is not
 *   configured (the anchor is skipped). A script that fails or prints fewer
 *   numbers aborts the run: a broken anchor must not pass as a missing one.
 */
size_t bench_node(const char *script, double *out, size_t n);

/**
 * Run the Go anchors' program as `anchors @p args` and read the numbers it
 * prints into @p out. The program is built on first use from the sources in
 * $PACT_BENCH_GOSRC with $PACT_BENCH_GO (`go build` into a temporary
 * directory, removed at exit). @p args is a fixed string of this program's.
 * @return as bench_node: 0 when Go is not configured (the anchor is skipped);
 *   a failed build or run aborts.
 */
size_t bench_go(const char *args, double *out, size_t n);

/**
 * @return the path of the Go anchors' program (built on first use, as for
 *   bench_go), for a benchmark that runs it as a server and drives it
 *   itself; NULL when Go is not configured.
 */
const char *bench_go_program(void);

/* ---- shared workload -------------------------------------------------------
 */

/**
 * Fill @p ms with @p n uniform delays in 1..1000 from a fixed xorshift32 seed:
 * timer.js computes the very same sequence, so every system sets the same
 * timers in the same order.
 */
void bench_delays(uint32_t *ms, size_t n);

#endif
