/* switch_check: the task stack switch on its own, without libpact. It links
 * the context sources directly and checks, for the configured switch and --
 * when that is the assembly one -- for ucontext too: that entry gets its
 * argument, that thousands of switches among the main stack and three
 * contexts land where they should, that every callee-saved register
 * survives a switch (loaded with known values by a per-arch assembly helper,
 * since C cannot make the compiler keep values in those registers), that
 * the floating-point control words are per context, that a new context
 * starts with the stack pointer aligned as the ABI requires, and that it
 * runs inside the stack it was given. One line per check; exit status 1 on
 * any failure.
 *
 * Built by make check (test/switch_check: the ucontext switch is linked
 * beside the configured assembly one) and, for aarch64 under qemu, by
 * test/cross-aarch64.sh. Every switch is announced to ASan and TSan as
 * src/task.c does, and every stack registered with valgrind as src/stack.c
 * does, so the check also runs clean under those. */
#ifndef PACT_CONTEXT_BOTH
#define PACT_CONTEXT_BOTH 1 /* both switches' declarations */
#endif
#include "context.h"

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if PACT_CONTEXT_ASM
#define HAVE_ASM 1 /* configured: src/context_asm.c, switch_<arch>.S linked */
#endif

#include "sys.h" /* sanitizers and valgrind, as the library sees them */
#if defined(PACT__ASAN_BUILD) && defined(HAVE_SANITIZER_ASAN_INTERFACE_H)
#include <sanitizer/asan_interface.h>
#define CHECK_ASAN 1
#endif
#if defined(PACT__TSAN_BUILD) && defined(HAVE_SANITIZER_TSAN_INTERFACE_H)
#include <sanitizer/tsan_interface.h>
#define CHECK_TSAN 1
#endif

#define NOINLINE __attribute__((noinline))
#define STACK_SIZE (128 * 1024)
#define PATTERN 0xA5
#define RING_STEPS 12000 /* switches per ring run */

/* ---- the per-arch helpers ----------------------------------------------- */

/* Load vals into the callee-saved registers, call swap(from, to), and when
 * it returns store those registers to out (then restore the caller's). */
void swcheck_regs(void (*swap)(void), void *from, const void *to,
                  const uint64_t *vals, uint64_t *out);
/* The caller's stack pointer at the call: 16-aligned on both ABIs. */
uintptr_t swcheck_sp(void);

#if defined(__x86_64__)
static const char *const reg_names[] = {"rbx", "rbp", "r12",
                                        "r13", "r14", "r15"};
/* rdi = swap, rsi = from, rdx = to, rcx = vals, r8 = out. Seven pushes
 * leave rsp 16-aligned for the call. */
__asm__(".text\n"
        ".globl swcheck_regs\n"
        ".hidden swcheck_regs\n"
        ".type swcheck_regs, @function\n"
        ".p2align 4\n"
        "swcheck_regs:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  pushq %r8\n"
        "  movq %rdi, %rax\n"
        "  movq %rsi, %rdi\n"
        "  movq %rdx, %rsi\n"
        "  movq 0(%rcx), %rbx\n"
        "  movq 8(%rcx), %rbp\n"
        "  movq 16(%rcx), %r12\n"
        "  movq 24(%rcx), %r13\n"
        "  movq 32(%rcx), %r14\n"
        "  movq 40(%rcx), %r15\n"
        "  callq *%rax\n"
        "  popq %rax\n"
        "  movq %rbx, 0(%rax)\n"
        "  movq %rbp, 8(%rax)\n"
        "  movq %r12, 16(%rax)\n"
        "  movq %r13, 24(%rax)\n"
        "  movq %r14, 32(%rax)\n"
        "  movq %r15, 40(%rax)\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size swcheck_regs, .-swcheck_regs\n"
        ".globl swcheck_sp\n"
        ".hidden swcheck_sp\n"
        ".type swcheck_sp, @function\n"
        ".p2align 4\n"
        "swcheck_sp:\n"
        "  leaq 8(%rsp), %rax\n"
        "  ret\n"
        ".size swcheck_sp, .-swcheck_sp\n");
