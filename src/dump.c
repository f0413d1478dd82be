/* The task dump (include/pact/dump.h) and the loop's registry of groups and
 * scopes it reads. The tree is built once, as JSON, from what each layer
 * lists (the core's pending operations, layer 3's tasks, this layer's
 * groups and scopes), matched by abort token: a task follows its innermost
 * scope's token, a scope links to the token around it, a group to its
 * parent's, an operation carries the token it was started with. The text
 * form is printed from the JSON, so the two never disagree. */
#include "scope_internal.h"

#include <dlfcn.h>
#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ---- the registry (a service) ---------------------------------------------
 */

static void groups_free(pact_loop *loop, void *state)
{
    struct pact__groups *gs = state;
    if (gs->dump_ev) {
        event_free(gs->dump_ev);
        pact__own_event_removed(loop);
    }
    /* groups a program leaked outlive the loop: unlink them */
    struct pact__list *n;
    while ((n = pact__list_first(&gs->groups))) {
        pact__list_remove(n);
        pact__list_init(n);
    }
    while ((n = pact__list_first(&gs->scopes))) {
        pact__list_remove(n);
        pact__list_init(n);
    }
    free(gs);
}

static const struct pact__service_ops groups_ops = {.free = groups_free};

static void *groups_make(pact_loop *loop)
{
    struct pact__groups *gs = calloc(1, sizeof *gs);
    if (gs) {
        gs->loop = loop;
        pact__list_init(&gs->groups);
        pact__list_init(&gs->scopes);
    }
    return gs;
}

struct pact__groups *pact__groups_of(pact_loop *loop)
{
    return pact__service(loop, PACT__SVC_GROUPS, &groups_ops, groups_make);
}

/* ---- building the tree ----------------------------------------------------
 */

struct tnode {
    struct pact__task_view v;
    json_t *j;
};

struct build {
    pact_loop *loop;
    struct pact__groups *gs;
    size_t ngroups, ntasks, nops;
    pact_group **groups; /* in registry order */
    json_t **gj;
    struct tnode *tasks;
    size_t tcap;
    json_t *root_groups, *root_tasks, *root_ops;
    bool nomem;
};

static void add(struct build *b, json_t *arr, json_t *item)
{
    if (!item || json_array_append_new(arr, item) < 0)
        b->nomem = true;
}

static json_t *site(const char *file, int line)
{
    return json_sprintf("%s:%d", file ? file : "?", line);
}

static json_t *find_task(struct build *b, const void *id)
{
    for (size_t i = 0; i < b->ntasks; i++)
        if (b->tasks[i].v.id == id)
            return b->tasks[i].j;
    return NULL;
}

static json_t *group_of_token(struct build *b, const pact_abort *tok)
{
    for (size_t i = 0; i < b->ngroups; i++)
        if (b->groups[i]->token == tok)
            return b->gj[i];
    return NULL;
}

static pact_scope *scope_of_token(struct build *b, const pact_abort *tok)
{
    struct pact__list *l, *tmp;
    pact__list_each(l, tmp, &b->gs->scopes) {
        pact_scope *s = pact__list_entry(l, pact_scope, link);
        if (s->token == tok)
            return s;
    }
    return NULL;
}

static void take_task(const struct pact__task_view *v, void *ud)
{
    struct build *b = ud;
    if (b->ntasks == b->tcap) {
        size_t c = b->tcap ? b->tcap * 2 : 16;
        struct tnode *nt = realloc(b->tasks, c * sizeof *nt);
        if (!nt) {
            b->nomem = true;
            return;
        }
        b->tasks = nt;
        b->tcap = c;
    }
    json_t *j;
    if (v->task) {
        j = json_pack("{s:s, s:s?, s:o, s:s, s:o, s:[], s:[], s:[]}", "kind",
                      "task", "name", v->name, "spawned_at",
                      site(v->file, v->line), "state", v->state, "awaiting_at",
                      v->await_file ? site(v->await_file, v->await_line)
                                    : json_null(),
                      "scopes", "groups", "operations");
    } else {
        /* an async function: its body's name, and the await's line */
        Dl_info info;
        const char *name = dladdr((void *)(uintptr_t)v->fn, &info) &&
                                   info.dli_sname &&
                                   (uintptr_t)info.dli_saddr == (uintptr_t)v->fn
                               ? info.dli_sname
                               : NULL;
        j = json_pack("{s:s, s:o, s:n, s:s, s:o, s:[], s:[], s:[]}", "kind",
                      "async", "name",
                      name ? json_string(name)
                           : json_sprintf("%p", (void *)(uintptr_t)v->fn),
                      "spawned_at", "state", v->state, "awaiting_at",
                      v->await_file   ? site(v->await_file, v->await_line)
                      : v->await_line ? json_sprintf("line %d", v->await_line)
                                      : json_null(),
                      "scopes", "groups", "operations");
    }
    if (!j) {
        b->nomem = true;
        return;
    }
    b->tasks[b->ntasks].v = *v;
    b->tasks[b->ntasks++].j = j;
}

