/* pact_loop_post: the loop's thread-safe door. Producers append to a
 * mutex-protected queue and write the wake-up fd only when no wake-up is
 * pending, so a burst of posts costs one wake-up; the loop takes the whole
 * queue at once and runs it in its I/O phase.
 * Lock order: post_lock is a leaf; no callback runs while it is held. */
#include "internal.h"

#include <event2/event.h>
#include <stdlib.h>

static void wake(pact_loop *loop)
{
    pact__wake_signal(&loop->post_wake);
}

/* Run the taken batch; what an uncaught error leaves stays for next time. */
static void run_batch(pact_loop *loop)
{
    struct job j;
    while (!pact__halted(loop) && pact__jobq_pop(&loop->post_batch, &j)) {
        atomic_fetch_sub_explicit(&loop->post_queued, 1, memory_order_relaxed);
        pact__step_begin(loop, PACT_STEP_POST, (void (*)(void))j.fn, j.ud);
        j.fn(j.ud);
        pact__step_end(loop);
        pact__drain(loop);
    }
}

static void post_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_loop *loop = arg;
    bool was = pact__own_begin(loop);
    pact__wake_drain(&loop->post_wake);
    run_batch(loop);
    if (!pact__halted(loop)) {
        /* swap the buffers: the producers' next batch reuses our memory */
        pthread_mutex_lock(&loop->post_lock);
        struct jobq taken = loop->posts;
        loop->posts = loop->post_batch;
        loop->post_batch = taken;
        loop->post_wake_pending = false;
        pthread_mutex_unlock(&loop->post_lock);
        run_batch(loop);
    }
    if (pact__halted(loop) && loop->post_batch.len)
        wake(loop); /* resume the rest when the loop runs again */
    pact__own_end(loop, was);
}

int pact_loop_post(pact_loop *loop, pact_fn fn, void *ud)
{
    if (!loop || !fn)
        return pact__misuse("pact_loop_post", PACT_EINVAL,
                            "loop and fn must not be NULL");
    pthread_mutex_lock(&loop->post_lock);
    int rc = pact__jobq_push(&loop->posts, fn, ud);
    bool need_wake = rc == 0 && !loop->post_wake_pending;
    if (need_wake)
        loop->post_wake_pending = true;
    if (rc == 0)
        atomic_fetch_add_explicit(&loop->post_queued, 1, memory_order_relaxed);
    pthread_mutex_unlock(&loop->post_lock);
    if (need_wake)
        wake(loop);
    return rc;
}

void pact_loop_hold(pact_loop *loop)
{
    atomic_fetch_add(&loop->holds, 1);
}

/* The last release wakes the loop, which may have nothing else to wait for
 * and must notice that it can return. */
void pact_loop_release(pact_loop *loop)
{
    if (atomic_fetch_sub(&loop->holds, 1) != 1)
        return;
    pthread_mutex_lock(&loop->post_lock);
    bool need_wake = !loop->post_wake_pending;
    loop->post_wake_pending = true;
    pthread_mutex_unlock(&loop->post_lock);
    if (need_wake)
        wake(loop);
}

int pact__post_init(pact_loop *loop)
{
    pthread_mutex_init(&loop->post_lock, NULL);
    int rc = pact__wake_open(&loop->post_wake);
    if (rc < 0)
        return rc;
    loop->post_ev = event_new(loop->base, pact__wake_fd(&loop->post_wake),
                              EV_READ | EV_PERSIST, post_cb, loop);
    if (!loop->post_ev)
        return PACT_ENOMEM;
    errno = 0;
    if (event_add(loop->post_ev, NULL) < 0)
        return pact__ev_error();
    pact__own_event_added(loop);
    return 0;
}

void pact__post_free(pact_loop *loop)
{
    if (loop->post_ev)
        event_free(loop->post_ev);
    pact__wake_close(&loop->post_wake);
    pact__jobq_free(&loop->posts);
    pact__jobq_free(&loop->post_batch);
    pthread_mutex_destroy(&loop->post_lock);
}
