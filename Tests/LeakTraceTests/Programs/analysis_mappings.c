/* Direct mappings of the four kinds, cut by partial munmaps, grown by mremap and overlaid by
 * MAP_FIXED, for the analyzer's end-to-end tests. argv[1] is a scratch file to map. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char *a = mmap(NULL, 5 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* @anon */
    munmap(a + PAGE, PAGE);     /* a: [0,1) [2,5) */
    munmap(a + 4 * PAGE, PAGE); /* a: [0,1) [2,4) */
    mmap(a + 2 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0); /* @fixed */
    char *b = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* @grow */
    b = mremap(b, PAGE, 3 * PAGE, MREMAP_MAYMOVE);
    mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0); /* @shared */
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 3 * PAGE) != 0) return 3;
    mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0); /* @privfile */
    mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); /* @sharedfile */
    char *gone = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 2 * PAGE);
    close(fd);
    return b == MAP_FAILED;
}
