/* classics/stall -- the idea: a blocking call hidden inside code that looks
 * asynchronous holds up every other callback on the loop, and nothing says
 * so unless the loop watches itself.
 *
 *   fetchUser().then(user => {
 *     const avatar = fs.readFileSync(user.avatar);  // blocks the loop
 *     ...
 *   });
 *
 * A promise handler calls load_avatar(), a helper that reads like any other
 * but sleeps in a blocking call for 300 ms. A heartbeat every 50 ms comes
 * late; the stall detector (pact_loop_watch_stalls) reports which step held
 * the loop: its kind and its function. The hook runs on the detector's own
 * thread, so it only records; main prints after the loop. */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "classics.h"

static pact_loop *loop;
static pact_handle heartbeat;
static uint64_t last_beat, worst_gap;

/* what the detector saw of on_user (written on its thread, read after it
 * stopped); a loaded machine may report other steps too */
static atomic_int reports;
static _Atomic(pact_step_kind) stalled_kind;
static atomic_bool stalled_ended;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Looks harmless; blocks the thread that calls it for 300 ms. */
static void load_avatar(void)
{
    struct timespec ts = {0, 300 * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static pact_value on_user(const pact_value *user, void *ud)
{
    (void)ud;
    printf("handler: user %lld, loading the avatar\n", (long long)user->u.i);
    load_avatar();
    return pact_nothing();
}

static void on_beat(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    uint64_t now = now_ms();
    if (last_beat && now - last_beat > worst_gap)
        worst_gap = now - last_beat;
    last_beat = now;
}

/* fetchUser()'s reply arrives: the user's promise fulfils. */
static void on_reply(pact_error *err, void *ud)
{
    (void)err;
    pact_deferred *d = ud;
    TRY(pact_deferred_resolve(d, pact_int(42)));
    pact_deferred_unref(d);
}

static void on_quiet(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    pact_clear(loop, heartbeat);
}

static void on_stall(const pact_stall *s, void *ud)
{
    (void)ud;
    if (s->fn != (void (*)(void))on_user)
        return;
    atomic_fetch_add(&reports, 1);
    atomic_store(&stalled_kind, s->kind);
    if (s->ended)
        atomic_store(&stalled_ended, true);
}

int main(void)
{
    TRY(pact_loop_new(&loop));
    TRY(pact_loop_watch_stalls(loop, 100, on_stall, NULL));
    TRY(pact_interval(loop, 50, on_beat, NULL, &heartbeat));

    /* fetchUser().then(on_user): the reply comes 100 ms from now */
    pact_promise *user;
    pact_deferred *d = pact_deferred_new(loop, &user);
    if (!d)
        return 1;
    pact_promise_unref(pact_then(user, on_user, NULL, NULL));
    pact_promise_unref(user);
    TRY(pact_timeout(loop, 100, on_reply, d, NULL));
    TRY(pact_timeout(loop, 600, on_quiet, NULL, NULL));
    TRY(pact_loop_run(loop, PACT_RUN_DEFAULT));
    TRY(pact_loop_watch_stalls(loop, 0, NULL, NULL)); /* its report is in */

    printf("heartbeat: late by 250 ms or more once: %s\n",
           worst_gap >= 250 ? "yes" : "no");
    printf("stall detector: %s, %s, %s\n",
           atomic_load(&reports) ? "caught on_user" : "saw nothing",
           atomic_load(&stalled_kind) == PACT_STEP_REACTION
               ? "a promise reaction"
               : "not a promise reaction",
           atomic_load(&stalled_ended) ? "which then returned"
                                       : "not seen to return");
    TRY(pact_loop_free(loop));
    return 0;
}
