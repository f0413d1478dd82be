/* notes-api's store: SQLite behind the pool's blocking lane.
 *
 * Connections. SQLite lets one writer at a time into a database, whatever
 * the connections, and makes the others wait (SQLITE_BUSY and a busy
 * timeout) -- so the writes go through ONE connection, serialized by a
 * mutex: they queue on the mutex in the order they arrived instead of
 * spinning on the database's lock, and last_insert_rowid is the writer's
 * own. Reads take a connection of their own from a free list (opened when
 * none is free, so at most one per pool thread that runs a read at once):
 * in WAL mode readers see the last commit and neither wait for the writer
 * nor hold it up. A connection is used by one thread at a time, whichever
 * pool thread runs the job.
 *
 * Durability. journal_mode=WAL with synchronous=FULL: a commit appends to
 * the WAL and fsyncs it before sqlite3_step returns, and the handler
 * answers 201 only after that, so an acknowledged write survives kill -9
 * and power loss alike. (synchronous=NORMAL in WAL mode would survive kill
 * -9 too -- the WAL is in the page cache -- but not a power cut: the last
 * commits could roll back. FULL costs an fsync a write; a daemon that
 * acknowledges writes should pay it.) A commit is atomic, so a row is never
 * half-written: a crash leaves the transaction whole or absent, and the
 * next open replays the WAL up to its last complete commit.
 *
 * Cancellation. A query polls pact_job_cancelled through SQLite's progress
 * handler and stops with SQLITE_INTERRUPT (a statement interrupted rolls
 * back); a cancelled write that had committed already is simply not
 * acknowledged. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "db.h"

typedef struct reader {
    sqlite3 *conn;
    struct reader *next;
} reader;

struct notes_db {
    char *path;
    pthread_mutex_t wlock; /* the writer; taken alone, never with rlock */
    sqlite3 *writer;
    pthread_mutex_t rlock; /* the free list of readers */
    reader *free;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS notes ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT," /* ids never reused */
    " title TEXT NOT NULL,"
    " body TEXT NOT NULL)";

static int exec(sqlite3 *c, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(c, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "%s: %s", sql, msg ? msg : sqlite3_errmsg(c));
    sqlite3_free(msg);
    return -1;
}

static sqlite3 *connect(const char *path, bool readonly, char *err,
                        size_t errlen)
{
    sqlite3 *c = NULL;
    int flags = SQLITE_OPEN_READWRITE | (readonly ? 0 : SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path, &c, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path,
                 c ? sqlite3_errmsg(c) : "out of memory");
        sqlite3_close(c);
        return NULL;
    }
    /* Waiting on the database's lock happens only while a checkpoint or
     * recovery holds it: wait rather than fail. */
    sqlite3_busy_timeout(c, 5000);
    if (readonly && exec(c, "PRAGMA query_only=1", err, errlen) < 0) {
        sqlite3_close(c);
        return NULL;
    }
    return c;
}

int notes_db_open(const char *path, notes_db **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!sqlite3_threadsafe()) {
        snprintf(err, errlen, "SQLite was built without thread support");
        return -1;
    }
    notes_db *db = calloc(1, sizeof *db);
    if (!db || !(db->path = strdup(path))) {
        free(db);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&db->wlock, NULL);
    pthread_mutex_init(&db->rlock, NULL);
    db->writer = connect(path, false, err, errlen);
    sqlite3_stmt *st = NULL;
    if (!db->writer ||
        sqlite3_prepare_v2(db->writer, "PRAGMA journal_mode=WAL", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        if (db->writer && !*err)
            snprintf(err, errlen, "%s: cannot use WAL mode: %s", path,
                     sqlite3_errmsg(db->writer));
        sqlite3_finalize(st);
        notes_db_close(db);
        return -1;
    }
    sqlite3_finalize(st);
    if (exec(db->writer, "PRAGMA synchronous=FULL", err, errlen) < 0 ||
        exec(db->writer, SCHEMA, err, errlen) < 0) {
        notes_db_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

void notes_db_close(notes_db *db)
{
    if (!db)
        return;
    while (db->free) {
        reader *r = db->free;
        db->free = r->next;
        sqlite3_close(r->conn);
        free(r);
    }
    /* the last connection closed checkpoints the WAL into the database */
    sqlite3_close(db->writer);
    pthread_mutex_destroy(&db->wlock);
    pthread_mutex_destroy(&db->rlock);
    free(db->path);
    free(db);
}

static reader *reader_take(notes_db *db, char *err, size_t errlen)
{
    pthread_mutex_lock(&db->rlock);
    reader *r = db->free;
    if (r)
        db->free = r->next;
    pthread_mutex_unlock(&db->rlock);
    if (r)
        return r;
    if (!(r = calloc(1, sizeof *r))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(r->conn = connect(db->path, true, err, errlen))) {
        free(r);
        return NULL;
    }
    return r;
}

static void reader_give(notes_db *db, reader *r)
{
    pthread_mutex_lock(&db->rlock);
    r->next = db->free;
    db->free = r;
    pthread_mutex_unlock(&db->rlock);
}

/* SQLite's progress handler: a nonzero return interrupts the statement. */
static int on_progress(void *job)
{
    return pact_job_cancelled(job);
}

/* --query-delay-ms: stands for a slow query, and is cancelled as one. */
static bool delay(pact_job *job, unsigned ms)
{
    for (unsigned left = ms; left > 0 && !pact_job_cancelled(job);) {
        unsigned step = left < 5 ? left : 5;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        left -= step;
    }
    return !pact_job_cancelled(job);
}

static json_t *note_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s%, s:s%}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "title",
                     (const char *)sqlite3_column_text(st, 1),
                     (size_t)sqlite3_column_bytes(st, 1), "body",
                     (const char *)sqlite3_column_text(st, 2),
                     (size_t)sqlite3_column_bytes(st, 2));
}

