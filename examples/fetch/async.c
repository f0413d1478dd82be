/* fetch, async style: the essay's chain as an async function in Node,
 *
 *   async function chain(url) {
 *     try {
 *       const res = await fetch(url);
 *       const data = await res.json();
 *       process(data);
 *     } catch (e) {
 *       log(e);
 *     }
 *   }
 *   for (const url of [good, bad]) await chain(url);
 *   server.close();
 *
 * written as a stackless PACT_ASYNC function; it prints the same trace as
 * callbacks.c.
 *
 * What changes from task.c: the body is re-entered at each await rather
 * than resumed, so what crosses the await (the loop counter, the response)
 * lives in the frame, and a helper that awaited would be an async function
 * of its own; so the try block is inline here, the catch an `if` after it.
 * In exchange the suspended function costs its frame, not a stack. */
#include <stdio.h>

#include "server.h"

#include "../debug.h"

static const char *const paths[] = {GOOD_PATH, BAD_PATH};

/* The frame: the arguments, and what crosses the await. */
struct job {
    PACT_ASYNC_FRAME;
    pact_http_server *srv;
    int step;
    pact_value res;
};

static pact_error *job_body(pact_async *a, pact_value *result)
{
    (void)result; /* fulfils with nothing */
    struct job *f = (struct job *)a;
    pact_error *err; /* locals are fine between awaits, not across them */
    json_t *data = NULL;
    char url[64]; /* pact_fetch copies it */
    PACT_ASYNC_BEGIN(a);
    for (f->step = 0; f->step < 2; f->step++) {
        server_url(url, sizeof url, paths[f->step]);
        PACT_ASYNC_AWAIT_ERR(a, pact_fetch(pact_async_loop(a), url, NULL),
                             &f->res, err);
        if (!err) {
            err = pact_fetch_res_json(pact_fetch_res_of(&f->res), &data);
            pact_value_release(&f->res);
        }
        if (err) { /* catch (e) */
            log_error(err);
            pact_error_unref(err);
            continue;
        }
        process(data);
        json_decref(data);
    }
    server_stop(pact_async_loop(a), f->srv);
    PACT_ASYNC_END(a);
}

int main(int argc, char **argv)
{
    pact_loop *loop;
    TRY(pact_loop_new(&loop));
    TRY(example_debug(loop, argc, argv)); /* --debug */

    pact_http_server *srv = server_start(loop);
    struct job *f = pact_async_new(loop, sizeof *f, job_body);
    if (!f)
        must(NULL);
    f->srv = srv;
    /* Unlike a task, the job runs at once, up to its first await. */
    pact_promise *done = must(pact_async_start(f));

    return run_job(loop, done);
}
