/* notes-api's store: the notes in SQLite, and the one job function that
 * runs every query on the pool's blocking lane (never on the loop). The
 * handlers (api.c) fill a notes_query, offload notes_db_job with it, and
 * read its results once the job has ended. */
#ifndef NOTES_DB_H
#define NOTES_DB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <pact.h>

typedef struct notes_db notes_db;

/* Open (creating it if need be) the database at @p path: WAL,
 * synchronous=FULL, the schema. @return 0, or -1 with a message in @p err. */
int notes_db_open(const char *path, notes_db **out, char *err, size_t errlen);
/* Close every connection; only once no job is running (after the loop). */
void notes_db_close(notes_db *db);

typedef enum notes_op {
    NOTES_CREATE, /* title, body -> 201 {"id"} */
    NOTES_GET,    /* id -> 200 note, 404 */
    NOTES_LIST,   /* after, limit -> 200 {"notes": [...], "next"} */
    NOTES_UPDATE, /* id, title, body -> 200 note, 404 */
    NOTES_DELETE, /* id -> 204, 404 */
    NOTES_COUNT,  /* -> the number of notes, for /health */
} notes_op;

/* One query: the handler's (its task frame's), borrowed by the job. The
 * handler reads the results only after its group has ended, which is after
 * the job function has returned (a cancelled job's callback waits for it). */
typedef struct notes_query {
    notes_db *db;
    notes_op op;
    int64_t id;        /* GET, UPDATE, DELETE; LIST: the id to start after */
    int64_t limit;     /* LIST */
    const char *title; /* CREATE, UPDATE: borrowed from the request's JSON */
    size_t title_len;
    const char *body;
    size_t body_len;
    unsigned delay_ms; /* --query-delay-ms: a slow query, cancellable */
    /* results, written by the job */
    int status;    /* the HTTP status the outcome maps to */
    json_t *out;   /* the response's JSON (a reference the handler takes) */
    int64_t count; /* COUNT */
} notes_query;

/* The job function (pact_offload_fn): runs @p arg's query on a pool thread.
 * Returns PACT_ECANCELED when the job was cancelled (a deadline, a client
 * gone, the server's drain deadline), whatever the query had done:
 * SQLite's atomic commit means a write is whole or absent either way. */
pact_error *notes_db_job(pact_job *job, void *arg, pact_value *result);

#endif
