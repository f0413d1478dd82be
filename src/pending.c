/* pact_loop_print_pending: what keeps a loop alive or from being freed, as
 * a program's author needs to see it when pact_loop_free says PACT_EBUSY (as
 * uv_print_all_handles). */
#include "internal.h"

#include <dlfcn.h>
#include <inttypes.h>

void pact__describe_call(char *buf, size_t len, void (*fn)(void), void *ud)
{
    Dl_info info;
    /* dladdr names the nearest symbol below: only an exact one counts */
    if (fn && dladdr((void *)(uintptr_t)fn, &info) && info.dli_sname &&
        (uintptr_t)info.dli_saddr == (uintptr_t)fn)
        snprintf(buf, len, "%s(%p)", info.dli_sname, ud);
    else if (fn)
        snprintf(buf, len, "%p(%p)", (void *)(uintptr_t)fn, ud);
    else
        snprintf(buf, len, "nothing");
}

static size_t print_list(const struct pact__list *head, const char *state,
                         FILE *out)
{
    size_t n = 0;
    for (const struct pact__list *l = head->next; l != head; l = l->next) {
        const struct pact__op *op =
            pact__list_entry(l, const struct pact__op, node);
        char more[256] = "";
        if (op->type->describe)
            op->type->describe(op, more, sizeof more);
        fprintf(out, "  %s%s%s%s%s\n", pact__op_what(op), more[0] ? ": " : "",
                more, state,
                op->state == PACT__OP_STOPPING ? " (cancelled, still running)"
                                               : "");
        n++;
    }
    return n;
}

size_t pact_loop_print_pending(pact_loop *loop, FILE *out)
{
    if (!loop || !out || pact__misuse_thread(loop, "pact_loop_print_pending"))
        return 0;
    fprintf(out, "pact: loop %p: pending\n", (void *)loop);
    size_t n = pact__slots_print(loop, out);
    n += print_list(&loop->ops, "", out);
    n += print_list(&loop->op_due, " (cancelled, its call due)", out);
    n += pact__slots_print_closing(loop, out);
    for (int i = PACT__SERVICES - 1; i >= 0; i--) {
        const struct pact__service_ops *ops = loop->services[i].ops;
        if (ops && ops->print)
            n += ops->print(loop, loop->services[i].state, out);
    }
    if (!n)
        fputs("  nothing\n", out);
    return n;
}
