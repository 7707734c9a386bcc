/* Direct mappings of the four kinds, a partial munmap, an mremap, and sbrk/brk moves. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/tmp/leaktrace-mappings.dat";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 3 * 4096) != 0) return 1;
    long page = sysconf(_SC_PAGESIZE);
    char *private_anon = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *shared_anon = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *private_file = mmap(NULL, 3 * page, PROT_READ, MAP_PRIVATE, fd, 0);
    char *shared_file = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    munmap(private_anon + page, page);                 /* punch a hole: 3 pages stay */
    char *grown = mremap(shared_anon, 2 * page, 5 * page, MREMAP_MAYMOVE);
    char *temp = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(temp, page);                                /* fully released */
    void *old_break = sbrk(0);
    sbrk(8 * page);
    sbrk(-2 * page);
    brk((char *)old_break + 3 * page);
    close(fd);
    printf("%d\n", private_anon != MAP_FAILED && grown != MAP_FAILED && private_file != MAP_FAILED &&
                       shared_file != MAP_FAILED);
    return 0;
}
