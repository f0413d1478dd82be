/* pact-styles: what each style costs, on this machine. The same two daemons,
 * a TCP echo server and a small HTTP JSON API, are written once per style,
 * each in its own short file (echo_<style>.c, api_<style>.c), so that they
 * read side by side; this header is what the harness (server.c) needs of
 * them. The program runs each one in a process of its own and drives it
 * with its own load client (load.c); main.c prints the tables. */
#ifndef PACT_STYLES_H
#define PACT_STYLES_H

#include <jansson.h>
#include <pact.h>

struct event;
struct event_base;
struct evhttp;

/* ---- the echo daemon: every byte read goes back, chunk by chunk ---------
 * The pact styles are accept callbacks of pact_tcp_listen (@p loop as ud). */
void echo_callbacks(pact_error *err, pact_stream *s, void *loop);
void echo_promises(pact_error *err, pact_stream *s, void *loop);
void echo_task(pact_error *err, pact_stream *s, void *loop);
void echo_async(pact_error *err, pact_stream *s, void *loop);
/* Raw libevent: serve listening socket @p fd on @p base. @return the
 * accepting event (the harness frees it), or NULL. */
struct event *echo_libevent(struct event_base *base, int fd);

/* ---- the API daemon: GET /items/:id and POST /items ----------------------
 * Each registers its routes on the server. @return 0 or a PACT_E* code. */
int api_callbacks(pact_http_server *srv);
int api_promises(pact_http_server *srv);
int api_task(pact_http_server *srv);
int api_async(pact_http_server *srv);
/* Raw libevent's evhttp. @return 0 or -1. */
int api_libevent(struct evhttp *http);

/* What the API answers, whatever the style (api_data.c): the status, and
 * the JSON body in *@p out (a new reference). GET /items/:id: 200 and the
 * item, 404 for an id that is not a positive number. POST /items: 201 and
 * the object posted with the "id" it was given, 400 for a body that is not
 * a JSON object (@p body may be NULL: not JSON). */
int api_get(const char *id, json_t **out);
int api_post(json_t *body, json_t **out);

/* ---- the names --------------------------------------------------------- */
enum {
    STYLE_CALLBACKS,
    STYLE_PROMISES,
    STYLE_TASK,
    STYLE_ASYNC,
    STYLE_LIBEVENT,
    NSTYLES
};
extern const char *const style_names[NSTYLES];

/* server.c: run daemon @p daemon ("echo", "api", "block") in style or mode
 * @p style on 127.0.0.1:@p port (0: the system picks), saying "port N" on
 * stdout once it listens, until SIGTERM. @return the exit code. */
int serve_main(const char *daemon, const char *style, int port);
/* Say that 127.0.0.1:@p port cannot be listened on, and why. @return 3, the
 * exit code that tells the parent. */
int serve_listen_failed(int port, const char *why);
/* block.c: the blocking daemon, in mode "inline", "pool" or "worker". */
int block_main(const char *mode, int port);
/* block.c's CPU-bound work: @p n rounds of a hash. */
uint64_t block_hash(unsigned long n);

#endif
