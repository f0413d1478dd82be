/* The pending-operation record (libuv's requests): every asynchronous
 * operation of every layer registers one, so that cancellation, shutdown and
 * the loop's liveness treat them all alike. A cancelled operation is stopped
 * at once and called back on a later tick, in the order cancelled; one
 * reserved tick slot per loop carries every such delivery, so a cancellation
 * never fails for want of memory. */
#include <stdlib.h>

#include "internal.h"

int pact__ops_init(pact_loop *loop)
{
    pact__list_init(&loop->ops);
    pact__list_init(&loop->op_due);
    return pact__jobq_reserve(&loop->ticks);
}

pact_error *pact__aborted_error(pact_error *reason)
{
    pact_error *err =
        reason ? PACT_ERROR_CAUSE(reason, PACT_ECANCELED,
                                  "The operation was aborted")
               : PACT_ERROR(PACT_ECANCELED, "The operation was aborted");
    return err ? err : pact__enomem();
}

static void on_abort(pact_error *reason, void *ud)
{
    struct pact__op *op = ud;
    pact_abort_unref(op->abort); /* an aborted token drops its listeners */
    op->abort = NULL;
    pact__op_cancel(op, pact__aborted_error(reason));
}

static void abort_off(struct pact__op *op)
{
    if (!op->abort)
        return;
    pact_abort_off(op->abort, op->abort_id);
    pact_abort_unref(op->abort);
    op->abort = NULL;
}

/* Out of the pending list, no longer keeping the loop alive. */
static void unregister(struct pact__op *op)
{
    if (op->listed)
        pact__list_remove(&op->node);
    if (op->ref) {
        assert(op->loop->op_refs > 0);
        op->loop->op_refs--;
    }
}

int pact__op_start(pact_loop *loop, struct pact__op *op,
                   const struct pact__op_type *t, pact_abort *abort,
                   unsigned flags)
{
    assert(t && t->stop && t->fail);
    bool ref = flags & PACT__OP_REF;
    op->type = t;
    op->loop = loop;
    op->abort = NULL;
    op->err = NULL;
    op->ref = ref;
    op->listed = !(flags & PACT__OP_UNLISTED);
    op->owner = loop->ambient_owner;
    if (!abort)
        abort = loop->ambient; /* started inside a scope: it is the scope's */
    if (abort && !pact_abort_aborted(abort)) {
        int rc = pact_abort_on(abort, on_abort, op, &op->abort_id);
        if (rc < 0)
            return rc;
        op->abort = pact_abort_ref(abort);
    }
    op->state = PACT__OP_PENDING;
    if (op->listed)
        pact__list_push_back(&loop->ops, &op->node);
    if (ref)
        loop->op_refs++;
    if (abort && pact_abort_aborted(abort))
        pact__op_cancel(op, pact__aborted_error(pact_abort_reason(abort)));
    return 0;
}

void pact__op_set_ref(struct pact__op *op, bool ref)
{
    if (op->ref == ref)
        return;
    op->ref = ref;
    if (op->state != PACT__OP_PENDING && op->state != PACT__OP_STOPPING)
        return; /* counted only while registered (unregister) */
    if (ref)
        op->loop->op_refs++;
    else
        op->loop->op_refs--;
}

bool pact__op_end(struct pact__op *op, pact_error **err)
{
    *err = NULL;
    switch (op->state) {
    case PACT__OP_PENDING:
        abort_off(op);
        break;
    case PACT__OP_STOPPING:
        *err = op->err;
        op->err = NULL;
        break;
    default:
        /* cancelled and stopped: its call is the core's */
        assert(op->state == PACT__OP_CANCELLED);
        return false;
    }
    unregister(op);
    op->state = PACT__OP_IDLE;
    return true;
}

/* The calls due, on the tick after their cancellation: only those due when
 * it began; one cancelled meanwhile is called on a later tick. */
static void deliver(void *ud)
{
    pact_loop *loop = ud;
    struct pact__list due;
    pact__list_init(&due);
    pact__list_splice(&due, &loop->op_due);
    loop->op_tick = false;
    struct pact__list *n;
    while ((n = pact__list_first(&due))) {
        struct pact__op *op = pact__list_entry(n, struct pact__op, node);
        pact__list_remove(n);
        pact_error *err = op->err;
        op->err = NULL;
        op->state = PACT__OP_IDLE;
        op->type->fail(op, err); /* may free op */
        pact_error_unref(err);
        if (loop->uncaught) {
            /* an uncaught error stops the loop: the rest wait for its
             * next run (or pact_loop_free's drop) */
            pact__list_splice(&due, &loop->op_due);
            pact__list_splice(&loop->op_due, &due);
            break;
        }
    }
    if (!pact__list_empty(&loop->op_due) && !loop->op_tick) {
        loop->op_tick = true;
        pact__jobq_put(&loop->ticks, deliver, loop);
    }
}

void pact__op_cancel(struct pact__op *op, pact_error *err)
{
    if (!err)
        err = pact__enomem();
    if (op->state != PACT__OP_PENDING) {
        pact_error_unref(err);
        return;
    }
    pact_loop *loop = op->loop;
    abort_off(op);
    op->err = err;
    op->state = PACT__OP_STOPPING;
    if (!op->type->stop(op))
        return; /* it ends itself, with op->err, when its work returns */
    op->state = PACT__OP_CANCELLED;
    unregister(op);
    pact__list_push_back(&loop->op_due, &op->node);
    if (!loop->op_tick) {
        loop->op_tick = true;
        pact__jobq_put(&loop->ticks, deliver, loop); /* the reserved slot */
        pact__kick(loop);
    }
}

