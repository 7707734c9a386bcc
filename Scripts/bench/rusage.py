#!/usr/bin/env python3
"""rusage.py OUT COMMAND...: runs COMMAND (its output discarded) and writes to OUT one line,
"user_s sys_s wall_s maxrss_kib", from the child's resource usage in microseconds: /usr/bin/time
prints hundredths, too coarse for reports that take 10 ms."""
import resource
import subprocess
import sys
import time

out, command = sys.argv[1], sys.argv[2:]
start = time.monotonic()
subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, "w") as f:
    f.write(f"{usage.ru_utime:.6f} {usage.ru_stime:.6f} {wall:.6f} {usage.ru_maxrss}\n")