static json_t *deadline(pact_loop *loop, uint64_t at)
{
    if (!at)
        return json_null();
    uint64_t now = pact_loop_now(loop);
    return json_integer(at > now ? (json_int_t)(at - now) : 0);
}

/* Where an operation or group started under @p tok belongs: the task of the
 * scope it names, or the group; NULL: the top. @p field: its array. */
static json_t *container(struct build *b, const pact_abort *tok,
                         const char *field)
{
    if (!tok)
        return NULL;
    pact_scope *s = scope_of_token(b, tok);
    json_t *j = s ? find_task(b, s->task) : group_of_token(b, tok);
    return j ? json_object_get(j, field) : NULL;
}

static void take_op(const struct pact__op *op, void *ud)
{
    struct build *b = ud;
    char more[256] = "";
    if (op->type->describe)
        op->type->describe(op, more, sizeof more);
    json_t *j =
        json_pack("{s:s, s:s, s:b}", "what", pact__op_what(op), "detail", more,
                  "cancelled", op->state == PACT__OP_STOPPING);
    /* the task or async function that started it, if it still runs; else
     * where its token says */
    json_t *owner = op->owner ? find_task(b, op->owner) : NULL;
    json_t *arr = owner ? json_object_get(owner, "operations")
                        : container(b, op->abort, "operations");
    add(b, arr ? arr : b->root_ops, j);
    b->nops++;
}

static json_t *build(pact_loop *loop)
{
    struct build b = {.loop = loop, .gs = pact__groups_of(loop)};
    if (!b.gs)
        return NULL;
    json_t *root = json_object();
    b.root_groups = json_array();
    b.root_tasks = json_array();
    b.root_ops = json_array();
    struct pact__list *l, *tmp;
    pact__list_each(l, tmp, &b.gs->groups)
        b.ngroups++;
    b.groups = calloc(b.ngroups + 1, sizeof *b.groups);
    b.gj = calloc(b.ngroups + 1, sizeof *b.gj);
    if (!root || !b.root_groups || !b.root_tasks || !b.root_ops || !b.groups ||
        !b.gj) {
        b.nomem = true;
        goto out;
    }
    size_t i = 0;
    pact__list_each(l, tmp, &b.gs->groups) {
        pact_group *g = pact__list_entry(l, pact_group, link);
        b.groups[i] = g;
        b.gj[i++] = json_pack(
            "{s:s?, s:o, s:I, s:I, s:I, s:b, s:o, s:[], s:[], s:[]}", "name",
            g->name, "made_at", site(g->file, g->line), "running",
            (json_int_t)g->running, "queued", (json_int_t)g->nqueued, "limit",
            (json_int_t)g->limit, "cancelled", pact_abort_aborted(g->token),
            "deadline_in_ms", deadline(loop, g->timer.id ? g->deadline_at : 0),
            "tasks", "groups", "operations");
        if (!b.gj[i - 1])
            b.nomem = true;
    }
    if (b.nomem)
        goto out;
    pact__tasks_each(loop, take_task, &b);
    /* scopes into their tasks, innermost last */
    pact__list_each(l, tmp, &b.gs->scopes) {
        pact_scope *s = pact__list_entry(l, pact_scope, link);
        json_t *t = find_task(&b, s->task);
        if (t)
            add(&b, json_object_get(t, "scopes"),
                json_pack("{s:o, s:b, s:b}", "deadline_in_ms",
                          deadline(loop, s->timer.id ? s->deadline_at : 0),
                          "shield", s->shield, "cancelled",
                          pact_abort_aborted(s->token)));
    }
    /* tasks into their groups: past their own scopes to the token they
     * were spawned with */
    for (i = 0; i < b.ntasks; i++) {
        const pact_abort *tok = b.tasks[i].v.token;
        pact_scope *s;
        while (tok && (s = scope_of_token(&b, tok)) &&
               s->task == b.tasks[i].v.task)
            tok = s->outer;
        json_t *g = tok ? group_of_token(&b, tok) : NULL;
        json_t *arr = g ? json_object_get(g, "tasks") : b.root_tasks;
        add(&b, arr, json_incref(b.tasks[i].j));
    }
    /* groups into the task that made them, or their parent */
    for (i = 0; i < b.ngroups; i++) {
        pact_group *g = b.groups[i];
        json_t *t = g->owner ? find_task(&b, g->owner) : NULL;
        json_t *arr = t ? json_object_get(t, "groups")
                        : container(&b, g->parent, "groups");
        add(&b, arr ? arr : b.root_groups, json_incref(b.gj[i]));
    }
    pact__ops_each(loop, take_op, &b);
    if (json_object_set_new(root, "tasks",
                            json_integer((json_int_t)b.ntasks)) ||
        json_object_set_new(root, "groups",
                            json_integer((json_int_t)b.ngroups)) ||
        json_object_set_new(root, "operations",
                            json_integer((json_int_t)b.nops)))
        b.nomem = true;
out:
    if (root && !b.nomem) {
        json_object_set(root, "groups_tree", b.root_groups);
        json_object_set(root, "tasks_tree", b.root_tasks);
        json_object_set(root, "operations_tree", b.root_ops);
    }
    json_decref(b.root_groups);
    json_decref(b.root_tasks);
    json_decref(b.root_ops);
    for (i = 0; i < b.ngroups; i++)
        json_decref(b.gj ? b.gj[i] : NULL);
    for (i = 0; i < b.ntasks; i++)
        json_decref(b.tasks[i].j);
    free(b.tasks);
    free(b.groups);
    free(b.gj);
    if (b.nomem) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *pact_loop_dump_json(pact_loop *loop)
{
    if (!loop) {
        pact__misuse("pact_loop_dump_json", PACT_EINVAL, "loop is NULL");
        return NULL;
    }
    if (pact__misuse_thread(loop, "pact_loop_dump_json"))
        return NULL;
    return build(loop);
}

/* ---- text -----------------------------------------------------------------
 */

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static size_t print_ops(FILE *out, json_t *ops, int depth)
{
    size_t i, n = 0;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        fprintf(out, "%*soperation %s: %s%s\n", depth * 2, "", str(op, "what"),
                str(op, "detail"),
                json_is_true(json_object_get(op, "cancelled"))
                    ? " (cancelled, still running)"
                    : "");
        n++;
    }
    return n;
}

