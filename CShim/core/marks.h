/* Marks (core/marks.c): from the program's leaktrace_mark and from LEAKTRACE_MARK_SIGNAL. */
#ifndef LEAKTRACE_MARKS_H
#define LEAKTRACE_MARKS_H

#include "../base/base.h"

/* Installs the LEAKTRACE_MARK_SIGNAL handler, unless the program handles that signal. */
LT_HIDDEN void lt_install_mark_signal(void);
/* Writes the marks asked for by signal that their handler could not write itself. */
LT_HIDDEN void lt_marks_write_pending(void);
/* A mark the tracer itself sets (source 2: the runtimes' cleanup at exit). */
LT_HIDDEN void lt_mark_from_tracer(const char *name);

#endif
