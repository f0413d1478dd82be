/* classics/readfile -- the idea: an error-first callback reads a file
 * without blocking the loop, and the parse happens in the callback.
 *
 *   fs.readFile('config.json', (err, data) => {
 *     if (err) return console.error(err.code);
 *     const cfg = JSON.parse(data);
 *     ...
 *   });
 *
 * The read runs on the pool's blocking lane; the loop thread only sees the
 * callback, which gets the error first or the data. A second read of a file
 * that does not exist shows the error path. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classics.h"

static char dir[] = "/tmp/pact-readfile-XXXXXX";
static char path[sizeof dir + 32], missing[sizeof dir + 32];

static void on_missing(pact_error *err, pact_value *data, void *ud)
{
    (void)data;
    (void)ud;
    if (err)
        printf("missing.json: %s\n", pact_err_name(pact_error_code(err)));
}

static void on_config(pact_error *err, pact_value *data, void *ud)
{
    pact_loop *loop = ud;
    if (err) {
        printf("config.json: %s\n", pact_error_message(err));
        return;
    }
    json_error_t je;
    json_t *cfg = json_loadb(data->u.bytes.data, data->u.bytes.len, 0, &je);
    if (!cfg) {
        printf("config.json:%d:%d: %s\n", je.line, je.column, je.text);
        return;
    }
    printf("config.json: name %s, port %lld, %zu workers\n",
           json_string_value(json_object_get(cfg, "name")),
           (long long)json_integer_value(json_object_get(cfg, "port")),
           json_array_size(json_object_get(cfg, "workers")));
    json_decref(cfg);
    TRY(pact_fs_read_file(loop, missing, NULL, on_missing, NULL));
}

int main(void)
{
    static const char text[] =
        "{\"name\": \"demo\", \"port\": 8080, \"workers\": [\"a\", \"b\"]}\n";
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(missing, sizeof missing, "%s/missing.json", dir);
    FILE *f = fopen(path, "w"); /* the setting up, not the sample */
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        return 1;

    pact_loop *loop;
    TRY(pact_loop_new(&loop));
    TRY(pact_fs_read_file(loop, path, NULL, on_config, loop));
    printf("reading, the loop is free meanwhile\n");
    TRY(pact_loop_run(loop, PACT_RUN_DEFAULT));
    TRY(pact_loop_free(loop));
    unlink(path);
    rmdir(dir);
    return 0;
}
