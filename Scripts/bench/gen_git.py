#!/usr/bin/env python3
"""Writes a `git fast-import` stream of a repository for the `git log -p` workload of
Scripts/bench.sh.

    gen_git.py COMMITS [SEED] | git -C repo fast-import --quiet

COMMITS commits on main over 60 text files in a few directories. Each commit edits one to
four files: it replaces, inserts or deletes a few lines, now and then appends a block or
adds a file. Authors, dates and contents depend only on COMMITS and SEED, so the repository
(and its commit ids) is the same on every run.
"""
import random
import sys

WORDS = ("the of and to in is that for it as with was on be by this are from at or an which "
         "buffer parser token stack frame heap arena chunk mapping thread signal trace record "
         "block address symbol module report leak growth sample commit branch merge index tree "
         "return value error config option state cache entry table hash count size length").split()
AUTHORS = [("Ada Lovelace", "ada@example.org"), ("Alan Turing", "alan@example.org"),
           ("Grace Hopper", "grace@example.org"), ("Edsger Dijkstra", "edsger@example.org"),
           ("Barbara Liskov", "barbara@example.org")]


def line(rng):
    kind = rng.random()
    if kind < 0.15:
        return ""
    if kind < 0.45:
        return "    %s = %s(%s, %d);" % (rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS), rng.randint(0, 9999))
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))


def main():
    commits = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 4242)
    dirs = ["src", "src/core", "src/io", "docs", "tests", "tools"]
    files = {}
    for i in range(60):
        path = "%s/file%02d.%s" % (rng.choice(dirs), i, rng.choice(["c", "txt", "md", "py"]))
        files[path] = [line(rng) for _ in range(rng.randint(40, 300))]
    out = sys.stdout.buffer
    when = 1700000000
    for c in range(1, commits + 1):
        when += rng.randint(60, 36000)
        name, email = rng.choice(AUTHORS)
        changed = []
        if c == 1:
            changed = sorted(files)
        else:
            for _ in range(rng.randint(1, 4)):
                path = rng.choice(sorted(files))
                lines = files[path]
                op = rng.random()
                if op < 0.4 and lines:
                    for _ in range(rng.randint(1, 4)):
                        lines[rng.randrange(len(lines))] = line(rng)
                elif op < 0.7:
                    at = rng.randint(0, len(lines))
                    lines[at:at] = [line(rng) for _ in range(rng.randint(1, 8))]
                elif op < 0.9 and len(lines) > 20:
                    at = rng.randrange(len(lines) - 10)
                    del lines[at:at + rng.randint(1, 6)]
                else:
                    lines.extend(line(rng) for _ in range(rng.randint(10, 40)))
                changed.append(path)
            if rng.random() < 0.01:
                path = "%s/new%04d.txt" % (rng.choice(dirs), c)
                files[path] = [line(rng) for _ in range(rng.randint(5, 60))]
                changed.append(path)
        message = "%s %s: %s\n\n%s\n" % (rng.choice(WORDS), rng.choice(WORDS), line(rng), line(rng))
        msg = message.encode()
        head = ("commit refs/heads/main\nmark :%d\nauthor %s <%s> %d +0000\ncommitter %s <%s> %d +0000\n"
                "data %d\n" % (c, name, email, when, name, email, when, len(msg))).encode()
        out.write(head + msg)
        if c > 1:
            out.write(b"from :%d\n" % (c - 1))
        for path in sorted(set(changed)):
            data = ("\n".join(files[path]) + "\n").encode()
            out.write(("M 100644 inline %s\ndata %d\n" % (path, len(data))).encode() + data + b"\n")
        out.write(b"\n")
    out.write(b"done\n")


if __name__ == "__main__":
    main()
