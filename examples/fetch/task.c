/* fetch, task style: the essay's chain as an async function body in Node,
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
 *   await chain(good); await chain(bad); server.close();
 *
 * written as a stackful task; it prints the same trace as callbacks.c.
 *
 * What changes: straight-line code with ordinary locals. The try block is
 * load(), an ordinary C function that awaits (it runs on the task's stack,
 * so its await suspends the whole task) and returns its first error as
 * `throw` would -- PACT_AWAIT_TRY is the `?` of that; the catch is the `if`
 * of its caller. pact_fetch reads the body whole before it fulfils, so
 * res.json() is a plain call (pact_fetch_res_json), not a second await.
 * What C adds: the error is an object to drop, the response a value to
 * release and the JSON a reference to decref. */
#include <stdio.h>

#include "server.h"

#include "../debug.h"

struct job {
    pact_loop *loop;
    pact_http_server *srv;
};

/* The try block: fetch @p path and parse its body. @return NULL and
 * *@p data (a new reference), or the error (a new reference). */
static pact_error *load(pact_loop *loop, const char *path, json_t **data)
{
    char url[64];
    pact_value v;
    PACT_AWAIT_TRY(pact_fetch(loop, server_url(url, sizeof url, path), NULL),
                   &v);
    pact_error *err = pact_fetch_res_json(pact_fetch_res_of(&v), data);
    pact_value_release(&v); /* the response; the JSON is apart from it */
    return err;
}

static void chain(pact_loop *loop, const char *path)
{
    json_t *data;
    pact_error *err = load(loop, path, &data);
    if (err) { /* catch (e) */
        log_error(err);
        pact_error_unref(err);
        return;
    }
    process(data);
    json_decref(data);
}

/* The task's body. */
static pact_error *job(void *arg, pact_value *result)
{
    (void)result; /* fulfils with nothing */
    struct job *j = arg;
    chain(j->loop, GOOD_PATH);
    chain(j->loop, BAD_PATH);
    server_stop(j->loop, j->srv);
    return NULL;
}

int main(int argc, char **argv)
{
    struct job j;
    TRY(pact_loop_new(&j.loop));
    TRY(example_debug(j.loop, argc, argv)); /* --debug */

    j.srv = server_start(j.loop);
    /* The task starts as a microtask, once the loop runs. */
    pact_promise *done = must(pact_task_spawn(j.loop, job, &j, NULL));

    return run_job(j.loop, done);
}