#define HAVE_REGS 1
#elif defined(__aarch64__)
static const char *const reg_names[] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};
/* x0 = swap, x1 = from, x2 = to, x3 = vals, x4 = out. */
__asm__(".text\n"
        ".globl swcheck_regs\n"
        ".hidden swcheck_regs\n"
        ".type swcheck_regs, %function\n"
        ".p2align 4\n"
        "swcheck_regs:\n"
        "  stp x29, x30, [sp, #-176]!\n"
        "  mov x29, sp\n"
        "  stp x19, x20, [sp, #16]\n"
        "  stp x21, x22, [sp, #32]\n"
        "  stp x23, x24, [sp, #48]\n"
        "  stp x25, x26, [sp, #64]\n"
        "  stp x27, x28, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n"
        "  stp d10, d11, [sp, #112]\n"
        "  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n"
        "  str x4, [sp, #160]\n"
        "  mov x9, x0\n"
        "  mov x0, x1\n"
        "  mov x1, x2\n"
        "  ldp x19, x20, [x3, #0]\n"
        "  ldp x21, x22, [x3, #16]\n"
        "  ldp x23, x24, [x3, #32]\n"
        "  ldp x25, x26, [x3, #48]\n"
        "  ldp x27, x28, [x3, #64]\n"
        "  ldr x29, [x3, #80]\n"
        "  ldp d8, d9, [x3, #88]\n"
        "  ldp d10, d11, [x3, #104]\n"
        "  ldp d12, d13, [x3, #120]\n"
        "  ldp d14, d15, [x3, #136]\n"
        "  blr x9\n"
        "  ldr x4, [sp, #160]\n"
        "  stp x19, x20, [x4, #0]\n"
        "  stp x21, x22, [x4, #16]\n"
        "  stp x23, x24, [x4, #32]\n"
        "  stp x25, x26, [x4, #48]\n"
        "  stp x27, x28, [x4, #64]\n"
        "  str x29, [x4, #80]\n"
        "  stp d8, d9, [x4, #88]\n"
        "  stp d10, d11, [x4, #104]\n"
        "  stp d12, d13, [x4, #120]\n"
        "  stp d14, d15, [x4, #136]\n"
        "  ldp x19, x20, [sp, #16]\n"
        "  ldp x21, x22, [sp, #32]\n"
        "  ldp x23, x24, [sp, #48]\n"
        "  ldp x25, x26, [sp, #64]\n"
        "  ldp x27, x28, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n"
        "  ldp d10, d11, [sp, #112]\n"
        "  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  ldp x29, x30, [sp], #176\n"
        "  ret\n"
        ".size swcheck_regs, .-swcheck_regs\n"
        ".globl swcheck_sp\n"
        ".hidden swcheck_sp\n"
        ".type swcheck_sp, %function\n"
        ".p2align 4\n"
        "swcheck_sp:\n"
        "  mov x0, sp\n"
        "  ret\n"
        ".size swcheck_sp, .-swcheck_sp\n");
#define HAVE_REGS 1
#endif

#ifdef HAVE_REGS
#define NREGS (sizeof reg_names / sizeof reg_names[0])
#endif

/* The floating-point control state the ABI makes per thread (and pact per
 * context): the rounding mode is all we vary, which valgrind emulates. */
struct fpenv {
    uint32_t a, b; /* x86-64: MXCSR less its flags, x87 control word;
                      aarch64: FPCR */
};

static struct fpenv fp_get(void)
{
    struct fpenv e = {0, 0};
#if defined(__x86_64__)
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(e.a));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    e.a &= ~(uint32_t)0x3F; /* exception flags come and go */
    e.b = cw;
#elif defined(__aarch64__)
    uint64_t r;
    __asm__ volatile("mrs %0, fpcr" : "=r"(r));
    e.a = (uint32_t)r;
#endif
    return e;
}

static void fp_set(struct fpenv e)
{
#if defined(__x86_64__)
    uint16_t cw = (uint16_t)e.b;
    __asm__ volatile("ldmxcsr %0" ::"m"(e.a));
    __asm__ volatile("fldcw %0" ::"m"(cw));
#elif defined(__aarch64__)
    uint64_t r = e.a;
    __asm__ volatile("msr fpcr, %0" ::"r"(r));
#else
    (void)e;
#endif
}

/* Environment k: the default with rounding mode k (0: to nearest). */
static struct fpenv fp_make(unsigned k)
{
    struct fpenv e = {0, 0};
#if defined(__x86_64__)
    e.a = 0x1F80u | (k & 3u) << 13;
    e.b = 0x037Fu | (k & 3u) << 10;
#elif defined(__aarch64__)
    e.a = (k & 3u) << 22;
#else
    (void)k;
#endif
    return e;
}

static bool fp_eq(struct fpenv x, struct fpenv y)
{
    return x.a == y.a && x.b == y.b;
}

/* ---- the switches under test -------------------------------------------- */

union ctx {
#ifdef HAVE_ASM
    pact__asm_ctx a;
#endif
    pact__uctx_ctx u;
};

struct impl {
    const char *name;
    void (*make)(union ctx *c, void *stack, size_t size, pact__entry_fn fn,
                 void *arg);
    void (*swap)(union ctx *from, const union ctx *to);
    void (*raw)(void); /* the switch itself, for swcheck_regs to call */
};

#ifdef HAVE_ASM
static void asm_make(union ctx *c, void *stack, size_t size, pact__entry_fn fn,
                     void *arg)
{
    pact__asm_make(&c->a, stack, size, fn, arg);
}

