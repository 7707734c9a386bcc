// Debug files with their compressed sections decompressed ahead of libdw.
//
// libdw (elfutils 0.188) inflates every compressed .debug_* section with zlib when it opens a
// file, whatever is looked up afterwards: libc's debug file from libc6-dbg is 4 MB holding 10 MB
// of DWARF, and inflating it was two thirds of a small program's first report. This writes an
// equal ELF image with each compressed section stored plain, inflated with libdeflate (about
// 2.5 times zlib's speed) on two threads, and with the sections a report never reads (location
// lists, macros, call frame tables) turned into SHT_NOBITS, which libdw skips. The image keeps
// every header, note and symbol table of the file, so libdwfl treats it as the file itself.
// Sections compressed with zstd (ELFCOMPRESS_ZSTD), which libdw 0.188 cannot read, are
// decompressed too.
#ifndef CDEBUGIMAGE_H
#define CDEBUGIMAGE_H

#include <stddef.h>
#include <stdint.h>

enum {
    /// The file needs no image: not a 64-bit little-endian ELF file, or no section is compressed.
    DEBUG_IMAGE_NOT_NEEDED = -1,
    /// A section did not decompress, or the image could not be written; `error` says why.
    DEBUG_IMAGE_FAILED = -2,
};

/// Writes the image of the ELF file open at `fd` and returns a new descriptor of it, open for
/// reading. With `path` the image is written to `path` (under a temporary name, renamed into
/// place once complete) if it takes at most `max_file_size` bytes; otherwise, and without
/// `path`, to an anonymous memory file. Returns DEBUG_IMAGE_NOT_NEEDED
/// or DEBUG_IMAGE_FAILED (with a message in `error`, which may be NULL with `error_size` 0)
/// otherwise. `fd` is left open.
int debug_image_write(int fd, const char *path, size_t max_file_size, char *error, size_t error_size);

/// True if the file at `fd` is a 64-bit little-endian ELF file with a compressed section, that
/// is, if `debug_image_write` would write an image of it.
int debug_image_is_needed(int fd);

/// True if the file at `fd` is a complete image as `debug_image_write` leaves it: a 64-bit ELF
/// file whose section headers and the data of every section lie within the file, and with no
/// compressed section. A damaged or cut short image is not used.
int debug_image_is_complete(int fd);

#endif
