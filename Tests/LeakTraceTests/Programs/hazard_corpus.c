/* A small program that makes every kind of record the tracer writes, for the fuzz corpus
 * (Scripts/fuzz/make-corpus.sh): allocations by every function, a failed and a freeing realloc,
 * two named threads, marks, mallopt, anonymous and file mappings, mremap, sbrk, a fork whose
 * child leaves with _exit, and a few leaks. argv[1] is a scratch file to map. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <leaktrace.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void *worker(void *arg) {
    pthread_setname_np(pthread_self(), (const char *)arg);
    void *kept = NULL;
    for (int i = 0; i < 200; i++) {
        void *p = malloc(32 + (size_t)(i % 50));
        if (i == 100) kept = p;
        else free(p);
    }
    return kept;
}

int main(int argc, char **argv) {
    leaktrace_mark("start");
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    void *a = malloc(100), *b = calloc(10, 10), *c = NULL;
    if (posix_memalign(&c, 64, 200) != 0) return 1;
    void *d = aligned_alloc(128, 256), *e = memalign(32, 64), *f = valloc(100), *g = pvalloc(100);
    a = realloc(a, 5000);
    b = reallocarray(b, 20, 20);
    void *huge = realloc(e, (size_t)1 << 62); /* fails: e stays live */
    void *gone = realloc(f, 0);               /* frees f */
    void *big = malloc(1 << 20);              /* glibc maps it on its own */
    pthread_t t1, t2;
    pthread_create(&t1, NULL, worker, "corpus-one");
    pthread_create(&t2, NULL, worker, "corpus-two");
    void *k1, *k2;
    pthread_join(t1, &k1);
    pthread_join(t2, &k2);
    leaktrace_mark("threads joined");

    char *anon = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    anon = mremap(anon, 3 * 4096, 6 * 4096, MREMAP_MAYMOVE);
    munmap(anon, 6 * 4096);
    if (argc > 1) {
        int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0 && ftruncate(fd, 4096) == 0) {
            void *file = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
            if (file != MAP_FAILED) munmap(file, 4096);
        }
        if (fd >= 0) close(fd);
    }
    void *brk_before = sbrk(4096);
    sbrk(-4096);

    pid_t child = fork();
    if (child == 0) {
        void *in_child = malloc(777);
        free(a);
        _exit(in_child != NULL ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    free(b);
    free(c);
    free(d);
    free(g);
    free(big);
    leaktrace_mark("end");
    printf("%d %d %d %d\n", huge == NULL, gone == NULL, brk_before != (void *)-1, WEXITSTATUS(status));
    return 0;
}
