#!/usr/bin/env bash
# Installs what the build and the tests need, then builds the static C libraries Sluice links, per target and
# crypto flavour, into a git-ignored cache keyed by package versions, patches and this script. A warm run only
# checks: it takes seconds.
#
#   tools/deps.sh host                 apt packages for building and testing (idempotent)
#   tools/deps.sh host-build           only those that building the x86_64 product needs (`make run`)
#   tools/deps.sh host-venv            only those that `make venv` needs (python3 and its venv module)
#   tools/deps.sh libs ARCH CRYPTO     prints the prefix holding include/ and lib/ for ARCH (x86_64|aarch64)
#                                      and CRYPTO (openssl|mbedtls), building it first when it is not cached
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# Outside the checkout where it can be (root: /var/cache/sluice), so that a fresh clone on the same machine (CI's)
# finds the libraries already built; SLUICE_DEPS overrides.
if [ -n "${SLUICE_DEPS:-}" ]; then cache=$SLUICE_DEPS
elif [ "$(id -u)" = 0 ]; then cache=/var/cache/sluice
else cache=$here/.deps; fi
TC=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
log() { printf 'deps: %s\n' "$*" >&2; }
# Build steps are noisy: their output goes to a log that is shown only when they fail.
quiet() {
  local logfile=$cache/last-step.log
  mkdir -p "$cache"
  if ! "$@" > "$logfile" 2>&1; then
    tail -n 60 "$logfile" >&2
    log "failed: $*"
    exit 1
  fi
}

# building the x86_64 product (the C libraries come from Debian sources: dpkg-dev, patch, perl for OpenSSL's
# Configure; the toolchain is Swift's, and these are the libraries and headers its binaries and its Linux target need
# on a stock Debian 12; python3 runs tools/embedded-runtime-check/static-objects.py, the product build's guard)
BUILD_PACKAGES="make file curl xz-utils dpkg-dev patch perl pkg-config binutils libc6-dev libgcc-12-dev libstdc++-12-dev \
  libncurses6 libcurl4 libxml2 zlib1g-dev python3"
# `make venv`: Debian splits python3's venv module (and the pip it seeds) into python3-venv
VENV_PACKAGES="python3 python3-venv"
# testing: the e2e peers and tools; pytest and its friends go into build/venv (python3-venv), never into the system
# python3, which Debian 12 keeps externally managed (PEP 668); the packages and the booted images (boot-test)
HOST_PACKAGES="$BUILD_PACKAGES qemu-user-static openssh-server openssh-client \
  socat python3 python3-venv netcat-openbsd procps iproute2 iptables wrk jq systemd util-linux chromium chromium-driver \
  dropbear-bin dnsmasq-base lintian man-db debootstrap fdisk e2fsprogs qemu-utils qemu-system-arm qemu-system-x86 ipxe-qemu"

