/* The stall probes' slow paths (the fast ones are inline in internal.h):
 * nested labels pushed and popped by the layers above (a promise reaction,
 * a task step, an async function step) while a watchdog watches the loop.
 * The watchdog itself is a service above the core (stall.c). */
#include "internal.h"

static void label_words(const struct pact__label *l, uintptr_t w[PACT__LW_N])
{
    w[PACT__LW_KIND] = (uintptr_t)l->kind;
    w[PACT__LW_FN] = (uintptr_t)l->fn;
    w[PACT__LW_UD] = (uintptr_t)l->ud;
    w[PACT__LW_NAME] = (uintptr_t)l->name;
    w[PACT__LW_FILE] = (uintptr_t)l->file;
    w[PACT__LW_AT_FILE] = (uintptr_t)l->at_file;
    w[PACT__LW_LINES] = (uintptr_t)((uint64_t)(uint32_t)l->line |
                                    (uint64_t)(uint32_t)l->at_line << 32);
}

/* Rewrite the label between an odd and an even nest. */
static void rewrite(struct pact__stall *s, const uintptr_t w[PACT__LW_N],
                    uint64_t n)
{
    for (int i = 0; i < PACT__LW_N; i++)
        pact__label_store(s, i, w[i]);
    atomic_store_explicit(&s->nest, n + 2, memory_order_release);
}

void pact__label_push_(struct pact__stall *s, const struct pact__label *l,
                       struct pact__label_save *save)
{
    uintptr_t w[PACT__LW_N];
    for (int i = 0; i < PACT__LW_N; i++)
        save->w[i] = atomic_load_explicit(&s->label[i], memory_order_relaxed);
    save->on = true;
    save->user = l->name != NULL;
    label_words(l, w);
    uint64_t n = atomic_load_explicit(&s->nest, memory_order_relaxed);
    atomic_store_explicit(&s->nest, n + 1, memory_order_release);
    rewrite(s, w, n);
}

void pact__label_pop_(struct pact__stall *s, struct pact__label_save *save)
{
    uint64_t n = atomic_load_explicit(&s->nest, memory_order_relaxed);
    if (save->user) {
        /* the name dies with the task: if the watchdog pinned this label
         * before seeing nest move, wait until it has copied the name */
        atomic_store_explicit(&s->nest, n + 1, memory_order_seq_cst);
        if (atomic_load_explicit(&s->pinned, memory_order_seq_cst) == n)
            s->wait_copy(s);
    } else {
        atomic_store_explicit(&s->nest, n + 1, memory_order_release);
    }
    rewrite(s, save->w, n);
}