/* What tasks use: on x86-64 the inline switch, with pact__asm_swap (the
 * same asm in a function) as the register helper's raw switch: the ring
 * runs resume contexts that the other one suspended. */
static void asm_swap(union ctx *from, const union ctx *to)
{
    pact__ctx_swap(&from->a, &to->a);
}
#endif

static void uctx_make(union ctx *c, void *stack, size_t size, pact__entry_fn fn,
                      void *arg)
{
    pact__uctx_make(&c->u, stack, size, fn, arg);
}

static void uctx_swap(union ctx *from, const union ctx *to)
{
    pact__uctx_swap(&from->u, &to->u);
}

static const struct impl impls[] = {
#ifdef HAVE_ASM
    {"asm", asm_make, asm_swap, (void (*)(void))pact__asm_swap},
#endif
    {"ucontext", uctx_make, uctx_swap, (void (*)(void))pact__uctx_swap},
};

/* ---- contexts, and announcing each switch ------------------------------- */

struct fiber {
    union ctx ctx;
    int id;          /* 0 for main */
    char *map;       /* guard page, stack, guard page; NULL for main */
    size_t map_size; /* all of it */
    char *lo;        /* the stack given to make: [lo, lo + size) */
    size_t size;
    unsigned vg;        /* valgrind's stack id */
    void *fake;         /* ASan's fake stack while switched out */
    const void *san_lo; /* the stack as ASan knows it (main's: learned) */
    size_t san_size;
    void *tsan; /* TSan's fiber */
};

static const struct impl *im;
static struct fiber main_f;
static struct fiber *cur = &main_f;  /* running */
static struct fiber *prev = &main_f; /* the one that switched to cur */
/* Switch through swcheck_regs (all but one ring run): it checks the
 * registers and also keeps a broken switch's damage to them from crashing
 * this program before it can say what broke. */
static bool regs_mode = true;
static unsigned long reg_bad, reg_switches, switches;
static char reg_why[160];

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* A context on a fresh stack of STACK_SIZE - trim bytes, PROT_NONE pages on
 * either side and PATTERN in the trimmed bytes above its top. */
static void fiber_new(struct fiber *f, int id, size_t trim, pact__entry_fn fn,
                      void *arg)
{
    size_t page = page_size();
    memset(f, 0, sizeof *f);
    f->id = id;
    f->map_size = STACK_SIZE + 2 * page;
    f->map =
        mmap(NULL, f->map_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f->map == MAP_FAILED ||
        mprotect(f->map + page, STACK_SIZE, PROT_READ | PROT_WRITE) != 0) {
        perror("switch_check: mmap");
        exit(2);
    }
    f->lo = f->map + page;
    f->size = STACK_SIZE - trim;
    memset(f->lo, PATTERN, STACK_SIZE);
    f->san_lo = f->lo;
    f->san_size = f->size;
    f->vg = VALGRIND_STACK_REGISTER(f->lo, f->lo + f->size);
#ifdef CHECK_TSAN
    f->tsan = __tsan_create_fiber(0);
#endif
    im->make(&f->ctx, f->lo, f->size, fn, arg);
}

static void fiber_free(struct fiber *f)
{
    VALGRIND_STACK_DEREGISTER(f->vg);
#ifdef CHECK_TSAN
    __tsan_destroy_fiber(f->tsan);
#endif
#ifdef CHECK_ASAN
    __asan_unpoison_memory_region(f->lo, STACK_SIZE);
#endif
    munmap(f->map, f->map_size);
    f->map = NULL;
}

/* Say where we go (a NULL fake: we never come back) ... */
static void san_leave(struct fiber *self, struct fiber *to, bool for_good)
{
#ifdef CHECK_ASAN
    __sanitizer_start_switch_fiber(for_good ? NULL : &self->fake, to->san_lo,
                                   to->san_size);
#else
    (void)self, (void)for_good;
#endif
#ifdef CHECK_TSAN
    __tsan_switch_to_fiber(to->tsan, 0);
#else
    (void)to;
#endif
}

/* ... and that we arrived, learning the stack we came from. */
static void san_arrive(struct fiber *self)
{
#ifdef CHECK_ASAN
    __sanitizer_finish_switch_fiber(self->fake, &prev->san_lo, &prev->san_size);
#else
    (void)self;
#endif
}

/* Register values unique to the switch and the register. */
static void reg_vals(uint64_t *v, size_t n, int id, unsigned long step)
{
    for (size_t i = 0; i < n; i++)
        v[i] = 0x5A00000000000000u ^ (uint64_t)id << 48 ^ (uint64_t)step << 12 ^
               (uint64_t)(i + 1) * 0x0101;
}

