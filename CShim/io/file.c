/* The trace file: created fresh (never through a symlink, never over an existing file), its
 * descriptor moved out of the program's way and checked before every write (io/file.h). */
#include "file.h"
#include "../format/records.h"

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct lt_file lt_file = {.fd = -1};

static const char *errno_name(int e) {
    switch (e) {
    case ENOSPC: return "no space left on device";
    case EDQUOT: return "disk quota exceeded";
    case EIO: return "input/output error";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case EROFS: return "read-only file system";
    case ENOENT: return "no such file or directory";
    case ELOOP: return "path is a symbolic link";
    case EEXIST: return "file exists";
    case EFBIG: return "file too large";
    case EBADF: return "trace file was closed";
    case ENXIO: return "no reader on the other end";
    default: return "write failed";
    }
}

void lt_file_failed(const char *what, int e) {
    lt_file.closed = 1;
    atomic_store(&lt_phase, PHASE_STOPPED);
    if (!lt_file.warned) {
        lt_file.warned = 1;
        lt_warn(what, lt_file.path, errno_name(e));
    }
}

int lt_move_fd_high(int fd) {
    struct rlimit rl;
    long high = 900;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur <= high)
        high = (long)rl.rlim_cur / 2;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, (int)high);
    if (moved < 0) return fd;
    close(fd);
    return moved;
}

/* Makes sure lt_file.fd is still our file: daemons close every descriptor and reuse the numbers
 * (uftrace#1883, igprof#19). If it is not, reopen the same file by path; if the file itself
 * was replaced, give up rather than write into someone else's file. */
static int verify_output(void) {
    struct stat st;
    if (lt_file.fd >= 0 && fstat(lt_file.fd, &st) == 0 && st.st_dev == lt_file.dev && st.st_ino == lt_file.ino)
        return 1;
    int fd = open(lt_file.path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    if (fstat(fd, &st) != 0 || st.st_dev != lt_file.dev || st.st_ino != lt_file.ino) {
        close(fd);
        errno = ENOENT;
        return 0;
    }
    lt_file.fd = lt_move_fd_high(fd);
    return 1;
}

int lt_file_write(const uint8_t *data, size_t len) {
    if (!verify_output()) return -1;
    while (len > 0) {
        ssize_t w = write(lt_file.fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        data += w;
        len -= (size_t)w;
        lt_file.offset += (uint64_t)w;
    }
    return 0;
}

/* ---- creating the file ---- */

static void expand_pattern(char *out, size_t cap, const char *pattern, pid_t pid, const char *program_name) {
    size_t o = 0;
    for (const char *p = pattern; *p && o + 32 < cap; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            o = (size_t)(lt_put_decimal(out + o, (uint64_t)pid) - out);
            p++;
        } else if (p[0] == '%' && p[1] == 'e') {
            for (const char *s = program_name; *s && o + 32 < cap; s++) out[o++] = *s;
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            out[o++] = '%';
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

static void make_absolute(char *path, size_t cap) {
    if (path[0] == '/') return;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return;
    size_t c = strlen(cwd), p = strlen(path);
    if (c + 1 + p + 1 > cap) return;
    memmove(path + c + 1, path, p + 1);
    memcpy(path, cwd, c);
    path[c] = '/';
}

/* Opens a fresh trace file: never through a symlink, never over an existing file (a process
 * that execs itself keeps its pid, so a numbered suffix is added). An existing character
 * device or FIFO (/dev/null, /dev/full, a pipe) is written to as it is. */
static int open_trace_file(char *path, size_t cap) {
    struct stat st;
    if (lstat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
        return open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    size_t base = strlen(path);
    for (int attempt = 0; attempt < 1000; attempt++) {
        if (attempt > 0) {
            if (base + 8 > cap) return -1;
            char *s = path + base;
            *s++ = '.';
            *lt_put_decimal(s, (uint64_t)attempt) = 0;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

int lt_open_output(const char *pattern, pid_t pid, const char *program_name, const uint8_t *header,
                   size_t header_len) {
    expand_pattern(lt_file.path, sizeof lt_file.path, pattern, pid, program_name);
    make_absolute(lt_file.path, sizeof lt_file.path);
    int fd = open_trace_file(lt_file.path, sizeof lt_file.path);
    if (fd < 0) {
        lt_warn("cannot create trace file", lt_file.path, errno_name(errno));
        return 0;
    }
    if (fcntl(fd, F_GETFL) & O_NONBLOCK) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct stat st;
    fstat(fd, &st);
    lt_file.fd = lt_move_fd_high(fd);
    lt_file.dev = st.st_dev;
    lt_file.ino = st.st_ino;
    lt_file.offset = 0;
    lt_file.closed = 0;
    lt_file.warned = 0;
    if (header_len == 0 || lt_file_write(header, header_len) != 0) {
        lt_warn("cannot write trace file", lt_file.path, errno_name(errno));
        close(lt_file.fd);
        lt_file.fd = -1;
        return 0;
    }
    return 1;
}

void lt_file_after_fork(void) {
    if (lt_file.fd >= 0) close(lt_file.fd);
    lt_file.fd = -1;
}
