/* Error codes (one table: names, messages), error objects, misuse reports,
 * and the version functions. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct pact_error {
    atomic_int refs;
    int code;
    int line;
    const char *file;
    pact_error *cause;
    char message[]; /* NUL-terminated, allocated with the error */
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

pact_error *pact_error_new_at(const char *file, int line, pact_error *cause,
                              int code, const char *fmt, ...)
{
    char small[256];
    const char *msg = pact_strerror(code);
    char *big = NULL;
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof small, fmt, ap);
        va_end(ap);
        msg = small;
        if (n >= (int)sizeof small && (big = malloc((size_t)n + 1))) {
            va_start(ap, fmt);
            vsnprintf(big, (size_t)n + 1, fmt, ap);
            va_end(ap);
            msg = big;
        }
    }
    size_t len = strlen(msg);
    pact_error *err = malloc(sizeof *err + len + 1);
    if (err) {
        atomic_init(&err->refs, 1);
        err->code = code;
        err->file = file;
        err->line = line;
        err->cause = pact_error_ref(cause);
        memcpy(err->message, msg, len + 1);
    }
    free(big);
    return err;
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

void pact_error_print(const pact_error *err, FILE *out)
{
    for (int depth = 0; err; err = err->cause, depth++) {
        fprintf(out, "%s%s: %s", depth ? "  caused by: " : "",
                pact_err_name(err->code), err->message);
        if (err->file)
            fprintf(out, " (at %s:%d)", err->file, err->line);
        fputc('\n', out);
    }
}

int pact__misuse(const char *fn, int code, const char *why)
{
#ifndef PACT_DEBUG
    if (code != PACT_ETHREAD)
        return code;
#endif
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
