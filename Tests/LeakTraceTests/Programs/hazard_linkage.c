/* Hazard 12, linkage. argv[1] picks the case:
 *   deepbind PATH  dlopen PATH with RTLD_DEEPBIND; keep a 6201-byte block from it, and have it
 *                  free a 6202-byte block
 *   origin NAME    dlopen NAME by bare name: found only through $ORIGIN in the program's RUNPATH;
 *                  keep a 6301-byte block from it
 *   pointers       free through function pointers (a volatile pointer to free, and one found
 *                  with dlsym): 6401 and 6402 bytes freed, 6403 kept
 *   plain          allocate 6501 (kept) and 6502 (freed): built with -static, or with -z now
 * Prints one line naming the case and what it did. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*make_fn)(unsigned);
typedef void (*release_fn)(void *);

static int use_library(const char *name, int flags, unsigned keep_size, unsigned free_size) {
    void *handle = dlopen(name, flags);
    if (!handle) {
        printf("dlopen failed\n");
        return 1;
    }
    make_fn make = (make_fn)dlsym(handle, "linkage_lib_make");
    release_fn release = (release_fn)dlsym(handle, "linkage_lib_release");
    if (!make || !release) return 1;
    void *kept = make(keep_size);
    if (free_size) release(make(free_size));
    printf("%s kept=%d\n", flags & RTLD_DEEPBIND ? "deepbind" : "origin", kept != NULL);
    return 0; /* the library stays loaded: its frames resolve at exit */
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "plain";
    if (strcmp(mode, "deepbind") == 0 && argc > 2) return use_library(argv[2], RTLD_NOW | RTLD_DEEPBIND, 6201, 6202);
    if (strcmp(mode, "origin") == 0 && argc > 2) return use_library(argv[2], RTLD_NOW, 6301, 0);
    if (strcmp(mode, "pointers") == 0) {
        void (*volatile through)(void *) = free;
        void (*found)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
        if (!found) return 1;
        through(malloc(6401));
        found(malloc(6402));
        void *kept = malloc(6403);
        printf("pointers kept=%d\n", kept != NULL);
        return 0;
    }
    void *kept = malloc(6501);
    free(malloc(6502));
    printf("plain kept=%d\n", kept != NULL);
    return 0;
}
