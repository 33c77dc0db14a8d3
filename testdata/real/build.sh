#!/bin/sh
# build.sh - remakes wiper's real-world test bed in this directory: programs
# nobody here wrote, as Debian ships them and as Debian's source packages
# build them. The outputs are committed, so tests need neither this script
# nor the network nor gcc-multilib.
#
# NEEDS root (or sudo), the Debian package registries, and it INSTALLS what
# it builds with when missing: the i386 architecture for downloads,
# deb-src entries, gcc-multilib, dpkg-dev. It never installs musl-dev:i386
# (that would remove gcc-multilib): musl is built from its source package.
#
# Outputs (all 32-bit i386):
#   debian/gzip, debian/bzip2    Debian's own binaries (gzip:i386,
#       bzip2:i386): dynamically linked, PIE, stripped
#   debian/libbz2.so.1.0         from libbz2-1.0:i386; run bzip2 with
#       LD_LIBRARY_PATH=debian
#   gzip-glibc, bzip2-glibc, lua-glibc   built from Debian's source
#       packages (patches applied): static, non-PIE, -O2, with symbols,
#       against glibc (gcc-multilib)
#   gzip-musl                    the same gzip against musl, built from
#       Debian's musl source package with gcc -m32
#   SOURCES                      package versions and SHA-256 of every output
#
# Usage: testdata/real/build.sh [WORKDIR]   (WORKDIR defaults to a fresh
# temporary directory; it is left behind for inspection)

set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d /tmp/wiper-real.XXXXXX)}
mkdir -p "$work" "$here/debian"
cd "$work"
echo "build.sh: working in $work"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Prerequisites -------------------------------------------------------
src_list=/etc/apt/sources.list.d/wiper-deb-src.sources
if ! dpkg --print-foreign-architectures | grep -qx i386 || [ ! -e "$src_list" ]; then
    as_root dpkg --add-architecture i386
    . /etc/os-release
    as_root sh -c "cat > $src_list" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    as_root apt-get update -qq
fi
for pkg in gcc-multilib dpkg-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || as_root apt-get install -y -qq "$pkg"
done

# --- Debian's own binaries -----------------------------------------------
apt-get download -qq gzip:i386 bzip2:i386 libbz2-1.0:i386
for deb in gzip_*_i386.deb bzip2_*_i386.deb libbz2-1.0_*_i386.deb; do
    dpkg -x "$deb" root
done
cp root/bin/gzip root/bin/bzip2 "$here/debian/"
cp -L root/lib/i386-linux-gnu/libbz2.so.1.0 "$here/debian/"

# --- Source packages -----------------------------------------------------
apt-get source -qq gzip bzip2 lua5.4 musl >/dev/null 2>&1 || apt-get source gzip bzip2 lua5.4 musl
gzip_src=$(ls -d gzip-*/ | head -n1)
bzip2_src=$(ls -d bzip2-*/ | head -n1)
lua_src=$(ls -d lua5.4-*/ | head -n1)
musl_src=$(ls -d musl-*/ | head -n1)

# musl, static only, installed into $work/musl. Its musl-gcc wrapper
# replaces gcc's link spec, so the linker's i386 mode is asked for
# explicitly.
(cd "$musl_src" &&
    ./configure --quiet --target=i386-linux-musl CC="gcc -m32" \
        --prefix="$work/musl" --disable-shared &&
    make -j"$(nproc)" CROSS_COMPILE= >/dev/null &&
    make install CROSS_COMPILE= >/dev/null)
musl_cc="$work/musl/bin/musl-gcc -m32 -Wl,-melf_i386"

# gzip, once per C library. Debian's patches touch the autotools inputs;
# the shipped configure is used as it is (the regeneration tools are
# no-ops).
build_gzip() { # DIR CC
    cp -a "$gzip_src" "$1"
    (cd "$1" &&
        REALGCC=gcc ./configure --quiet CC="$2" CFLAGS=-O2 LDFLAGS=-static >/dev/null &&
        REALGCC=gcc make -j"$(nproc)" ACLOCAL=true AUTOCONF=true AUTOMAKE=true \
            AUTOHEADER=true MAKEINFO=true >/dev/null)
}
build_gzip gzip-glibc "gcc -m32"
build_gzip gzip-musl "$musl_cc"
cp gzip-glibc/gzip "$here/gzip-glibc"
cp gzip-musl/gzip "$here/gzip-musl"

# bzip2: the program and the library's sources in one static link
# (Debian's Makefile links the program against the shared library).
(cd "$bzip2_src" &&
    gcc -m32 -O2 -D_FILE_OFFSET_BITS=64 -static -o "$here/bzip2-glibc" \
        bzip2.c blocksort.c huffman.c crctable.c randtable.c compress.c \
        decompress.c bzlib.c)

# lua: the standalone interpreter and the library, POSIX features, no
# readline; the header Debian's rules generate is made the same way.
(cd "$lua_src/src" &&
    printf '#ifndef _LUA_DEB_MULTIARCH_\n#define _LUA_DEB_MULTIARCH_\n#define DEB_HOST_MULTIARCH "i386-linux-gnu"\n#endif\n' \
        > lua5.4-deb-multiarch.h &&
    gcc -m32 -O2 -std=gnu99 -DLUA_COMPAT_5_3 -DLUA_USE_POSIX -static \
        -o "$here/lua-glibc" $(ls *.c | grep -v '^luac\.c$') -lm 2>/dev/null)

# --- Record what was built -----------------------------------------------
{
    echo "# Made by build.sh on $(date -u +%Y-%m-%d) with $(gcc --version | head -n1)"
    for deb in *.deb; do echo "binary package: $deb"; done
    for dsc in *.dsc; do echo "source package: $dsc"; done
    echo "# SHA-256"
    (cd "$here" && sha256sum debian/gzip debian/bzip2 debian/libbz2.so.1.0 \
        gzip-glibc gzip-musl bzip2-glibc lua-glibc)
} > "$here/SOURCES"
echo "build.sh: done; see $here/SOURCES"
