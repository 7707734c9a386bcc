// elfutils headers for the Symbolization target: libdwfl (module sessions, line tables,
// symbol tables), libdw (DIEs, scopes, source files), libdwelf (build-id and debuglink notes)
// and gelf (ELF headers).
#include <elfutils/libdwfl.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <dwarf.h>
#include <gelf.h>