void pact__ops_close_all(pact_loop *loop)
{
    /* one error for all (shared: errors are immutable once made) */
    pact_error *err =
        PACT_ERROR(PACT_ECANCELED, "cancelled by pact_loop_close_all");
    if (!err)
        err = pact__enomem();
    pact__slots_cancel_all(loop, err);
    /* each from the head of a detached list: a stop may end others */
    struct pact__list todo;
    pact__list_init(&todo);
    pact__list_splice(&todo, &loop->ops);
    struct pact__list *n;
    while ((n = pact__list_first(&todo))) {
        pact__list_remove(n);
        pact__list_push_back(&loop->ops, n);
        struct pact__op *op = pact__list_entry(n, struct pact__op, node);
        pact__op_cancel(op, pact_error_ref(err));
    }
    pact_error_unref(err);
}

void pact__ops_each(pact_loop *loop,
                    void (*fn)(const struct pact__op *op, void *ud), void *ud)
{
    pact__slots_each(loop, fn, ud);
    for (const struct pact__list *n = loop->ops.next; n != &loop->ops;
         n = n->next)
        fn(pact__list_entry(n, const struct pact__op, node), ud);
}

size_t pact__ops_pending(const pact_loop *loop)
{
    size_t k = 0;
    for (const struct pact__list *n = loop->ops.next; n != &loop->ops;
         n = n->next) {
        const struct pact__op *op =
            pact__list_entry(n, const struct pact__op, node);
        /* a STOPPING one whose service waits for it is that service's */
        k += op->state == PACT__OP_PENDING || !op->type->waited;
    }
    return k;
}

void pact__ops_drop(pact_loop *loop)
{
    struct pact__list *n;
    while ((n = pact__list_first(&loop->op_due))) {
        struct pact__op *op = pact__list_entry(n, struct pact__op, node);
        pact__list_remove(n);
        pact_error_unref(op->err);
        op->err = NULL;
        op->state = PACT__OP_IDLE;
        if (op->type->drop)
            op->type->drop(op); /* may free op */
    }
    loop->op_tick = false;
}

/* ---- the program's own operations (include/pact/op.h) -------------------- */

struct pact_op {
    struct pact__op rec;
    const pact_op_type *t;
    void *ud;
};

static struct pact_op *user_op(struct pact__op *rec)
{
    return pact__list_entry(rec, struct pact_op, rec);
}

static bool user_stop(struct pact__op *rec)
{
    struct pact_op *op = user_op(rec);
    return op->t->cancel(op->ud);
}

static void user_fail(struct pact__op *rec, pact_error *err)
{
    struct pact_op *op = user_op(rec);
    const pact_op_type *t = op->t;
    void *ud = op->ud;
    pact_loop *loop = rec->loop;
    free(op);
    pact__label_refine(loop, PACT_STEP_TICK, (void (*)(void))t->cancelled, ud);
    t->cancelled(err, ud);
}

static void user_drop(struct pact__op *rec)
{
    struct pact_op *op = user_op(rec);
    void (*drop)(void *) = op->t->drop;
    void *ud = op->ud;
    free(op);
    if (drop)
        drop(ud);
}

static void user_describe(const struct pact__op *rec, char *buf, size_t len)
{
    const struct pact_op *op = pact__list_entry(rec, const struct pact_op, rec);
    snprintf(buf, len, "ud %p", op->ud);
}

static const struct pact__op_type user_type = {
    "operation", user_stop, user_fail, user_drop, user_describe, false};

const char *pact__op_what(const struct pact__op *rec)
{
    if (rec->type != &user_type)
        return rec->type->what;
    const struct pact_op *op = pact__list_entry(rec, const struct pact_op, rec);
    return op->t->what ? op->t->what : rec->type->what;
}

int pact_op_start(pact_loop *loop, const pact_op_type *type, void *ud,
                  const pact_op_opts *opts, pact_op **out)
{
    static const char fn[] = "pact_op_start";
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(type, fn);
    PACT_CHECK_ARG(type->cancel, fn);
    PACT_CHECK_ARG(type->cancelled, fn);
    PACT_CHECK_ARG(out, fn);
    struct pact_op *op = malloc(sizeof *op);
    if (!op)
        return PACT_ENOMEM;
    op->t = type;
    op->ud = ud;
    /* out first: a token aborted already cancels inside the start */
    *out = op;
    int rc =
        pact__op_start(loop, &op->rec, &user_type, opts ? opts->abort : NULL,
                       opts && opts->ref ? PACT__OP_REF : 0);
    if (rc < 0) {
        free(op);
        *out = NULL;
    }
    return rc;
}

int pact_op_end(pact_op *op, pact_error **err)
{
    static const char fn[] = "pact_op_end";
    PACT_CHECK_ARG(op, fn);
    PACT_CHECK_ARG(err, fn);
    PACT_CHECK_THREAD(op->rec.loop, fn);
    if (op->rec.state == PACT__OP_IDLE)
        return pact__misuse(fn, PACT_EINVAL, "the operation has ended");
    if (!pact__op_end(&op->rec, err))
        return 0;
    free(op);
    return 1;
}

int pact_op_cancel(pact_op *op, pact_error *reason)
{
    static const char fn[] = "pact_op_cancel";
    PACT_CHECK_ARG(op, fn);
    PACT_CHECK_THREAD(op->rec.loop, fn);
    pact_error *err =
        reason ? PACT_ERROR_CAUSE(reason, PACT_ECANCELED,
                                  "The operation was cancelled")
               : PACT_ERROR(PACT_ECANCELED, "The operation was cancelled");
    pact__op_cancel(&op->rec, err);
    return 0;
}

pact_loop *pact_op_loop(const pact_op *op)
{
    return op ? op->rec.loop : NULL;
}
