/* Reachability at exit: the live blocks the program could still reach, with the rules and
 * categories of valgrind memcheck's leak checker, at the cost of one pass over the memory that
 * holds pointers instead of running the program on a simulated CPU.
 *
 * Roots are every readable and writable mapping of the process (the loaded objects' data, bss
 * and relro, thread stacks with their static TLS, the loader's and libc's anonymous memory),
 * less: malloc's heaps (the brk heap and the thread arenas' heaps, whose free chunks hold stale
 * data), the live blocks and the program's direct mappings themselves (they are scanned only
 * once something reaches them), the tracer's own memory and data (its tables hold every
 * address), and the exiting thread's stack below its stack pointer. The exiting thread's
 * registers are a root too. Other threads' registers cannot be read: their stacks are scanned
 * whole instead (REACH flag "other threads"). Each aligned word is a candidate pointer:
 *  - from a root, a pointer to a block's first byte makes it reachable, and so does a pointer
 *    to its middle that one of memcheck's heuristics accepts (std::string's old layout,
 *    length-prefixed blocks, arrays made by new[], multiple inheritance); any other interior
 *    pointer makes it possibly lost. Reached blocks are scanned in turn; what a possibly lost
 *    block points to is at most possibly lost.
 *  - then, in address order, each block nothing reached leads a clique: everything it reaches
 *    that nothing else reached is indirectly lost; the leader is definitely lost. A leader
 *    reached later by another leader joins that clique, so of a lost list or cycle one block
 *    is definite and the rest indirect, as memcheck counts them.
 *
 * Memory is read directly only when no other program thread runs (nothing can then unmap it
 * while it is read, and every range read was found readable in /proc/self/maps first) and it
 * is not a file mapping (a page past the file's end raises SIGBUS). Otherwise every read goes
 * through process_vm_readv, which fails instead of faulting. Ranges of a megabyte or more are
 * read page by page as mincore says they are resident: a page never touched holds no pointer,
 * and reading it would make the kernel map it.
 *
 * The process is stopped meanwhile only in the sense that its threads wait for the event lock
 * if they allocate enough to fill their rings; the scan's cost is one lookup per word that
 * falls in the blocks' address range, pipelined so that its cache misses overlap. */
#include "reach.h"
#include "init.h"
#include "marks.h"
#include "chunkpath.h"
#include "../io/buffers.h"
#include "../io/live.h"
#include "../io/writer.h"
#include "../format/records.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <ucontext.h>

/* glibc's thread arenas live in heaps of HEAP_MAX_SIZE (64 MiB on 64-bit), aligned to it. */
#define ARENA_HEAP_SIZE (64ull << 20)
#define PAGE 4096ull
#define RESIDENT_CHECK_MIN (1ull << 20)
#define READ_CHUNK 65536
#define RECORD_BODY_MAX 65536
#define LOCK_WAIT_MS 500

/* A block's state byte: its category so far, whether it waits on the mark stack, and what the
 * multiple-inheritance heuristic found at its start. */
enum { UNREACHED = 0, POSSIBLE = 1, REACHABLE = 2, INDIRECT = 3, STATE_MASK = 3, PENDING = 4, VTABLE_KNOWN = 8,
       VTABLE_FIRST = 16 };

struct range {
    uint64_t start, end;
};

enum { MAP_R = 1, MAP_W = 2, MAP_X = 4, MAP_FILE_BACKED = 8, MAP_NOT_ROOT = 16, MAP_DEVICE = 32 };

struct region {
    uint64_t start, end;
    unsigned flags;
};

/* The tracer's writable data (its .data and .bss): noted at start. */
static struct range self_data[4];
static int self_data_count;

static struct {
    struct lt_live_entry *blocks; /* and as many again for sorting */
    uint64_t n, lo, span, blocks_bytes;
    uint8_t *side; /* the mark stack, the states, then the blocks' page offsets */
    uint16_t *offset; /* each block's address within its page: a page's blocks in a few cache lines */
    uint64_t side_bytes;
    uint8_t *state;
    uint32_t *stack;
    uint64_t top;
    struct region *maps;
    uint64_t map_count;
    const struct region *last_region; /* region_of's last answer */
    char *maps_text;
    uint64_t maps_text_bytes;
    struct lt_live_table starts; /* the live table, numbered: block index by start address */
    struct range *excluded;
    uint64_t excluded_count, excluded_bytes;
    int remote; /* read through process_vm_readv */
    pid_t pid;
    uint64_t root_bytes, scanned_bytes;
    uint64_t phase_us[5]; /* sorting began, indexing began, marking began, cliques began, ended */
} S;

static uint8_t read_buffer[READ_CHUNK] __attribute__((aligned(64)));
static uint8_t record_body[RECORD_BODY_MAX + LT_REACH_HEAD_MAX];

/* When a fatal signal's handler scans: the interrupted thread's stack pointer and general
 * registers, as the kernel saved them (interrupted_sp 0: not in a handler). */
static uint64_t interrupted_sp;
static uint64_t interrupted_registers[16];

void lt_reach_note_signal_frame(const void *ucontext) {
    const ucontext_t *uc = ucontext;
    static const int general[16] = {REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
                                     REG_RDI, REG_RSI, REG_RBP, REG_RBX, REG_RDX, REG_RAX, REG_RCX, REG_RSP};
    for (int i = 0; i < 16; i++) interrupted_registers[i] = (uint64_t)uc->uc_mcontext.gregs[general[i]];
    interrupted_sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
}

/* ---- the tracer's own data ---- */