static void print_deadline(FILE *out, json_t *o)
{
    json_t *d = json_object_get(o, "deadline_in_ms");
    if (json_is_integer(d))
        fprintf(out, ", deadline in %" JSON_INTEGER_FORMAT " ms",
                json_integer_value(d));
}

static size_t print_groups(FILE *out, json_t *groups, int depth);

static size_t print_tasks(FILE *out, json_t *tasks, int depth)
{
    size_t i, n = 0;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *name = str(t, "name");
        if (strcmp(str(t, "kind"), "async") == 0)
            fprintf(out, "%*sasync function %s: %s", depth * 2, "", name,
                    str(t, "state"));
        else
            fprintf(out, "%*stask %s%s(spawned at %s): %s", depth * 2, "", name,
                    *name ? " " : "", str(t, "spawned_at"), str(t, "state"));
        if (json_is_string(json_object_get(t, "awaiting_at")))
            fprintf(out, " at %s", str(t, "awaiting_at"));
        fputc('\n', out);
        n++;
        size_t k;
        json_t *s;
        json_array_foreach(json_object_get(t, "scopes"), k, s)
        {
            fprintf(out, "%*sscope%s", depth * 2 + 2, "",
                    json_is_true(json_object_get(s, "shield")) ? " (shielded)"
                                                               : "");
            print_deadline(out, s);
            if (json_is_true(json_object_get(s, "cancelled")))
                fputs(", cancelled", out);
            fputc('\n', out);
            n++;
        }
        n += print_groups(out, json_object_get(t, "groups"), depth + 1);
        n += print_ops(out, json_object_get(t, "operations"), depth + 1);
    }
    return n;
}

static size_t print_groups(FILE *out, json_t *groups, int depth)
{
    size_t i, n = 0;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        const char *name = str(g, "name");
        fprintf(out,
                "%*sgroup %s%s(made at %s): %" JSON_INTEGER_FORMAT
                " running, %" JSON_INTEGER_FORMAT " queued",
                depth * 2, "", name, *name ? " " : "", str(g, "made_at"),
                json_integer_value(json_object_get(g, "running")),
                json_integer_value(json_object_get(g, "queued")));
        json_int_t limit = json_integer_value(json_object_get(g, "limit"));
        if (limit)
            fprintf(out, ", limit %" JSON_INTEGER_FORMAT, limit);
        print_deadline(out, g);
        if (json_is_true(json_object_get(g, "cancelled")))
            fputs(", cancelled", out);
        fputc('\n', out);
        n++;
        n += print_tasks(out, json_object_get(g, "tasks"), depth + 1);
        n += print_groups(out, json_object_get(g, "groups"), depth + 1);
        n += print_ops(out, json_object_get(g, "operations"), depth + 1);
    }
    return n;
}

