/* config, task style: the job of callbacks.c as straight-line code in a
 * task. Each PACT_AWAIT suspends the task (not the loop) until the file
 * operation's promise settles; an error comes back where it happened, to
 * be handled there or passed up with PACT_AWAIT_TRY. Read callbacks.c first
 * for what the job is.
 *
 * In Node terms:
 *
 *   const cfg = JSON.parse(await fs.promises.readFile('config.json'));
 *   try {
 *     Object.assign(cfg, JSON.parse(
 *       await fs.promises.readFile('config.local.json')));
 *   } catch (e) { if (e.code !== 'ENOENT') throw e; }
 *   show(cfg);
 *
 * pact_fs_read_json_p reads and parses in one step, both on the pool's
 * thread. Usage: tasks [DIR] (default: this example's folder). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <pact.h>

#include "show.h"

#include "../debug.h"

struct app {
    pact_loop *loop;
    char main_path[1024], local_path[1024];
};

static pact_error *load(void *arg, pact_value *result)
{
    (void)result;
    struct app *app = arg;
    pact_value cfg, local;
    PACT_AWAIT_TRY(pact_fs_read_json_p(app->loop, app->main_path, NULL), &cfg);
    pact_error *err = PACT_AWAIT_ERR(
        pact_fs_read_json_p(app->loop, app->local_path, NULL), &local);
    if (err && pact_error_code(err) != PACT_ENOENT) {
        pact_value_release(&cfg);
        return err; /* the task's promise rejects with it */
    }
    if (!err) {
        json_object_update(cfg.u.json, local.u.json);
        pact_value_release(&local);
    }
    show_config(app->main_path, cfg.u.json, err);
    pact_error_unref(err);
    pact_value_release(&cfg);
    return NULL;
}

/* The task's outcome: its promise rejects when the config could not be read
 * or parsed. (Handling it also keeps it from being an unhandled
 * rejection.) */
static void on_done(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    if (err) {
        printf("config: %s: %s\n", pact_err_name(pact_error_code(err)),
               pact_error_message(err));
        *(int *)ud = 1;
    }
}

int main(int argc, char **argv)
{
    struct app app;
    int status = 0;
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
    pact_promise *task = pact_task_spawn(app.loop, load, &app, NULL);
    if (!task || pact_promise_callback(task, on_done, &status) < 0)
        return 1;
    pact_promise_unref(task);
    if (pact_loop_run(app.loop, PACT_RUN_DEFAULT) < 0)
        status = 1;
    if (pact_loop_free(app.loop) < 0)
        status = 1;
    return status;
}
