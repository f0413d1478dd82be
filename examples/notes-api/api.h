/* notes-api's routes: what the server (main.c) serves, over the store
 * (db.h). */
#ifndef NOTES_API_H
#define NOTES_API_H

#include <stdbool.h>
#include <stdint.h>

#include <pact.h>

#include "db.h"

typedef struct notes_app {
    pact_loop *loop;
    pact_http_server *srv; /* NULL once it has shut down */
    notes_db *db;
    int64_t deadline_ms; /* each request's deadline (its group's) */
    unsigned delay_ms;   /* --query-delay-ms */
    bool draining;       /* SIGTERM came: the server is shutting down */
    /* for GET /health: what the handlers have seen */
    uint64_t requests, in_flight, timed_out, cancelled;
} notes_app;

/* Add the routes to @p srv. @return 0 or a PACT_E* code. */
int notes_api_routes(pact_http_server *srv, notes_app *app);

#endif
