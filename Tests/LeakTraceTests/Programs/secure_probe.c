/* Says whether a library whose name contains argv[1] is mapped into this process (read from
 * /proc/self/maps), whether the process runs in secure-execution mode (AT_SECURE), and
 * allocates a block of 4444 bytes that it keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

int main(int argc, char **argv) {
    void *kept = malloc(4444);
    int mapped = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    while (argc > 1 && maps && fgets(line, sizeof line, maps))
        if (strstr(line, argv[1])) mapped = 1;
    if (maps) fclose(maps);
    printf("secure=%d mapped=%d kept=%d\n", getauxval(AT_SECURE) != 0, mapped, kept != NULL);
    return 0;
}
