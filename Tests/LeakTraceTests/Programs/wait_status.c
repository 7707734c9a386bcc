/* Runs a program as a parent would and prints what the parent sees, so that a traced and an
 * untraced run can be compared bit for bit:
 *
 *   wait_status CORE DIR program [args...]
 *
 * The child gets RLIMIT_CORE = CORE ("0" or "unlimited"), runs in DIR (where a core file named
 * by a plain core_pattern lands), and gets LD_PRELOAD from WAIT_STATUS_PRELOAD (so this runner
 * itself is never traced); WAIT_STATUS_IGNORE=N starts it with signal N ignored (SIG_IGN
 * survives exec). After the child's own output, one line:
 *   wait-status=0x.... exited=E status=S signaled=G signal=N core=C core-file=F
 * (core: WCOREDUMP; core-file: a file named core* appeared in DIR, which is then removed). */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int remove_cores(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "core", 4) != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
        found = 1;
    }
    closedir(d);
    return found;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: wait_status CORE DIR program [args...]\n");
        return 2;
    }
    const char *dir = argv[2];
    remove_cores(dir);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) {
        struct rlimit limit = {0, 0};
        if (strcmp(argv[1], "unlimited") == 0) limit.rlim_cur = limit.rlim_max = RLIM_INFINITY;
        else getrlimit(RLIMIT_CORE, &limit), limit.rlim_cur = 0;
        setrlimit(RLIMIT_CORE, &limit);
        if (chdir(dir) != 0) _exit(126);
        const char *ignore = getenv("WAIT_STATUS_IGNORE");
        if (ignore) signal(atoi(ignore), SIG_IGN);
        const char *preload = getenv("WAIT_STATUS_PRELOAD");
        if (preload) setenv("LD_PRELOAD", preload, 1);
        execv(argv[3], argv + 3);
        _exit(127);
    }
    int status;
    while (waitpid(child, &status, 0) < 0) {
    }
    int core_file = remove_cores(dir);
    printf("wait-status=0x%04x exited=%d status=%d signaled=%d signal=%d core=%d core-file=%d\n", status,
           WIFEXITED(status), WIFEXITED(status) ? WEXITSTATUS(status) : 0, WIFSIGNALED(status),
           WIFSIGNALED(status) ? WTERMSIG(status) : 0, WIFSIGNALED(status) ? WCOREDUMP(status) != 0 : 0, core_file);
    return 0;
}
