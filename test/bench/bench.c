/* make bench: the driver. `bench` runs every benchmark in the registry,
 * `bench NAME...` only those named; each prints its lines on stdout in the
 * form README.md documents, checked by shared/tools/bench-lint. Diagnostics
 * go to stderr so that stdout holds only result lines. */
#include "config.h"

#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

/* ---- timing -------------------------------------------------------------- */

static double clock_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        bench_fail("clock_gettime(%d) failed", (int)id);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double bench_wall_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

/* CLOCK_PROCESS_CPUTIME_ID is user + system time of every thread, at ns
 * resolution (getrusage only gives µs). */
double bench_cpu_ns(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

void bench_best(bench_run_fn fn, void *ctx, double best[BENCH_MAX_FIGS])
{
    double figs[BENCH_MAX_FIGS];

    for (int i = 0; i < BENCH_WARMUP; i++)
        fn(ctx, figs);
    for (int f = 0; f < BENCH_MAX_FIGS; f++)
        best[f] = -1;
    for (int i = 0; i < BENCH_RUNS; i++) {
        memset(figs, 0, sizeof figs);
        fn(ctx, figs);
        for (int f = 0; f < BENCH_MAX_FIGS; f++)
            if (best[f] < 0 || figs[f] < best[f])
                best[f] = figs[f];
    }
}

/* ---- output -------------------------------------------------------------- */

/* Format @p v and return the value the text stands for, so that the printed
 * ratio is exactly printed value / printed anchor_value, as the linter
 * recomputes it. Small figures keep more digits. */
static double format_num(char *buf, size_t len, double v)
{
    snprintf(buf, len, "%.*f", v < 100 ? 2 : 1, v);
    return strtod(buf, NULL);
}

void bench_print(const char *name, const char *unit, double value,
                 const bench_anchor *anchors, size_t nanchors)
{
    char val[32], av[32];
    double shown = format_num(val, sizeof val, value);
    int printed = 0;

    for (size_t i = 0; i < nanchors; i++) {
        if (anchors[i].value < 0)
            continue;
        double ashown = format_num(av, sizeof av, anchors[i].value);
        if (ashown <= 0)
            ashown = format_num(av, sizeof av, 0.01); /* never divide by 0 */
        printf("bench name=%s value=%s unit=%s better=lower anchor=%s "
               "anchor_value=%s ratio=%.3f\n",
               name, val, unit, anchors[i].sys, av, shown / ashown);
        printed = 1;
    }
    if (!printed)
        printf("bench name=%s value=%s unit=%s better=lower\n", name, val,
               unit);
    fflush(stdout); /* a piped run shows each figure as it is measured */
}

void bench_fail(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("bench: FAILED: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void bench_check_(long rc, const char *what, const char *file, int line)
{
    if (rc < 0)
        bench_fail("%s:%d: %s returned %ld", file, line, what, rc);
}

/* ---- Node anchors ----------------------------------------------------------
 */

/* Append @p s to @p cmd single-quoted, so that any path is one word. */
static void shell_quote(char *cmd, size_t len, const char *s)
{
    size_t n = strlen(cmd);
    if (n + 1 < len)
        cmd[n++] = '\'';
    for (; *s && n + 5 < len; s++) {
        if (*s == '\'') {
            memcpy(cmd + n, "'\\''", 4);
            n += 4;
        } else {
            cmd[n++] = *s;
        }
    }
    if (n + 2 < len)
        cmd[n++] = '\'';
    cmd[n] = '\0';
}

static const char *node_path(void)
{
    const char *node = getenv("PACT_BENCH_NODE");
    return node && *node ? node : NULL;
}

size_t bench_node(const char *script, double *out, size_t n)
{
    const char *node = node_path();
    const char *dir = getenv("PACT_BENCH_JS");
    char path[2048], cmd[4096] = "";

    if (!node)
        return 0;
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "test/bench/node",
             script);
    shell_quote(cmd, sizeof cmd, node);
    strcat(cmd, " ");
    shell_quote(cmd, sizeof cmd, path);

    FILE *p = popen(cmd, "r");
    if (!p)
        bench_fail("cannot run %s", cmd);
    size_t got = 0;
    while (got < n && fscanf(p, "%lf", &out[got]) == 1)
        got++;
    int status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_fail("%s: exit status %d", cmd, status);
    if (got != n)
        bench_fail("%s: printed %zu numbers, expected %zu", cmd, got, n);
    return got;
}

/* ---- shared workload -------------------------------------------------------
 */

void bench_delays(uint32_t *ms, size_t n)
{
    uint32_t x = 2463534242u; /* Marsaglia's xorshift32 seed; timer.js too */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        ms[i] = 1 + x % 1000; /* modulo bias < 3e-7: irrelevant here */
    }
}

/* ---- the driver -------------------------------------------------------------
 */

/* The registries in the order they run. bench_core comes last: its last
 * benchmark (post.hop) turns on libevent's locking for the whole process,
 * which would also slow every pact loop measured after it. */
static const bench_def *const registries[] = {bench_promise, bench_worker,
                                              bench_core};
#define NREGISTRIES (sizeof registries / sizeof registries[0])

static const bench_def *find(const char *name)
{
    for (size_t r = 0; r < NREGISTRIES; r++)
        for (const bench_def *b = registries[r]; b->name; b++)
            if (strcmp(b->name, name) == 0)
                return b;
    return NULL;
}

static void usage(void)
{
    fputs("usage: bench [NAME...]\nbenchmarks:", stderr);
    for (size_t r = 0; r < NREGISTRIES; r++)
        for (const bench_def *b = registries[r]; b->name; b++)
            fprintf(stderr, " %s", b->name);
    fputc('\n', stderr);
}

static int selected(const bench_def *b, int argc, char **argv)
{
    if (argc == 1)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(b->name, argv[i]) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    /* Check every name first: a typo should not cost a minute of runs. */
    for (int i = 1; i < argc; i++) {
        if (!find(argv[i])) {
            fprintf(stderr, "bench: no benchmark named '%s'\n", argv[i]);
            usage();
            return 2;
        }
    }
    /* Registry order, whatever the argument order: a benchmark may change
     * process-wide state for those after it (post.hop's evthread locking). */
    for (size_t r = 0; r < NREGISTRIES; r++)
        for (const bench_def *b = registries[r]; b->name; b++)
            if (selected(b, argc, argv))
                b->run();
    return 0;
}
