/* make bench: the driver's interface to the benchmark files. A benchmark
 * measures one pact figure and the same work done by the layer below (raw
 * libevent) and by its peers (libuv, Node), all in one run of this program,
 * and prints one line per anchor (see README.md for the line form). */
#ifndef PACT_BENCH_H
#define PACT_BENCH_H

#include <stddef.h>
#include <stdint.h>

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
 * (bench_core.c), the promises (bench_promise.c) and the workers
 * (bench_worker.c). */
extern const bench_def bench_core[];
extern const bench_def bench_promise[];
extern const bench_def bench_worker[];

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

/** Print a message to stderr and exit(1): a benchmark whose check failed. */
void bench_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/** Abort with the call's text when @p rc (a pact or libuv code) is negative. */
#define BENCH_CHECK(rc) bench_check_((rc), #rc, __FILE__, __LINE__)
void bench_check_(long rc, const char *what, const char *file, int line);

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

/* ---- shared workload -------------------------------------------------------
 */

/**
 * Fill @p ms with @p n uniform delays in 1..1000 from a fixed xorshift32 seed:
 * timer.js computes the very same sequence, so every system sets the same
 * timers in the same order.
 */
void bench_delays(uint32_t *ms, size_t n);

#endif
