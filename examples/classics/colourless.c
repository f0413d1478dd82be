/* classics/colourless -- the idea: functions have no colour; a function
 * that waits for the network is called like any other, and nothing that
 * calls it has to be marked async.
 *
 *   func fetchData(url string) (map[string]any, error) {
 *       resp, err := http.Get(url)  // parks the goroutine, not the thread
 *       if err != nil { return nil, err }
 *       defer resp.Body.Close()
 *       ...
 *       return data, json.NewDecoder(resp.Body).Decode(&data)
 *   }
 *   func loadUser(id int) (User, error) { d, err := fetchData(...); ... }
 *   func showDashboard() { for id := 1; id <= 3; id++ { loadUser(id) ... } }
 *   go showDashboard()
 *
 * fetch_data is a plain C function that awaits the fetch (PACT_AWAIT_ERR)
 * on the stack of the task it runs in; load_user and show_dashboard, which
 * call it, are plain functions with nothing async about them. Only the top
 * is a task: pact_task_spawn is the `go`. While fetch_data waits, three
 * calls deep, the loop goes on: the server that answers it is the sample's
 * own, on the same loop and thread. */
#include <jansson.h>

#include "classics.h"

static pact_loop *loop;
static int port;

static void h_user(pact_http_req *req, void *ud)
{
    (void)ud;
    const char *id = pact_http_req_param(req, "id");
    printf("    server: GET /users/%s\n", id);
    json_t *j =
        !strcmp(id, "1")   ? json_pack("{s:s,s:i}", "name", "ada", "posts", 12)
        : !strcmp(id, "2") ? json_pack("{s:s,s:i}", "name", "grace", "posts", 7)
                           : NULL;
    if (!j) {
        TRY(pact_http_reply(req, 404, "text/plain", "no such user\n", 13));
        return;
    }
    pact_http_res *res = pact_http_res_new_json(200, j);
    json_decref(j);
    if (!res) {
        fprintf(stderr, "colourless: out of memory\n");
        exit(1);
    }
    TRY(pact_http_respond(req, res));
}

/* Level three: GET @p path and parse it. Waits without blocking the
 * thread, and returns as if it had blocked: the data, or NULL and *errp. */
static json_t *fetch_data(const char *path, pact_error **errp)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    printf("    fetch_data(%s): waits\n", path);
    pact_value v;
    pact_error *err = PACT_AWAIT_ERR(pact_fetch(loop, url, NULL), &v);
    json_t *data = NULL;
    if (!err) {
        pact_fetch_res *res = pact_fetch_res_of(&v);
        printf("    fetch_data(%s): %d %s\n", path, pact_fetch_res_status(res),
               pact_fetch_res_reason(res));
        if (pact_fetch_res_status(res) == 404)
            err = PACT_ERROR(PACT_ENOENT, "GET %s: HTTP 404", path);
        else if (!pact_fetch_res_ok(res))
            err = PACT_ERROR(PACT_EIO, "GET %s: HTTP %d", path,
                             pact_fetch_res_status(res));
        else
            err = pact_fetch_res_json(res, &data);
        pact_value_release(&v);
    }
    *errp = err;
    return data;
}

struct user {
    char name[32];
    long long posts;
};

/* Level two: a plain function over fetch_data. */
static pact_error *load_user(int id, struct user *u)
{
    char path[32];
    snprintf(path, sizeof path, "/users/%d", id);
    pact_error *err;
    json_t *data = fetch_data(path, &err);
    if (!data)
        return err;
    snprintf(u->name, sizeof u->name, "%s",
             json_string_value(json_object_get(data, "name")));
    u->posts = json_integer_value(json_object_get(data, "posts"));
    json_decref(data);
    return NULL;
}

/* Level one: a plain function over load_user. */
static void show_dashboard(void)
{
    for (int id = 1; id <= 3; id++) {
        struct user u;
        printf("  load_user(%d)\n", id);
        pact_error *err = load_user(id, &u);
        if (err) {
            printf("  user %d: %s (%s)\n", id, pact_error_message(err),
                   pact_err_name(pact_error_code(err)));
            pact_error_unref(err);
            continue;
        }
        printf("  user %d: %s, %lld posts\n", id, u.name, u.posts);
    }
}

/* The top, the only part that knows it is a task: `go showDashboard()`. */
static pact_error *dashboard(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    show_dashboard();
    return NULL;
}

int main(void)
{
    pact_http_server *srv;
    TRY(pact_loop_new(&loop));
    TRY(pact_http_listen(loop, "127.0.0.1", 0, NULL, &srv));
    TRY(pact_http_route(srv, "GET", "/users/:id", h_user, NULL));
    port = pact_http_server_port(srv);

    printf("show_dashboard() in a task\n");
    classic_run_until(loop, pact_task_spawn(loop, dashboard, NULL, NULL));

    classic_stop(loop, srv);
    TRY(pact_loop_free(loop));
    return 0;
}