static int find_self_data(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    uint64_t self = (uint64_t)(uintptr_t)arg;
    int mine = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        uint64_t start = info->dlpi_addr + p->p_vaddr;
        if (p->p_type == PT_LOAD && self >= start && self < start + p->p_memsz) mine = 1;
    }
    if (!mine) return 0;
    for (int i = 0; i < info->dlpi_phnum && self_data_count < 4; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || !(p->p_flags & PF_W)) continue;
        uint64_t start = info->dlpi_addr + p->p_vaddr;
        self_data[self_data_count++] = (struct range){start & ~(PAGE - 1), (start + p->p_memsz + PAGE - 1) & ~(PAGE - 1)};
    }
    return 1;
}

void lt_reach_init(void) {
    if (!lt_live_init()) return;
    dl_iterate_phdr(find_self_data, (void *)&S);
}

/* ---- reading memory ---- */

/* Reads up to `len` bytes at `addr` into `out`; returns how many could be read. `remote`:
 * through process_vm_readv, which fails where a direct read would fault: memory other threads
 * may unmap meanwhile, and file mappings (a page past the file's end raises SIGBUS). */
static size_t read_memory(uint64_t addr, void *out, size_t len, int remote) {
    if (!remote) {
        memcpy(out, (const void *)(uintptr_t)addr, len);
        return len;
    }
    struct iovec local = {out, len}, there = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_readv(S.pid, &local, 1, &there, 1, 0);
    return n > 0 ? (size_t)n : 0;
}

/* ---- /proc/self/maps ---- */

static uint64_t parse_hex(const char **p) {
    uint64_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9') v = v * 16 + (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (uint64_t)(c - 'a' + 10);
        else return v;
    }
}

/* Reads the process's mappings into S.maps; returns 0 when it cannot. */
static int read_maps(void) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    size_t cap = 1 << 20, len = 0;
    char *text = lt_raw_mmap(cap);
    for (;;) {
        if (!text) break;
        if (len == cap) {
            char *bigger = lt_raw_mmap(cap * 2);
            if (bigger) memcpy(bigger, text, len);
            lt_arena_free_pages(text, cap);
            text = bigger;
            cap *= 2;
            continue;
        }
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    if (!text) return 0;
    uint64_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    S.maps = lt_raw_mmap(((lines + 1) * sizeof *S.maps + PAGE - 1) & ~(PAGE - 1));
    if (!S.maps) return 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        struct region r = {0, 0, 0};
        r.start = parse_hex(&p);
        p++; /* '-' */
        r.end = parse_hex(&p);
        p++;
        if (p + 4 <= eol) {
            r.flags |= (p[0] == 'r' ? MAP_R : 0) | (p[1] == 'w' ? MAP_W : 0) | (p[2] == 'x' ? MAP_X : 0);
        }
        /* offset, device, inode, then the path after spaces */
        int field = 0;
        const char *q = p;
        uint64_t inode = 0;
        while (q < eol && field < 4) {
            while (q < eol && *q != ' ') q++;
            while (q < eol && *q == ' ') q++;
            field++;
            if (field == 3) {
                const char *d = q;
                while (d < eol && *d >= '0' && *d <= '9') inode = inode * 10 + (uint64_t)(*d++ - '0');
            }
        }
        const char *path = q;
        size_t path_len = (size_t)(eol - path);
        if (inode) r.flags |= MAP_FILE_BACKED;
        if (path_len >= 6 && memcmp(path, "[heap]", 6) == 0) r.flags |= MAP_NOT_ROOT;
        if (path_len >= 5 && memcmp(path, "[vvar", 5) == 0) r.flags |= MAP_NOT_ROOT;
        if (path_len >= 10 && memcmp(path, "[vsyscall]", 10) == 0) r.flags |= MAP_NOT_ROOT;
        /* Device memory may have side effects when read; shared memory files are memory. */
        if (path_len >= 5 && memcmp(path, "/dev/", 5) == 0 && !(path_len >= 9 && memcmp(path, "/dev/shm/", 9) == 0) &&
            !(path_len >= 9 && memcmp(path, "/dev/zero", 9) == 0))
            r.flags |= MAP_NOT_ROOT | MAP_DEVICE;
        if (r.end > r.start) S.maps[S.map_count++] = r;
        p = eol + 1;
    }
    /* Kept until the scan ends: unmapped now, it would be listed above as readable. */
    S.maps_text = text;
    S.maps_text_bytes = cap;
    return S.map_count > 0;
}