/* Switch from the running context to @p to (until something switches
 * back). */
static void hop(struct fiber *to)
{
    struct fiber *self = cur;
    san_leave(self, to, false);
    prev = self;
    cur = to;
    switches++;
#ifdef HAVE_REGS
    if (regs_mode) {
        uint64_t vals[NREGS], out[NREGS];
        unsigned long step = switches;
        reg_vals(vals, NREGS, self->id, step);
        reg_switches++;
        swcheck_regs(im->raw, &self->ctx, &to->ctx, vals, out);
        san_arrive(self);
        for (size_t i = 0; i < NREGS; i++) {
            if (out[i] != vals[i] && !reg_bad++)
                snprintf(reg_why, sizeof reg_why,
                         "context %d, switch %lu: %s is 0x%016" PRIx64
                         ", was 0x%016" PRIx64,
                         self->id, step, reg_names[i], out[i], vals[i]);
        }
        return;
    }
#endif
    im->swap(&self->ctx, &to->ctx);
    san_arrive(self);
}

/* A context's last switch: back to main, which frees it. */
static void leave(struct fiber *self)
{
    san_leave(self, &main_f, true);
    prev = self;
    cur = &main_f;
    im->swap(&self->ctx, &main_f.ctx);
    abort(); /* nothing switches to a finished context */
}

/* ---- reporting ----------------------------------------------------------- */

static int failures;
static const char *running = "setup"; /* the check under way */

static void begin(const char *what)
{
    running = what;
}

/* The sanitizers have crash handlers of their own, with better reports. */
#if !defined(PACT__ASAN_BUILD) && !defined(PACT__TSAN_BUILD)
static void say(const char *s)
{
    ssize_t n = write(STDOUT_FILENO, s, strlen(s));
    (void)n;
}

/* A broken switch is likelier to crash than to fail a comparison: say in
 * which check (with write: this is a signal handler). */
static void crashed(int sig)
{
    say("FAIL ");
    say(im ? im->name : "");
    say(": ");
    say(running);
    say(sig == SIGSEGV  ? ": crashed (SIGSEGV)\n"
        : sig == SIGBUS ? ": crashed (SIGBUS)\n"
        : sig == SIGILL ? ": crashed (SIGILL)\n"
                        : ": crashed (SIGTRAP)\n");
    _exit(1);
}

/* On a stack of its own: the crash may be in a context's. */
static void catch_crashes(void)
{
    static char alt[64 * 1024];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = crashed;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    if (sigaltstack(&ss, NULL) != 0)
        return;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGTRAP, &sa, NULL);
}
#else
static void catch_crashes(void)
{
}
#endif

static void result(bool ok, const char *what, const char *why)
{
    printf("%s %s: %s", ok ? "ok  " : "FAIL", im->name, what);
    if (!ok && why && *why)
        printf(" (%s)", why);
    printf("\n");
    fflush(stdout);
    if (!ok)
        failures++;
}

/* ---- entry gets its argument --------------------------------------------- */

static void *arg_got;

static void arg_entry(void *arg)
{
    struct fiber *self = cur;
    san_arrive(self);
    arg_got = arg;
    leave(self);
}

static void check_arg(void)
{
    begin("entry gets its argument");
    /* all bits of both 32-bit halves used: makecontext passes ints */
    static const uint64_t vals[] = {0x8123456789ABCDEFu, 0xFFFFFFFF00000001u,
                                    0x00000001FFFFFFFFu};
    char why[120] = "";
    bool ok = true;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        struct fiber f;
        void *want = (void *)(uintptr_t)vals[i];
        arg_got = NULL;
        fiber_new(&f, 1, 0, arg_entry, want);
        hop(&f);
        fiber_free(&f);
        if (arg_got != want && ok) {
            ok = false;
            snprintf(why, sizeof why, "got %p for %p", arg_got, want);
        }
    }
    result(ok, "entry gets its argument", why);
}

/* ---- many switches among main and three contexts ------------------------- */

#define RING 4 /* main and three */
static struct fiber *ring[RING];
static unsigned long ring_step, ring_bad;
static bool ring_quit;

/* Who runs at step s: first round robin (context to context), then main
 * and each context in turn. Main at 0, RING_STEPS / 2 and RING_STEPS. */
static struct fiber *ring_seq(unsigned long s)
{
    if (s < RING_STEPS / 2)
        return ring[s % RING];
    s -= RING_STEPS / 2;
    return s % 2 ? ring[1 + s / 2 % (RING - 1)] : ring[0];
}

/* Take turns until main's last one (or a context is told to quit). */
static void ring_run(struct fiber *self)
{
    for (;;) {
        if (ring_quit)
            return;
        if (ring_seq(ring_step) != self || cur != self)
            ring_bad++;
        if (ring_step == RING_STEPS)
            return;
        ring_step++;
        hop(ring_seq(ring_step));
    }
}

