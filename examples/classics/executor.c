/* classics/executor -- the idea: hand a blocking call to a thread pool and
 * await its result, so the loop goes on serving meanwhile (tokio's
 * spawn_blocking, Python's loop.run_in_executor).
 *
 *   digest = await loop.run_in_executor(None, blocking_digest, data)
 *
 * A task awaits a job on the pool's blocking lane: a call that sleeps, as a
 * blocking library call would, then computes. While it runs, a heartbeat
 * on the loop keeps beating; the task resumes with the job's value. */
#include <stdint.h>
#include <time.h>

#include "classics.h"

static pact_loop *loop;
static pact_handle heartbeat;
static unsigned beats;

/* Stands for a library call that blocks: it must not run on the loop. */
static pact_error *blocking_digest(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    const char *text = arg;
    struct timespec ts = {0, 300 * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *c = text; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    *result = pact_int(h);
    return NULL;
}

static void on_beat(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    beats++;
}

static pact_error *main_task(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    pact_offload_opts blocking = {.lane = PACT_LANE_BLOCKING};
    printf("task: awaiting the blocking call on the pool\n");
    pact_value v = PACT_AWAIT(
        pact_offload_p(loop, blocking_digest, "hello, pool", &blocking));
    printf("task: digest %08llx\n", (unsigned long long)v.u.i);
    /* 300 ms at 50 ms a beat: the loop was never held up */
    printf("loop: the heartbeat went on meanwhile: %s\n",
           beats >= 3 ? "yes" : "no");
    pact_clear(loop, heartbeat);
    return NULL;
}

int main(void)
{
    TRY(pact_loop_new(&loop));
    TRY(pact_interval(loop, 50, on_beat, NULL, &heartbeat));
    pact_promise *t = pact_task_spawn(loop, main_task, NULL, NULL);
    TRY(pact_loop_run(loop, PACT_RUN_DEFAULT));
    int code = pact_promise_state(t) == PACT_FULFILLED ? 0 : 1;
    pact_promise_unref(t);
    TRY(pact_loop_free(loop));
    return code;
}
