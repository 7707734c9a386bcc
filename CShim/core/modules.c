/* The module map: which object is loaded where, so that every stack address can be resolved
 * after the process is gone.
 *
 * dl_iterate_phdr takes the loader's lock, so it is never called while the event lock is held
 * (heaptrack 88e66a6) and never from an allocation hook. A snapshot is taken at start, by the
 * writer thread when the loader's add/remove counters moved (dlpi_adds/dlpi_subs, the way
 * bytehound avoids hooking dlopen), before dlclose, and before fork, exec and exit. */
#include "modules.h"
#include "init.h"
#include "gate.h"
#include "../io/buffers.h"
#include "../format/records.h"

#include <elf.h>
#include <link.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#define SNAPSHOT_CAPACITY (4u << 20)

struct lt_code_ranges lt_code;

/* The loader's add/remove counters at the last snapshot, and the snapshot's number. */
static unsigned long long modules_adds, modules_subs;
static uint64_t modules_generation;

static uint8_t *snapshot_body;
static pthread_mutex_t snapshot_lock = PTHREAD_MUTEX_INITIALIZER;

struct snapshot_walk {
    uint8_t *out, *end;
    uint64_t count;
    int overflow;
    unsigned long long adds, subs;
};

/* Copies the GNU build-id note of a loaded object, found through its PT_NOTE segments in
 * memory (no file is opened). */
static size_t find_build_id(const struct dl_phdr_info *info, const uint8_t **id) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const uint8_t *name = p + sizeof *n;
            const uint8_t *desc = name + ((n->n_namesz + 3) & ~3u);
            if (desc + n->n_descsz > end) break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                *id = desc;
                return n->n_descsz;
            }
            p = desc + ((n->n_descsz + 3) & ~3u);
        }
    }
    return 0;
}

static int add_module(struct dl_phdr_info *info, size_t size, void *data) {
    struct snapshot_walk *w = data;
    if (w->count == 0 && size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        w->adds = info->dlpi_adds;
        w->subs = info->dlpi_subs;
    }
    const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : NULL;
    if (!path && w->count == 0) path = lt_process.program_path; /* the main program has no name here */
    if (!path) path = "";
    const uint8_t *id = NULL;
    size_t id_len = find_build_id(info, &id);
    uint8_t *p = lt_encode_module(w->out, (size_t)(w->end - w->out), info, path, id, id_len);
    if (!p) {
        w->overflow = 1;
        return 1;
    }
    w->out = p;
    w->count++;
    return 0;
}

static int read_counters(struct dl_phdr_info *info, size_t size, void *data) {
    unsigned long long *c = data;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c[0] = info->dlpi_adds;
        c[1] = info->dlpi_subs;
    }
    return 1; /* the counters are global: the first object is enough */
}

static void snapshot_locked(int force);

/* Writes a MODULES record if the set of loaded objects changed (or always, with force).
 * Counted with the threads inside libunwind (core/gate.h, lt_unwind_enter): a fork waits until no
 * snapshot is under way, so a child never inherits the snapshot lock, or the loader's list
 * lock that dl_iterate_phdr holds, from the writer thread (hazard 4). */
void lt_modules_snapshot(int force) {
    if (atomic_load(&lt_phase) != PHASE_TRACING) return;
    lt_unwind_enter();
    pthread_mutex_lock(&snapshot_lock);
    snapshot_locked(force);
    pthread_mutex_unlock(&snapshot_lock);
    lt_unwind_leave();
}

/* For the writer thread: skips the check when another thread is taking a snapshot. That thread
 * may be waiting, snapshot lock held, for the writer to free a buffer for its record; the writer
 * must never wait for it in turn. */
void lt_modules_snapshot_unless_busy(void) {
    if (atomic_load(&lt_phase) != PHASE_TRACING) return;
    lt_unwind_enter();
    if (pthread_mutex_trylock(&snapshot_lock) == 0) {
        snapshot_locked(0);
        pthread_mutex_unlock(&snapshot_lock);
    }
    lt_unwind_leave();
}

static void snapshot_locked(int force) {
    unsigned long long counters[2] = {0, 0};
    if (!force) {
        dl_iterate_phdr(read_counters, counters);
        if (counters[0] == modules_adds && counters[1] == modules_subs && modules_generation > 0) return;
    }
    if (!snapshot_body) snapshot_body = lt_raw_mmap(SNAPSHOT_CAPACITY);
    if (!snapshot_body) return;
    uint8_t *modules = snapshot_body + LT_MODULES_PREFIX_MAX;
    struct snapshot_walk w = {modules, snapshot_body + SNAPSHOT_CAPACITY, 0, 0, 0, 0};
    dl_iterate_phdr(add_module, &w);
    uint8_t *body = lt_encode_modules_prefix(modules, ++modules_generation, w.count);
    modules_adds = w.adds;
    modules_subs = w.subs;
    lt_append_record(TAG_MODULES, body, (size_t)(w.out - body), LT_NO_CONTEXT);
}

void lt_modules_after_fork(void) { modules_generation = 0; }

struct text_query {
    uintptr_t address;
    uintptr_t start, end;
};

static int find_text(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct text_query *q = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (q->address >= start && q->address < start + ph->p_memsz) {
            q->start = start;
            q->end = start + ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

/* Finds the tracer's own executable segment, whose frames are dropped from every stack, and
 * libunwind's, whose pipe2 and mapping calls are its own (hooks/process_hooks.c, core/modules.h). */
void lt_find_self_text(void) {
    struct text_query self = {(uintptr_t)&lt_find_self_text, 0, 0};
    dl_iterate_phdr(find_text, &self);
    lt_code.self_text_start = self.start;
    lt_code.self_text_end = self.end;
    struct text_query unwind = {(uintptr_t)&_ULx86_64_init_local, 0, 0};
    dl_iterate_phdr(find_text, &unwind);
    lt_code.unwind_text_start = unwind.start;
    lt_code.unwind_text_end = unwind.end;
    lt_add_internal_mapper((const void *)&_ULx86_64_init_local);
}

/* Adds the executable segment holding `address` to the code whose mapping calls are not the
 * program's (core/modules.h, lt_is_internal_mapping_caller). Called at start only, before any hook
 * records, so the table needs no lock. */
void lt_add_internal_mapper(const void *address) {
    struct text_query q = {(uintptr_t)address, 0, 0};
    dl_iterate_phdr(find_text, &q);
    if (!q.start || lt_code.internal_mapper_count >= (int)(sizeof lt_code.internal_mappers / sizeof *lt_code.internal_mappers))
        return;
    for (int i = 0; i < lt_code.internal_mapper_count; i++)
        if (lt_code.internal_mappers[i].start == q.start) return;
    lt_code.internal_mappers[lt_code.internal_mapper_count].start = q.start;
    lt_code.internal_mappers[lt_code.internal_mapper_count].end = q.end;
    lt_code.internal_mapper_count++;
}
