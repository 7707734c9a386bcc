#!/usr/bin/env bash
# Installs leaktrace like a system tool:
#   PREFIX/bin/leakreport, PREFIX/bin/leaktrace       the analyzer and the wrapper
#   PREFIX/lib/libleaktrace.so                        the preload library
#   PREFIX/include/leaktrace.h, PREFIX/lib/pkgconfig/leaktrace.pc
#   PREFIX/share/man/man1/leakreport.1, leaktrace.1
#   bash, zsh and fish completions of leakreport
#
# Usage: Scripts/install.sh [--prefix DIR] [--from DIR] [--uninstall] [--deb FILE]
#   --prefix DIR   where to install (default /usr/local); DESTDIR is put in front of every path
#                  (for packagers) and is not written into any installed file
#   --from DIR     install the leakreport and libleaktrace.so found in DIR instead of building
#                  them with Scripts/build.sh
#   --uninstall    remove exactly what an install into the same DESTDIR/PREFIX put there, and
#                  the directories it created (the prefix too, when the install made it)
#   --deb FILE     build a Debian package (prefix /usr) into FILE instead of installing
# The list of what was installed is PREFIX/share/leaktrace/installed-files.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

prefix=/usr/local
from=""
uninstall=0
deb=""
usage() { sed -n '9,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
    --from) [ $# -ge 2 ] || usage; from=$2; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --deb) [ $# -ge 2 ] || usage; deb=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown option $1" >&2; usage ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
prefix=${prefix%/}
destdir=${DESTDIR:-}
root=$destdir$prefix
manifest=$root/share/leaktrace/installed-files

# The loader finds a bare LD_PRELOAD=libleaktrace.so only in its cache: refresh it when the
# library went into a directory the cache covers (ldconfig -p lists the cached paths' folders).
refresh_loader_cache() {
  [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null || return 0
  local searched
  searched=$(ldconfig -v -N 2>/dev/null | sed -n 's/^\(\/[^:]*\):.*/\1/p')
  if grep -qxF "$prefix/lib" <<< "$searched"; then ldconfig; fi
}

if [ "$uninstall" = 1 ]; then
  [ -f "$manifest" ] || { echo "install.sh: nothing installed in $root ($manifest is missing)" >&2; exit 2; }
  mapfile -t entries < "$manifest"
  rm -f -- "$manifest"
  # Files first, then the directories the install created, deepest first.
  for entry in "${entries[@]}"; do
    case "$entry" in "file "*) rm -f -- "$root/${entry#file }" ;; esac
  done
  printf '%s\n' "${entries[@]}" | sed -n 's/^dir //p' | sort -r | while IFS= read -r dir; do
    rmdir -- "$root/$dir" 2>/dev/null || true
  done
  # Then the prefix itself and its parents, when the install made them (listed deepest first).
  printf '%s\n' "${entries[@]}" | sed -n 's/^prefix-dir //p' | while IFS= read -r dir; do
    rmdir -- "$dir" 2>/dev/null || true
  done
  refresh_loader_cache
  echo "leaktrace: uninstalled from $root"
  exit 0
fi

if [ -n "$deb" ]; then
  case "$deb" in /*) ;; *) deb=$PWD/$deb ;; esac
  staging=$(mktemp -d "${TMPDIR:-/tmp}/leaktrace-deb.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  args=(--prefix /usr)
  [ -n "$from" ] && args+=(--from "$from")
  DESTDIR=$staging "$0" "${args[@]}"
  # The manifest is for --uninstall of a plain install; dpkg keeps its own list.
  rm -rf "$staging/usr/share/leaktrace"
  mkdir -p "$staging/DEBIAN"
  cat > "$staging/DEBIAN/control" <<EOF
Package: leaktrace
Version: $("$staging/usr/bin/leakreport" --version)
Architecture: $(dpkg --print-architecture)
Maintainer: leaktrace developers <leaktrace@localhost>
Depends: libunwind8, libzstd1, libdw1, libelf1, libdeflate0, libstdc++6, libgcc-s1, libc6
Section: devel
Priority: optional
Description: memory-leak tracer for Linux programs
 A preload library that records every allocation with its stack, and leakreport, which
 reports what was never freed, by call site and by allocation path.
EOF
  printf 'activate-noawait ldconfig\n' > "$staging/DEBIAN/triggers"
  dpkg-deb --root-owner-group --build "$staging" "$deb" >/dev/null
  echo "leaktrace: built $deb"
  exit 0
fi

if [ -z "$from" ]; then
  "$repo/Scripts/build.sh"
  from=$repo/.build/release
fi
for built in leakreport libleaktrace.so; do
  [ -f "$from/$built" ] || { echo "install.sh: $from/$built is missing" >&2; exit 2; }
done

# Every directory the install creates, and every file it writes, is recorded for --uninstall;
# an install over an earlier one keeps the directories that one created.
created=()
prefix_created=()
if [ -f "$manifest" ]; then
  mapfile -t created < <(sed -n 's/^dir //p' "$manifest")
  mapfile -t prefix_created < <(sed -n 's/^prefix-dir //p' "$manifest")
fi
dir=$root
while [ ! -d "$dir" ]; do prefix_created+=("$dir"); dir=$(dirname "$dir"); done
mkdir -p "$root"
make_dir() {
  local dir=$1 path=$root/$1
  [ -d "$path" ] && return 0
  make_dir "$(dirname "$dir")"
  mkdir "$path"
  created+=("$dir")
}
installed=()
put() { # put MODE SOURCE RELATIVE-TARGET
  make_dir "$(dirname "$3")"
  install -m "$1" "$2" "$root/$3"
  installed+=("$3")
}
write() { # write MODE RELATIVE-TARGET, content on standard input
  make_dir "$(dirname "$2")"
  cat > "$root/$2"
  chmod "$1" "$root/$2"
  installed+=("$2")
}

put 755 "$from/leakreport" bin/leakreport
put 755 "$repo/Scripts/leaktrace" bin/leaktrace
put 755 "$from/libleaktrace.so" lib/libleaktrace.so
put 644 "$repo/CShim/include/leaktrace.h" include/leaktrace.h
# leaktrace.h needs no library at link time: leaktrace_mark is a weak reference that the
# preloaded library fills in.
write 644 lib/pkgconfig/leaktrace.pc <<EOF
prefix=$prefix
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: leaktrace
Description: named marks in a leaktrace trace (leaktrace_mark)
Version: $("$from/leakreport" --version)
Cflags: -I\${includedir}
Libs:
EOF
put 644 "$repo/docs/man/leakreport.1" share/man/man1/leakreport.1
put 644 "$repo/docs/man/leaktrace.1" share/man/man1/leaktrace.1
# The completion scripts come from leakreport itself (swift-argument-parser writes them).
for shell_target in bash:share/bash-completion/completions/leakreport zsh:share/zsh/site-functions/_leakreport \
                    fish:share/fish/vendor_completions.d/leakreport.fish; do
  script=$("$from/leakreport" --generate-completion-script "${shell_target%%:*}")
  write 644 "${shell_target#*:}" <<< "$script"
done

make_dir share/leaktrace
{
  [ ${#created[@]} -eq 0 ] || printf 'dir %s\n' "${created[@]}"
  [ ${#prefix_created[@]} -eq 0 ] || printf 'prefix-dir %s\n' "${prefix_created[@]}"
  printf 'file %s\n' "${installed[@]}"
} > "$manifest"
refresh_loader_cache
echo "leaktrace: installed into $root"
