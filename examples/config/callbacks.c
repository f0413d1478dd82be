/* config, callback style: Node's classic first example of non-blocking I/O,
 * fs.readFile('config.json') then JSON.parse. Read a JSON configuration
 * file without blocking the loop, parse it, then look for an optional file
 * of local overrides that may not exist. tasks.c is the same job in the
 * task style; both print the same lines for a good configuration.
 *
 * In Node terms:
 *
 *   fs.readFile('config.json', (err, data) => {
 *     if (err) return fail(err);
 *     const cfg = JSON.parse(data);
 *     fs.readFile('config.local.json', (err, data) => {
 *       if (err && err.code !== 'ENOENT') return fail(err);
 *       if (!err) Object.assign(cfg, JSON.parse(data));
 *       show(cfg);
 *     });
 *   });
 *
 * The reads run on the offload pool's blocking lane; the loop thread only
 * sees their callbacks. Parsing happens here in the callback, as Node's
 * example does it (pact_fs_read_json would parse on the pool thread
 * instead: see tasks.c). Usage: callbacks [DIR] (default: this example's
 * folder). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <pact.h>

#include "show.h"

#include "../debug.h"

struct app {
    pact_loop *loop;
    char main_path[1024], local_path[1024];
    json_t *cfg;
    int status; /* the exit status */
};

static void fail(struct app *app, const char *what, const pact_error *err)
{
    printf("%s: %s: %s\n", what, pact_err_name(pact_error_code(err)),
           pact_error_message(err));
    app->status = 1;
}

/* JSON.parse, with jansson's line and column on failure. */
static json_t *parse(struct app *app, const char *path, const pact_value *data)
{
    json_error_t je;
    json_t *json = json_loadb(data->u.bytes.data, data->u.bytes.len, 0, &je);
    if (!json) {
        printf("%s:%d:%d: %s\n", path, je.line, je.column, je.text);
        app->status = 1;
    }
    return json;
}

static void on_local(pact_error *err, pact_value *data, void *ud)
{
    struct app *app = ud;
    if (err && pact_error_code(err) != PACT_ENOENT) {
        fail(app, "local overrides", err);
        return;
    }
    if (!err) {
        json_t *local = parse(app, app->local_path, data);
        if (!local)
            return;
        json_object_update(app->cfg, local);
        json_decref(local);
    }
    show_config(app->main_path, app->cfg, err);
}

static void on_config(pact_error *err, pact_value *data, void *ud)
{
    struct app *app = ud;
    if (err) {
        fail(app, "config", err);
        return;
    }
    if (!(app->cfg = parse(app, app->main_path, data)))
        return;
    /* the next step starts from this one's callback */
    int rc = pact_fs_read_file(app->loop, app->local_path, NULL, on_local, app);
    if (rc < 0) {
        printf("local overrides: %s\n", pact_strerror(rc));
        app->status = 1;
    }
}

int main(int argc, char **argv)
{
    struct app app = {.status = 0};
    const char *dir = example_arg(argc, argv);
    if (!dir)
        dir = CONFIG_DIR;
    snprintf(app.main_path, sizeof app.main_path, "%s/config.json", dir);
    snprintf(app.local_path, sizeof app.local_path, "%s/config.local.json",
             dir);
    if (pact_loop_new(&app.loop) < 0)
        return 1;
    if (example_debug(app.loop, argc, argv) < 0) /* --debug */
        return 1;
    int rc = pact_fs_read_file(app.loop, app.main_path, NULL, on_config, &app);
    if (rc < 0) {
        printf("config: %s\n", pact_strerror(rc));
        return 1;
    }
    if (pact_loop_run(app.loop, PACT_RUN_DEFAULT) < 0)
        app.status = 1;
    json_decref(app.cfg);
    if (pact_loop_free(app.loop) < 0)
        app.status = 1;
    return app.status;
}
