/* The trace file (io/file.c): created fresh, checked before every write, never written through
 * a descriptor the program has taken over. */
#ifndef LEAKTRACE_FILE_H
#define LEAKTRACE_FILE_H

#include "../base/base.h"

struct lt_file {
    char path[4096];
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t offset;              /* bytes written so far */
    int closed;                   /* nothing more is written (END written, or a write failed) */
    int warned;                   /* the one line on stderr was written */
};

extern struct lt_file lt_file;

/* Expands the LEAKTRACE_OUTPUT pattern (%p the pid, %e the program name, %% a percent sign),
 * creates the file and writes `header`. Returns 0 (after one line on stderr) when it cannot. */
LT_HIDDEN int lt_open_output(const char *pattern, pid_t pid, const char *program_name, const uint8_t *header,
                             size_t header_len);
/* Writes all of `data`, after checking the descriptor is still the trace file. Returns -1 with
 * errno set when it cannot. */
LT_HIDDEN int lt_file_write(const uint8_t *data, size_t len);
/* After a failed write: stops tracing, with one line on stderr. */
LT_HIDDEN void lt_file_failed(const char *what, int error);
/* In a forked child: the parent's descriptor is shared with the parent; never written here. */
LT_HIDDEN void lt_file_after_fork(void);
/* Moves a tracer descriptor out of the way of programs that dup2 onto low numbers. */
LT_HIDDEN int lt_move_fd_high(int fd);

#endif
