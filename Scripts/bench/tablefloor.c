// The floor of an address-keyed replay: the time a minimal live table takes to apply a trace's
// allocation events, with nothing else done. Reads `leakreport dump TRACE` on stdin, keeps its
// ALLOC, FREE and REALLOC records in memory, then replays them into a linear-probing table of
// 16-byte slots (the analyzer's own layout, load limit and hash; transparent huge pages for a
// big table; a prefetch 16 events ahead), timing the replay alone. Prints the median of five
// replays in seconds, the events, the peak number of live blocks and a checksum.
//
// A trace records addresses, so a free is matched to its block by a lookup: this is the one
// cost of the replay that no analyzer of such a trace can skip, and it runs on the replay's
// thread. heaptrack_print has no such lookup (heaptrack's interpreter matched frees to their
// allocations while recording), so this figure bounds what the analyzer can gain on it.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct { uint64_t address, payload; } slot;

static slot *slots;
static uint64_t capacity, count;
static int shift;

static slot *map_slots(uint64_t n) {
    size_t bytes = n * sizeof(slot);
    if (bytes < (2u << 20)) return calloc(n, sizeof(slot));
    void *mapped = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) { perror("mmap"); exit(1); }
    madvise(mapped, bytes, MADV_HUGEPAGE);
    return mapped;
}

static void unmap_slots(slot *s, uint64_t n) {
    size_t bytes = n * sizeof(slot);
    if (bytes < (2u << 20)) free(s); else munmap(s, bytes);
}

static inline uint64_t home(uint64_t address) { return (address * 0x9E3779B97F4A7C15ull) >> shift; }

static void insert(uint64_t address, uint64_t payload);

static void grow(void) {
    slot *old = slots;
    uint64_t old_capacity = capacity;
    capacity *= 2;
    shift -= 1;
    slots = map_slots(capacity);
    count = 0;
    for (uint64_t i = 0; i < old_capacity; i++)
        if (old[i].address) insert(old[i].address, old[i].payload);
    unmap_slots(old, old_capacity);
}

static void insert(uint64_t address, uint64_t payload) {
    if (count >= capacity / 16 * 12) grow();
    uint64_t mask = capacity - 1, i = home(address);
    while (slots[i].address && slots[i].address != address) i = (i + 1) & mask;
    if (!slots[i].address) count++;
    slots[i].address = address;
    slots[i].payload = payload;
}

// Backward-shift deletion, as the analyzer's table does (no tombstones).
static uint64_t remove_block(uint64_t address) {
    uint64_t mask = capacity - 1, i = home(address);
    while (slots[i].address != address) {
        if (!slots[i].address) return 0;
        i = (i + 1) & mask;
    }
    uint64_t payload = slots[i].payload, hole = i, next = i;
    count--;
    for (;;) {
        next = (next + 1) & mask;
        uint64_t moving = slots[next].address;
        if (!moving) break;
        uint64_t wanted = home(moving);
        int stays = hole <= next ? (hole < wanted && wanted <= next) : (hole < wanted || wanted <= next);
        if (stays) continue;
        slots[hole] = slots[next];
        hole = next;
    }
    slots[hole].address = 0;
    slots[hole].payload = 0;
    return payload;
}

// One event: kind 'A' (allocate `to`), 'F' (free `from`), 'R' (realloc `from` -> `to`; 0 = none).
typedef struct { uint64_t from, to; char kind; } event;

static uint64_t field(const char *line, const char *name) {
    const char *at = strstr(line, name);
    return at ? strtoull(at + strlen(name), NULL, 16) : 0;
}

// The n-th space-separated word of `line` as a hex address (n from 0).
static uint64_t word(const char *line, int n) {
    while (n-- > 0) {
        line = strchr(line, ' ');
        if (!line) return 0;
        line++;
    }
    return strtoull(line, NULL, 16);
}

static double seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    size_t n = 0, room = 1 << 20;
    event *events = malloc(room * sizeof(event));
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        event e = {0, 0, 0};
        if (!strncmp(line, "ALLOC ", 6)) { e.kind = 'A'; e.to = word(line, 3); }
        else if (!strncmp(line, "FREE ", 5)) { e.kind = 'F'; e.from = word(line, 1); }
        else if (!strncmp(line, "REALLOC ", 8)) { e.kind = 'R'; e.from = field(line, " old="); e.to = field(line, " new="); }
        else continue;
        if (n == room) { room *= 2; events = realloc(events, room * sizeof(event)); }
        events[n++] = e;
    }
    enum { runs = 5 };
    double times[runs];
    uint64_t peak = 0, checksum = 0;
    for (int run = 0; run < runs; run++) {
        capacity = 4096;
        shift = 64 - 12;
        count = 0;
        slots = map_slots(capacity);
        double start = seconds();
        for (size_t i = 0; i < n; i++) {
            if (i + 16 < n) {
                const event *ahead = &events[i + 16];
                __builtin_prefetch(&slots[home(ahead->kind == 'F' ? ahead->from : ahead->to)], 1, 3);
            }
            const event *e = &events[i];
            if (e->from) checksum += remove_block(e->from);
            if (e->to) insert(e->to, i);
            if (count > peak) peak = count;
        }
        times[run] = seconds() - start;
        unmap_slots(slots, capacity);
    }
    qsort(times, runs, sizeof times[0], by_value);
    // The checksum (of the freed blocks' payloads) keeps the lookups from being optimised away.
    printf("%.4f %zu %llu %llu\n", times[runs / 2], n, (unsigned long long)peak, (unsigned long long)checksum);
    return 0;
}
