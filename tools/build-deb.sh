#!/usr/bin/env bash
# The Debian package of a product binary, built with plain dpkg-deb (no debian/rules):
#   tools/build-deb.sh ARCH BINARY OUTDIR [VERSION]
#     ARCH     x86_64 | aarch64 (the package's architecture: amd64 | arm64)
#     BINARY   the static sluice binary of that ARCH (build/<arch>/sluice, build/<arch>-mbedtls/sluice)
#     OUTDIR   where OUTDIR/<package>_<version>_<debarch>.deb is written; its path is printed on stdout
#     VERSION  optional: the package version (upstream-revision; "-1" is added when it has no revision), e.g. for a
#              newer build in an upgrade test; a changelog entry for it is added. Default: the version the binary
#              reports (Sources/Appliance/Support/BuildInfo.swift), with the revision of packaging/deb/changelog's
#              top entry, which must name that version.
#   CRYPTO=openssl (default) | mbedtls in the environment: BINARY's flavour. openssl builds the package "sluice";
#   mbedtls builds "sluice-small", which provides, conflicts with and replaces "sluice".
#   SOURCE_DATE_EPOCH: the time stamp of every file (default: the last commit's time).
# The packaging sources are packaging/deb/; the unit, sysusers/tmpfiles snippets and example configuration are
# image/'s, installed as they are.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=$here/packaging/deb
die() { echo "build-deb: $*" >&2; exit 1; }
[ $# -ge 3 ] && [ $# -le 4 ] || die "usage: tools/build-deb.sh ARCH BINARY OUTDIR [VERSION]  (CRYPTO=openssl|mbedtls)"
arch=$1 bin=$2 outdir=$3 version=${4:-}
crypto=${CRYPTO:-openssl}

case "$arch" in
  x86_64) debarch=amd64 machine="x86-64" ;;
  aarch64) debarch=arm64 machine="ARM aarch64" ;;
  *) die "ARCH must be x86_64 or aarch64, not '$arch'" ;;
esac
case "$crypto" in
  openssl) package=sluice other=sluice-small ;;
  mbedtls) package=sluice-small other=sluice ;;
  *) die "CRYPTO must be openssl or mbedtls, not '$crypto'" ;;
esac

# the binary must be what the package says it is: static (no shared-library dependencies are declared) and of ARCH
[ -f "$bin" ] && [ -x "$bin" ] || die "$bin missing or not executable"
info=$(file -b "$bin")
case "$info" in *"ELF 64-bit"*", $machine,"*) ;; *) die "$bin is not a $arch executable: $info" ;; esac
case "$info" in *"statically linked"*) ;; *) die "$bin is not statically linked: $info" ;; esac
# and of the flavour CRYPTO names (tools/build-product.sh: openssl links glibc, whose static binaries carry the GNU
# ABI note that file(1) shows as "for GNU/Linux"; mbedtls links musl, which has none)
case "$crypto:$info" in
  openssl:*"for GNU/Linux"*|mbedtls:*) ;;
  *) die "$bin is not the CRYPTO=$crypto flavour (a glibc binary): $info" ;;
esac
case "$crypto:$info" in
  mbedtls:*"for GNU/Linux"*) die "$bin is not the CRYPTO=$crypto flavour (a musl binary): $info" ;;
esac

# the version: the one the binary reports, and packaging/deb/changelog's top entry for it
upstream=$(sed -n 's/^ *public static let version = "\([^"]*\)"$/\1/p' "$here/Sources/Appliance/Support/BuildInfo.swift")
[ -n "$upstream" ] || die "no 'public static let version' in Sources/Appliance/Support/BuildInfo.swift"
top=$(sed -n '1s/^sluice (\([^)]*\)) .*/\1/p' "$src/changelog")
if [ -z "$version" ]; then
  case "$top" in
    "$upstream"-*) version=$top ;;
    *) die "packaging/deb/changelog's top entry is '$top', but the binary's version is '$upstream': add an entry for $upstream-1" ;;
  esac
fi
case "$version" in *-*) ;; *) version=$version-1 ;; esac
case "$version" in [0-9]*) ;; *) die "VERSION '$version' must start with a digit" ;; esac
filever=${version#*:}

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || stat -c %Y "$src/changelog")}
export SOURCE_DATE_EPOCH=$epoch

