#!/usr/bin/env bash
# The read-only-root overlay for an arm64 Debian / Raspberry Pi OS image, as a tarball to unpack at the image's root.
#   image/build-overlay.sh [BINARY] [OUT]     (make image: build/aarch64/sluice → build/image/sluice-rootfs-aarch64.tar.gz)
# Only files and Sluice's own folders are archived, never /lib, /etc or /usr themselves: unpacking it over a merged-/usr
# root cannot replace the /lib → usr/lib symlink or change the modes of system folders.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/aarch64/sluice}
out=${2:-$here/build/image/sluice-rootfs-aarch64.tar.gz}
[ -x "$bin" ] || { echo "build-overlay: $bin missing (make aarch64)" >&2; exit 1; }
case "$out" in /*) ;; *) out=$PWD/$out ;; esac

stage=$(mktemp -d "${TMPDIR:-/tmp}/sluice-overlay.XXXXXX")
trap 'rm -rf "$stage" "$stage.list"' EXIT
put() {   # put MODE SOURCE DEST
  install -D -m "$1" "$2" "$stage/$3"
  echo "$3" >> "$stage.list"
}
dir() {   # dir MODE DEST
  install -d -m "$1" "$stage/$2"
  echo "$2" >> "$stage.list"
}
: > "$stage.list"

put 0755 "$bin"                               usr/bin/sluice
dir 0755                                      etc/sluice
put 0644 "$here/image/sluice.json"            etc/sluice/sluice.json
dir 0750                                      etc/sluice/keys
put 0644 "$here/image/sluice.service"         lib/systemd/system/sluice.service
put 0644 "$here/image/sluice-state-fallback.service" lib/systemd/system/sluice-state-fallback.service
mkdir -p "$stage/etc/systemd/system/multi-user.target.wants"
ln -s /lib/systemd/system/sluice.service "$stage/etc/systemd/system/multi-user.target.wants/sluice.service"
echo etc/systemd/system/multi-user.target.wants/sluice.service >> "$stage.list"
put 0644 "$here/image/tmpfiles.d/sluice.conf" usr/lib/tmpfiles.d/sluice.conf
put 0644 "$here/image/sysusers.d/sluice.conf" usr/lib/sysusers.d/sluice.conf
dir 0700                                      var/lib/sluice
dir 0755                                      usr/share/doc/sluice
put 0644 "$here/image/fstab.sluice"           usr/share/doc/sluice/fstab.sluice
put 0644 "$here/image/README.md"              usr/share/doc/sluice/README.image.md
put 0644 "$here/docs/operations.md"           usr/share/doc/sluice/operations.md

# reproducible: fixed owner, order and time (the commit's, else the binary's)
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || stat -c %Y "$bin")}
mkdir -p "$(dirname "$out")"
tar -C "$stage" --no-recursion --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --sort=name \
    -cf - -T "$stage.list" | gzip -n -9 > "$out.tmp"
mv "$out.tmp" "$out"
printf 'built %s (%s bytes)\n' "$out" "$(stat -c %s "$out")"
