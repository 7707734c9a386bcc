// See include/CDebugImage.h.
#define _GNU_SOURCE
#include "CDebugImage.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#ifndef ELFCOMPRESS_ZSTD
#define ELFCOMPRESS_ZSTD 2
#endif

/// Sections libdw would load and a report never reads: variable locations, macros and call frame
/// information (symbolization needs units, lines, ranges and names only). Location lists alone
/// are 14% of libc's debug data.
static const char *const unread_sections[] = {
    ".debug_loc", ".debug_loclists", ".debug_macro", ".debug_macinfo", ".debug_frame",
    ".debug_pubnames", ".debug_pubtypes", ".debug_gnu_pubnames", ".debug_gnu_pubtypes",
};

static void fail(char *error, size_t size, const char *format, ...) {
    if (size == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
}

/// The file's section headers, or NULL if they do not lie within the file. `count` and
/// `names` (the section-name string table's index) follow the extended numbering of the ELF
/// specification when the header's fields overflow.
static const Elf64_Shdr *section_headers(const unsigned char *file, size_t size, size_t *count, size_t *names) {
    if (size < sizeof(Elf64_Ehdr) || memcmp(file, ELFMAG, SELFMAG) != 0) return NULL;
    if (file[EI_CLASS] != ELFCLASS64 || file[EI_DATA] != ELFDATA2LSB) return NULL;
    const Elf64_Ehdr *header = (const Elf64_Ehdr *)file;
    if (header->e_shoff == 0 || header->e_shentsize != sizeof(Elf64_Shdr)) return NULL;
    if (header->e_shoff > size || size - header->e_shoff < sizeof(Elf64_Shdr)) return NULL;
    if (header->e_shoff % _Alignof(Elf64_Shdr) != 0) return NULL;
    const Elf64_Shdr *sections = (const Elf64_Shdr *)(file + header->e_shoff);
    size_t n = header->e_shnum ? header->e_shnum : sections[0].sh_size;
    if (n == 0 || n > (size - header->e_shoff) / sizeof(Elf64_Shdr)) return NULL;
    size_t strings = header->e_shstrndx == SHN_XINDEX ? sections[0].sh_link : header->e_shstrndx;
    *count = n;
    *names = strings < n ? strings : 0;
    return sections;
}

static int has_file_data(const Elf64_Shdr *section) {
    return section->sh_type != SHT_NOBITS && section->sh_type != SHT_NULL && section->sh_size > 0;
}

static int lies_within(const Elf64_Shdr *section, size_t size) {
    return !has_file_data(section) || (section->sh_offset <= size && section->sh_size <= size - section->sh_offset);
}

static const char *section_name(const unsigned char *file, size_t size, const Elf64_Shdr *sections,
                                size_t names, const Elf64_Shdr *section) {
    if (names == 0 || !lies_within(&sections[names], size)) return "";
    const Elf64_Shdr *table = &sections[names];
    if (section->sh_name >= table->sh_size) return "";
    const char *name = (const char *)file + table->sh_offset + section->sh_name;
    return memchr(name, 0, table->sh_size - section->sh_name) ? name : "";
}

static int is_unread(const char *name) {
    for (size_t i = 0; i < sizeof unread_sections / sizeof unread_sections[0]; i++) {
        if (strcmp(name, unread_sections[i]) == 0) return 1;
    }
    return 0;
}

/// The regular file at `fd` mapped whole for reading, or NULL (empty, not a regular file).
static unsigned char *map_whole_file(int fd, size_t *size) {
    struct stat status;
    if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode) || status.st_size <= 0) return NULL;
    *size = (size_t)status.st_size;
    unsigned char *file = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    return file == MAP_FAILED ? NULL : file;
}

/// What the section headers of the file at `fd` say, read in one pass.
struct section_survey {
    int compressed; /* a section with file data is compressed */
    int complete;   /* an image as debug_image_write leaves it, whole */
};

