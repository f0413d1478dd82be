/* Error codes (one table: names, messages), error objects, misuse reports,
 * and the version functions. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "symbol.h"

struct pact_error {
    atomic_int refs;
    int code;
    int line;
    const char *file;
    pact_error *cause;
    size_t nerrs; /* an aggregate's errors (owned references) */
    pact_error **errs;
    const void *site;    /* the program's call that started the failed
                            operation (pact__error_site), or NULL */
    const char *message; /* text, or a literal for the shared ENOMEM */
    char text[];         /* NUL-terminated, allocated with the error */
};

const char *pact_strerror(int code)
{
    switch (code) {
#define PACT_STRERROR_(name, value, msg)                                       \
    case PACT_##name:                                                          \
        return msg;
        PACT_ERRNO_MAP(PACT_STRERROR_)
#undef PACT_STRERROR_
    }
    return "unknown error";
}

const char *pact_err_name(int code)
{
    switch (code) {
#define PACT_ERR_NAME_(name, value, msg)                                       \
    case PACT_##name:                                                          \
        return #name;
        PACT_ERRNO_MAP(PACT_ERR_NAME_)
#undef PACT_ERR_NAME_
    }
    return "EUNKNOWN";
}

static pact_error *make(const char *file, int line, pact_error *cause, int code,
                        const char *fmt, va_list ap)
{
    char small[256];
    const char *msg = pact_strerror(code);
    char *big = NULL;
    if (fmt && *fmt) {
        va_list again;
        va_copy(again, ap);
        int n = vsnprintf(small, sizeof small, fmt, ap);
        msg = small;
        if (n >= (int)sizeof small && (big = malloc((size_t)n + 1))) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            msg = big;
        }
        va_end(again);
    }
    size_t len = strlen(msg);
    pact_error *err = malloc(sizeof *err + len + 1);
    if (err) {
        atomic_init(&err->refs, 1);
        err->code = code;
        err->file = file;
        err->line = line;
        err->cause = pact_error_ref(cause);
        err->nerrs = 0;
        err->errs = NULL;
        err->site = NULL;
        memcpy(err->text, msg, len + 1);
        err->message = err->text;
    }
    free(big);
    return err;
}

pact_error *pact_error_new_at(const char *file, int line, pact_error *cause,
                              int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pact_error *err = make(file, line, cause, code, fmt, ap);
    va_end(ap);
    return err;
}

pact_error *pact_error_aggregate_at(const char *file, int line,
                                    pact_error *const *errs, size_t n,
                                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pact_error *err = make(file, line, NULL, PACT_EAGGREGATE, fmt, ap);
    va_end(ap);
    if (!err || !n)
        return err;
    err->errs = malloc(n * sizeof *err->errs);
    if (!err->errs) {
        free(err);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        err->errs[i] = pact_error_ref(errs[i]);
    err->nerrs = n;
    return err;
}

size_t pact_error_count(const pact_error *err)
{
    return err ? err->nerrs : 0;
}

pact_error *pact_error_at(const pact_error *err, size_t i)
{
    return err && i < err->nerrs ? err->errs[i] : NULL;
}

pact_error *pact_error_ref(pact_error *err)
{
    if (err)
        atomic_fetch_add_explicit(&err->refs, 1, memory_order_relaxed);
    return err;
}

void pact_error_unref(pact_error *err)
{
    /* iterative, so a long cause chain cannot overflow the stack */
    while (err && atomic_fetch_sub_explicit(&err->refs, 1,
                                            memory_order_acq_rel) == 1) {
        pact_error *cause = err->cause;
        for (size_t i = 0; i < err->nerrs; i++)
            pact_error_unref(err->errs[i]);
        free(err->errs);
        free(err);
        err = cause;
    }
}

int pact_error_code(const pact_error *err)
{
    return err ? err->code : 0;
}

const char *pact_error_message(const pact_error *err)
{
    return err ? err->message : "";
}

pact_error *pact_error_cause(const pact_error *err)
{
    return err ? err->cause : NULL;
}

const char *pact_error_file(const pact_error *err)
{
    return err ? err->file : NULL;
}

int pact_error_line(const pact_error *err)
{
    return err ? err->line : 0;
}

const void *pact_error_site(const pact_error *err)
{
    return err ? err->site : NULL;
}

static pact_error enomem;

pact_error *pact__error_site(pact_error *err, const void *site)
{
    if (err && site && !err->site && err != &enomem &&
        atomic_load_explicit(&err->refs, memory_order_acquire) == 1)
        err->site = site;
    return err;
}

/* ", started at FILE:LINE (FUNCTION)", named as well as the build can
 * (symbol.h): without debug information, the object file and offset. */
static void print_site(const void *site, FILE *out)
{
    struct pact__codeloc w;
    if (!pact__symbolize(site, true, &w)) {
        fprintf(out, ", started at %p", site);
    } else if (w.src[0]) {
        fprintf(out, ", started at %s:%d", w.src, w.line);
        if (w.fn[0])
            fprintf(out, " (%s)", w.fn);
    } else {
        fprintf(out, ", started at %s+0x%" PRIxPTR, w.obj[0] ? w.obj : "?",
                w.off);
        if (w.fn[0])
            fprintf(out, " (%s)", w.fn);
    }
}

static void print_at(const pact_error *err, FILE *out, int indent)
{
    for (int depth = 0; err; err = err->cause, depth++) {
        fprintf(out, "%*s%s%s: %s", indent, "", depth ? "  caused by: " : "",
                pact_err_name(err->code), err->message);
        if (err->file)
            fprintf(out, " (at %s:%d)", err->file, err->line);
        if (err->site)
            print_site(err->site, out);
        fputc('\n', out);
        /* under its own line, deeper than a "caused by:" at this level */
        int base = indent + (depth ? 2 : 0);
        for (size_t i = 0; i < err->nerrs; i++) {
            fprintf(out, "%*s  [%zu]:\n", base, "", i);
            print_at(err->errs[i], out, base + 4);
        }
    }
}

void pact_error_print(const pact_error *err, FILE *out)
{
    print_at(err, out, 0);
}

/* Its own reference is never dropped, so it is never freed. */
static pact_error enomem = {
    .refs = 1, .code = PACT_ENOMEM, .message = "out of memory"};

pact_error *pact__enomem(void)
{
    return pact_error_ref(&enomem);
}

int pact__misuse_always(const char *fn, int code, const char *why)
{
    fprintf(stderr, "pact: %s(): %s (%s)\n", fn, why, pact_err_name(code));
    return code;
}

/* Whether misuse is printed: always in an --enable-debug build, else when
 * the environment says PACT_DEBUG (any value but empty or "0"). getenv is
 * read once per process: 0 not read yet, 1 off, 2 on. Racing first readers
 * store the same answer, hence relaxed. */
static bool debug_printing(void)
{
#ifdef PACT_DEBUG
    return true;
#else
    static atomic_int state;
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (s == 0) {
        const char *env = getenv("PACT_DEBUG");
        s = env && *env && strcmp(env, "0") != 0 ? 2 : 1;
        atomic_store_explicit(&state, s, memory_order_relaxed);
    }
    return s == 2;
#endif
}

int pact__misuse(const char *fn, int code, const char *why)
{
    if (code != PACT_ETHREAD && !debug_printing())
        return code;
    fprintf(stderr, "pact: %s(): %s (%s)\n", fn, why, pact_err_name(code));
    return code;
}

unsigned pact_version(void)
{
    return PACT_VERSION_HEX;
}

const char *pact_version_string(void)
{
    return PACT_VERSION_STRING;
}