static void fail(notes_query *q, int status, const char *msg)
{
    json_decref(q->out);
    q->status = status;
    q->out = json_pack("{s:s}", "error", msg);
}

/* The statement for @p q, its parameters bound. */
static int prepare(sqlite3 *c, notes_query *q, sqlite3_stmt **st)
{
    static const char *const SQL[] = {
        [NOTES_CREATE] = "INSERT INTO notes(title, body) VALUES(?1, ?2)",
        [NOTES_GET] = "SELECT id, title, body FROM notes WHERE id = ?3",
        [NOTES_LIST] = "SELECT id, title, body FROM notes WHERE id > ?3 "
                       "ORDER BY id LIMIT ?4",
        [NOTES_UPDATE] = "UPDATE notes SET title = ?1, body = ?2 "
                         "WHERE id = ?3 RETURNING id, title, body",
        [NOTES_DELETE] = "DELETE FROM notes WHERE id = ?3",
        [NOTES_COUNT] = "SELECT count(*) FROM notes",
    };
    int rc = sqlite3_prepare_v2(c, SQL[q->op], -1, st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    /* An index past the statement's parameters is a harmless SQLITE_RANGE
     * for the statements that do not take it. */
    if (q->title) {
        sqlite3_bind_text(*st, 1, q->title, (int)q->title_len, SQLITE_STATIC);
        sqlite3_bind_text(*st, 2, q->body, (int)q->body_len, SQLITE_STATIC);
    }
    sqlite3_bind_int64(*st, 3, q->id);
    sqlite3_bind_int64(*st, 4, q->limit);
    return SQLITE_OK;
}

/* Step @p st to its end, collecting what it returns into q->out. */
static int run(sqlite3 *c, notes_query *q, sqlite3_stmt *st)
{
    json_t *rows = q->op == NOTES_LIST ? json_array() : NULL;
    json_t *one = NULL;
    int64_t last = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (q->op == NOTES_COUNT) {
            last = sqlite3_column_int64(st, 0);
            continue;
        }
        json_t *n = note_json(st);
        last = sqlite3_column_int64(st, 0);
        if (rows)
            json_array_append_new(rows, n);
        else {
            json_decref(one);
            one = n;
        }
    }
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        json_decref(one);
        return rc;
    }
    switch (q->op) {
    case NOTES_CREATE:
        q->status = 201;
        q->out = json_pack(
            "{s:I, s:s%, s:s%}", "id", (json_int_t)sqlite3_last_insert_rowid(c),
            "title", q->title, q->title_len, "body", q->body, q->body_len);
        break;
    case NOTES_LIST:
        q->status = 200;
        q->out = json_pack("{s:o, s:o}", "notes", rows, "next",
                           (int64_t)json_array_size(rows) == q->limit
                               ? json_integer(last)
                               : json_null());
        break;
    case NOTES_DELETE:
        q->status = sqlite3_changes(c) ? 204 : 404;
        break;
    case NOTES_COUNT:
        q->status = 200;
        q->count = last;
        break;
    default: /* GET, UPDATE */
        q->status = one ? 200 : 404;
        q->out = one;
        break;
    }
    if (q->status == 404)
        fail(q, 404, "no such note");
    return SQLITE_OK;
}

static int query(sqlite3 *c, pact_job *job, notes_query *q)
{
    sqlite3_stmt *st = NULL;
    sqlite3_progress_handler(c, 1000, on_progress, job);
    int rc = prepare(c, q, &st);
    if (rc == SQLITE_OK)
        rc = run(c, q, st);
    sqlite3_finalize(st);
    sqlite3_progress_handler(c, 0, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_INTERRUPT)
        fail(q, 500, sqlite3_errmsg(c));
    return rc;
}

pact_error *notes_db_job(pact_job *job, void *arg, pact_value *result)
{
    (void)result;
    notes_query *q = arg;
    if (q->delay_ms && !delay(job, q->delay_ms))
        return PACT_ERROR(PACT_ECANCELED, "the query was cancelled");
    int rc;
    if (q->op == NOTES_CREATE || q->op == NOTES_UPDATE ||
        q->op == NOTES_DELETE) {
        pthread_mutex_lock(&q->db->wlock);
        /* cancelled while queued for the writer: do not start (a short
         * statement may end before the progress handler is first asked) */
        rc = pact_job_cancelled(job) ? SQLITE_INTERRUPT
                                     : query(q->db->writer, job, q);
        pthread_mutex_unlock(&q->db->wlock);
    } else {
        char err[256] = "";
        reader *r = reader_take(q->db, err, sizeof err);
        if (!r) {
            fail(q, 500, err);
            return NULL;
        }
        rc = query(r->conn, job, q);
        reader_give(q->db, r);
    }
    if (rc == SQLITE_INTERRUPT)
        return PACT_ERROR(PACT_ECANCELED, "the query was cancelled");
    return NULL;
}