static void ring_entry(void *arg)
{
    struct fiber *self = arg;
    san_arrive(self);
    ring_run(self);
    leave(self);
}

static void run_ring(bool regs)
{
    begin(regs ? "switches through the register helper"
               : "switches called from C");
    struct fiber fs[RING - 1];
    ring[0] = &main_f;
    for (int i = 1; i < RING; i++) {
        fiber_new(&fs[i - 1], i, 0, ring_entry, &fs[i - 1]);
        ring[i] = &fs[i - 1];
    }
    ring_step = ring_bad = switches = 0;
    ring_quit = false;
    regs_mode = regs;
    ring_run(&main_f);
    unsigned long n = switches;
    regs_mode = true;
    ring_quit = true;
    for (int i = 1; i < RING; i++) {
        hop(ring[i]);
        fiber_free(ring[i]);
    }
    char what[120], why[64] = "";
    snprintf(what, sizeof what, "%lu switches among main and %d contexts (%s)",
             n, RING - 1,
             regs ? "through the register helper" : "called from C");
    snprintf(why, sizeof why, "%lu out of turn", ring_bad);
    result(!ring_bad && n == RING_STEPS, what, why);
}

/* ---- floating-point control is per context ------------------------------- */

#define FP_ROUNDS 200
static struct fiber *fp_fibers[2];
static struct fpenv fp_first[2];
static unsigned long fp_bad;
static bool fp_quit;

/* Context i takes rounding mode i + 2, and checks it at every return. */
static void fp_entry(void *arg)
{
    struct fiber *self = arg;
    san_arrive(self);
    int i = self->id - 1;
    fp_first[i] = fp_get();
    fp_set(fp_make((unsigned)i + 2));
    for (;;) {
        hop(i == 0 ? fp_fibers[1] : &main_f); /* main, A, B, main, ... */
        if (fp_quit)
            break;
        if (!fp_eq(fp_get(), fp_make((unsigned)i + 2)))
            fp_bad++;
    }
    leave(self);
}

static void check_fp(void)
{
    begin("FP control per context");
    struct fiber fs[2];
    struct fpenv saved = fp_get();
    fp_bad = 0;
    fp_quit = false;
    fp_set(fp_make(1)); /* before make: ucontext copies it in, asm not */
    for (int i = 0; i < 2; i++) {
        fiber_new(&fs[i], i + 1, 0, fp_entry, &fs[i]);
        fp_fibers[i] = &fs[i];
    }
    for (int r = 0; r < FP_ROUNDS; r++) {
        hop(fp_fibers[0]);
        if (!fp_eq(fp_get(), fp_make(1)))
            fp_bad++;
    }
    fp_quit = true;
    for (int i = 0; i < 2; i++) {
        hop(fp_fibers[i]);
        fiber_free(fp_fibers[i]);
    }
    struct fpenv mine = fp_get();
    fp_set(saved);
    char why[80];
    snprintf(why, sizeof why, "%lu wrong after a switch; main has %#x/%#x",
             fp_bad, (unsigned)mine.a, (unsigned)mine.b);
#if defined(__x86_64__)
    result(!fp_bad && fp_eq(mine, fp_make(1)),
           "MXCSR and x87 control word are per context", why);
#elif defined(__aarch64__)
    result(!fp_bad && fp_eq(mine, fp_make(1)), "FPCR is per context", why);
#else
    printf("skip %s: FP control (not known for this CPU)\n", im->name);
#endif
#ifdef HAVE_ASM
    /* the assembly switch starts a context with the ABI's defaults */
    if (strcmp(im->name, "asm") == 0) {
        snprintf(why, sizeof why, "%#x/%#x", (unsigned)fp_first[0].a,
                 (unsigned)fp_first[0].b);
        result(fp_eq(fp_first[0], fp_make(0)) && fp_eq(fp_first[1], fp_make(0)),
               "a new context starts with the default FP control", why);
    }
#endif
}

/* ---- alignment and bounds of a new context ------------------------------- */

static uintptr_t sp_min, sp_max, first_sp, frame_at, local_at;

static void note_sp(uintptr_t sp)
{
    if (sp < sp_min)
        sp_min = sp;
    if (sp > sp_max)
        sp_max = sp;
}

static uintptr_t probe_sp(void)
{
#ifdef HAVE_REGS
    return swcheck_sp();
#else
    return (uintptr_t)__builtin_frame_address(0);
#endif
}

/* Some stack in use, its pointer noted at every level. */
static NOINLINE unsigned deep(unsigned n)
{
    volatile unsigned char buf[400];
    buf[n % sizeof buf] = (unsigned char)n;
    note_sp(probe_sp());
    return n ? deep(n - 1) + buf[n % sizeof buf] : 0;
}

