// The demanglers leakreport calls, declared for Swift to call by name: the Swift runtime's,
// libstdc++'s and GNU libiberty's (Rust's v0 scheme; linked statically, Debian ships no shared
// libiberty). Called by name, not looked up with dlsym: the release build links the Swift
// runtime statically, and a function nothing refers to is left out of the executable
// (swift_demangle was, so Swift frames came out mangled in the release build while the debug
// build, linked to libswiftCore.so, demangled them).
#ifndef LEAKTRACE_CDEMANGLE_H
#define LEAKTRACE_CDEMANGLE_H

#include <stddef.h>
#include <stdint.h>

/// The Swift runtime's demangler: a malloc'd string, or NULL when `mangled` is not a Swift
/// symbol. `output_buffer`, `output_buffer_size` and `flags` are NULL, NULL and 0 here.
char *swift_demangle(const char *mangled, size_t mangled_length, char *output_buffer, size_t *output_buffer_size,
                     uint32_t flags);

/// The C++ ABI's demangler (libstdc++): a malloc'd string when `*status` is 0.
char *__cxa_demangle(const char *mangled, char *output_buffer, size_t *length, int *status);

/// libiberty's Rust demangler (legacy and v0 schemes; binutils' c++filt and gdb use it): a
/// malloc'd string, or NULL when `mangled` is not a Rust symbol. `options` 0: no crate hashes.
char *rust_demangle(const char *mangled, int options);

#endif
