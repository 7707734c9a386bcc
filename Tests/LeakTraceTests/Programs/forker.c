/* A parent that leaks, forks a child that leaks and frees, and runs an exec'd program.
 * argv[1] == "exec-target" makes it the exec'd program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) void *parent_leak(void) { return malloc(1111); }
__attribute__((noinline)) void *child_leak(void) { return malloc(2222); }
__attribute__((noinline)) void *exec_leak(void) { return malloc(3333); }

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec-target") == 0) {
        void *p = exec_leak();
        printf("exec target %d\n", p != NULL);
        return 0;
    }
    void *kept = parent_leak();
    void *shared_freed_in_child = malloc(555);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        void *c = child_leak();
        free(shared_freed_in_child);    /* inherited block freed by the child */
        free(malloc(10));
        printf("child %d\n", c != NULL);
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    pid = fork();
    if (pid == 0) {
        execl(argv[0], argv[0], "exec-target", (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    printf("parent %d %d\n", kept != NULL, WEXITSTATUS(status));
    return 0;
}
