/* The fetch examples' server and shared steps (see server.h). */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char example_name[] = "fetch";

static int port;

static void h_user(pact_http_req *req, void *ud)
{
    static const char body[] =
        "{\"name\": \"ada\", \"orders\": ["
        "{\"item\": \"tea\", \"qty\": 2, \"cents\": 450},"
        " {\"item\": \"cups\", \"qty\": 6, \"cents\": 300},"
        " {\"item\": \"pot\", \"qty\": 1, \"cents\": 2400}]}";
    (void)ud;
    printf("  server: GET %s\n", pact_http_req_path(req));
    TRY(pact_http_reply(req, 200, "application/json", body, sizeof body - 1));
}

/* A 200 whose body stops half-way: the server is happy, the JSON is not. */
static void h_broken(pact_http_req *req, void *ud)
{
    static const char body[] = "{\"name\": \"ada\", \"orders\": [{\"item\":";
    (void)ud;
    printf("  server: GET %s\n", pact_http_req_path(req));
    TRY(pact_http_reply(req, 200, "application/json", body, sizeof body - 1));
}

pact_http_server *server_start(pact_loop *loop)
{
    pact_http_server *srv;
    TRY(pact_http_listen(loop, "127.0.0.1", 0, NULL, &srv));
    TRY(pact_http_route(srv, "GET", GOOD_PATH, h_user, NULL));
    TRY(pact_http_route(srv, "GET", BAD_PATH, h_broken, NULL));
    port = pact_http_server_port(srv);
    printf("fetch(url).then(res => res.json()).then(process).catch(log)\n");
    return srv;
}

const char *server_url(char *url, size_t n, const char *path)
{
    printf("GET %s\n", path);
    snprintf(url, n, "http://127.0.0.1:%d%s", port, path);
    return url;
}

static void closed(void *ud)
{
    (void)ud;
    printf("server: closed\n");
}

void server_stop(pact_loop *loop, pact_http_server *srv)
{
    /* Idle connections do not keep the loop alive, and pact_loop_free
     * would close them; closing them now ends the server's side too. */
    pact_fetch_pool_close_idle(loop);
    TRY(pact_http_server_close(srv, closed, NULL));
}

void process(const json_t *user)
{
    json_t *orders = json_object_get(user, "orders");
    long long items = 0, cents = 0;
    for (size_t i = 0; i < json_array_size(orders); i++) {
        json_t *o = json_array_get(orders, i);
        long long qty = json_integer_value(json_object_get(o, "qty"));
        items += qty;
        cents += qty * json_integer_value(json_object_get(o, "cents"));
    }
    printf("  process: %s has %zu orders, %lld items, %lld.%02lld in all\n",
           json_string_value(json_object_get(user, "name")),
           json_array_size(orders), items, cents / 100, cents % 100);
}

void log_error(const pact_error *err)
{
    static const char host[] = "127.0.0.1:";
    const char *msg = pact_error_message(err), *at;
    printf("  log: %s: ", pact_err_name(pact_error_code(err)));
    while ((at = strstr(msg, host)) != NULL) {
        at += sizeof host - 1;
        fwrite(msg, 1, (size_t)(at - msg), stdout);
        fputs("PORT", stdout);
        msg = at + strspn(at, "0123456789");
    }
    printf("%s\n", msg);
}
