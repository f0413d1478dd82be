/* pact-styles: what does each style cost, on your machine? The same two
 * daemons -- a TCP echo server and a small HTTP JSON API -- written with
 * callbacks, promise chains, stackful tasks (PACT_AWAIT), stackless
 * PACT_ASYNC functions, and on raw libevent as the floor (echo_*.c, api_*.c
 * beside this file). Each runs in a process of its own, pinned to the first
 * core, driven by the load client (load.c) on the second; a table per
 * daemon gives throughput, p50 and p99 latency, the server's peak RSS and
 * the style's lines of code, with ratios to raw libevent. A second table
 * gives the cost of blocking the loop: a ping's latency while 20 ms hashes
 * run inline, on the pool's CPU lane or in a worker, with the stall
 * detector's report of the inline case and the task dump of a stuck
 * request. doc/styles.md says how to read it all. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/pin.h"
#include "load.h"
#include "report.h"
#include "styles.h"

#include "examples/pact-styles/loc.h"

static const char usage_text[] =
    "usage: pact-styles [OPTION]...\n"
    "Run the same echo server and HTTP JSON API written in each of pact's\n"
    "styles and on raw libevent, drive each with the same load, and print\n"
    "what each costs: throughput, p50/p99 latency, peak RSS, lines of code;\n"
    "then the cost of blocking the loop (inline / pool / worker).\n"
    "\n"
    "  --duration=SECONDS   load time per server (default 2; 0.1 to 600)\n"
    "  --connections=N      concurrent connections (default 32; 1 to 1000)\n"
    "  --styles=LIST        comma-separated, of callbacks,promises,task,\n"
    "                       async,libevent (default: all)\n"
    "  --port=N             listen on port N instead of one the system picks\n"
    "  --json               print the results as JSON instead of tables\n"
    "  --svg=FILE           write the chart to FILE (default pact-styles.svg;\n"
    "                       --svg= writes none)\n"
    "  --no-blocking        skip the table of the cost of blocking the loop\n"
    "  -q, --quiet          no progress line on stderr\n"
    "  -h, --help           this text\n";

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "pact-styles: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    exit(2);
}

static char self[4096]; /* this program, which the servers are run from */

/* ---- the servers, each a process of its own ----------------------------- */

struct server {
    pid_t pid;
    int port;
    FILE *err; /* its stderr */
};

/* Start "pact-styles --serve=@p spec --port=@p port" pinned to @p cpu
 * (-1: any); wait for its "port N". @return 0, or -1 with @p why set. */
