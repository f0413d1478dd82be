/* Naming code addresses (symbol.h): dladdr for the object file and an
 * exported symbol, then, when built with elfutils' libdw, the debug
 * information for the function (static ones too) and its file:line.
 *
 * A libdw session (Dwfl) is made from /proc/self/maps when an address is
 * not in the cache, reported again when an address falls in no module (a
 * library loaded since), and closed after the lookup (or, between
 * pact__symbolize_hold(true) and (false), after the last of a batch): what
 * libdw reads is not kept for the process's life. libdw is not thread-safe: one
 * lock covers the session and the cache of answers (a small direct-mapped
 * table), and pthread_atfork keeps a fork from leaving it held in the child.
 * Nothing here runs in a signal handler: the stall detector's handler only
 * records addresses, which are named later on the watchdog thread. */
#include "symbol.h"

#include <dlfcn.h>
#ifdef HAVE_DLADDR1
#include <link.h> /* ElfW */
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#endif

#define CACHE_SIZE 64 /* a power of two */

struct entry {
    const void *addr;
    bool is_return;
    bool used;
    bool found;
    struct pact__codeloc w;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct entry *cache; /* CACHE_SIZE entries, made on first use */

static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_after(void)
{
    pthread_mutex_unlock(&lock);
}

static void init(void)
{
    pthread_atfork(fork_prepare, fork_after, fork_after);
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

#ifdef HAVE_LIBDW
/* "/a/b/../../c/./d.c" -> "/c/d.c", lexically (symlinks are not looked
 * at: this is for reading), in place. A relative path keeps its leading
 * "..". */
static void tidy_path(char *p)
{
    char buf[sizeof((struct pact__codeloc *)0)->src];
    const char *seg[64];
    size_t len[64];
    int n = 0;
    bool abs = p[0] == '/';
    copy(buf, sizeof buf, p);
    for (char *s = buf; *s;) {
        char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == 0 || (l == 1 && s[0] == '.')) {
            /* skip */
        } else if (l == 2 && s[0] == '.' && s[1] == '.' && n > 0 &&
                   !(len[n - 1] == 2 && seg[n - 1][0] == '.' &&
                     seg[n - 1][1] == '.')) {
            n--;
        } else if (n < 64) {
            seg[n] = s;
            len[n++] = l;
        } else {
            return; /* too deep to bother: left as it is */
        }
        if (!e)
            break;
        s = e + 1;
    }
    size_t at = 0, cap = sizeof buf;
    char out[sizeof buf];
    if (abs)
        out[at++] = '/';
    for (int i = 0; i < n && at + len[i] + 2 < cap; i++) {
        if (i)
            out[at++] = '/';
        memcpy(out + at, seg[i], len[i]);
        at += len[i];
    }
    out[at] = '\0';
    strcpy(p, out);
}

static Dwfl *dwfl;        /* the open session, or NULL */
static int session_holds; /* pact__symbolize_hold: keep the session open */

/* Whether @p file is a system library (or a pseudo-module, the vDSO):
 * named from its symbol table only. Its debug information -- a -dbg
 * package's separate file, libasan's embedded one, debuginfod for the vDSO
 * -- took up to a second to load on a loaded machine under a sanitizer,
 * while the stall watchdog that asked was blind to the loop; and its
 * source lines are the system's, not the program's. */
static bool system_object(const char *file)
{
    static const char *const dirs[] = {"/lib/", "/lib64/", "/usr/lib/",
                                       "/usr/lib64/"};
    if (!file || file[0] != '/')
        return true;
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if (!strncmp(file, dirs[i], strlen(dirs[i])))
            return true;
    return false;
}

static int find_debuginfo(Dwfl_Module *mod, void **ud, const char *modname,
                          Dwarf_Addr base, const char *file,
                          const char *debuglink, GElf_Word crc, char **out)
{
    if (system_object(file))
        return -1;
    return dwfl_standard_find_debuginfo(mod, ud, modname, base, file, debuglink,
                                        crc, out);
}

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = find_debuginfo,
};

/* (Re)read the process's modules into the session; under the lock. */
static bool report(void)
{
    dwfl_report_begin(dwfl);
    int rc = dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, NULL, NULL);
    return rc == 0;
}

/* The session, made and filled on first use; under the lock. */
static bool session(void)
{
    if (dwfl)
        return true;
    if (!(dwfl = dwfl_begin(&dwfl_callbacks)))
        return false;
    if (!report()) {
        dwfl_end(dwfl);
        dwfl = NULL;
    }
    return dwfl != NULL;
}

/* Close the session unless held: what libdw read is freed (it would
 * otherwise stay for the process's life, and show in valgrind as lost:
 * libdw's trees tag their pointers). Under the lock. */
static void session_done(void)
{
    if (dwfl && session_holds == 0) {
        dwfl_end(dwfl);
        dwfl = NULL;
    }
}

/* Where the function that starts at @p pc is defined (its declaration's
 * file:line): what names a callback, where the line table would give the
 * line of its first instruction (in an optimised build, a line inside it). */
static const char *declared_at(Dwfl_Module *m, Dwarf_Addr pc, int *line)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(m, pc, &bias);
    Dwarf_Die *scopes = NULL;
    int n = cu ? dwarf_getscopes(cu, pc - bias, &scopes) : 0;
    const char *file = NULL;
    for (int i = 0; i < n; i++) {
        Dwarf_Addr low;
        if (dwarf_tag(&scopes[i]) == DW_TAG_subprogram &&
            dwarf_lowpc(&scopes[i], &low) == 0 && low == pc - bias) {
            file = dwarf_decl_file(&scopes[i]);
            if (dwarf_decl_line(&scopes[i], line) != 0)
                file = NULL;
            break;
        }
    }
    free(scopes);
    return file;
}