/* Index of the first mapping ending above `addr` (S.map_count: none). */
static uint64_t first_region_ending_above(uint64_t addr) {
    uint64_t lo = 0, hi = S.map_count;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (S.maps[mid].end <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The mapping holding `addr`, or NULL. */
static const struct region *region_of(uint64_t addr) {
    const struct region *r = S.last_region; /* blocks mostly lie in one heap */
    if (r && addr - r->start < r->end - r->start) return r;
    uint64_t i = first_region_ending_above(addr);
    if (i < S.map_count && S.maps[i].start <= addr) return S.last_region = &S.maps[i];
    return NULL;
}

/* Whether [addr, addr + len) must be read through process_vm_readv. */
static int read_remotely(uint64_t addr) {
    const struct region *r = region_of(addr);
    return S.remote || !r || (r->flags & MAP_FILE_BACKED);
}

static int read_word(uint64_t addr, uint64_t *out) {
    return read_memory(addr, out, sizeof *out, read_remotely(addr)) == sizeof *out;
}

/* ---- finding the block a word points into ----
 *
 * A binary search over millions of blocks misses the cache at every level, and a dense heap
 * has a candidate pointer in every word. The blocks that start in each 4 KiB page are
 * indexed instead (open addressing by page number, 16 bytes a page): a word's page gives the
 * few blocks to search, and the block before them, which may run into the page. A page in
 * which no block starts can only be covered by the last block of the page before it or by a
 * block larger than a page, which are searched in a list of their own. */

#define PAGE_SHIFT 12

struct page_entry {
    uint64_t page;        /* page number + 1 (0: empty slot) */
    uint32_t first, last; /* the blocks starting in the page */
};

static struct {
    struct page_entry *slots;
    uint64_t mask, bytes;
    int shift;
    uint32_t *large; /* indexes of blocks larger than a page, by address */
    uint64_t large_count, large_bytes;
} P;

static inline uint64_t page_home(uint64_t page) { return (page * 0x9E3779B97F4A7C15ull) >> P.shift; }

static const struct page_entry *page_entry_of(uint64_t page) {
    for (uint64_t i = page_home(page);; i = (i + 1) & P.mask) {
        if (P.slots[i].page == page + 1) return &P.slots[i];
        if (!P.slots[i].page) return NULL;
    }
}

static int build_page_index(void) {
    uint64_t pages = 0, large = 0;
    for (uint64_t i = 0; i < S.n; i++) {
        pages += i == 0 || (S.blocks[i].addr >> PAGE_SHIFT) != (S.blocks[i - 1].addr >> PAGE_SHIFT);
        large += LT_LIVE_SIZE(&S.blocks[i]) > PAGE;
    }
    uint64_t slots = 16;
    while (slots < pages * 2) slots <<= 1;
    P.bytes = (slots * sizeof *P.slots + PAGE - 1) & ~(PAGE - 1);
    P.large_bytes = ((large + 1) * sizeof *P.large + PAGE - 1) & ~(PAGE - 1);
    P.slots = lt_raw_mmap(P.bytes);
    P.large = lt_raw_mmap(P.large_bytes);
    if (!P.slots || !P.large) return 0;
    P.mask = slots - 1;
    P.shift = 64 - __builtin_ctzll(slots);
    struct page_entry *e = NULL;
    for (uint64_t i = 0; i < S.n; i++) {
        uint64_t page = S.blocks[i].addr >> PAGE_SHIFT;
        if (LT_LIVE_SIZE(&S.blocks[i]) > PAGE) P.large[P.large_count++] = (uint32_t)i;
        if (e && e->page == page + 1) {
            e->last = (uint32_t)i;
            continue;
        }
        uint64_t k = page_home(page);
        while (P.slots[k].page) k = (k + 1) & P.mask;
        e = &P.slots[k];
        *e = (struct page_entry){page + 1, (uint32_t)i, (uint32_t)i};
    }
    return 1;
}

static void release_page_index(void) {
    lt_arena_free_pages(P.slots, P.bytes);
    lt_arena_free_pages(P.large, P.large_bytes);
    memset(&P, 0, sizeof P);
}

/* Whether block i holds w. A pointer to a block of size 0 points at it (as in memcheck). */
static inline int holds(uint64_t i, uint64_t w) {
    uint64_t size = LT_LIVE_SIZE(&S.blocks[i]);
    return w - S.blocks[i].addr < (size ? size : 1);
}

static int64_t large_block_at(uint64_t w) {
    uint64_t lo = 0, hi = P.large_count;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (S.blocks[P.large[mid]].addr <= w) lo = mid + 1;
        else hi = mid;
    }
    return lo > 0 && holds(P.large[lo - 1], w) ? (int64_t)P.large[lo - 1] : -1;
}

/* The block holding w, or -1; `*at_start` tells whether w is its first byte. */
/* The block starting at w, or -1. */
static inline int64_t block_starting_at(uint64_t w) {
    for (uint64_t k = lt_live_home(&S.starts, w);; k = (k + 1) & S.starts.mask) {
        if (S.starts.slots[k].addr == w) return (int64_t)S.starts.slots[k].size;
        if (!S.starts.slots[k].addr) return -1;
    }
}

/* The block holding w, given the index entry of w's page (NULL: no block starts there), when
 * w is not a block's first byte. */
static inline int64_t block_inside(uint64_t w, const struct page_entry *e) {
    if (!e) {
        const struct page_entry *before = page_entry_of((w >> PAGE_SHIFT) - 1);
        if (before && holds(before->last, w)) return before->last;
        return large_block_at(w);
    }
    uint16_t within = (uint16_t)(w & (PAGE - 1));
    if (within < S.offset[e->first]) {
        if (e->first > 0 && holds(e->first - 1, w)) return e->first - 1;
        return large_block_at(w);
    }
    uint64_t lo = e->first, hi = (uint64_t)e->last + 1; /* the last block starting at or below w */
    while (hi - lo > 1) {
        uint64_t mid = (lo + hi) / 2;
        if (S.offset[mid] <= within) lo = mid;
        else hi = mid;
    }
    return holds(lo, w) ? (int64_t)lo : -1;
}

/* ---- memcheck's heuristics for interior pointers ---- */

static int executable_file_address(uint64_t a) {
    const struct region *r = region_of(a);
    return r && (r->flags & MAP_X) && (r->flags & MAP_FILE_BACKED);
}

/* A table of at least two pointers into executable file mappings (a vtable), looking at up to
 * 20 words, nulls allowed. */
static int looks_like_vtable(uint64_t p) {
    if (p < PAGE || (p & 7)) return 0;
    const struct region *r = region_of(p);
    if (!r || !(r->flags & MAP_R)) return 0;
    int found = 0;
    for (uint64_t a = p; a < p + 20 * 8 && a + 8 <= r->end; a += 8) {
        uint64_t f;
        if (!read_word(a, &f)) return 0;
        if (!f) continue;
        if (!executable_file_address(f)) return 0;
        if (++found == 2) return 1;
    }
    return 0;
}

/* Whether an interior pointer w into block i counts as a pointer to its start. The
 * multiple-inheritance test needs a vtable pointer at the block's start: whether there is one
 * is found once per block and kept in its state (a block only possibly reached may be pointed
 * into a great many times). */
static int reachable_by_heuristic(uint64_t w, uint64_t i) {
    const struct lt_live_entry *b = &S.blocks[i];
    uint64_t start = b->addr, size = LT_LIVE_SIZE(b), offset = w - start, first, second;
    if (size < 8) return 0;
    if (offset == 8 || offset == 24) {
        if (!read_word(start, &first)) return 0;
        /* std::string's old layout: length, capacity, refcount, then the characters. */
        if (offset == 24 && size >= 16 && read_word(start + 8, &second) && 24 + second + 1 == size && first <= second)
            return 1;
        /* length64: the size of the rest in the first 8 bytes (sqlite3's allocations). */
        if (offset == 8 && first > 0 && size - 8 == first) return 1;
        /* new[] of objects with a destructor: the element count first. */
        if (offset == 8 && first > 0 && (size - 8) % first == 0) return 1;
    }
    /* multiple inheritance: a vtable pointer at the block's start and where w points. */
    if ((w & 7) || w + 8 > start + size) return 0;
    if (!(S.state[i] & VTABLE_KNOWN)) {
        S.state[i] |= VTABLE_KNOWN;
        if (read_word(start, &first) && !(first & 7) && first >= PAGE && looks_like_vtable(first))
            S.state[i] |= VTABLE_FIRST;
    }
    uint64_t inner;
    return (S.state[i] & VTABLE_FIRST) && read_word(w, &inner) && !(inner & 7) && inner >= PAGE &&
           looks_like_vtable(inner);
}

/* glibc's malloc keeps pointers to chunk headers in its arenas (the top chunk, the bins),
 * and the header of the chunk after a block that fills its chunk lies in the block's last
 * 8 bytes: such a pointer is the allocator's, not the program's (memcheck, which replaces
 * malloc, never sees one). */
static int is_next_chunk_header(uint64_t w, const struct lt_live_entry *b) {
    /* The next header lies at or past the block's last 8 bytes (a chunk holds its block). */
    if (!lt_allocator.is_glibc || (b->size & LT_LIVE_MAPPING) || (w & 15) || w + 8 < b->addr + b->size) return 0;
    uint64_t size_field;
    if (!read_word(b->addr - 8, &size_field) || (size_field & 2)) return 0; /* 2: IS_MMAPPED */
    return w == b->addr - 16 + (size_field & ~7ull);
}

/* ---- marking ---- */

static inline void push(uint64_t i) {
    if (S.state[i] & PENDING) return;
    S.state[i] |= PENDING;
    S.stack[S.top++] = (uint32_t)i;
}

static inline void set_state(uint64_t i, int state) { S.state[i] = (uint8_t)((S.state[i] & ~STATE_MASK) | state); }

/* A word `w` found in memory reached from a root (clique < 0; `definite`: that memory is not
 * itself only possibly reachable), or from the leader of clique `clique`. */
static inline void found_block(uint64_t w, int64_t i, int at_start, int definite, int64_t clique) {
    int state = S.state[i] & STATE_MASK;
    if (clique >= 0) {
        if (state == UNREACHED && i != clique) {
            set_state((uint64_t)i, INDIRECT);
            push((uint64_t)i);
        }
        return;
    }
    if (state == REACHABLE) return;
    at_start = at_start || w == S.blocks[i].addr; /* a mapping piece's start */
    if (!at_start && is_next_chunk_header(w, &S.blocks[i])) return;
    int by_start = at_start || reachable_by_heuristic(w, (uint64_t)i);
    if (by_start && definite) {
        set_state((uint64_t)i, REACHABLE);
        push((uint64_t)i);
    } else if (state == UNREACHED) {
        set_state((uint64_t)i, POSSIBLE);
        push((uint64_t)i);
    }
}

/* In a heap dense with pointers every word's lookup misses the cache, several times over: the
 * lookups are pipelined, each word passing four stages some words apart. Stage 1 fetches the
 * slots the lookup reads first (the start table's and the page index's); stage 2 finds the
 * block if the word points to its start, or else the page entry, fetching the page's block
 * offsets; stage 3 finds the block holding the word from those; each stage fetches what the
 * next one reads (the block's state last); stage 4 marks the block. */
#define STAGE 8
#define RING (4 * STAGE)

struct lookup {
    int64_t index;                /* the block, or -1 */
    const struct page_entry *page; /* stage 2 to 3: the word's page, when not at a block's start */
    uint8_t at_start, inside;     /* inside: stage 3 still has to look */
};

static inline void lookup_fetch(uint64_t w) {
    if (w - S.lo >= S.span) return;
    __builtin_prefetch(&S.starts.slots[lt_live_home(&S.starts, w)]);
    __builtin_prefetch(&P.slots[page_home(w >> PAGE_SHIFT)]);
}

static inline void lookup_start(uint64_t w, struct lookup *l) {
    *l = (struct lookup){.index = -1};
    if (w - S.lo >= S.span) return;
    int64_t i = block_starting_at(w);
    if (i >= 0) {
        l->index = i;
        l->at_start = 1;
        __builtin_prefetch(&S.state[i]);
        return;
    }
    l->inside = 1;
    l->page = page_entry_of(w >> PAGE_SHIFT);
    if (l->page) {
        __builtin_prefetch(&S.offset[l->page->first]);
        __builtin_prefetch(&S.offset[l->page->last]);
        __builtin_prefetch(&S.blocks[((uint64_t)l->page->first + l->page->last) / 2]);
    }
}

static inline void lookup_inside(uint64_t w, struct lookup *l) {
    if (!l->inside) return;
    l->index = block_inside(w, l->page);
    if (l->index >= 0) __builtin_prefetch(&S.state[l->index]);
}

/* Looks up and marks the candidates (words within the blocks' address range) through the
 * pipeline. */
static void mark_candidates(const uint64_t *w, uint64_t count, int definite, int64_t clique) {
    struct lookup ring[RING];
    /* Word k passes stage 1 at step k - 3*STAGE, 2 at k - 2*STAGE, 3 at k - STAGE, 4 at k. */
    for (int64_t step = -3 * STAGE; step < (int64_t)count; step++) {
        int64_t k1 = step + 3 * STAGE, k2 = step + 2 * STAGE, k3 = step + STAGE;
        if (k1 < (int64_t)count) lookup_fetch(w[k1]);
        if (k2 >= 0 && k2 < (int64_t)count) lookup_start(w[k2], &ring[k2 % RING]);
        if (k3 >= 0 && k3 < (int64_t)count) lookup_inside(w[k3], &ring[k3 % RING]);
        if (step >= 0) {
            const struct lookup *l = &ring[step % RING];
            if (l->index >= 0) found_block(w[step], l->index, l->at_start, definite, clique);
        }
    }
}

/* Finds and marks the blocks the words point into, as found in memory reached from a root
 * (clique < 0; `definite`: that memory is not itself only possibly reachable) or from the
 * leader of clique `clique`. Words outside the blocks' range (most of them, in most memory)
 * are dropped first, so the pipeline's stages stay far enough apart in time to hide a miss. */
static void scan_words(const uint64_t *w, uint64_t count, int definite, int64_t clique) {
    uint64_t candidates[256];
    for (uint64_t k = 0; k < count;) {
        uint64_t n = 0;
        for (; k < count && n < 256; k++) {
            candidates[n] = w[k];
            n += w[k] - S.lo < S.span;
        }
        mark_candidates(candidates, n, definite, clique);
    }
}

/* Scans [start, end), readable as a whole (found so in the maps). */
static void scan_readable(uint64_t start, uint64_t end, int remote, int definite, int64_t clique) {
    start = (start + 7) & ~7ull;
    end &= ~7ull;
    while (start < end) {
        if (!remote) {
            scan_words((const uint64_t *)(uintptr_t)start, (end - start) / 8, definite, clique);
            return;
        }
        size_t want = end - start < READ_CHUNK ? (size_t)(end - start) : READ_CHUNK;
        size_t got = read_memory(start, read_buffer, want, 1);
        scan_words((const uint64_t *)read_buffer, got / 8, definite, clique);
        if (got == want) start += want;
        else start = ((start + got) & ~(PAGE - 1)) + PAGE; /* unmapped meanwhile: skip the page */
    }
}

/* Scans [start, end) of one readable mapping; large ranges only where pages are resident. */
static void scan_piece(uint64_t start, uint64_t end, int remote, int definite, int64_t clique) {
    if (end - start < RESIDENT_CHECK_MIN) {
        scan_readable(start, end, remote, definite, clique);
        return;
    }
    static unsigned char resident[4096];
    uint64_t page = start & ~(PAGE - 1);
    while (page < end) {
        uint64_t window = end - page > sizeof resident * PAGE ? sizeof resident * PAGE : ((end - page + PAGE - 1) & ~(PAGE - 1));
        if (mincore((void *)(uintptr_t)page, window, resident) != 0) {
            scan_readable(page < start ? start : page, page + window < end ? page + window : end, remote, definite, clique);
        } else {
            for (uint64_t k = 0; k < window / PAGE;) {
                if (!(resident[k] & 1)) {
                    k++;
                    continue;
                }
                uint64_t run = k;
                while (run < window / PAGE && (resident[run] & 1)) run++;
                uint64_t a = page + k * PAGE, b = page + run * PAGE;
                if (a < start) a = start;
                if (b > end) b = end;
                if (a < b) scan_readable(a, b, remote, definite, clique);
                k = run;
            }
        }
        page += window;
    }
}

/* Scans the readable parts of [start, end). */
static void scan_memory(uint64_t start, uint64_t end, int definite, int64_t clique) {
    while (start < end) {
        const struct region *r = region_of(start);
        if (!r) { /* a hole: on to the next mapping */
            uint64_t next = first_region_ending_above(start);
            if (next >= S.map_count) return;
            start = S.maps[next].start;
            continue;
        }
        uint64_t stop = r->end < end ? r->end : end;
        if ((r->flags & MAP_R) && !(r->flags & MAP_DEVICE))
            scan_piece(start, stop, S.remote || (r->flags & MAP_FILE_BACKED), definite, clique);
        start = stop;
    }
}

/* Small blocks are scanned in batches: the words of up to BATCH_WORDS words' worth of them are
 * gathered and looked up in one pipeline (a 64-byte block alone is too short for one), while
 * the blocks next on the stack are fetched. */
#define BATCH_WORDS 1024
#define SMALL_BLOCK 512

static uint64_t batch[BATCH_WORDS];

/* Whether block b can be copied as it is: memory read directly, all of it in one readable
 * mapping. */
static inline int copyable(const struct lt_live_entry *b, uint64_t size) {
    if (S.remote || size > SMALL_BLOCK || (b->size & LT_LIVE_MAPPING)) return 0;
    const struct region *r = region_of(b->addr);
    return r && (r->flags & MAP_R) && !(r->flags & (MAP_FILE_BACKED | MAP_DEVICE)) && b->addr + size <= r->end;
}

static void drain_stack(int64_t clique) {
    while (S.top) {
        uint64_t n = 0;
        int batch_definite = -1;
        for (uint64_t ahead = 1; ahead <= 8 && ahead <= S.top; ahead++) {
            const struct lt_live_entry *next = &S.blocks[S.stack[S.top - ahead]];
            __builtin_prefetch((const void *)(uintptr_t)next->addr);
            if (S.top > ahead + 8) __builtin_prefetch(&S.blocks[S.stack[S.top - ahead - 8]]);
        }
        while (S.top) {
            uint64_t i = S.stack[S.top - 1];
            const struct lt_live_entry *b = &S.blocks[i];
            uint64_t size = LT_LIVE_SIZE(b);
            int definite = (S.state[i] & STATE_MASK) != POSSIBLE;
            if (!copyable(b, size)) {
                if (n) break; /* the gathered words first */
                S.top--;
                S.state[i] &= (uint8_t)~PENDING;
                S.scanned_bytes += size;
                scan_memory(b->addr, b->addr + size, definite, clique);
                break;
            }
            if ((batch_definite >= 0 && definite != batch_definite) || n + size / 8 > BATCH_WORDS) break;
            S.top--;
            S.state[i] &= (uint8_t)~PENDING;
            batch_definite = definite;
            memcpy(&batch[n], (const void *)(uintptr_t)b->addr, size & ~7ull);
            n += size / 8;
            S.scanned_bytes += size;
        }
        if (n) scan_words(batch, n, batch_definite, clique);
    }
}

/* ---- roots ---- */

/* Index of the first block ending above `addr`. */
static uint64_t first_block_ending_above(uint64_t addr) {
    uint64_t lo = 0, hi = S.n;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (S.blocks[mid].addr + LT_LIVE_SIZE(&S.blocks[mid]) <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A root range less the live blocks and mappings in it (they are scanned when reached). */
static void scan_root_outside_blocks(uint64_t start, uint64_t end) {
    for (uint64_t i = first_block_ending_above(start); start < end; i++) {
        uint64_t stop = i < S.n && S.blocks[i].addr < end ? S.blocks[i].addr : end;
        if (start < stop) {
            S.root_bytes += stop - start;
            scan_memory(start, stop, 1, -1);
        }
        if (i >= S.n || stop == end) return;
        uint64_t block_end = S.blocks[i].addr + LT_LIVE_SIZE(&S.blocks[i]);
        if (block_end > start) start = block_end;
    }
}

/* A root range less the excluded ranges (sorted, disjoint). */
static void scan_root(uint64_t start, uint64_t end) {
    uint64_t first = 0, hi = S.excluded_count; /* the first excluded range ending above start */
    while (first < hi) {
        uint64_t mid = (first + hi) / 2;
        if (S.excluded[mid].end <= start) first = mid + 1;
        else hi = mid;
    }
    for (uint64_t k = first; k < S.excluded_count && start < end; k++) {
        const struct range *x = &S.excluded[k];
        if (x->end <= start) continue;
        if (x->start >= end) break;
        if (x->start > start) scan_root_outside_blocks(start, x->start);
        start = x->end;
    }
    if (start < end) scan_root_outside_blocks(start, end);
}

static void exclude(uint64_t start, uint64_t end) {
    if (start < end) S.excluded[S.excluded_count++] = (struct range){start, end};
}

/* Sorts the excluded ranges (insertion sort: a few hundred at most) and merges overlaps. */
static void sort_excluded(void) {
    for (uint64_t i = 1; i < S.excluded_count; i++) {
        struct range r = S.excluded[i];
        uint64_t j = i;
        while (j > 0 && S.excluded[j - 1].start > r.start) {
            S.excluded[j] = S.excluded[j - 1];
            j--;
        }
        S.excluded[j] = r;
    }
    uint64_t out = 0;
    for (uint64_t i = 0; i < S.excluded_count; i++) {
        if (out && S.excluded[i].start <= S.excluded[out - 1].end) {
            if (S.excluded[i].end > S.excluded[out - 1].end) S.excluded[out - 1].end = S.excluded[i].end;
        } else {
            S.excluded[out++] = S.excluded[i];
        }
    }
    S.excluded_count = out;
}

/* glibc's thread-arena heaps: at a multiple of their size, starting with a heap_info whose
 * arena lies just after the first heap's heap_info (32 bytes before glibc 2.35, 48 since). */
static void exclude_arena_heaps(const struct region *r) {
    for (uint64_t a = (r->start + ARENA_HEAP_SIZE - 1) & ~(ARENA_HEAP_SIZE - 1); a < r->end; a += ARENA_HEAP_SIZE) {
        uint64_t head[3];
        if (read_memory(a, head, sizeof head, S.remote) != sizeof head) continue;
        uint64_t arena_offset = head[0] & (ARENA_HEAP_SIZE - 1);
        int is_heap = (arena_offset == 32 || arena_offset == 48) && !(head[1] & (ARENA_HEAP_SIZE - 1)) &&
                      head[2] > 0 && head[2] <= ARENA_HEAP_SIZE;
        if (is_heap) exclude(a, a + ARENA_HEAP_SIZE < r->end ? a + ARENA_HEAP_SIZE : r->end);
    }
}

static uint64_t own_mapping_count(void) {
    uint64_t count;
    int complete;
    lt_own_mappings(&count, &complete);
    return count;
}

/* Builds the excluded ranges: the tracer's memory and data, malloc's heaps, and the exiting
 * thread's stack below `sp`. */
static int build_exclusions(uint64_t sp) {
    uint64_t count = own_mapping_count();
    uint64_t cap = count + self_data_count + 1 + S.map_count * 2 + 16;
    S.excluded_bytes = (cap * sizeof *S.excluded + PAGE - 1) & ~(PAGE - 1);
    S.excluded = lt_raw_mmap(S.excluded_bytes);
    if (!S.excluded) return 0;
    int complete;
    const struct lt_own_mapping *own = lt_own_mappings(&count, &complete);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t start = atomic_load(&own[i].start);
        if (start && own[i].size) exclude(start, start + own[i].size);
    }
    for (int i = 0; i < self_data_count; i++) exclude(self_data[i].start, self_data[i].end);
    const struct region *stack = region_of(sp);
    if (stack) exclude(stack->start, sp & ~7ull);
    /* In a signal handler: the interrupted thread's stack below its stack pointer too (the
     * signal frame, with registers that are scanned from their copy, the vector state, the
     * red zone and stale data), as memcheck scans a stack from the stack pointer. */
    const struct region *interrupted = interrupted_sp ? region_of(interrupted_sp) : NULL;
    if (interrupted) exclude(interrupted->start, interrupted_sp & ~7ull);
    for (uint64_t i = 0; i < S.map_count; i++) {
        const struct region *r = &S.maps[i];
        if ((r->flags & (MAP_R | MAP_W)) == (MAP_R | MAP_W) && !(r->flags & MAP_FILE_BACKED) && r->end - r->start >= PAGE)
            exclude_arena_heaps(r);
        if (S.excluded_count + 4 >= cap) break;
    }
    sort_excluded();
    return 1;
}

/* Scans every mapping that is a root. */
static void scan_roots(void) {
    for (uint64_t i = 0; i < S.map_count; i++) {
        const struct region *r = &S.maps[i];
        if ((r->flags & (MAP_R | MAP_W)) != (MAP_R | MAP_W) || (r->flags & MAP_NOT_ROOT)) continue;
        scan_root(r->start, r->end);
        drain_stack(-1);
    }
}

/* ---- the whole scan ---- */

static uint64_t threads_running(void) {
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char text[4096];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = 0;
    const char *p = strstr(text, "\nThreads:");
    if (!p) return 0;
    p += 9;
    while (*p == ' ' || *p == '\t') p++;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
    return v;
}

static int loaded_object_named(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    return info->dlpi_name && strstr(info->dlpi_name, (const char *)arg) != NULL;
}

/* Calls libstdc++'s and glibc's cleanup functions, which free the buffers the runtimes keep
 * for the life of the process (valgrind calls them too), after a MARK that lets a report show
 * what they released. Returns the REACH flags for the calls made. */
static unsigned call_runtime_cleanup(void) {
    /* Looked up only where present: a failed dlsym allocates its error message. */
    void (*cxx)(void) = NULL, (*libc)(void) = NULL;
    if (dl_iterate_phdr(loaded_object_named, (void *)"libstdc++.so"))
        cxx = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZN9__gnu_cxx9__freeresEv");
    if (dl_iterate_phdr(loaded_object_named, (void *)"libc.so.6"))
        libc = (void (*)(void))dlsym(RTLD_DEFAULT, "__libc_freeres");
    if (!cxx && !libc) return 0;
    lt_mark_from_tracer("runtime cleanup at exit");
    int was = lt_self.in_hook;
    lt_self.in_hook = 0; /* what they free is the program's: recorded */
    if (cxx) cxx();
    if (libc) libc();
    lt_self.in_hook = was;
    return (cxx ? REACH_CXX_FREERES : 0) | (libc ? REACH_LIBC_FREERES : 0);
}

static void write_records_locked(unsigned flags, uint64_t scan_us) {
    uint64_t i = 0;
    do {
        uint8_t *entries = record_body + LT_REACH_HEAD_MAX, *o = entries;
        uint64_t first = i, prev = 0;
        for (; i < S.n && o + LT_REACH_ENTRY_MAX <= entries + RECORD_BODY_MAX; i++) {
            static const uint8_t category[4] = {
                [UNREACHED] = REACH_DEFINITELY_LOST, [POSSIBLE] = REACH_POSSIBLY_LOST,
                [REACHABLE] = REACH_STILL_REACHABLE, [INDIRECT] = REACH_INDIRECTLY_LOST,
            };
            o = lt_encode_reach_entry(o, S.blocks[i].addr - prev, category[S.state[i] & STATE_MASK]);
            prev = S.blocks[i].addr;
        }
        uint8_t head[LT_REACH_HEAD_MAX];
        size_t head_len = (size_t)(lt_encode_reach_head(head, flags, scan_us, S.root_bytes, S.scanned_bytes, i - first) - head);
        uint8_t *body = entries - head_len;
        memcpy(body, head, head_len);
        lt_append_record_locked(TAG_REACH, body, (size_t)(o - body), LT_NO_CONTEXT);
    } while (i < S.n);
}

/* LEAKTRACE_VERBOSE: the totals per category, as valgrind's leak summary gives them. */
static void report_counts(unsigned flags, uint64_t scan_us) {
    if (!(flags & REACH_SCANNED)) {
        lt_warn("reachability:", "not computed", (flags & REACH_REFUSED) ? "(refused)" : NULL);
        return;
    }
    uint64_t blocks[4] = {0}, bytes[4] = {0};
    for (uint64_t i = 0; i < S.n; i++) {
        blocks[S.state[i] & STATE_MASK]++;
        bytes[S.state[i] & STATE_MASK] += LT_LIVE_SIZE(&S.blocks[i]);
    }
    static const char *const names[4] = {
        [UNREACHED] = "definitely-lost", [INDIRECT] = "indirectly-lost", [POSSIBLE] = "possibly-lost",
        [REACHABLE] = "still-reachable",
    };
    static const int order[4] = {UNREACHED, INDIRECT, POSSIBLE, REACHABLE};
    char line[400] = "";
    char *o = line;
    for (int k = 0; k < 4; k++) {
        int c = order[k];
        for (const char *n = names[c]; *n; n++) *o++ = *n;
        *o++ = '=';
        o = lt_put_decimal(o, bytes[c]);
        *o++ = '/';
        o = lt_put_decimal(o, blocks[c]);
        *o++ = ' ';
    }
    for (const char *n = "scan-us="; *n; n++) *o++ = *n;
    o = lt_put_decimal(o, scan_us);
    if (lt_config.verbose >= 2) { /* where the time went: sorting, indexing, marking, cliques */
        static const char *const phases[4] = {" sort-us=", " index-us=", " mark-us=", " cliques-us="};
        for (int k = 0; k < 4; k++) {
            for (const char *n = phases[k]; *n; n++) *o++ = *n;
            o = lt_put_decimal(o, S.phase_us[k + 1] - S.phase_us[k]);
        }
    }
    *o = 0;
    lt_warn("reachability (bytes/blocks):", line, NULL);
}

static void release_scan_memory(void) {
    release_page_index();
    lt_arena_free_pages(S.blocks, S.blocks_bytes);
    lt_arena_free_pages(S.side, S.side_bytes);
    lt_arena_free_pages(S.maps, ((S.map_count + 1) * sizeof *S.maps + PAGE - 1) & ~(PAGE - 1));
    lt_arena_free_pages(S.excluded, S.excluded_bytes);
    lt_arena_free_pages(S.maps_text, S.maps_text_bytes);
    memset(&S, 0, sizeof S);
}

/* Takes the event lock; from a signal handler, waits a bounded time and merges only if that
 * needs no waiting for the writer. Returns 0 without the lock. */
static int lock_events_for_scan(int from_signal) {
    if (!from_signal) {
        lt_lock_events();
        return 1;
    }
    for (int waited = 0; !lt_lock_try(&lt_buf.event_lock); waited++) {
        if (waited >= LOCK_WAIT_MS) return 0;
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    if (!lt_rings_drain_nowait_locked()) {
        lt_unlock(&lt_buf.event_lock);
        return 0;
    }
    return 1;
}

/* The trace's clock is coarse (milliseconds): the scan's own time wants better. */
static uint64_t precise_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* Sorts the live set, scans the roots, then the cliques. Returns 0 when it could not run (out
 * of memory, an incomplete live set, memory that cannot be read safely). */
__attribute__((noinline)) static int classify(const uint64_t *registers, int register_count) {
    uint64_t probe = 0, value = 1;
    struct iovec local = {&probe, 8}, remote = {&value, 8};
    S.n = lt_live_count_locked(); /* applies the events still waiting, which may find it incomplete */
    if (!lt_live_complete() || (S.remote && process_vm_readv(S.pid, &local, 1, &remote, 1, 0) != 8)) return 0;
    S.blocks_bytes = ((S.n ? S.n : 1) * 2 * sizeof *S.blocks + PAGE - 1) & ~(PAGE - 1);
    S.side_bytes = ((S.n ? S.n : 1) * (sizeof *S.stack + 1 + sizeof *S.offset) + PAGE - 1) & ~(PAGE - 1);
    S.blocks = lt_raw_mmap(S.blocks_bytes);
    S.side = lt_raw_mmap(S.side_bytes);
    if (!S.blocks || !S.side || !read_maps()) return 0;
    S.phase_us[0] = precise_us();
    S.n = lt_live_sorted_locked(S.blocks, S.blocks + S.n);
    S.starts = lt_live_number_locked(S.blocks, S.n);
    S.stack = (uint32_t *)S.side;
    S.offset = (uint16_t *)(S.side + S.n * sizeof *S.stack);
    S.state = S.side + S.n * (sizeof *S.stack + sizeof *S.offset);
    for (uint64_t i = 0; i < S.n; i++) S.offset[i] = (uint16_t)(S.blocks[i].addr & (PAGE - 1));
    if (S.n) {
        S.lo = S.blocks[0].addr;
        uint64_t hi = S.lo;
        for (uint64_t i = 0; i < S.n; i++) {
            uint64_t size = LT_LIVE_SIZE(&S.blocks[i]);
            uint64_t end = S.blocks[i].addr + (size ? size : 1);
            if (end > hi) hi = end;
        }
        S.span = hi - S.lo;
    }
    /* Frames below this one are the scan's own. */
    S.phase_us[1] = precise_us();
    if (!build_exclusions((uint64_t)(uintptr_t)__builtin_frame_address(0)) || !build_page_index()) return 0;
    S.phase_us[2] = precise_us();
    scan_roots();
    S.root_bytes += (uint64_t)register_count * 8;
    scan_words(registers, (uint64_t)register_count, 1, -1);
    drain_stack(-1);
    S.phase_us[3] = precise_us();
    for (uint64_t i = 0; i < S.n; i++) {
        if ((S.state[i] & STATE_MASK) != UNREACHED) continue;
        push(i);
        drain_stack((int64_t)i);
    }
    S.phase_us[4] = precise_us();
    return 1;
}

void lt_reach_at_exit(int from_signal) {
    /* The registers the program's code left: only the callee-saved ones can still hold its
     * values here (the others are the tracer's and the exit path's scratch), read before the
     * tracer's own code uses them; whatever the exit path saved of them is on the stack. */
    uint64_t registers[6];
    __asm__ volatile("mov %%rbx, 0(%0)\n\tmov %%rbp, 8(%0)\n\tmov %%r12, 16(%0)\n\t"
                     "mov %%r13, 24(%0)\n\tmov %%r14, 32(%0)\n\tmov %%r15, 40(%0)"
                     :
                     : "r"(registers)
                     : "memory");
    if (!lt_live_enabled() && lt_live_complete()) return; /* LEAKTRACE_REACHABILITY=0 */
    unsigned flags = from_signal ? REACH_IN_SIGNAL_HANDLER : 0;
    /* Threads other than this one and the writer; unknown counts as some. */
    uint64_t threads = threads_running(), writer = lt_writer_running() ? 1 : 0;
    uint64_t others = threads == 0 ? 1 : threads > 1 + writer ? threads - 1 - writer : 0;
    if (!from_signal && !others && lt_config.freeres) flags |= call_runtime_cleanup();
    if (others) flags |= REACH_OTHER_THREADS;

    uint64_t began = precise_us();
    if (!lock_events_for_scan(from_signal)) return;
    memset(&S, 0, sizeof S);
    S.pid = getpid();
    S.remote = others > 0;
    int in_handler = from_signal && interrupted_sp;
    flags |= classify(in_handler ? interrupted_registers : registers, in_handler ? 16 : 6) ? REACH_SCANNED : REACH_REFUSED;
    if (!(flags & REACH_SCANNED)) S.n = 0;
    uint64_t scan_us = precise_us() - began;
    write_records_locked(flags, scan_us);
    lt_unlock_events();
    if (lt_config.verbose) report_counts(flags, scan_us);
    release_scan_memory();
}
