/* Loads libplugin.so (path in argv[1]), leaks a block it allocates, and closes it. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    void *handle = dlopen(argv[1], RTLD_NOW);
    if (!handle) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    void *(*make)(unsigned) = (void *(*)(unsigned))dlsym(handle, "plugin_make");
    void *leak = make(6060);
    dlclose(handle);
    printf("%d\n", leak != NULL);
    return 0;
}