host() {
  local mode=${1:-all} missing=() wanted=$HOST_PACKAGES
  [ "$mode" = build ] && wanted=$BUILD_PACKAGES
  [ "$mode" = venv ] && wanted=$VENV_PACKAGES
  for p in $wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # the venv's packages come from the binary lists alone: no source entries, no arm64 (apt-get update only when
  # something is missing)
  if [ "$mode" = venv ]; then
    [ ${#missing[@]} -gt 0 ] || return 0
    log "apt-get update"
    apt-get update -qq >&2
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    return 0
  fi
  local changed=0
  if [ "$mode" != build ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64; changed=1
  fi
  # deb-src entries derived from the system's own sources (no registry address lives in this project)
  local src=/etc/apt/sources.list.d/sluice-deb-src.sources
  if [ ! -f "$src" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$src"; changed=1
  elif [ ! -f "$src" ] && [ -f /etc/apt/sources.list ]; then
    grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' > /etc/apt/sources.list.d/sluice-deb-src.list
    touch "$src"; changed=1
  fi
  # and for the next suite (trixie): source packages only, never binary entries (the sysroots keep bookworm's); its
  # versions are used only where SOURCE_PINS names them
  local next=/etc/apt/sources.list.d/sluice-deb-src-trixie.sources
  if [ ! -f "$next" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -e 's/^Types:.*/Types: deb-src/' -e '/^Suites:/s/bookworm/trixie/g' /etc/apt/sources.list.d/debian.sources > "$next"
    changed=1
  elif [ ! -f "$next" ] && [ -f /etc/apt/sources.list ]; then
    grep -E '^deb ' /etc/apt/sources.list | sed -e 's/^deb /deb-src /' -e 's/ bookworm/ trixie/' \
      > /etc/apt/sources.list.d/sluice-deb-src-trixie.list
    touch "$next"; changed=1
  fi
  if [ $changed = 1 ] || [ ${#missing[@]} -gt 0 ] || ! ls /var/lib/apt/lists/*Sources* >/dev/null 2>&1 \
     || { [ "$mode" != build ] && ! ls /var/lib/apt/lists/*arm64_Packages* >/dev/null 2>&1; }; then
    log "apt-get update"
    apt-get update -qq >&2
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

debarch() { case "$1" in x86_64) echo amd64;; aarch64) echo arm64;; *) echo "unknown arch $1" >&2; exit 1;; esac; }
# (OpenSSL's libcrypto is built from source, cut to what SSH needs; Sluice's own crypto uses it too: no mbedTLS here)
SYSROOT_PACKAGES="libc6-dev linux-libc-dev libgcc-12-dev zlib1g-dev"
MUSL_SYSROOT_PACKAGES="musl-dev linux-libc-dev libgcc-12-dev"
SOURCE_PACKAGES="libssh2 libmicrohttpd mbedtls openssl"
# The upstream version each source package is built at: the newest Debian revision of it that apt knows is taken, so a
# deb-src entry for another suite (with newer upstream versions) changes nothing until a pin here names them.
# openssl: bookworm's 3.0 (the libcrypto the products linked before it was built here, and what libssh2 1.11.1 is
# tested with), not trixie's 3.5, which carries more code (post-quantum algorithms, QUIC) for nothing SSH uses.
SOURCE_PINS="libssh2=1.11.1 libmicrohttpd=0.9.75 mbedtls=3.6. openssl=3.0."
# Debian's openssl patches are packaging (targets, man pages, the system-wide libssl configuration) and security
# backports from upstream point releases; the pinned 3.0 line's newest upstream release has them.
ORIG_ONLY_OK="openssl"
pin() { local e; for e in $SOURCE_PINS; do [ "${e%%=*}" = "$1" ] && echo "${e#*=}"; done; }

# Candidate versions of everything the cache depends on, asked of apt once per change of its lists.
versions() {
  # one file per set of pins: trees with other pins may share the cache
  local file; file=$cache/versions-$(printf %s "$SOURCE_PINS" | sha256sum | cut -c1-8)
  if [ ! -s "$file" ] || [ /var/lib/apt/lists -nt "$file" ] || [ "$here/tools/deps.sh" -nt "$file" ]; then
    mkdir -p "$cache"
    local args=() p
    for p in $SYSROOT_PACKAGES musl-dev; do args+=("$p:amd64" "$p:arm64"); done
    { apt-cache policy "${args[@]}" | awk '/^[^ ].*:$/ {name=$1} /Candidate:/ {print name, $2}'
      apt-cache showsrc $SOURCE_PACKAGES | awk '/^Package:/ {name=$2} /^Version:/ {print name, $2}' \
        | while read -r name version; do
            case "$version" in "$(pin "$name")"*) echo "src:$name: $version" ;; esac
          done | sort -V | awk '{v[$1]=$2} END {for (n in v) print n, v[n]}'
    } > "$file.tmp"
    mv "$file.tmp" "$file"
  fi
  cat "$file"
}
candidate() { versions | awk -v n="$1:" '$1 == n {print $2}'; }

# A target sysroot unpacked from Debian .debs: nothing is installed on the system for it. glibc (the OpenSSL
# flavour: Debian's libcrypto.a is built for glibc) or musl (the small flavour: a static musl is ~0.6 MB smaller).
sysroot() {
  local arch=$1 libc=${2:-gnu} da; da=$(debarch "$arch")
  local packages=$SYSROOT_PACKAGES
  [ "$libc" = musl ] && packages=$MUSL_SYSROOT_PACKAGES
  local key="$libc;" p
  for p in $packages; do key="$key$p=$(candidate "$p:$da");"; done
  local sr=$cache/sysroot/$arch-$libc-$(printf %s "$key" | sha256sum | cut -c1-12)
  if [ ! -f "$sr/.done" ]; then
    log "sysroot $arch ($libc)"
    rm -rf "$sr"; mkdir -p "$sr/debs"
    local pkgs=(); for p in $packages; do pkgs+=("$p:$da"); done
    (cd "$sr/debs" && quiet apt-get download -qq "${pkgs[@]}")
    for d in "$sr"/debs/*.deb; do dpkg -x "$d" "$sr"; done
    rm -rf "$sr/debs"
    # absolute symlinks inside the sysroot (libc .so links) must point into it
    find "$sr" -type l | while read -r l; do
      t=$(readlink "$l"); case "$t" in /*) ln -sf "$sr$t" "$l";; esac
    done
    touch "$sr/.done"
  fi
  echo "$sr"
}

# The C compiler for a target: the Swift toolchain's clang, and for musl its headers, start files and libgcc
# (-nostdinc keeps glibc's headers out; the kernel's come from linux-libc-dev).
target_cc() {
  local arch=$1 libc=$2 sr=$3
  if [ "$libc" = musl ]; then
    local g=$sr/usr/lib/gcc/$arch-linux-gnu/12 m=$sr/usr/lib/$arch-linux-musl
    echo "$TC/bin/clang --target=$arch-linux-musl --sysroot=$sr -nostdinc -isystem $sr/usr/include/$arch-linux-musl -isystem $TC/lib/clang/21/include -isystem $sr/usr/include/$arch-linux-gnu -isystem $sr/usr/include -B$m -B$g -L$m -L$g"
  else
    echo "$TC/bin/clang --target=$arch-linux-gnu --sysroot=$sr"
  fi
}

# Debian source trees with Debian's own patches applied, then ours (patches/<package>/*.patch).
source_tree() {
  local pkg=$1 ver; ver=$(candidate "src:$pkg")
  local ours; ours=$(cat "$here"/patches/"$pkg"/*.patch 2>/dev/null | sha256sum | cut -c1-12)
  local dir=$cache/src/$pkg-$ver-$ours
  if [ ! -f "$dir/.done" ]; then
    log "source $pkg $ver"
    rm -rf "$dir" "$cache/src/dl-$pkg"; mkdir -p "$cache/src/dl-$pkg"
    (cd "$cache/src/dl-$pkg" && apt-get source --download-only -qq "$pkg=$ver" >/dev/null 2>&1 || true)
    local orig deb
    orig=$(ls "$cache"/src/dl-"$pkg"/*.orig.tar.* | head -1)
    deb=$(ls "$cache"/src/dl-"$pkg"/*.debian.tar.* 2>/dev/null | head -1 || true)
    mkdir -p "$dir"
    tar -xf "$orig" -C "$dir" --strip-components=1
    # the security pocket's mirror may serve the orig tarball but not the Debian one (404, as for openssl 3.0.22):
    # only packages whose Debian patches are packaging or backports an upstream point release already has may be
    # built from the orig alone
    if [ -n "$deb" ]; then tar -xf "$deb" -C "$dir"
    elif [[ " $ORIG_ONLY_OK " == *" $pkg "* ]]; then log "$pkg $ver: no Debian tarball downloaded, building its orig tarball"
    else log "$pkg $ver: its Debian tarball did not download"; exit 1; fi
    if [ -f "$dir/debian/patches/series" ]; then
      grep -vE '^\s*(#|$)' "$dir/debian/patches/series" | while read -r p _; do
        patch -d "$dir" -p1 -s < "$dir/debian/patches/$p" >&2 || { log "patch $p failed"; exit 1; }
      done
    fi
    for p in "$here"/patches/"$pkg"/*.patch; do
      [ -f "$p" ] || continue
      log "applying $(basename "$p")"; patch -d "$dir" -p1 -s < "$p" >&2 || { log "patch $p failed"; exit 1; }
    done
    rm -rf "$cache/src/dl-$pkg"
    touch "$dir/.done"
  fi
  echo "$dir"
}

# OpenSSL's libcrypto with only what libssh2 1.11 (openssl backend) and Sluice's own crypto call (CCrypto): AES
# (CTR/GCM/CBC), ChaCha20, SHA-1/256/384/512, HMAC, PBKDF2, RSA, ECDSA P-256/384/521, Ed25519/X25519, big numbers for
# libssh2's own DH, PEM/PKCS#8 private keys (MD5 stays: encrypted traditional PEM keys derive their key with it).
# Everything else is configured out: TLS/DTLS (only libcrypto.a is built: no libssl, no apps), engines, the legacy
# provider, modules and dynamic loading, the automatic config file, error strings, and each algorithm neither caller
# names (libssh2 then drops
# what it would have offered with them: 3des-cbc, blowfish, cast128, arcfour, hmac-ripemd160, ssh-dss; Sluice never
# offered those ciphers). Poly1305 is libssh2's own portable code. The assembly stays (OpenSSL's default).
OPENSSL_OPTIONS="no-shared no-module no-dso no-engine no-legacy no-autoload-config no-tests no-ssl no-tls no-dtls \
  no-ssl-trace no-nextprotoneg no-psk no-srp no-srtp no-ktls no-sock no-dgram no-async no-ui-console no-err \
  no-filenames no-comp no-ct no-cms no-cmp no-ocsp no-ts no-rfc3779 no-multiblock no-aria no-bf no-blake2 \
  no-camellia no-cast no-cmac no-des no-dh no-dsa no-ec2m no-gost no-idea no-md4 no-mdc2 no-ocb no-poly1305 no-rc2 \
  no-rc4 no-rmd160 no-scrypt no-seed no-siphash no-siv no-sm2 no-sm3 no-sm4 no-whirlpool"
build_openssl() {
  local arch=$1 src=$2 dir=$3 out=$4 cc=$5 flags=$6
  cp -a "$src" "$dir"
  # the flags come after the target's own (-O3 …), so -Os wins and -pthread/-Wa,--noexecstack stay; the directories
  # compiled in are Debian's (nothing is installed there, and no config file is read: no-autoload-config), so no
  # path of this cache ends up in the product
  (cd "$dir" && quiet env CC="$cc" AR="$TC/bin/llvm-ar" RANLIB="$TC/bin/llvm-ranlib" \
     ./Configure "linux-$arch" --prefix=/usr --openssldir=/usr/lib/ssl --libdir=lib $OPENSSL_OPTIONS $flags \
   && quiet make -j"$(nproc)" build_generated && quiet make -j"$(nproc)" libcrypto.a)
  cp "$dir/libcrypto.a" "$out/lib/"
  mkdir -p "$out/include/openssl"
  cp "$dir"/include/openssl/*.h "$out/include/openssl/"
}

libs() {
  local arch=$1 crypto=$2
  case "$crypto" in openssl|mbedtls) ;; *) echo "CRYPTO must be openssl or mbedtls" >&2; exit 1;; esac
  local libc=gnu; [ "$crypto" = mbedtls ] && libc=musl
  local sr ssh2 mhd mbed; sr=$(sysroot "$arch" "$libc"); ssh2=$(source_tree libssh2); mhd=$(source_tree libmicrohttpd)
  mbed=""; [ "$libc" = musl ] && mbed=$(source_tree mbedtls)
  local ossl=""; [ "$crypto" = openssl ] && ossl=$(source_tree openssl)
  # keyed by the recipe itself (these functions and options), not by unrelated edits of this script
  local key; key=$(printf '%s\n' "$sr" "$ssh2" "$mhd" "$mbed" "$ossl" "$OPENSSL_OPTIONS" \
    "$(declare -f libs quiet target_cc build_openssl)" | sha256sum | cut -c1-12)
  local out=$cache/prefix/$arch-$crypto-$key
  if [ -f "$out/.done" ]; then echo "$out"; return; fi
  log "building C libraries for $arch/$crypto"
  rm -rf "$out"; mkdir -p "$out/lib" "$out/include"
  local triple=$arch-linux-$libc
  local CC; CC=$(target_cc "$arch" "$libc" "$sr")
  local build=$out/build; mkdir -p "$build"
  # no unwind tables: nothing unwinds through C frames in this product (Embedded Swift has no unwinding, the C
  # libraries have no exceptions, a crash is reported by the kernel); they were ~45 % of the aarch64 .eh_frame
  local flags="-Os -fPIC -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables \
    -Wno-deprecated-declarations"
  local env=(CC="$CC" AR="$TC/bin/llvm-ar" RANLIB="$TC/bin/llvm-ranlib" CFLAGS="$flags" LDFLAGS="-static -fuse-ld=lld")

  # libmicrohttpd without TLS (Debian's links gnutls, which cannot be linked statically)
  cp -a "$mhd" "$build/mhd"
  (cd "$build/mhd" && quiet env "${env[@]}" ./configure -q --host="$triple" --prefix="$out" \
     --disable-https --without-gnutls --disable-shared --enable-static --disable-doc --disable-examples \
     --disable-curl --disable-nls \
   && quiet make -j"$(nproc)" -C src/microhttpd install && quiet make -C src/include install)

  # mbedTLS for musl from its Debian source (Debian's .a is built for glibc, with _FORTIFY_SOURCE)
  if [ "$libc" = musl ]; then
    cp -a "$mbed" "$build/mbedtls"
    (cd "$build/mbedtls" && quiet make -j"$(nproc)" -C library CC="$CC" AR="$TC/bin/llvm-ar" \
       CFLAGS="$flags -I../include" libmbedcrypto.a)
    cp "$build/mbedtls/library/libmbedcrypto.a" "$out/lib/"
    cp -a "$build/mbedtls/include/mbedtls" "$out/include/"
    # mbedTLS 3's headers include the PSA ones
    if [ -d "$build/mbedtls/include/psa" ]; then cp -a "$build/mbedtls/include/psa" "$out/include/"; fi
  fi

  # libcrypto for the OpenSSL flavour (libssh2's backend and Sluice's own hashes)
  if [ "$crypto" = openssl ]; then
    build_openssl "$arch" "$ossl" "$build/openssl" "$out" "$CC" "$flags"
  fi

  # libssh2 on the chosen backend
  cp -a "$ssh2" "$build/ssh2"
  local cryptoargs
  if [ "$crypto" = openssl ]; then
    cryptoargs="--with-crypto=openssl --with-libssl-prefix=$out --with-libz --with-libz-prefix=$sr/usr"
  else
    cryptoargs="--with-crypto=mbedtls --with-libmbedcrypto-prefix=$out --without-libz"
  fi
  # libssh2's configure proves OpenSSL by linking -lssl -lcrypto, though the library needs only libcrypto: an empty
  # libssl.a answers that check while it runs (nothing links it: the products name their libraries themselves)
  if [ "$crypto" = openssl ]; then "$TC/bin/llvm-ar" rc "$out/lib/libssl.a"; fi
  (cd "$build/ssh2" && quiet env "${env[@]}" CPPFLAGS="-I$sr/usr/include" ./configure -q --host="$triple" \
     --prefix="$out" $cryptoargs --disable-shared --enable-static --disable-examples-build \
   && quiet make -j"$(nproc)" -C src install)
  rm -f "$out/lib/libssl.a"
  cp "$build"/ssh2/include/*.h "$out/include/"

  # the rest comes from the sysroot, so that one -L and one -I serve every build of this target
  if [ "$libc" = gnu ]; then cp "$sr/usr/lib/$triple/libz.a" "$out/lib/"; fi
  rm -rf "$build" "$out/share" "$out/lib/pkgconfig" "$out/lib"/*.la
  touch "$out/.done"
  echo "$out"
}

# One run at a time per cache (worktrees and CI share it; apt itself refuses a second dpkg): the others wait here.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

case "${1:-}" in
  host) host all ;;
  host-build) host build ;;
  host-venv) host venv ;;
  libs) libs "$2" "$3" ;;
  sysroot) sysroot "$2" "${3:-gnu}" ;;
  cc) target_cc "$2" "$3" "$(sysroot "$2" "$3")" ;;
  *) echo "usage: $0 host | host-build | host-venv | libs ARCH CRYPTO | sysroot ARCH [gnu|musl] | cc ARCH gnu|musl" >&2; exit 1 ;;
esac
