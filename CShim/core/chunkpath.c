/* Which allocator serves the process's malloc. The chunk-header path classification
 * (core/chunkpath.h, lt_chunk_path) is valid only for glibc's. */
#include "chunkpath.h"
#include "modules.h"
#include "real.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

struct lt_allocator lt_allocator;

/* True when `address` lies in a shared object rather than the main program (which is the
 * first entry of the loader's list). */
static int in_shared_object(const void *address) {
    Dl_info info;
    struct link_map *map = NULL;
    return dladdr1(address, &info, (void **)&map, RTLD_DL_LINKMAP) && map && map->l_prev != NULL;
}

void lt_detect_allocator(void) {
    Dl_info info;
    lt_allocator.is_glibc = 0;
    strcpy(lt_allocator.name, "unknown");
    if (lt_real.malloc && dladdr((void *)lt_real.malloc, &info) && info.dli_fname) {
        const char *base = strrchr(info.dli_fname, '/');
        base = base ? base + 1 : info.dli_fname;
        lt_allocator.is_glibc = strncmp(base, "libc.so", 7) == 0;
        strncpy(lt_allocator.name, lt_allocator.is_glibc ? "glibc" : info.dli_fname, sizeof lt_allocator.name - 1);
        /* Its mappings are its heap, made under its own locks: never unwind there. */
        if (!lt_allocator.is_glibc) lt_add_internal_mapper((const void *)lt_real.malloc);
    }
    /* If another object defines malloc ahead of us in the search order (a preloaded jemalloc
     * listed first, or an allocator linked into the program), the program's calls never reach
     * our hooks. Say so once rather than write a trace that looks clean. */
    void *first = dlsym(RTLD_DEFAULT, "malloc");
    extern void *lt_own_malloc(size_t);
    const ElfW(Sym) *symbol = NULL;
    /* A non-PIE executable that takes malloc's address (python3 does) gets a canonical PLT
     * entry: dlsym returns the executable's stub, whose symbol is undefined (SHN_UNDEF). Its
     * calls still reach our malloc, so it is not an allocator ahead of us. */
    if (first && first != (void *)lt_own_malloc &&
        dladdr1(first, &info, (void **)&symbol, RTLD_DL_SYMENT) && info.dli_fname &&
        !(symbol && symbol->st_shndx == SHN_UNDEF)) {
        lt_warn("malloc is defined ahead of libleaktrace by", info.dli_fname,
                "allocations made through it are not traced (put libleaktrace first in LD_PRELOAD)");
        /* Its mmap calls reach our hooks from inside its critical sections (a shared object
         * only: the main program's own mapping calls must stay visible). */
        if (in_shared_object(first)) lt_add_internal_mapper(first);
    }
}
