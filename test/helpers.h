/* Shared test scaffolding: a loop per test and an ordering trace. */
#ifndef PACT_TEST_HELPERS_H
#define PACT_TEST_HELPERS_H

#include <check.h>
#include <pact.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "sys.h" /* the library's own detection of sanitizers */

/* T_TSAN: 1 in a ThreadSanitizer build, where tests scale down what TSan
 * makes costly. */
#ifdef PACT__TSAN_BUILD
#define T_TSAN 1
#else
#define T_TSAN 0
#endif

/* The fixture's loop: made in t_setup, and t_teardown asserts that
 * pact_loop_free succeeds (every handle closed). */
extern pact_loop *t_loop;
void t_setup(void);
void t_teardown(void);

/* An append-only trace of what ran, one line per entry. */
void trace_reset(void);
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* @return the trace so far, lines joined with '\n' (each line ends in '\n'). */
const char *trace_text(void);

/* Callbacks that trace their ud (a string) or count into it (an int);
 * the error-first ones assert that no error came. */
void trace_cb(pact_error *err, void *ud);
void trace_fn(void *ud);
void count_cb(pact_error *err, void *ud);
/* A timer that only keeps a loop alive: it must never fire, and its one
 * call is the ECANCELED of the loop's end (pact_loop_close_all). */
void t_keepalive_cb(pact_error *err, void *ud);
/* Set while a test cleans up with pact_loop_close_all: trace_cb then takes
 * ECANCELED silently (as a process that ended runs nothing more). */
extern bool t_shutdown;
void count_fn(void *ud);

/* pact_error_print's text for @p e (malloc'd). */
char *t_error_text(const pact_error *e);
/* How many times @p needle occurs in @p hay. */
int t_count(const char *hay, const char *needle);

/* A pending promise; its deferred goes to *d. */
pact_promise *t_pending(pact_deferred **d);
/* Two promises each resolved with the other: a cycle that nothing settles
 * and only pact_loop_close_all breaks. @return the first (a new
 * reference); the second goes to *@p second, or is dropped when @p second is
 * NULL (the first keeps it alive). */
pact_promise *t_promise_cycle(pact_promise **second);
/* After @p ms, resolve @p d (stolen) with @p v (stolen; pact_throw(e)
 * rejects), tracing @p label (may be NULL) first. The delays of calls made
 * in one turn count from the first of them, so their order holds however
 * long the test is paused between calls. */
void t_settle_later(pact_deferred *d, uint64_t ms, pact_value v,
                    const char *label);

/* Abort (any thread: worker entries and callbacks too) unless @p call, a
 * call whose result must be checked, returned 0. */
#define T_MUST(call) t_must((call), #call, __FILE__, __LINE__)
void t_must(int rc, const char *what, const char *file, int line);

/* Busy-wait @p ms, so that timers are already due when the loop next looks. */
void t_spin_ms(int ms);

/* Monotonic clock in µs, and a sleep that resumes after signals. */
uint64_t now_us(void);
void sleep_ms(unsigned ms);

/* Redirect fd 2 to a temporary file so a test can read what was printed. */
struct capture {
    FILE *file;
    int saved;
};
void capture_begin(struct capture *c);
/* @return what was written to stderr since capture_begin (malloc'd). */
char *capture_end(struct capture *c);

/* Run @p fn(@p arg) in a child of fork(), for a test that changes the
 * process (its descriptor limit), and assert that the child exited with 0.
 * In the child, check with T_CHILD_ASSERT: Check's asserts belong to the
 * parent. Does nothing under CK_FORK=no (see helpers.c). */
void t_forked(void (*fn)(void *), void *arg);
#define T_CHILD_ASSERT(cond)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: child: %s is false\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)
/* In a t_forked child: lower the soft descriptor limit to @p spare above the
 * descriptors open now, so that a few opens exhaust it. @return the lowest
 * free descriptor (the same before and after: nothing leaked or closed). */
int t_child_fd_limit(int spare);

/* Line-echo servers, for pact_tcp_listen and pact_unix_listen (ud unused),
 * in the three styles: callback (each chunk goes back as it came, through
 * t_echo_data, usable as a data event on its own), promise (read a line,
 * write it back, again) and task (the same, awaited). The promise and task
 * ones assert that the client's end came as PACT_EOF, then close. */
void t_echo_data(pact_stream *s, const void *data, size_t n, void *ud);
void t_echo_accept_cb(pact_error *err, pact_stream *s, void *ud);
void t_echo_accept_promise(pact_error *err, pact_stream *s, void *ud);
void t_echo_accept_task(pact_error *err, pact_stream *s, void *ud);

/* How many lines t_echo_transcript's client sends. */
#define T_ECHO_LINES 20
/* Listen on @p host (port 0) with @p lo (may be NULL) and @p accept, and
 * run t_loop with a client task that connects with @p co (may be NULL),
 * sends T_ECHO_LINES lines reading each echo back whole, ends its side,
 * reads the server's end and closes the server.
 * @return the trace (malloc'd): "tls up" first where @p co has a TLS
 * context, then "send line i of N" and "got line i of N" per line, and
 * "then EOF": the same whichever style served. */
char *t_echo_transcript(const char *host, const pact_tcp_listen_opts *lo,
                        const pact_tcp_connect_opts *co,
                        pact_tcp_accept_cb accept);

/* An HTTP server on 127.0.0.1 (a port of its own) served by a loop on a
 * thread of its own, for tests whose client is a raw socket on the test's
 * thread. Set opts and routes, then t_http_start. */
struct t_http {
    pact_http_opts opts;
    /* Adds the routes, on the server's thread, before it serves. */
    void (*routes)(pact_http_server *srv);
    pact_loop *loop;
    pact_http_server *srv;
    int port;
    int free_rc; /* pact_loop_free's, once the loop has ended */
    pthread_t th;
    sem_t ready;
};
/* Start @p h's server; returns once it listens on h->port. */
void t_http_start(struct t_http *h);
/* Close the server (its open connections once answered), then as
 * t_http_join. */
void t_http_stop(struct t_http *h);
/* Wait for the loop of a server that is closing to end, and assert that
 * pact_loop_free succeeded (every handle closed). */
void t_http_join(struct t_http *h);
/* A handler's answer @p ms later (on @p req's loop, @p loop): 200 with the
 * request's path as its body, for tests of the order of slow answers. */
void t_http_path_later(pact_loop *loop, pact_http_req *req, uint64_t ms);
/* A blocking TCP socket connected to 127.0.0.1:@p port, whose receives give
 * up after @p secs (0: never). */
int t_dial(int port, int secs);

/* What a stream saw of its end: the first member of a test's state (the
 * ud), so that t_seen_end and t_seen_close serve as that stream's events. */
struct t_seen {
    pact_tcp_server *srv;
    int ends, closes;
};
/* Count the end. */
void t_seen_end(pact_stream *s, void *ud);
/* Count the close, and close srv: the client's last event ends the test. */
void t_seen_close(pact_stream *s, void *ud);

/* Whether @p prog is installed (on PATH): tests of an outside tool that is
 * not there pass without it. */
bool t_have(const char *prog);
/* Run the shell command @p cmd; what it wrote to its output (at most
 * @p size - 1 bytes, NUL-terminated) goes to @p out. @return pclose's status,
 * or -1 when it could not be run. */
int t_output(const char *cmd, char *out, size_t size);

/* Read a whole file under $PACT_FIXTURES (malloc'd; NULL if missing). */
char *t_read_fixture(const char *relpath);

#endif