size_t pact_loop_dump(pact_loop *loop, FILE *out)
{
    if (!loop || !out) {
        pact__misuse("pact_loop_dump", PACT_EINVAL, "loop or out is NULL");
        return 0;
    }
    if (pact__misuse_thread(loop, "pact_loop_dump"))
        return 0;
    json_t *j = build(loop);
    if (!j) {
        fputs("pact: dump of loop: out of memory\n", out);
        return 0;
    }
    fprintf(out,
            "pact: dump of loop: %" JSON_INTEGER_FORMAT
            " task(s), %" JSON_INTEGER_FORMAT " group(s), %" JSON_INTEGER_FORMAT
            " operation(s)\n",
            json_integer_value(json_object_get(j, "tasks")),
            json_integer_value(json_object_get(j, "groups")),
            json_integer_value(json_object_get(j, "operations")));
    size_t n = print_groups(out, json_object_get(j, "groups_tree"), 1);
    n += print_tasks(out, json_object_get(j, "tasks_tree"), 1);
    n += print_ops(out, json_object_get(j, "operations_tree"), 1);
    if (!n)
        fputs("  nothing\n", out);
    fflush(out);
    json_decref(j);
    return n;
}

/* ---- on a signal ----------------------------------------------------------
 */

static void on_dump_signal(evutil_socket_t sig, short what, void *ud)
{
    (void)sig;
    (void)what;
    struct pact__groups *gs = ud;
    bool was = pact__own_begin(gs->loop);
    pact_loop_dump(gs->loop, stderr);
    pact__own_end(gs->loop, was);
}

int pact_loop_dump_on_signal(pact_loop *loop, int signum)
{
    PACT_CHECK_LOOP(loop, "pact_loop_dump_on_signal");
    PACT_CHECK_THREAD(loop, "pact_loop_dump_on_signal");
    if (signum < 0 || signum >= NSIG)
        return pact__misuse("pact_loop_dump_on_signal", PACT_EINVAL,
                            "not a signal number");
    struct pact__groups *gs = pact__groups_of(loop);
    if (!gs)
        return PACT_ENOMEM;
    if (gs->dump_ev) {
        event_free(gs->dump_ev);
        pact__own_event_removed(loop);
        gs->dump_ev = NULL;
        gs->dump_signum = 0;
    }
    if (!signum)
        return 0;
    gs->dump_ev = evsignal_new(loop->base, signum, on_dump_signal, gs);
    if (!gs->dump_ev)
        return PACT_ENOMEM;
    if (event_add(gs->dump_ev, NULL) < 0) {
        event_free(gs->dump_ev);
        gs->dump_ev = NULL;
        return pact__misuse("pact_loop_dump_on_signal", PACT_EINVAL,
                            "libevent refused the signal (another loop "
                            "watches signals?)");
    }
    pact__own_event_added(loop);
    gs->dump_signum = signum;
    return 0;
}

/* PACT_DUMP_SIGNAL, read as each loop is made. */
static int env_dump(pact_loop *loop)
{
    const char *v = getenv("PACT_DUMP_SIGNAL");
    if (!v || !*v)
        return 0;
    static const struct {
        const char *name;
        int num;
    } names[] = {{"USR1", SIGUSR1},
                 {"USR2", SIGUSR2},
                 {"HUP", SIGHUP},
                 {"QUIT", SIGQUIT},
                 {"WINCH", SIGWINCH}};
    const char *n = strncmp(v, "SIG", 3) == 0 ? v + 3 : v;
    int signum = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(n, names[i].name) == 0)
            signum = names[i].num;
    if (!signum) {
        char *end;
        long l = strtol(v, &end, 10);
        if (*end || l <= 0 || l >= NSIG) {
            fprintf(stderr,
                    "pact: PACT_DUMP_SIGNAL=%s is not a signal (a number, "
                    "or USR1, USR2, HUP, QUIT, WINCH); no dump on a "
                    "signal\n",
                    v);
            return 0;
        }
        signum = (int)l;
    }
    if (pact_loop_dump_on_signal(loop, signum) < 0)
        fprintf(stderr,
                "pact: PACT_DUMP_SIGNAL=%s: the signal could not "
                "be watched (another loop watches it?)\n",
                v);
    return 0;
}

__attribute__((constructor)) static void register_env_dump(void)
{
    pact__on_loop_new(PACT__SVC_GROUPS, env_dump);
}