static struct section_survey survey_sections(int fd) {
    struct section_survey survey = {0, 0};
    size_t size = 0;
    unsigned char *file = map_whole_file(fd, &size);
    if (file == NULL) return survey;
    size_t count = 0, names = 0;
    const Elf64_Shdr *sections = section_headers(file, size, &count, &names);
    if (sections != NULL) {
        // The section headers come last in an image: a file cut short loses them first.
        survey.complete = ((const Elf64_Ehdr *)file)->e_shoff + count * sizeof(Elf64_Shdr) == size;
        for (size_t i = 0; i < count; i++) {
            int compressed = (sections[i].sh_flags & SHF_COMPRESSED) != 0;
            if (compressed && has_file_data(&sections[i])) survey.compressed = 1;
            if (compressed || !lies_within(&sections[i], size)) survey.complete = 0;
        }
    }
    munmap(file, size);
    return survey;
}

int debug_image_is_needed(int fd) { return survey_sections(fd).compressed; }

int debug_image_is_complete(int fd) { return survey_sections(fd).complete; }

/// One compressed section to inflate into the image.
struct inflation {
    const unsigned char *input;
    size_t input_size;
    unsigned char *output;
    size_t output_size;
    uint32_t type;
};

struct inflation_work {
    struct inflation *items;
    size_t count;
    size_t next;                // claimed under `lock`
    pthread_mutex_t lock;
    int failed;                 // the first failure, under `lock`
    char failure[160];
};

static void inflate_items(struct inflation_work *work) {
    struct libdeflate_decompressor *decompressor = libdeflate_alloc_decompressor();
    for (;;) {
        pthread_mutex_lock(&work->lock);
        size_t index = work->next < work->count && !work->failed ? work->next++ : work->count;
        pthread_mutex_unlock(&work->lock);
        if (index == work->count) break;
        struct inflation *item = &work->items[index];
        const char *problem = NULL;
        if (item->type == ELFCOMPRESS_ZLIB) {
            size_t written = 0;
            if (decompressor == NULL) {
                problem = "out of memory";
            } else if (libdeflate_zlib_decompress(decompressor, item->input, item->input_size, item->output,
                                                  item->output_size, &written) != LIBDEFLATE_SUCCESS ||
                       written != item->output_size) {
                problem = "damaged zlib data";
            }
        } else {
            size_t written = ZSTD_decompress(item->output, item->output_size, item->input, item->input_size);
            if (ZSTD_isError(written) || written != item->output_size) problem = "damaged zstd data";
        }
        if (problem) {
            pthread_mutex_lock(&work->lock);
            if (!work->failed) {
                work->failed = 1;
                snprintf(work->failure, sizeof work->failure, "%s", problem);
            }
            pthread_mutex_unlock(&work->lock);
        }
    }
    libdeflate_free_decompressor(decompressor);
}

static void *inflate_thread(void *work) {
    inflate_items(work);
    return NULL;
}

static int by_input_size_descending(const void *a, const void *b) {
    size_t x = ((const struct inflation *)a)->input_size, y = ((const struct inflation *)b)->input_size;
    return x < y ? 1 : x > y ? -1 : 0;
}

/// Inflates every item, on this thread and one more: libc's .debug_info is half the work, so
/// two threads take the largest first and share the rest.
static int inflate_all(struct inflation *items, size_t count, char *error, size_t error_size) {
    qsort(items, count, sizeof *items, by_input_size_descending);
    struct inflation_work work = {.items = items, .count = count};
    pthread_mutex_init(&work.lock, NULL);
    pthread_t helper;
    int helped = count > 1 && pthread_create(&helper, NULL, inflate_thread, &work) == 0;
    inflate_items(&work);
    if (helped) pthread_join(helper, NULL);
    pthread_mutex_destroy(&work.lock);
    if (work.failed) fail(error, error_size, "%s", work.failure);
    return !work.failed;
}