/* The function whose code holds @p pc, inlined ones included (the
 * symbol table knows only the function they were inlined into). */
static bool innermost_function(Dwfl_Module *m, Dwarf_Addr pc, char *out,
                               size_t cap)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(m, pc, &bias);
    Dwarf_Die *scopes = NULL;
    int n = cu ? dwarf_getscopes(cu, pc - bias, &scopes) : 0;
    bool found = false;
    for (int i = 0; i < n && !found; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
            continue;
        Dwarf_Attribute a;
        const char *name =
            dwarf_formstring(dwarf_attr_integrate(&scopes[i], DW_AT_name, &a));
        if (name) {
            copy(out, cap, name);
            found = true;
        }
    }
    free(scopes);
    return found;
}

static void dw_lookup(uintptr_t a, bool is_return, struct pact__codeloc *w,
                      bool *found)
{
    if (!session())
        return;
    Dwarf_Addr pc = (Dwarf_Addr)(a - (is_return ? 1 : 0));
    Dwfl_Module *m = dwfl_addrmodule(dwfl, pc);
    if (!m && report()) /* a library loaded since */
        m = dwfl_addrmodule(dwfl, pc);
    if (!m)
        return;
    if (!w->fn_exact) { /* dladdr found no exported symbol starting here */
        GElf_Off off = 0;
        GElf_Sym sym;
        const char *name =
            dwfl_module_addrinfo(m, pc, &off, &sym, NULL, NULL, NULL);
        if (name) {
            copy(w->fn, sizeof w->fn, name);
            w->fn_exact = off == 0 && !is_return;
            *found = true;
        }
    }
    const char *file = NULL;
    dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, &file, NULL);
    if (system_object(file ? file : w->obj))
        return; /* its symbol is enough (system_object) */
    if (is_return && innermost_function(m, pc, w->fn, sizeof w->fn))
        *found = true;
    int line = 0;
    const char *src = is_return ? NULL : declared_at(m, pc, &line);
    if (!src) { /* a return address, or no such function: the line table */
        Dwfl_Line *l = dwfl_module_getsrc(m, pc);
        src = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
    }
    if (src && line > 0) {
        copy(w->src, sizeof w->src, src);
        tidy_path(w->src);
        w->line = line;
        *found = true;
    }
}
#endif

void pact__symbolize_hold(bool on)
{
#ifdef HAVE_LIBDW
    pthread_once(&once, init);
    pthread_mutex_lock(&lock);
    session_holds += on ? 1 : -1;
    session_done();
    pthread_mutex_unlock(&lock);
#else
    (void)on;
#endif
}

static bool lookup(const void *addr, bool is_return, struct pact__codeloc *w)
{
    bool found = false;
    memset(w, 0, sizeof *w);
    /* a return address names the call before it */
    uintptr_t pc = (uintptr_t)addr - (is_return ? 1 : 0);
    Dl_info info;
#ifdef HAVE_DLADDR1
    const ElfW(Sym) *sym = NULL;
    int ok = dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT);
#else
    int ok = dladdr(addr, &info);
#endif
    if (ok) {
        copy(w->obj, sizeof w->obj, info.dli_fname);
        w->off = (uintptr_t)addr - (uintptr_t)info.dli_fbase;
        found = true;
        /* dladdr gives the nearest exported symbol below: the function
         * only if it starts at a function pointer, or (its size known
         * through dladdr1) holds pc */
        bool exact = info.dli_sname && info.dli_saddr == addr && !is_return;
        bool holds = exact;
#ifdef HAVE_DLADDR1
        if (info.dli_sname && sym &&
            pc - (uintptr_t)info.dli_saddr < (uintptr_t)sym->st_size)
            holds = true;
#endif
        if (holds) {
            copy(w->fn, sizeof w->fn, info.dli_sname);
            w->fn_exact = exact;
        }
    }
    (void)pc;
#ifdef HAVE_LIBDW
    dw_lookup((uintptr_t)addr, is_return, w, &found);
#endif
    return found;
}

/* The cache is the process's, not a loop's: freed at exit so that leak
 * checkers see nothing left (a thread still symbolizing holds the lock). */
__attribute__((destructor)) static void cache_free(void)
{
    pthread_mutex_lock(&lock);
    free(cache);
    cache = NULL;
    pthread_mutex_unlock(&lock);
}

bool pact__symbolize(const void *addr, bool is_return,
                     struct pact__codeloc *out)
{
    if (!addr || !out) {
        if (out)
            memset(out, 0, sizeof *out);
        return false;
    }
    pthread_once(&once, init);
    pthread_mutex_lock(&lock);
    if (!cache)
        cache = calloc(CACHE_SIZE, sizeof *cache);
    uintptr_t h = (uintptr_t)addr;
    h = (h ^ (h >> 7) ^ (h >> 17)) & (CACHE_SIZE - 1);
    struct entry *e = cache ? &cache[h] : NULL;
    bool found;
    if (e && e->used && e->addr == addr && e->is_return == is_return) {
        *out = e->w;
        found = e->found;
    } else {
        found = lookup(addr, is_return, out);
#ifdef HAVE_LIBDW
        session_done();
#endif
        if (e) {
            e->addr = addr;
            e->is_return = is_return;
            e->used = true;
            e->found = found;
            e->w = *out;
        }
    }
    pthread_mutex_unlock(&lock);
    return found;
}