stage=$(mktemp -d "${TMPDIR:-/tmp}/sluice-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
umask 022
root=$stage/root
doc=usr/share/doc/$package
put() {   # put MODE SOURCE DEST
  install -D -m "$1" "$2" "$root/$3"
}

put 0755 "$bin"                                       usr/bin/sluice
put 0644 "$here/image/sluice.service"                 lib/systemd/system/sluice.service
put 0644 "$here/image/sluice-state-fallback.service"  lib/systemd/system/sluice-state-fallback.service
put 0644 "$here/image/sysusers.d/sluice.conf"         usr/lib/sysusers.d/sluice.conf
put 0644 "$here/image/tmpfiles.d/sluice.conf"         usr/lib/tmpfiles.d/sluice.conf
put 0644 "$here/image/sluice.json"                    etc/sluice/sluice.json
# root:root in the package; postinst gives it the group sluice (dpkg-statoverride), which does not exist yet here
install -d -m 0750 "$root/etc/sluice/keys"
put 0644 "$here/docs/operations.md"                   "$doc/operations.md"
put 0644 "$here/image/fstab.sluice"                   "$doc/fstab.sluice"
cat "$src/copyright" "$src/copyright.$crypto" > "$stage/copyright"
put 0644 "$stage/copyright"                           "$doc/copyright"

# changelog.Debian.gz: packaging/deb/changelog, under an entry for a VERSION that is not its top entry
{
  if [ "$version" != "$top" ]; then
    maint=$(sed -n 's/^Maintainer: //p' "$src/control.in")
    printf 'sluice (%s) stable; urgency=medium\n\n  * Rebuild of %s as %s.\n\n -- %s  %s\n\n' \
      "$version" "$top" "$version" "$maint" "$(LC_ALL=C date -u -R -d "@$epoch")"
  fi
  cat "$src/changelog"
} | gzip -9n > "$stage/changelog.Debian.gz"
put 0644 "$stage/changelog.Debian.gz"                 "$doc/changelog.Debian.gz"

sed -e "s/@VERSION@/$upstream/g" -e "s/@DATE@/$(date -u -d "@$epoch" +%Y-%m-%d)/g" -e "s,@DOCDIR@,/$doc,g" \
    "$src/sluice.8" | gzip -9n > "$stage/sluice.8.gz"
put 0644 "$stage/sluice.8.gz"                         usr/share/man/man8/sluice.8.gz

# lintian-overrides: its tags, each with the package name in front; the comments (the reasons) kept
sed -e "/^[^#[:space:]]/s/^/$package: /" "$src/lintian-overrides" > "$stage/overrides"
put 0644 "$stage/overrides"                           "usr/share/lintian/overrides/$package"

# DEBIAN/: control, conffiles, maintainer scripts, md5sums (conffiles left out, as dh_md5sums does)
install -d -m 0755 "$root/DEBIAN"
install -m 0644 "$src/conffiles" "$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do install -m 0755 "$src/$script" "$root/DEBIAN/$script"; done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort \
   | grep -vxF -f <(sed 's,^/,,' DEBIAN/conffiles) | xargs -d '\n' md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up; 1 per directory or link
size=$(cd "$root" && find . -path ./DEBIAN -prune -o -mindepth 1 -printf '%y %s\n' \
       | awk '{ n += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print n }')
if [ "$crypto" = mbedtls ]; then
  relations="Source: sluice
Provides: sluice (= $version)
Conflicts: $other
Replaces: $other"
  summary=" (small build)"
else
  relations="Conflicts: $other
Replaces: $other"
  summary=""
fi
awk -v package="$package" -v version="$version" -v arch="$debarch" -v size="$size" -v relations="$relations" \
    -v summary="$summary" -v flavour="$src/flavour.$crypto" '
  /@FLAVOUR@/ { while ((getline line < flavour) > 0) print line; next }
  /@RELATIONS@/ { print relations; next }
  { gsub(/@PACKAGE@/, package); gsub(/@VERSION@/, version); gsub(/@ARCH@/, arch); gsub(/@SIZE@/, size);
    gsub(/@SUMMARY@/, summary); print }' "$src/control.in" > "$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

# reproducible: one time stamp, root:root (--root-owner-group), dpkg-deb's sorted members, one xz thread
find "$root" -exec touch -h -d "@$epoch" {} +
mkdir -p "$outdir"
out=$outdir/${package}_${filever}_${debarch}.deb
dpkg-deb --root-owner-group -Zxz --threads-max=1 --build "$root" "$out.tmp" >/dev/null
mv "$out.tmp" "$out"
echo "build-deb: $out ($(stat -c %s "$out") bytes)" >&2
echo "$out"
