/* Behaves like a daemon: closes every descriptor from 3 up, then dup2s files onto low numbers
 * and writes known bytes into them, allocating all along. argv[1] is a directory. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    for (int fd = 3; fd < 1024; fd++) close(fd);
    for (int n = 3; n < 12; n++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/out%d.txt", argv[1], n);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return 1;
        if (fd != n) {
            dup2(fd, n);
            close(fd);
        }
        void *p = malloc(64 * n);
        char line[64];
        int len = snprintf(line, sizeof line, "file %d\n", n);
        if (write(n, line, (size_t)len) != len) return 1;
        free(p);
    }
    for (int i = 0; i < 1000; i++) free(malloc(32));
    void *leak = malloc(999);
    printf("%d\n", leak != NULL);
    return 0;
}
