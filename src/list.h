/* Intrusive circular doubly-linked lists (libuv's queue.h, the kernel's
 * list.h): the node lives in the object, so linking allocates nothing and
 * unlinking needs no search. A head is a node whose neighbours are itself
 * when the list is empty; pact__list_entry gets back to the object. */
#ifndef PACT_LIST_H
#define PACT_LIST_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

struct pact__list {
    struct pact__list *next, *prev;
};

#define pact__list_entry(node, type, field)                                    \
    ((type *)(void *)((char *)(node)-offsetof(type, field)))

/* Walk @p head; @p n may be unlinked inside the body (@p tmp keeps the next).
 */
#define pact__list_each(n, tmp, head)                                          \
    for ((n) = (head)->next, (tmp) = (n)->next; (n) != (head);                 \
         (n) = (tmp), (tmp) = (n)->next)

static inline void pact__list_init(struct pact__list *h)
{
    h->next = h->prev = h;
}

static inline bool pact__list_empty(const struct pact__list *h)
{
    return h->next == h;
}

/* Also true of a node after pact__list_remove: it is its own list. */
static inline bool pact__list_linked(const struct pact__list *n)
{
    return n->next != n;
}

static inline void pact__list_insert_(struct pact__list *n,
                                      struct pact__list *prev,
                                      struct pact__list *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void pact__list_push_back(struct pact__list *h,
                                        struct pact__list *n)
{
    pact__list_insert_(n, h->prev, h);
}

static inline void pact__list_push_front(struct pact__list *h,
                                         struct pact__list *n)
{
    pact__list_insert_(n, h, h->next);
}

/* Unlink @p n and leave it an empty list of its own, so that removing it
 * twice is harmless and pact__list_linked tells. */
static inline void pact__list_remove(struct pact__list *n)
{
    assert(n->next && n->prev);
    n->prev->next = n->next;
    n->next->prev = n->prev;
    pact__list_init(n);
}

/* The first node, or NULL. */
static inline struct pact__list *pact__list_first(const struct pact__list *h)
{
    return pact__list_empty(h) ? NULL : h->next;
}

/* Move every node of @p from to the end of @p to; @p from is left empty. */
static inline void pact__list_splice(struct pact__list *to,
                                     struct pact__list *from)
{
    if (pact__list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    pact__list_init(from);
}

#endif