static void bounds_entry(void *arg)
{
    struct fiber *self = arg;
    san_arrive(self);
    _Alignas(16) volatile unsigned char local[16];
    local[0] = 1;
    first_sp = probe_sp();
    frame_at = (uintptr_t)__builtin_frame_address(0);
    local_at = (uintptr_t)local;
    note_sp(first_sp);
    note_sp(frame_at);
    (void)deep(24);
    leave(self);
}

/* Each of 16 stack tops, one byte apart: the context aligns its own. */
static void check_stack(void)
{
    begin("alignment and bounds of a new context");
    char align_why[120] = "", bounds_why[120] = "";
    bool align_ok = true, bounds_ok = true;
    size_t used = 0;
    for (size_t trim = 0; trim < 16; trim++) {
        struct fiber f;
        fiber_new(&f, 1, trim, bounds_entry, &f);
        uintptr_t lo = (uintptr_t)f.lo, top = lo + f.size;
        sp_min = UINTPTR_MAX;
        sp_max = 0;
        hop(&f);
        /* x86-64's frame pointer is the entry stack pointer less 8 */
        bool frame_ok = true;
#if defined(__x86_64__)
        frame_ok = frame_at % 16 == 0;
#endif
        if (align_ok && (first_sp % 16 || local_at % 16 || !frame_ok)) {
            align_ok = false;
            snprintf(align_why, sizeof align_why,
                     "top %+d: sp %#" PRIxPTR ", frame %#" PRIxPTR
                     ", local %#" PRIxPTR,
                     -(int)trim, first_sp, frame_at, local_at);
        }
        size_t spill = 0; /* bytes changed above the top */
        for (size_t i = f.size; i < STACK_SIZE; i++)
            spill += (unsigned char)f.lo[i] != PATTERN;
        if (bounds_ok &&
            (sp_min < lo || sp_max > top || top - sp_max > 4096 || spill)) {
            bounds_ok = false;
            snprintf(bounds_why, sizeof bounds_why,
                     "stack [%#" PRIxPTR ", %#" PRIxPTR "): sp from %#" PRIxPTR
                     " to %#" PRIxPTR ", %zu bytes above top",
                     lo, top, sp_min, sp_max, spill);
        }
        if (top - sp_min > used)
            used = top - sp_min;
        fiber_free(&f);
    }
    result(align_ok, "stack pointer 16-byte aligned at entry", align_why);
    char what[96];
    snprintf(what, sizeof what,
             "a new context runs within its stack (%zu bytes used)", used);
    result(bounds_ok, what, bounds_why);
}

/* ---- callee-saved registers ---------------------------------------------- */

/* Every switch above but the C-called ring went through swcheck_regs. */
static void check_regs(void)
{
#ifdef HAVE_REGS
    char what[96];
    snprintf(what, sizeof what,
             "callee-saved registers survive all %lu switches (%zu registers)",
             reg_switches, NREGS);
    result(!reg_bad && reg_switches > RING_STEPS, what, reg_why);
#else
    printf("skip %s: callee-saved registers (no helper for this CPU)\n",
           im->name);
#endif
}

/* ---- x86-64's inline switch: what the compiler keeps live -------------- */

#if defined(HAVE_ASM) && defined(__x86_64__)
#define LIVE_ROUNDS 200
static struct fiber *live_peer;
static bool live_quit;

/* Every register the compiler may allocate, overwritten (not rbp: it may
 * be the frame pointer). Run in the peer between switches: a register
 * missing from the inline switch's clobbers that holds a value across it
 * in main comes back changed. */
