/* Hazard 5, exec and spawn. Started without arguments, the program starts four children,
 * each of which runs this same program as "hazard_spawn child TAG SIZE" (a child allocates a
 * block of SIZE bytes, keeps it, and prints its tag):
 *   fork + execve, with the environment inherited       tag "fork-execve", 5001 bytes
 *   posix_spawn, environment inherited                  tag "posix-spawn", 5002 bytes
 *   system() (through /bin/sh)                          tag "system", 5003 bytes
 *   posix_spawn with an environment reset to PATH only  tag "reset-env", 5004 bytes
 * Children run one after the other so stdout is deterministic. The parent allocates 5000 bytes
 * and keeps them. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int child_main(const char *tag, long size) {
    void *block = malloc((size_t)size);
    printf("child %s %d\n", tag, block != NULL);
    fflush(stdout);
    return 0;
}

static int wait_for(pid_t pid) {
    int status;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid) return 1;
    return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "child") == 0) return child_main(argv[2], atol(argv[3]));
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 2;
    self[n] = 0;
    void *kept = malloc(5000);
    int failures = 0;
    fflush(stdout);

    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {self, "child", "fork-execve", "5001", NULL};
        execve(self, args, environ);
        _exit(127);
    }
    failures += wait_for(pid);

    char *spawn_args[] = {self, "child", "posix-spawn", "5002", NULL};
    failures += posix_spawn(&pid, self, NULL, NULL, spawn_args, environ) != 0 || wait_for(pid);

    char command[4200];
    snprintf(command, sizeof command, "'%s' child system 5003", self);
    int status = system(command);
    failures += status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;

    char *reset_args[] = {self, "child", "reset-env", "5004", NULL};
    char *reset_env[] = {"PATH=/usr/bin:/bin", NULL};
    failures += posix_spawn(&pid, self, NULL, NULL, reset_args, reset_env) != 0 || wait_for(pid);

    printf("parent failures=%d kept=%d\n", failures, kept != NULL);
    return failures != 0;
}
