/* Frames the stack walker must not get wrong, each leaking one block of a size of its own:
 *  7001  through a function that realigns the stack (its CFA is rbp-based, rsp is not)
 *  7002  from a signal handler (the stack runs through the kernel's signal frame: the walker
 *        hands the capture to libunwind)
 *  7003  at the bottom of a 150-frame recursion (run with LEAKTRACE_DEPTH=256: deeper than the
 *        cache holds, so walked without an entry)
 *  7100+ from two plugins loaded in turn at what is usually the same address (argv[1], argv[2]),
 *        whose functions have different frame sizes: a rule learned for one must not be used
 *        for the other after dlclose.
 *  7004  through a frame whose CFA is a DWARF expression (as in PLT stubs and some prologues:
 *        libunwind again)
 * Prints the number of plugin rounds. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS 40

static void *keep[8 + ROUNDS];
static int kept;

__attribute__((noinline)) void *alloc_from_main(unsigned size) {
    void *p = malloc(size);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline, force_align_arg_pointer)) static void realigned(void) {
    keep[kept++] = alloc_from_main(7001);
    __asm__ volatile("" ::: "memory");
}

/* expr_frame(fn): calls fn from a frame whose CFI gives the CFA as an expression
 * (DW_CFA_def_cfa_expression: DW_OP_breg6 16, i.e. rbp + 16). */
void expr_frame(void (*fn)(void));
__asm__(".text\n"
        ".globl expr_frame\n"
        ".type expr_frame, @function\n"
        "expr_frame:\n"
        ".cfi_startproc\n"
        "pushq %rbp\n"
        ".cfi_def_cfa_offset 16\n"
        ".cfi_offset %rbp, -16\n"
        "movq %rsp, %rbp\n"
        ".cfi_escape 0x0f, 0x02, 0x76, 0x10\n"
        "call *%rdi\n"
        "popq %rbp\n"
        ".cfi_def_cfa %rsp, 8\n"
        "ret\n"
        ".cfi_endproc\n"
        ".size expr_frame, .-expr_frame\n");

__attribute__((noinline)) static void through_expression(void) {
    keep[kept++] = alloc_from_main(7004);
    __asm__ volatile("" ::: "memory");
}

static void on_signal(int sig) {
    (void)sig;
    keep[kept++] = malloc(7002);
}

__attribute__((noinline)) static void recurse(int depth) {
    if (depth > 1) recurse(depth - 1);
    else keep[kept++] = malloc(7003);
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    realigned();
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    recurse(150);
    expr_frame(through_expression);
    int rounds = 0;
    for (int i = 0; i < ROUNDS; i++) {
        void *lib = dlopen(argv[1 + i % 2], RTLD_NOW);
        if (!lib) return 3;
        void *(*make)(unsigned) = (void *(*)(unsigned))dlsym(lib, "plugin_alloc");
        if (!make) return 4;
        keep[kept++] = make(7100 + (unsigned)i);
        dlclose(lib);
        rounds++;
    }
    printf("%d\n", rounds);
    return 0;
}
