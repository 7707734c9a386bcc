/* The program at the end of an exec chain: the tests run it through #!/bin/sh wrappers and
 * /usr/bin/env. It forks one child that leaks 2222 bytes from child_leak and exits, waits for
 * it, then leaks 3 blocks of 4000 bytes from chain_leak (after the fork, so the child inherits
 * none of them). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) void *chain_leak(size_t size) { return malloc(size); /* @chain */ }
__attribute__((noinline)) void *child_leak(size_t size) { return malloc(size); /* @child */ }

int main(void) {
    pid_t pid = fork();
    if (pid == 0) {
        void *kept = child_leak(2222);
        _exit(kept != NULL ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    void *kept[3];
    for (int i = 0; i < 3; i++) kept[i] = chain_leak(4000);
    printf("chain target %d %d\n", kept[2] != NULL, WEXITSTATUS(status));
    return 0;
}
