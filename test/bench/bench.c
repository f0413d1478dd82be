/* make bench: the driver. `bench` runs every benchmark in the registry,
 * `bench NAME...` only those named; each prints its lines on stdout in the
 * form README.md documents, checked by shared/tools/bench-lint. Diagnostics
 * go to stderr so that stdout holds only result lines. */
#include "config.h"

#include "bench.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define HAVE_MALLINFO2_ 1
#endif

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

/* ---- memory -------------------------------------------------------------- */

double bench_rss_bytes(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
        bench_fail("cannot read /proc/self/statm");
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

double bench_heap_bytes(void)
{
#ifdef HAVE_MALLINFO2_
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
#else
    return bench_rss_bytes();
#endif
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

/* Run @p cmd with the shell and read the @p n numbers it prints. */
static size_t read_numbers(const char *cmd, double *out, size_t n)
{
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
    return read_numbers(cmd, out, n);
}

/* ---- Go anchors -------------------------------------------------------------
 */

static char go_dir[1024]; /* the temporary build directory, once made */
static char go_bin[1100]; /* the program in it */

static void go_cleanup(void)
{
    char cmd[2048] = "rm -rf ";
    shell_quote(cmd, sizeof cmd, go_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", go_dir);
}

/* Build the anchors program once: `go build` of every .go file in
 * $PACT_BENCH_GOSRC, with a cache in the temporary directory unless GOCACHE
 * is set (Go 1.20 and later then compile the standard library there once per
 * run), and GOPATH there too, so that the build needs no HOME and writes
 * nothing outside it. @return its path, or NULL when Go is not configured. */
static const char *go_anchors(void)
{
    const char *go = getenv("PACT_BENCH_GO");
    const char *src = getenv("PACT_BENCH_GOSRC");
    const char *tmp = getenv("TMPDIR");
    char dir[1200], cmd[8192] = "cd ";

    if (!go || !*go)
        return NULL;
    if (*go_bin)
        return go_bin;
    snprintf(go_dir, sizeof go_dir, "%s/pact-bench-go.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(go_dir))
        bench_fail("mkdtemp %s failed", go_dir);
    atexit(go_cleanup);
    snprintf(go_bin, sizeof go_bin, "%s/anchors", go_dir);

    shell_quote(cmd, sizeof cmd, src && *src ? src : "test/bench/go");
    strcat(cmd, " && GOPATH=");
    snprintf(dir, sizeof dir, "%s/gopath", go_dir);
    shell_quote(cmd, sizeof cmd, dir);
    const char *cache = getenv("GOCACHE");
    if (!cache || !*cache) {
        strcat(cmd, " GOCACHE=");
        snprintf(dir, sizeof dir, "%s/cache", go_dir);
        shell_quote(cmd, sizeof cmd, dir);
    }
    strcat(cmd, " ");
    shell_quote(cmd, sizeof cmd, go);
    strcat(cmd, " build -o ");
    shell_quote(cmd, sizeof cmd, go_bin);
    strcat(cmd, " ./*.go >&2"); /* stdout holds only result lines */
    if (system(cmd) != 0)
        bench_fail("%s: the Go anchors did not build", cmd);
    return go_bin;
}

const char *bench_go_program(void)
{
    return go_anchors();
}

size_t bench_go(const char *args, double *out, size_t n)
{
    const char *bin = go_anchors();
    char cmd[4096] = "";

    if (!bin)
        return 0;
    shell_quote(cmd, sizeof cmd, bin);
    strcat(cmd, " ");
    strcat(cmd, args);
    return read_numbers(cmd, out, n);
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
static const bench_def *const registries[] = {
    bench_promise, bench_task, bench_group, bench_pool, bench_worker,
    bench_tcp,     bench_http, bench_fetch, bench_core};
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

/* ---- cores ----------------------------------------------------------------
 */

void bench_pin(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % n, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void bench_unpin(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n && i < CPU_SETSIZE; i++)
        CPU_SET(i, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