static void scribble(void)
{
    __asm__ volatile(
        "movq $-1, %%rax\n\tmovq $-1, %%rbx\n\tmovq $-1, %%rcx\n\t"
        "movq $-1, %%rdx\n\tmovq $-1, %%rsi\n\tmovq $-1, %%rdi\n\t"
        "movq $-1, %%r8\n\tmovq $-1, %%r9\n\tmovq $-1, %%r10\n\t"
        "movq $-1, %%r11\n\tmovq $-1, %%r12\n\tmovq $-1, %%r13\n\t"
        "movq $-1, %%r14\n\tmovq $-1, %%r15\n\t"
        "pcmpeqd %%xmm0, %%xmm0\n\tpcmpeqd %%xmm1, %%xmm1\n\t"
        "pcmpeqd %%xmm2, %%xmm2\n\tpcmpeqd %%xmm3, %%xmm3\n\t"
        "pcmpeqd %%xmm4, %%xmm4\n\tpcmpeqd %%xmm5, %%xmm5\n\t"
        "pcmpeqd %%xmm6, %%xmm6\n\tpcmpeqd %%xmm7, %%xmm7\n\t"
        "pcmpeqd %%xmm8, %%xmm8\n\tpcmpeqd %%xmm9, %%xmm9\n\t"
        "pcmpeqd %%xmm10, %%xmm10\n\tpcmpeqd %%xmm11, %%xmm11\n\t"
        "pcmpeqd %%xmm12, %%xmm12\n\tpcmpeqd %%xmm13, %%xmm13\n\t"
        "pcmpeqd %%xmm14, %%xmm14\n\tpcmpeqd %%xmm15, %%xmm15\n\t"
#ifdef __AVX512F__
        "vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\t"
        "vpternlogd $0xff, %%zmm23, %%zmm23, %%zmm23\n\t"
        "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
        "kxnorw %%k1, %%k1, %%k1\n\tkxnorw %%k7, %%k7, %%k7\n\t"
#endif
        /* eight pushes fill the x87 stack: whatever main left there is
         * overwritten, then popped */
        "fldpi\n\tfldpi\n\tfldpi\n\tfldpi\n\tfldpi\n\tfldpi\n\tfldpi\n\t"
        "fldpi\n\t"
        "fstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t"
        "fstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t"
        "fnclex\n\t"
        :
        :
        : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
          "r12", "r13", "r14", "r15", "cc", "memory", "xmm0", "xmm1", "xmm2",
          "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)", "st(2)",
          "st(3)", "st(4)", "st(5)", "st(6)", "st(7)" PACT_SWITCH_AVX512_);
}

/* Straight to @p to with the inline switch: no call around it that would
 * make the compiler save the values itself. */
static inline __attribute__((always_inline)) void live_hop(struct fiber *to)
{
    struct fiber *self = cur;
    san_leave(self, to, false);
    prev = self;
    cur = to;
    pact__asm_switch(&self->ctx.a, &to->ctx.a);
    san_arrive(self);
}

static void live_entry(void *arg)
{
    struct fiber *self = arg;
    san_arrive(self);
    while (!live_quit) {
        scribble();
        live_hop(&main_f);
    }
    leave(self);
}

/* Integers, doubles and long doubles, computed before the switch and
 * compared after: the compiler keeps as many in registers as it can. */
static NOINLINE unsigned live_round(uint64_t seed)
{
    volatile uint64_t vseed = seed;
    uint64_t s = vseed;
    uint64_t i0 = s * 3, i1 = s ^ 0x55, i2 = s + 7, i3 = s * 11, i4 = s ^ 99,
             i5 = s + 1234, i6 = s * 17, i7 = ~s, i8 = s << 3, i9 = s >> 2,
             i10 = s * 29, i11 = s ^ 0xABCDEF, i12 = s + 31, i13 = s * 37;
    double d0 = (double)s * 0.5, d1 = (double)s + 0.25, d2 = (double)s * 3.5,
           d3 = (double)s - 9.75, d4 = (double)s * 1.125, d5 = (double)s / 7,
           d6 = (double)s + 1e9, d7 = (double)s * -2, d8 = (double)s / 3,
           d9 = (double)s + 0.5, d10 = (double)s * 5, d11 = (double)s - 1,
           d12 = (double)s * 0.75, d13 = (double)s + 42, d14 = (double)s / 9,
           d15 = (double)s * 13;
    long double l0 = (long double)s / 3, l1 = (long double)s * 1.5L;
    live_hop(live_peer);
    s = vseed;
    unsigned bad = 0;
    bad += i0 != s * 3, bad += i1 != (s ^ 0x55), bad += i2 != s + 7;
    bad += i3 != s * 11, bad += i4 != (s ^ 99), bad += i5 != s + 1234;
    bad += i6 != s * 17, bad += i7 != ~s, bad += i8 != s << 3;
    bad += i9 != s >> 2, bad += i10 != s * 29, bad += i11 != (s ^ 0xABCDEF);
    bad += i12 != s + 31, bad += i13 != s * 37;
    bad += d0 != (double)s * 0.5, bad += d1 != (double)s + 0.25;
    bad += d2 != (double)s * 3.5, bad += d3 != (double)s - 9.75;
    bad += d4 != (double)s * 1.125, bad += d5 != (double)s / 7;
    bad += d6 != (double)s + 1e9, bad += d7 != (double)s * -2;
    bad += d8 != (double)s / 3, bad += d9 != (double)s + 0.5;
    bad += d10 != (double)s * 5, bad += d11 != (double)s - 1;
    bad += d12 != (double)s * 0.75, bad += d13 != (double)s + 42;
    bad += d14 != (double)s / 9, bad += d15 != (double)s * 13;
    bad += l0 != (long double)s / 3, bad += l1 != (long double)s * 1.5L;
    return bad;
}

