/* classics/chain -- the idea: a promise chain, each step taking the one
 * before's result, and one catch at its end for whatever failed on the way.
 *
 *   fetch(url)
 *     .then(res => res.json())
 *     .then(process)
 *     .catch(log);
 *
 * pact_fetch is the promise of the response and pact_fetch_res_to_json is
 * `res => res.json()`. The chain runs twice against the sample's own server
 * (on the same loop): once on a route that answers JSON, once on a route
 * whose body is not JSON, so that the json step rejects, process is
 * skipped, and the catch logs why. */
#include <jansson.h>

#include "classics.h"

static pact_loop *loop;
static int port;

static void h_user(pact_http_req *req, void *ud)
{
    static const char body[] =
        "{\"name\": \"ada\", \"langs\": [\"c\", \"lisp\", \"ml\"]}";
    (void)ud;
    TRY(pact_http_reply(req, 200, "application/json", body, sizeof body - 1));
}

/* A 200 whose body stops half-way: the server is happy, the JSON is not. */
static void h_broken(pact_http_req *req, void *ud)
{
    static const char body[] = "{\"name\": \"ada\", \"langs\": [\"c\",";
    (void)ud;
    TRY(pact_http_reply(req, 200, "application/json", body, sizeof body - 1));
}

/* .then(process): the data, parsed. */
static pact_value process(const pact_value *v, void *ud)
{
    (void)ud;
    json_t *langs = json_object_get(v->u.json, "langs");
    printf("  process: %s writes",
           json_string_value(json_object_get(v->u.json, "name")));
    for (size_t i = 0; i < json_array_size(langs); i++)
        printf("%s %s", i ? "," : "",
               json_string_value(json_array_get(langs, i)));
    printf("\n");
    return pact_nothing();
}

/* .catch(log): any step's failure, and the chain ends fulfilled. */
static pact_value log_error(pact_error *err, void *ud)
{
    (void)ud;
    printf("  log: %s: ", pact_err_name(pact_error_code(err)));
    classic_print_scrubbed(pact_error_message(err));
    printf("\n");
    return pact_nothing();
}

static void get(const char *path)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    printf("GET %s\n", path);
    pact_promise *chain = pact_catch_take(
        pact_then_take(pact_then_take(pact_fetch(loop, url, NULL),
                                      pact_fetch_res_to_json, NULL, NULL),
                       process, NULL, NULL),
        log_error, NULL);
    printf("  the chain is built; the loop runs it\n");
    classic_run_until(loop, chain);
}

int main(void)
{
    pact_http_server *srv;
    TRY(pact_loop_new(&loop));
    TRY(pact_http_listen(loop, "127.0.0.1", 0, NULL, &srv));
    TRY(pact_http_route(srv, "GET", "/user", h_user, NULL));
    TRY(pact_http_route(srv, "GET", "/broken", h_broken, NULL));
    port = pact_http_server_port(srv);

    get("/user");
    get("/broken");

    classic_stop(loop, srv);
    TRY(pact_loop_free(loop));
    return 0;
}
