/* Built twice (FRAME_BYTES 64 and 4096): the same function with a different frame size, so
 * the same code address needs a different unwind rule in each build. */
#ifndef FRAME_BYTES
#define FRAME_BYTES 64
#endif

void *alloc_from_main(unsigned size);

__attribute__((noinline)) void *plugin_alloc(unsigned size) {
    volatile char frame[FRAME_BYTES];
    frame[0] = (char)size;
    void *p = alloc_from_main(size + (unsigned)frame[0] * 0);
    __asm__ volatile("" ::: "memory");
    return p;
}
