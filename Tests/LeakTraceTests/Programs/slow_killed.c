/* Allocates steadily and never exits by itself: the test kills it with SIGKILL. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    for (long i = 0;; i++) {
        void *p = malloc(100);
        (void)p;
        if (i == 1000) {
            printf("ready\n");
            fflush(stdout);
        }
        usleep(100);
    }
}
