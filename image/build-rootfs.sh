#!/usr/bin/env bash
# A Debian bookworm arm64 root file system with Sluice, mounted read-only at boot, packed as a tarball.
#   image/build-rootfs.sh [OVERLAY] [OUT]     (make image-rootfs; as root on Debian amd64, with network to the mirror)
# debootstrap's first stage runs natively; its second stage and everything after run arm64 binaries through
# qemu-aarch64-static, registered with binfmt_misc for the duration of the build when it is not already. The Debian
# mirror is the one of this machine's own apt sources: no registry address lives in this project.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
overlay=${1:-$here/build/image/sluice-rootfs-aarch64.tar.gz}
out=${2:-$here/build/image/debian-bookworm-arm64-sluice.tar.gz}
suite=bookworm
log() { printf 'rootfs: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root (debootstrap, chroot, mounts)"; exit 1; }
[ -f "$overlay" ] || { log "$overlay missing (make image)"; exit 1; }
case "$out" in /*) ;; *) out=$PWD/$out ;; esac

# the mirror: the first Debian (not security) URI of the system's sources
mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^Types:/ {deb = ($0 ~ /[ \t]deb([ \t]|$)/)} deb && /^URIs:/ && $2 !~ /security/ {print $2; exit}' \
          /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
          /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { log "no Debian mirror found in /etc/apt"; exit 1; }
  echo "$uri"
}

command -v debootstrap >/dev/null || { log "installing debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2; }
qemu=$(command -v qemu-aarch64-static) || { log "qemu-aarch64-static missing (tools/deps.sh host)"; exit 1; }

root=$(mktemp -d "${TMPDIR:-/var/tmp}/sluice-rootfs.XXXXXX")
mounted_binfmt=0 registered=0
cleanup() {
  for m in "$root/proc" "$root/sys" "$root/dev"; do mountpoint -q "$m" && umount -l "$m"; done
  [ $registered = 1 ] && echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64
  [ $mounted_binfmt = 1 ] && umount /proc/sys/fs/binfmt_misc
  rm -rf "$root"
}
trap cleanup EXIT

# arm64 binaries run through qemu (F: the interpreter is opened now, so it works inside the chroot)
if [ ! -f /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; mounted_binfmt=1
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  echo ":qemu-aarch64:M::$magic:$mask:$qemu:F" > /proc/sys/fs/binfmt_misc/register; registered=1
fi

m=$(mirror)
log "debootstrap $suite arm64 from $m"
debootstrap --foreign --arch=arm64 --variant=minbase \
  --include=systemd,systemd-sysv,systemd-resolved,udev,dbus,iproute2,iputils-ping,netbase,ca-certificates,kmod,procps,less \
  "$suite" "$root" "$m" >&2
install -m 0755 "$qemu" "$root/usr/bin/qemu-aarch64-static"
log "second stage (qemu)"
chroot "$root" /debootstrap/debootstrap --second-stage >&2
mount -t proc proc "$root/proc"

log "network, overlay, user, fstab"
# apt inside the image uses the same mirror
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$m" "$suite" "$m" "$suite" > "$root/etc/apt/sources.list"
echo sluice > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsluice\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nType=ether\n\n[Network]\nDHCP=yes\n' > "$root/etc/systemd/network/20-wired.network"
chroot "$root" systemctl enable systemd-networkd systemd-resolved >&2
ln -sf /run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
tar -xzf "$overlay" -C "$root" --keep-directory-symlink --no-overwrite-dir
chroot "$root" systemd-sysusers /usr/lib/sysusers.d/sluice.conf
chroot "$root" chgrp sluice /etc/sluice/keys
chroot "$root" /usr/bin/sluice check --config /etc/sluice/sluice.json >&2
{
  echo "# / is read-only: Sluice writes only /var/lib/sluice (the data partition below, else a tmpfs)"
  echo "LABEL=rootfs  /         ext4   ro,noatime,errors=remount-ro  0  1"
  echo "tmpfs         /tmp      tmpfs  nosuid,nodev,mode=1777        0  0"
  echo "tmpfs         /var/tmp  tmpfs  nosuid,nodev,mode=1777        0  0"
  echo "tmpfs         /var/log  tmpfs  nosuid,nodev,mode=0755,size=32m  0  0"
  grep -v '^#' "$root/usr/share/doc/sluice/fstab.sluice"
} > "$root/etc/fstab"
# a transient machine-id on the read-only root; no root password (console login disabled until one is set)
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

umount "$root/proc"
rm -f "$root/usr/bin/qemu-aarch64-static"
chroot_clean() { rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/debootstrap; }
chroot_clean
mkdir -p "$(dirname "$out")"
log "packing $out"
tar -C "$root" --numeric-owner --xattrs -czf "$out.tmp" .
mv "$out.tmp" "$out"
printf 'built %s (%s bytes)\n' "$out" "$(stat -c %s "$out")"