static int server_start(const char *spec, int port, int cpu, struct server *s,
                        char *why, size_t wlen)
{
    int out[2];
    s->err = tmpfile();
    if (!s->err || pipe2(out, O_CLOEXEC) < 0) {
        snprintf(why, wlen, "no pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    s->pid = fork();
    if (s->pid == 0) {
        pin_to_core(cpu); /* undoes the parent's pinning when -1 */
        dup2(out[1], 1);
        dup2(fileno(s->err), 2);
        char a1[256], a2[32];
        snprintf(a1, sizeof a1, "--serve=%s", spec);
        snprintf(a2, sizeof a2, "--port=%d", port);
        execl(self, "pact-styles", a1, a2, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", self, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    if (s->pid < 0) {
        close(out[0]);
        snprintf(why, wlen, "cannot fork: %s", strerror(errno));
        return -1;
    }
    char line[64] = "";
    size_t len = 0;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    while (len < sizeof line - 1 && !strchr(line, '\n') &&
           poll(&p, 1, 30000) > 0) {
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        line[len += (size_t)n] = '\0';
    }
    close(out[0]);
    if (sscanf(line, "port %d", &s->port) == 1)
        return 0;
    int status = 0;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    char err[256] = "";
    rewind(s->err);
    if (!fgets(err, sizeof err, s->err))
        snprintf(err, sizeof err, "no answer (exit status %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    err[strcspn(err, "\n")] = '\0';
    snprintf(why, wlen, "%s: %s", spec, err);
    fclose(s->err);
    s->err = NULL;
    /* 3: the port could not be listened on, which no other run can fix */
    return WIFEXITED(status) && WEXITSTATUS(status) == 3 ? -3 : -1;
}

/* Stop it (SIGTERM: a graceful shutdown). @return its peak RSS in KiB, or
 * -1 when it did not end well (@p why set). */
static long server_stop(struct server *s, char *why, size_t wlen)
{
    int status;
    struct rusage ru;
    kill(s->pid, SIGTERM);
    if (wait4(s->pid, &status, 0, &ru) < 0) {
        snprintf(why, wlen, "wait: %s", strerror(errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, wlen, "the server ended badly (status %d)", status);
        return -1;
    }
    return ru.ru_maxrss;
}

/* The server's stderr, whole (malloc'd) */
static char *server_stderr(struct server *s)
{
    if (!s->err)
        return NULL;
    long n = ftell(s->err);
    char *text = n > 0 ? malloc((size_t)n + 1) : NULL;
    rewind(s->err);
    if (text) {
        size_t got = fread(text, 1, (size_t)n, s->err);
        text[got] = '\0';
    }
    fclose(s->err);
    s->err = NULL;
    return text;
}

/* ---- the runs -------------------------------------------------------------
 */

static struct {
    double duration;
    int conns, port;
    bool want[NSTYLES], json, quiet, blocking;
    const char *svg;
} opt = {2.0,   32,    0,    {true, true, true, true, true},
         false, false, true, "pact-styles.svg"};

static int step, steps;
static const char *step_name;

static void progress(double frac, void *ud)
{
    (void)ud;
    if (opt.quiet)
        return;
    fprintf(stderr, "\rpact-styles: [%d/%d] %-22s %3.0f%%", step, steps,
            step_name, frac * 100);
    fflush(stderr);
}

static void progress_done(void)
{
    if (!opt.quiet)
        fprintf(stderr, "\r%70s\r", "");
}

static int lines_of(const char *daemon, int style)
{
    char file[64];
    snprintf(file, sizeof file, "%s_%s.c", daemon, style_names[style]);
    for (size_t i = 0; i < sizeof style_loc / sizeof style_loc[0]; i++)
        if (!strcmp(style_loc[i].file, file))
            return style_loc[i].lines;
    return 0;
}

/* One daemon in one style under load. @return 0, -1 (a failed run: the row
 * says why), -3 (the port is not free: stop). */
static int run_style(const char *daemon, int style, struct row *row)
{
    char spec[64], why[256] = "";
    struct server s;
    snprintf(spec, sizeof spec, "%s:%s", daemon, style_names[style]);
    snprintf(row->name, sizeof row->name, "%s", style_names[style]);
    row->lines = lines_of(daemon, style);
    step++;
    step_name = spec;
    progress(0, NULL);
    int rc = server_start(spec, opt.port, 0, &s, why, sizeof why);
    if (rc < 0) {
        snprintf(row->error, sizeof row->error, "%s", why);
        return rc;
    }
    struct load_opts lo = {
        .kind = !strcmp(daemon, "echo") ? LOAD_ECHO : LOAD_API,
        .port = s.port,
        .conns = opt.conns,
        .seconds = opt.duration,
        .progress = progress,
    };
    struct load_result r;
    rc = load_run(&lo, &r);
    long rss = server_stop(&s, why, sizeof why);
    free(server_stderr(&s));
    if (rc < 0 || rss < 0) {
        snprintf(row->error, sizeof row->error, "%s", rc < 0 ? r.error : why);
        return -1;
    }
    row->ok = true;
    row->rps = r.rps;
    row->p50_us = r.p50_us;
    row->p99_us = r.p99_us;
    row->rss_kib = rss;
    return 0;
}

/* About 20 ms of block.c's hash on this machine, in rounds: the fastest
 * of a few timings, as other programs may share the core. */
static unsigned long calibrate(void)
{
    unsigned long n = 100000;
    double best = 0;
    for (int i = 0; i < 8; i++) {
        double t0 = load_now();
        volatile uint64_t h = block_hash(n);
        (void)h;
        double t = load_now() - t0;
        if (t < 0.002 && n < (1ul << 40)) {
            n *= 4, i = -1, best = 0; /* too short to time well */
            continue;
        }
        if (best == 0 || t < best)
            best = t;
    }
    return (unsigned long)((double)n * 0.020 / best);
}

static const char *const modes[NMODES] = {"inline", "pool", "worker"};

static int run_mode(int mode, unsigned long iters, struct block_row *row,
                    struct results *res)
{
    char spec[64], why[256] = "";
    struct server s;
    snprintf(spec, sizeof spec, "block:%s:%lu", modes[mode], iters);
    snprintf(row->name, sizeof row->name, "%s", modes[mode]);
    step++;
    step_name = spec;
    progress(0, NULL);
    /* unpinned: the pool's and the worker's threads take the free core */
    int rc = server_start(spec, opt.port, -1, &s, why, sizeof why);
    if (rc < 0) {
        snprintf(row->error, sizeof row->error, "%s", why);
        return rc;
    }
    int conns = opt.conns < 4 ? 4 : opt.conns > 8 ? 8 : opt.conns;
    struct load_opts lo = {
        .kind = LOAD_BLOCK,
        .port = s.port,
        .conns = conns,
        .heavy = conns / 2,
        .seconds = opt.duration,
        .progress = progress,
    };
    struct load_result r;
    rc = load_run(&lo, &r);
    row->heavy = lo.heavy;
    row->pingers = conns - lo.heavy;
    if (mode == 0 && rc == 0)
        res->dump = load_stuck_dump(s.port);
    long rss = server_stop(&s, why, sizeof why);
    char *err = server_stderr(&s);
    if (mode == 0)
        res->stall = err;
    else
        free(err);
    if (rc < 0 || rss < 0) {
        snprintf(row->error, sizeof row->error, "%s", rc < 0 ? r.error : why);
        return -1;
    }
    row->ok = true;
    row->p50_us = r.p50_us;
    row->p99_us = r.p99_us;
    row->hashes_per_s = r.seconds > 0 ? (double)r.heavy_done / r.seconds : 0;
    return 0;
}

/* ---- options ----------------------------------------------------------------
 */

static void parse_styles(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        exit(1);
    memset(opt.want, 0, sizeof opt.want);
    int n = 0;
    for (char *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < NSTYLES && strcmp(t, style_names[i]))
            i++;
        if (i == NSTYLES) {
            char name[64];
            snprintf(name, sizeof name, "%s", t);
            free(copy);
            usage_error("unknown style '%s'", name);
        }
        opt.want[i] = true;
        n++;
    }
    free(copy);
    if (!n)
        usage_error("--styles needs at least one style");
}

static double number(const char *name, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        usage_error("%s wants a number from %g to %g, not '%s'", name, lo, hi,
                    s);
    return v;
}

int main(int argc, char **argv)
{
    enum {
        O_DURATION = 256,
        O_CONNS,
        O_STYLES,
        O_PORT,
        O_JSON,
        O_SVG,
        O_NOBLOCK,
        O_SERVE,
        O_ECHO_CLIENT,
        O_API_CLIENT
    };
    static const struct option longs[] = {
        {"duration", required_argument, NULL, O_DURATION},
        {"connections", required_argument, NULL, O_CONNS},
        {"styles", required_argument, NULL, O_STYLES},
        {"port", required_argument, NULL, O_PORT},
        {"json", no_argument, NULL, O_JSON},
        {"svg", required_argument, NULL, O_SVG},
        {"no-blocking", no_argument, NULL, O_NOBLOCK},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        /* internal: a server of the parent's, and the test's clients */
        {"serve", required_argument, NULL, O_SERVE},
        {"echo-client", required_argument, NULL, O_ECHO_CLIENT},
        {"api-client", required_argument, NULL, O_API_CLIENT},
        {NULL, 0, NULL, 0}};
    const char *serve = NULL;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "qh", longs, NULL)) != -1;) {
        switch (c) {
        case O_DURATION:
            opt.duration = number("--duration", optarg, 0.1, 600);
            break;
        case O_CONNS:
            opt.conns = (int)number("--connections", optarg, 1, 1000);
            break;
        case O_STYLES:
            parse_styles(optarg);
            break;
        case O_PORT:
            opt.port = (int)number("--port", optarg, 0, 65535);
            break;
        case O_JSON:
            opt.json = true;
            break;
        case O_SVG:
            opt.svg = optarg;
            break;
        case O_NOBLOCK:
            opt.blocking = false;
            break;
        case 'q':
            opt.quiet = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case O_SERVE:
            serve = optarg;
            break;
        case O_ECHO_CLIENT: /* stdin to the server, its echo to stdout */
            return load_echo_transcript(
                       (int)number("--echo-client", optarg, 1, 65535), 0, 1) <
                   0;
        case O_API_CLIENT:
            return load_api_transcript(
                       (int)number("--api-client", optarg, 1, 65535), stdout) <
                   0;
        default:
            usage_error("unknown option or missing value: '%s'",
                        argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (serve) { /* a server of the parent's: --serve=DAEMON:STYLE */
        char daemon[16] = "";
        const char *colon = strchr(serve, ':');
        if (!colon || (size_t)(colon - serve) >= sizeof daemon)
            usage_error("--serve wants DAEMON:STYLE");
        memcpy(daemon, serve, (size_t)(colon - serve));
        int rc = serve_main(daemon, colon + 1, opt.port);
        if (rc == 2)
            usage_error("--serve: no daemon or style '%s'", serve);
        return rc;
    }

    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0)
        self[n] = '\0';
    else
        snprintf(self, sizeof self, "%s", argv[0]);
    opt.quiet |= !isatty(2) && getenv("PACT_STYLES_PROGRESS") == NULL;
    signal(SIGPIPE, SIG_IGN);
    pin_to_core(1); /* the servers get core 0 */

    struct results res = {.duration = opt.duration,
                          .conns = opt.conns,
                          .cores = (int)sysconf(_SC_NPROCESSORS_ONLN)};
    int nwant = 0;
    for (int i = 0; i < NSTYLES; i++)
        nwant += opt.want[i];
    steps = 2 * nwant + (opt.blocking ? NMODES : 0);
    const char *daemons[2] = {"echo", "api"};
    int rc = 0;
    for (int d = 0; d < 2 && rc != -3; d++) {
        struct table *t = &res.tables[d];
        snprintf(t->daemon, sizeof t->daemon, "%s", daemons[d]);
        for (int i = 0; i < NSTYLES && rc != -3; i++)
            if (opt.want[i])
                rc = run_style(daemons[d], i, &t->rows[t->nrows++]);
    }
    if (opt.blocking && rc != -3) {
        res.hash_iters = calibrate();
        res.has_blocking = true;
        for (int m = 0; m < NMODES && rc != -3; m++)
            rc = run_mode(m, res.hash_iters, &res.block[m], &res);
    }
    progress_done();
    if (rc == -3) {
        fprintf(stderr,
                "pact-styles: port %d is in use (or not allowed); "
                "give another with --port, or none to let the "
                "system pick\n",
                opt.port);
        results_free(&res);
        return 1;
    }
    rc = 0; /* a failed run says so in its row */
    if (opt.json)
        rc = print_json(&res, stdout);
    else
        print_tables(&res, stdout);
    if (opt.svg && *opt.svg) {
        if (write_svg(&res, opt.svg) < 0) {
            fprintf(stderr, "pact-styles: cannot write %s: %s\n", opt.svg,
                    strerror(errno));
            rc = -1;
        } else if (!opt.json) {
            printf("\nchart: %s\n", opt.svg);
        }
    }
    if (!opt.json)
        print_reading(stdout);
    int failed = results_failed(&res);
    results_free(&res);
    return rc < 0 || failed ? 1 : 0;
}
