/* Hazard 8, a program whose trace cannot be written, or is cut by SIGKILL. It allocates
 * argv[1] blocks of 100 bytes with distinct stacks' worth of churn (half freed), prints
 * "allocated N", then, with argv[2] = "wait", sleeps 500 ms (several flush intervals, so all of
 * it is on disk), prints "flushed" and keeps allocating slowly until it is killed; otherwise
 * it frees everything and exits 0. Its own file argv[3], if given, receives known bytes, so a
 * trace that landed in the program's file would show. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 100000;
    int wait_for_kill = argc > 2 && strcmp(argv[2], "wait") == 0;
    void **blocks = calloc((size_t)count, sizeof *blocks);
    if (!blocks) return 1;
    for (long i = 0; i < count; i++) {
        blocks[i] = malloc(100);
        if (i % 2) {
            free(blocks[i]);
            blocks[i] = NULL;
        }
    }
    if (argc > 3) {
        int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "program bytes\n", 14) != 14) return 1;
        close(fd);
    }
    printf("allocated %ld\n", count);
    fflush(stdout);
    if (wait_for_kill) {
        usleep(500000);
        printf("flushed\n");
        fflush(stdout);
        for (;;) {
            free(malloc(200));
            usleep(1000);
        }
    }
    for (long i = 0; i < count; i++) free(blocks[i]);
    free(blocks);
    return 0;
}