static size_t align_up(size_t value, size_t alignment) {
    if (alignment <= 1) return value;
    size_t rest = value % alignment;
    return rest ? value + (alignment - rest) : value;
}

static int write_all(int fd, const unsigned char *bytes, size_t size) {
    while (size > 0) {
        ssize_t written = write(fd, bytes, size);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) return 0;
        bytes += written;
        size -= (size_t)written;
    }
    return 1;
}

/// Where the image goes: an anonymous memory file (no `path`), or a temporary file beside `path`.
static int create_output(const char *path, char *temporary, size_t temporary_size) {
    if (path == NULL) return memfd_create("leakreport-debug-image", MFD_CLOEXEC);
    if ((size_t)snprintf(temporary, temporary_size, "%s.%d.tmp", path, (int)getpid()) >= temporary_size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

int debug_image_write(int fd, const char *path, size_t max_file_size, char *error, size_t error_size) {
    size_t size = 0;
    const unsigned char *file = map_whole_file(fd, &size);
    if (file == NULL) return DEBUG_IMAGE_NOT_NEEDED;

    int result = DEBUG_IMAGE_NOT_NEEDED;
    Elf64_Shdr *layout = NULL;
    size_t *order = NULL;
    struct inflation *items = NULL;
    unsigned char *image = MAP_FAILED;
    size_t image_size = 0;
    int out = -1;
    char temporary[4096] = "";

    size_t count = 0, names = 0;
    const Elf64_Shdr *sections = section_headers(file, size, &count, &names);
    if (sections == NULL) goto done;
    const Elf64_Ehdr *header = (const Elf64_Ehdr *)file;
    size_t compressed = 0;
    for (size_t i = 0; i < count; i++) {
        if (!lies_within(&sections[i], size)) goto done; // libdw gets the file as it is
        if (has_file_data(&sections[i]) && (sections[i].sh_flags & SHF_COMPRESSED)) compressed++;
    }
    if (compressed == 0) goto done;

    result = DEBUG_IMAGE_FAILED;
    layout = malloc(count * sizeof *layout);
    order = malloc(count * sizeof *order);
    items = malloc(compressed * sizeof *items);
    if (!layout || !order || !items) {
        fail(error, error_size, "out of memory");
        goto done;
    }
    memcpy(layout, sections, count * sizeof *layout);

    // Sections keep their order in the file; each moves up or down by what the ones before it
    // grew or shrank. The program headers stay where they are when they come first, as they do.
    size_t phdr_end = header->e_phnum ? header->e_phoff + (size_t)header->e_phnum * header->e_phentsize : 0;
    size_t head = sizeof(Elf64_Ehdr) > phdr_end ? sizeof(Elf64_Ehdr) : phdr_end;
    if (phdr_end > size) goto malformed;
    size_t cursor = head;
    size_t ordered = 0;
    for (size_t i = 1; i < count; i++) order[ordered++] = i;
    for (size_t i = 1; i < ordered; i++) { // insertion sort by offset: a few dozen sections
        size_t key = order[i], j = i;
        while (j > 0 && sections[order[j - 1]].sh_offset > sections[key].sh_offset) { order[j] = order[j - 1]; j--; }
        order[j] = key;
    }
    size_t inflations = 0;
    for (size_t k = 0; k < ordered; k++) {
        size_t i = order[k];
        Elf64_Shdr *section = &layout[i];
        if (!has_file_data(section)) {
            section->sh_offset = cursor;
            continue;
        }
        if (header->e_phnum && section->sh_offset < phdr_end) goto malformed;
        int unread = is_unread(section_name(file, size, sections, names, &sections[i]));
        size_t alignment = section->sh_addralign;
        size_t data_size = section->sh_size;
        if (section->sh_flags & SHF_COMPRESSED) {
            if (section->sh_size < sizeof(Elf64_Chdr)) goto malformed;
            Elf64_Chdr chdr;
            memcpy(&chdr, file + section->sh_offset, sizeof chdr);
            if (chdr.ch_type != ELFCOMPRESS_ZLIB && chdr.ch_type != ELFCOMPRESS_ZSTD) {
                fail(error, error_size, "section compressed with unknown method %u", chdr.ch_type);
                goto done;
            }
            section->sh_flags &= ~(Elf64_Xword)SHF_COMPRESSED;
            data_size = chdr.ch_size;
            alignment = chdr.ch_addralign;
            section->sh_size = data_size;
            section->sh_addralign = alignment;
            if (!unread) {
                items[inflations++] = (struct inflation){
                    .input = file + sections[i].sh_offset + sizeof(Elf64_Chdr),
                    .input_size = sections[i].sh_size - sizeof(Elf64_Chdr),
                    .output_size = data_size,
                    .type = chdr.ch_type,
                };
            }
        }
        if (unread) {
            section->sh_type = SHT_NOBITS;
            section->sh_offset = cursor;
            continue;
        }
        section->sh_offset = align_up(cursor, alignment);
        cursor = section->sh_offset + data_size;
    }
    size_t headers_offset = align_up(cursor, _Alignof(Elf64_Shdr));
    image_size = headers_offset + count * sizeof(Elf64_Shdr);
    if (image_size > max_file_size) path = NULL;

    // A kept image is filled in anonymous memory, then written with one call: write faults on a
    // shared mapping of a file cost the filesystem's per-page work (ext4_page_mkwrite), more
    // than the copy. Transparent huge pages, where the kernel gives them, take a fault per 2 MiB
    // instead of per page: libc's image took 16-20 ms of CPU instead of 22-24 with its pages
    // populated. An image for this run only is filled in place in its memory file, which
    // costs no such work and is never held twice.
    if (path == NULL) {
        out = create_output(NULL, temporary, sizeof temporary);
        if (out < 0 || ftruncate(out, (off_t)image_size) != 0) {
            fail(error, error_size, "cannot make the decompressed copy: %s", strerror(errno));
            goto done;
        }
        image = mmap(NULL, image_size, PROT_READ | PROT_WRITE, MAP_SHARED, out, 0);
    } else {
        image = mmap(NULL, image_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (image != MAP_FAILED) madvise(image, image_size, MADV_HUGEPAGE);
    }
    if (image == MAP_FAILED) {
        fail(error, error_size, "out of memory for the decompressed copy");
        goto done;
    }
    memcpy(image, file, head);
    ((Elf64_Ehdr *)image)->e_shoff = headers_offset;
    size_t item = 0;
    for (size_t k = 0; k < ordered; k++) {
        size_t i = order[k];
        if (!has_file_data(&layout[i])) continue;
        if (sections[i].sh_flags & SHF_COMPRESSED) {
            // Items were made in this same order.
            items[item++].output = image + layout[i].sh_offset;
        } else {
            memcpy(image + layout[i].sh_offset, file + sections[i].sh_offset, layout[i].sh_size);
        }
    }
    memcpy(image + headers_offset, layout, count * sizeof(Elf64_Shdr));
    if (!inflate_all(items, inflations, error, error_size)) goto done;
    if (path != NULL) {
        out = create_output(path, temporary, sizeof temporary);
        if (out < 0 || !write_all(out, image, image_size)) {
            fail(error, error_size, "cannot write the decompressed copy: %s", strerror(errno));
            goto done;
        }
        if (rename(temporary, path) != 0) {
            fail(error, error_size, "cannot keep the decompressed copy: %s", strerror(errno));
            goto done;
        }
    }
    temporary[0] = 0;
    result = out;
    out = -1;
    goto done;

malformed:
    result = DEBUG_IMAGE_NOT_NEEDED; // libdw judges the file itself
done:
    if (image != MAP_FAILED) munmap(image, image_size);
    if (out >= 0) close(out);
    if (temporary[0]) unlink(temporary);
    free(layout);
    free(order);
    free(items);
    munmap((void *)file, size);
    return result;
}
