/* pact-styles --serve=block:MODE:ITERS: the daemon of the second table, the
 * cost of blocking the loop. GET /ping answers at once; GET /hash runs a
 * CPU-bound hash loop of ITERS rounds (about 20 ms, measured by the parent)
 * and answers its result, the work run in one of three places:
 *   inline  on the loop itself, in the handler: every ping waits behind it;
 *   pool    on the pool's CPU lane (pact_offload): the loop stays free;
 *   worker  in a worker thread (pact_worker), one job after another.
 * In inline mode the stall detector watches the loop and prints its report
 * of one of those handlers on stderr. GET /stuck never answers: its task
 * waits an hour (or until the client goes); GET /dump answers the loop's
 * task dump, where that request shows. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "styles.h"

static pact_loop *loop;
static pact_http_server *srv;
static pact_worker *worker;
static pact_handle term;
static unsigned long iters;

/* The work: a chain of multiplications the compiler cannot shorten. */
uint64_t block_hash(unsigned long n)
{
    uint64_t h = 14695981039346656037u;
    for (unsigned long i = 0; i < n; i++)
        h = (h ^ (i & 0xff)) * 1099511628211u;
    return h;
}

static void reply_hash(pact_http_req *req, uint64_t h)
{
    char body[32];
    int len = snprintf(body, sizeof body, "%016llx\n", (unsigned long long)h);
    pact_http_reply(req, 200, "text/plain", body, (size_t)len);
}

static void ping(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_http_reply(req, 200, "text/plain", "pong\n", 5);
}

/* inline: the handler itself computes, and the loop waits */
static void hash_inline(pact_http_req *req, void *ud)
{
    (void)ud;
    reply_hash(req, block_hash(iters));
}

/* pool: the CPU lane computes; the loop answers when it is done */
static pact_error *hash_job(pact_job *job, void *arg, pact_value *result)
{
    (void)job, (void)arg;
    *result = pact_int((int64_t)block_hash(iters));
    return NULL;
}

static void hash_done(pact_error *err, pact_value *result, void *req)
{
    if (err)
        pact_http_reply(req, 500, "text/plain", "failed\n", 7);
    else
        reply_hash(req, (uint64_t)result->u.i);
}

static void hash_pool(pact_http_req *req, void *ud)
{
    (void)ud;
    if (pact_offload(loop, hash_job, NULL, NULL, hash_done, req) < 0)
        pact_http_reply(req, 503, "text/plain", "busy\n", 5);
}

/* worker: the request travels as a number (never touched there) and comes
 * back beside its hash */
static void worker_job(pact_error *err, pact_value *msg, void *port)
{
    if (err)
        return;
    json_t *out = json_pack("{s:I, s:I}", "req", (json_int_t)msg->u.i, "hash",
                            (json_int_t)block_hash(iters));
    if (out && pact_port_post_json(port, out) < 0)
        json_decref(out);
}

static pact_error *worker_main(pact_loop *wl, pact_port *port, void *arg)
{
    (void)wl, (void)arg;
    pact_port_on_message(port, worker_job, port);
    return NULL;
}

static void worker_reply(pact_error *err, pact_value *msg, void *ud)
{
    (void)ud;
    json_int_t req, h;
    if (!err &&
        !json_unpack(msg->u.json, "{s:I, s:I}", "req", &req, "hash", &h))
        reply_hash((pact_http_req *)(intptr_t)req, (uint64_t)h);
}

static void hash_worker(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_value msg = pact_int((int64_t)(intptr_t)req);
    if (pact_port_post(pact_worker_port(worker), &msg) < 0)
        pact_http_reply(req, 503, "text/plain", "busy\n", 5);
}

/* ---- the stuck request and the dump ------------------------------------ */

static pact_error *stuck_request(pact_http_req *req, pact_http_res **res,
                                 void *ud)
{
    (void)ud;
    /* waits for a reply that never comes; the client's going cancels it */
    pact_error *err = PACT_AWAIT_ERR(
        pact_delay(loop, 3600 * 1000, pact_http_req_abort(req)), NULL);
    *res = pact_http_res_new(204);
    return err;
}

static void dump(pact_http_req *req, void *ud)
{
    (void)ud;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        pact_loop_dump(loop, f);
        fclose(f);
    }
    pact_http_reply(req, 200, "text/plain", text ? text : "", text ? len : 0);
    free(text);
}

/* ---- the stall detector's report ---------------------------------------- */

static atomic_bool reported;

/* On the watchdog's thread: print one whole report, of a hash that ended
 * (on a loaded machine other steps stall too: a descheduled process is a
 * stalled loop, whatever it was running) */
static void on_stall(const pact_stall *s, void *ud)
{
    (void)ud;
    if (s->ended && s->fn == (void (*)(void))hash_inline &&
        !atomic_exchange(&reported, true))
        pact_stall_print(s, stderr);
}

/* ---- the daemon -----------------------------------------------------------
 */

static void on_term(pact_error *err, int signum, void *ud)
{
    (void)signum, (void)ud;
    if (err)
        return;
    pact_clear(loop, term);
    if (worker)
        pact_worker_free(worker);
    worker = NULL;
    pact_http_server_shutdown(srv, 1000, NULL, NULL);
}

int block_main(const char *mode, int port)
{
    const char *colon = strchr(mode, ':');
    iters = colon ? strtoul(colon + 1, NULL, 10) : 1000000;
    size_t mlen = colon ? (size_t)(colon - mode) : strlen(mode);
    pact_http_handler hash = !strncmp(mode, "inline", mlen)   ? hash_inline
                             : !strncmp(mode, "pool", mlen)   ? hash_pool
                             : !strncmp(mode, "worker", mlen) ? hash_worker
                                                              : NULL;
    if (!hash || !mlen || pact_loop_new(&loop) < 0)
        return 2;
    int rc = pact_http_listen(loop, "127.0.0.1", port, NULL, &srv);
    if (rc < 0) {
        pact_loop_free(loop);
        return serve_listen_failed(port, pact_strerror(rc));
    }
    if (hash == hash_inline)
        rc = pact_loop_watch_stalls(loop, 10, on_stall, NULL);
    if (hash == hash_worker && rc == 0 &&
        (rc = pact_worker_new(loop, worker_main, NULL, NULL, &worker)) == 0)
        rc = pact_port_on_message(pact_worker_port(worker), worker_reply, NULL);
    if (rc == 0)
        rc = pact_http_route(srv, "GET", "/ping", ping, NULL);
    if (rc == 0)
        rc = pact_http_route(srv, "GET", "/hash", hash, NULL);
    if (rc == 0)
        rc = pact_http_route_task(srv, "GET", "/stuck", stuck_request, NULL);
    if (rc == 0)
        rc = pact_http_route(srv, "GET", "/dump", dump, NULL);
    if (rc == 0)
        rc = pact_signal(loop, SIGTERM, on_term, NULL, &term);
    if (rc < 0) {
        fprintf(stderr, "block: %s\n", pact_strerror(rc));
        return 1;
    }
    printf("port %d\n", pact_http_server_port(srv));
    fflush(stdout);
    rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    pact_loop_watch_stalls(loop, 0, NULL, NULL);
    return rc < 0 || pact_loop_free(loop) < 0;
}
