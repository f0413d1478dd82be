/* The fetch examples' shared part: the server each one starts on its own
 * loop, and the steps of the essay's chain that do not depend on the style.
 *
 *   fetch(url)
 *     .then(res => res.json())
 *     .then(process)
 *     .catch(log);
 *
 * callbacks.c, promises.c, task.c and async.c each run that chain twice on
 * one loop -- on GOOD_PATH, whose body is a JSON document, then on
 * BAD_PATH, a 200 whose body is not JSON, so that res.json() fails, process
 * is skipped and log says why -- then stop the server so that the loop
 * ends. All four print the same trace (test/fixtures/fetch.out). */
#ifndef PACT_EXAMPLE_FETCH_SERVER_H
#define PACT_EXAMPLE_FETCH_SERVER_H

#include <stddef.h>

#include <jansson.h>
#include <pact.h>

#include "../common/job.h" /* run_job, TRY, must */

/* The two routes. */
#define GOOD_PATH "/users/ada"
#define BAD_PATH "/users/ada/broken"

/* Listen on 127.0.0.1 and a port the system picks, on @p loop, with both
 * routes; print the trace's first line. Exits on failure. @return the
 * server (closed by server_stop). */
pact_http_server *server_start(pact_loop *loop);

/* Print "GET PATH" and write the server's URL of @p path into @p url
 * (@p n bytes). @return @p url. */
const char *server_url(char *url, size_t n, const char *path);

/* Close the fetch pool's kept-alive connections and @p srv, which says
 * "server: closed" once it is; after that nothing keeps the loop running. */
void server_stop(pact_loop *loop, pact_http_server *srv);

/* .then(process): print a summary of the user @p user (borrowed). */
void process(const json_t *user);

/* .catch(log): print @p err's code and message, with the port the system
 * picked scrubbed, so that the trace is the same on every run. */
void log_error(const pact_error *err);

#endif
