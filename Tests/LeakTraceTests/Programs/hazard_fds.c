/* Hazard 7, a daemon-style program: closes every descriptor from 3 to 1023 (the tracer's trace
 * file and libunwind's validation pipe among them), then puts a file of its own on every low
 * descriptor number from 3 to 127 with dup2, allocating between the steps (each allocation
 * makes the tracer unwind, and libunwind may touch its pipe), writes known bytes into each,
 * and checks through the descriptor that the file still holds exactly those bytes.
 * argv[1] is the directory for the files. Sizes: 5000 + n before each dup2, 3000..3049 (50 per
 * descriptor) after it, 3100..3119 (20 per descriptor) between the writes; all freed. One
 * 999-byte block is kept. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOW 3
#define HIGH 127

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    for (int fd = 3; fd < 1024; fd++) close(fd);
    int bad = 0;
    for (int n = LOW; n <= HIGH; n++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fd%03d.txt", argv[1], n);
        void *before = malloc(5000 + (size_t)n);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return 1;
        if (fd != n) {
            if (dup2(fd, n) != n) return 1;
            close(fd);
        }
        free(before);
        for (int k = 0; k < 50; k++) free(malloc(3000 + (size_t)k)); /* the tracer unwinds between dup2s */
    }
    for (int n = LOW; n <= HIGH; n++) {
        char line[64];
        int len = snprintf(line, sizeof line, "descriptor %d holds exactly this line\n", n);
        if (write(n, line, (size_t)len) != len) bad++;
        for (int k = 0; k < 20; k++) free(malloc(3100 + (size_t)k));
    }
    for (int n = LOW; n <= HIGH; n++) {
        char expect[64], got[128];
        int len = snprintf(expect, sizeof expect, "descriptor %d holds exactly this line\n", n);
        ssize_t r = pread(n, got, sizeof got, 0);
        if (r != len || memcmp(got, expect, (size_t)len) != 0) bad++;
        off_t end = lseek(n, 0, SEEK_END);
        if (end != len) bad++;
    }
    void *kept = malloc(999);
    printf("files=%d bad=%d kept=%d\n", HIGH - LOW + 1, bad, kept != NULL);
    return bad != 0;
}