static void check_live(void)
{
    if (strcmp(im->name, "asm") != 0)
        return;
    begin("values live across the inline switch");
    struct fiber f;
    fiber_new(&f, 1, 0, live_entry, &f);
    live_peer = &f;
    live_quit = false;
    unsigned long bad = 0;
    for (uint64_t r = 0; r < LIVE_ROUNDS; r++)
        bad += live_round(0x0123456789ABCDEFu * (r + 1));
    live_quit = true;
    hop(&f);
    fiber_free(&f);
    char why[64];
    snprintf(why, sizeof why, "%lu values changed", bad);
    result(!bad,
           "integer, double and long double values live across the inline "
           "switch survive a peer that overwrites every register",
           why);
}
#else
static void check_live(void)
{
}
#endif

/* ---- unwinding from a signal in the middle of a switch ------------------ */

#if defined(HAVE_ASM) && defined(__x86_64__) && defined(HAVE_BACKTRACE) &&     \
    !defined(CHECK_TSAN)
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>

#define SIG_SWITCHES                                                           \
    20000000ul /* rounds at most; fewer once SIG_SAMPLES are in */
#define SIG_SAMPLES 20000ul
#define SIG_DEPTH 64
static struct fiber *sig_ring[3];
static volatile sig_atomic_t sig_quit;
static _Atomic unsigned long sig_samples, sig_runaway;
static atomic_bool sig_stop;

/* As the stall detector does: backtrace() on the interrupted thread. */
static void sig_sample(int sig)
{
    (void)sig;
    void *frames[SIG_DEPTH];
    int n = backtrace(frames, SIG_DEPTH);
    if (n >= SIG_DEPTH)
        atomic_fetch_add(&sig_runaway, 1); /* a rule that loops */
    atomic_fetch_add(&sig_samples, 1);
}

static void *sig_sender(void *arg)
{
    pthread_t to = *(pthread_t *)arg;
    while (!atomic_load(&sig_stop))
        pthread_kill(to, SIGURG); /* pending ones merge: as fast as it goes */
    return NULL;
}

static void sig_entry(void *arg)
{
    struct fiber *self = arg;
    san_arrive(self);
    while (!sig_quit)
        live_hop(sig_ring[self->id == 1 ? 2 : 0]);
    leave(self);
}

static void check_signals(void)
{
    if (strcmp(im->name, "asm") != 0)
        return;
    begin("backtrace from a signal during switches");
    void *warm[4];
    backtrace(warm, 4); /* loads the unwinder outside the handler */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sig_sample;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, &old);
    struct fiber fs[2];
    sig_ring[0] = &main_f;
    for (int i = 0; i < 2; i++) {
        fiber_new(&fs[i], i + 1, 0, sig_entry, &fs[i]);
        sig_ring[i + 1] = &fs[i];
    }
    sig_quit = 0;
    atomic_store(&sig_samples, 0);
    atomic_store(&sig_runaway, 0);
    atomic_store(&sig_stop, false);
    pthread_t self = pthread_self(), sender;
    bool threaded = pthread_create(&sender, NULL, sig_sender, &self) == 0;
    unsigned long n = 0;
    for (; n < SIG_SWITCHES && atomic_load(&sig_samples) < SIG_SAMPLES; n++)
        live_hop(sig_ring[1]); /* main, 1, 2, main, ... */
    atomic_store(&sig_stop, true);
    if (threaded)
        pthread_join(sender, NULL);
    sig_quit = 1;
    for (int i = 0; i < 2; i++) {
        hop(&fs[i]);
        fiber_free(&fs[i]);
    }
    sigaction(SIGURG, &old, NULL);
    char what[120], why[64];
    snprintf(what, sizeof what,
             "backtrace() from %lu signals during %lu rounds of switches "
             "ends, and never crashes",
             atomic_load(&sig_samples), n);
    snprintf(why, sizeof why, "%lu ran to %d frames", atomic_load(&sig_runaway),
             SIG_DEPTH);
    result(threaded && !atomic_load(&sig_runaway), what, why);
}
#else
static void check_signals(void)
{
}
#endif

/* ---- main ---------------------------------------------------------------- */

int main(void)
{
    printf("switch_check: configured switch %s; testing", PACT_CONTEXT_NAME);
    for (size_t i = 0; i < sizeof impls / sizeof impls[0]; i++)
        printf(" %s", impls[i].name);
    printf("\n");
    fflush(stdout);
    catch_crashes();
#ifdef CHECK_TSAN
    main_f.tsan = __tsan_get_current_fiber();
#endif
    for (size_t i = 0; i < sizeof impls / sizeof impls[0]; i++) {
        im = &impls[i];
        reg_bad = reg_switches = 0;
        check_arg();
        run_ring(true);
        run_ring(false);
        check_fp();
        check_stack();
        check_regs();
        check_live();
        check_signals();
    }
    printf("switch_check: %s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
