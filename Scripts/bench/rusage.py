#!/usr/bin/env python3
"""rusage.py OUT COMMAND...: runs COMMAND (its output discarded) and writes to OUT one line,
"user_s sys_s wall_s maxrss_kib", from that child's own resource usage (wait4), in microseconds:
/usr/bin/time prints hundredths, too coarse for reports that take 10 ms. The peak RSS is the
kernel's for the child, which counts the spawning interpreter's own (about 14 MiB here) from
before the exec: a peak below that reads as that."""
import os
import shutil
import sys
import time

out, command = sys.argv[1], sys.argv[2:]
program = shutil.which(command[0]) or command[0]
devnull = os.open(os.devnull, os.O_RDWR)
start = time.monotonic()
pid = os.posix_spawn(program, command, os.environ,
                     file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                   (os.POSIX_SPAWN_DUP2, devnull, 2)])
_, _, usage = os.wait4(pid, 0)
wall = time.monotonic() - start
with open(out, "w") as f:
    f.write(f"{usage.ru_utime:.6f} {usage.ru_stime:.6f} {wall:.6f} {usage.ru_maxrss}\n")
