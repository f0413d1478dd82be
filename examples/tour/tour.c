/* tour: pact's event loop at work, in one small program (`./dev run`).
 *
 * It sets up a few things the way a Node program would -- timers, an
 * immediate, a nextTick and a microtask, a callback posted from another
 * thread, an abort token -- and prints each event as it happens with a line
 * on why it happens then. The order is Node's, and is the same on every run:
 * each step that depends on timing starts from the step before it.
 *
 * The Node program it mirrors:
 *
 *   setTimeout(() => {...}, 20);  setTimeout(() => {...}, 20);
 *   const iv = setInterval(() => {...}, 30);
 *   setImmediate(() => {...});
 *   queueMicrotask(() => {...});  process.nextTick(() => {...});
 *   const ac = new AbortController();
 *   setTimeout(() => {...}, 1000, {signal: ac.signal});  // pact's form
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pact.h>

#include "../debug.h"

/* Stop on any unexpected error code, naming the call. */
#define TRY(call)                                                              \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ < 0) {                                                         \
            fprintf(stderr, "tour: %s: %s (%s)\n", #call, pact_strerror(rc_),  \
                    pact_err_name(rc_));                                       \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

struct tour {
    pact_loop *loop;
    pact_handle interval;   /* cleared by its own third tick */
    pact_handle background; /* an unreferenced timer, cleared at the end */
    pact_abort *token;      /* aborts the 1 s timer */
    pthread_t thread;
    bool thread_started;
    int ticks;
};

static void say(const char *what, const char *why)
{
    printf("  %-26s %s\n", what, why);
}

/* ---- microtasks ---------------------------------------------------------- */

static void on_tick(void *ud)
{
    say((const char *)ud, "nextTick queue: drained first");
}

static void on_microtask(void *ud)
{
    say((const char *)ud, "then the microtask queue");
}

/* ---- timers -------------------------------------------------------------- */

static void on_timeout_a(pact_error *err, void *ud)
{
    struct tour *t = ud;
    (void)err;
    say("timeout A (20 ms)", "timers phase; set first, so it fires first");
    /* Queued by a macrotask: both drain before the next macrotask (B),
     * nextTicks first, whatever the order they were queued in. */
    TRY(pact_queue_microtask(t->loop, on_microtask, "  microtask from A"));
    TRY(pact_next_tick(t->loop, on_tick, "  nextTick from A"));
}

static void on_timeout_b(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    say("timeout B (20 ms)", "same delay as A: insertion order");
}

static void *thread_main(void *ud);

static void on_interval(pact_error *err, void *ud)
{
    struct tour *t = ud;
    (void)err;
    char what[48];
    snprintf(what, sizeof what, "interval tick %d (30 ms)", ++t->ticks);
    if (t->ticks < 3) {
        say(what, "an interval repeats until cleared");
        return;
    }
    say(what, "clears itself from its own callback");
    TRY(pact_clear(t->loop, t->interval));

    /* The next step comes from another thread. */
    if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
        fprintf(stderr, "tour: pthread_create failed\n");
        exit(1);
    }
    t->thread_started = true;
}

static void on_abortable(pact_error *err, void *ud)
{
    (void)ud;
    if (!err) {
        say("1 s timer", "fired (it should have been aborted)");
        return;
    }
    say("1 s timer", "called early with an error:");
    pact_error *cause = pact_error_cause(err);
    printf("  %-26s %s: %s\n", "", pact_err_name(pact_error_code(err)),
           pact_error_message(err));
    if (cause)
        printf("  %-26s caused by %s: %s\n", "",
               pact_err_name(pact_error_code(cause)),
               pact_error_message(cause));
}

/* ---- another thread ------------------------------------------------------ */

static void on_post(void *ud)
{
    struct tour *t = ud;
    say("post from a thread", "runs on the loop's thread, in the I/O phase");

    /* The interval's handle is stale now: a generation-checked id, not a
     * pointer that could dangle. */
    int rc = pact_clear(t->loop, t->interval);
    printf("  %-26s %s: %s\n", "clear the interval again", pact_err_name(rc),
           "its handle is stale, and says so");

    say("abort the token", "the 1 s timer is cleared and told why");
    TRY(pact_abort_abort(t->token, NULL));
}

/* The only pact call that other threads may make (with hold/release). */
static void *thread_main(void *ud)
{
    struct tour *t = ud;
    if (pact_loop_post(t->loop, on_post, t) != 0)
        fprintf(stderr, "tour: pact_loop_post failed\n");
    return NULL;
}

/* ---- the immediate ------------------------------------------------------- */

static void on_immediate(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    say("immediate", "check phase, first iteration: no timer due yet");
}

int main(int argc, char **argv)
{
    struct tour t = {0};

    printf("pact %s: a tour of the event loop\n", pact_version_string());
    TRY(pact_loop_new(&t.loop));
    TRY(example_debug(t.loop, argc, argv)); /* --debug */

    printf("main program:\n");
    say("setTimeout A, B (20 ms)", "two timers with the same delay");
    TRY(pact_timeout(t.loop, 20, on_timeout_a, &t, NULL));
    TRY(pact_timeout(t.loop, 20, on_timeout_b, &t, NULL));
    say("setInterval (30 ms)", "ticks three times");
    TRY(pact_interval(t.loop, 30, on_interval, &t, &t.interval));
    say("setImmediate", "runs after the first I/O poll");
    TRY(pact_immediate(t.loop, on_immediate, &t, NULL));
    say("queueMicrotask", "queued before the nextTick...");
    TRY(pact_queue_microtask(t.loop, on_microtask, "microtask"));
    say("process.nextTick", "...but runs before it");
    TRY(pact_next_tick(t.loop, on_tick, "nextTick"));

    /* A timer that an abort token can cancel: AbortSignal on setTimeout. */
    TRY(pact_abort_new(t.loop, &t.token));
    pact_timer_opts opts = {.delay_ms = 1000, .abort = t.token};
    say("1 s timer + abort token", "a thread will have it aborted");
    TRY(pact_timer_start(t.loop, &opts, on_abortable, &t, NULL));

    /* Unreferenced: it would fire if the loop were still running in 10 s,
     * but it does not keep the loop alive (timer.unref()). */
    pact_timer_opts bg = {.delay_ms = 10000, .unref = true};
    say("10 s unref'd timer", "does not keep the loop alive");
    TRY(pact_timer_start(t.loop, &bg, on_abortable, &t, &t.background));

    printf("the loop:\n");
    int rc = pact_loop_run(t.loop, PACT_RUN_DEFAULT);
    TRY(rc);
    printf("after the loop:\n");
    char what[48];
    snprintf(what, sizeof what, "pact_loop_run: %d", rc);
    say(what, "nothing referenced was left to do");

    if (t.thread_started)
        pthread_join(t.thread, NULL);
    /* Every handle must be gone before the loop can be freed; the
     * unreferenced timer is still open. */
    rc = pact_loop_free(t.loop);
    printf("  %-26s %s\n", "pact_loop_free", pact_err_name(rc));
    say("", "refuses: the unref'd timer is still open");
    TRY(pact_clear(t.loop, t.background));
    pact_abort_unref(t.token);
    TRY(pact_loop_free(t.loop));
    say("pact_loop_free", "0 once it is cleared: nothing leaks");
    return 0;
}
