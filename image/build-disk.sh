#!/usr/bin/env bash
# A bootable raw disk image of Debian bookworm with Sluice installed from its .deb, for amd64 or arm64.
#   image/build-disk.sh ARCH DEB OUT.img       (make image-disk; as root)
# The Debian base with its kernel comes from image/build-base.sh's cache; this step only copies it, installs the
# package with dpkg inside it, packs the two ext4 file systems with mkfs.ext4 -d and assembles them behind a GPT with
# sfdisk and dd (no loop devices, no mounts but /proc and /dev for the chroot). Next to OUT.img it writes
# OUT.vmlinuz and OUT.initrd (the image boots by direct kernel boot: see image/README.md).
#   p1  ext4 "rootfs"       /, mounted read-only
#   p2  ext4 "sluice-data"  /var/lib/sluice (64 MiB)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:?usage: build-disk.sh amd64|arm64 DEB OUT.img}
deb=${2:?deb}
out=${3:?out}
log() { printf 'image-disk(%s): %s\n' "$arch" "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root (chroot)"; exit 1; }
[ -f "$deb" ] || { log "$deb missing (make deb)"; exit 1; }
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
start=$SECONDS
base=$("$here/image/build-base.sh" "$arch")

work=$(mktemp -d "${TMPDIR:-/var/tmp}/sluice-disk.XXXXXX")
root=$work/root
mounted_binfmt=0 registered=0
cleanup() {
  for m in "$root/proc" "$root/dev"; do mountpoint -q "$m" && umount -l "$m"; done
  [ $registered = 1 ] && echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64
  [ $mounted_binfmt = 1 ] && umount /proc/sys/fs/binfmt_misc
  rm -rf "$work"
}
trap cleanup EXIT
if [ "$arch" = arm64 ] && [ "$(dpkg --print-architecture)" != arm64 ]; then
  qemu=$(command -v qemu-aarch64-static) || { log "qemu-aarch64-static missing (tools/deps.sh host)"; exit 1; }
  if [ ! -f /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; mounted_binfmt=1
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    echo ":qemu-aarch64:M::$magic:$mask:$qemu:F" > /proc/sys/fs/binfmt_misc/register; registered=1
  fi
fi

cp -a "$base/root" "$root"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp "$deb" "$root/tmp/sluice.deb"
log "dpkg -i $(basename "$deb")"
DEBIAN_FRONTEND=noninteractive chroot "$root" dpkg -i /tmp/sluice.deb >&2
rm -f "$root/tmp/sluice.deb"
# This image is for a machine you reach over the network (or a VM behind port forwards): the API listens on every
# address instead of the package's 127.0.0.1 (an edited conffile, kept across upgrades; tokens still guard it).
sed -i 's/"listen": *"127\.0\.0\.1:30003"/"listen": "0.0.0.0:30003"/' "$root/etc/sluice/sluice.json"
grep -q '"0.0.0.0:30003"' "$root/etc/sluice/sluice.json" || { log "could not set the listen address"; exit 1; }
chroot "$root" /usr/bin/sluice check --config /etc/sluice/sluice.json >&2
chroot "$root" systemctl is-enabled sluice.service >/dev/null || { log "sluice.service not enabled by the package"; exit 1; }
mkdir -p "$root/var/lib/sluice"
# not on an appliance with a read-only root and a serial console: e2fsprogs' scrub of LVM snapshots, and gettys on
# virtual terminals (they cost 10 and 4 s of an emulated boot)
chroot "$root" systemctl mask e2scrub_reap.service e2scrub_all.timer getty-static.service >&2
# fstab here, not in the cached base: the data partition's line is image/fstab.sluice's
{
  echo "# / is read-only: Sluice writes only /var/lib/sluice (the data partition below, else a tmpfs)"
  echo "LABEL=rootfs  /         ext4   ro,noatime,errors=remount-ro  0  1"
  echo "tmpfs         /tmp      tmpfs  nosuid,nodev,mode=1777        0  0"
  echo "tmpfs         /var/tmp  tmpfs  nosuid,nodev,mode=1777        0  0"
  echo "tmpfs         /var/log  tmpfs  nosuid,nodev,mode=0755,size=32m  0  0"
  grep -v '^#' "$here/image/fstab.sluice"
} > "$root/etc/fstab"
umount "$root/proc" "$root/dev"
rm -rf "$root"/var/cache/apt/archives/*.deb

# file systems as files, then the disk: 1 MiB alignment, a GPT, the root sized to its content plus room for an
# upgrade of the package, and the data partition
used=$(du -sm --apparent-size "$root" | cut -f1)
root_mb=$(( used + used / 4 + 96 ))
data_mb=64
mkfs.ext4 -q -F -L rootfs -d "$root" -E root_owner=0:0 "$work/root.ext4" "${root_mb}M"
mkfs.ext4 -q -F -L sluice-data "$work/data.ext4" "${data_mb}M"
mkdir -p "$(dirname "$out")"
rm -f "$out.tmp"
truncate -s $(( (1 + root_mb + data_mb + 1) ))M "$out.tmp"
sfdisk -q "$out.tmp" >/dev/null <<SFDISK
label: gpt
start=1MiB, size=${root_mb}MiB, type=linux, name=rootfs
size=${data_mb}MiB, type=linux, name=sluice-data
SFDISK
dd if="$work/root.ext4" of="$out.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/data.ext4" of="$out.tmp" bs=1M seek=$(( 1 + root_mb )) conv=notrunc,sparse status=none
cp "$base/vmlinuz" "${out%.img}.vmlinuz"
cp "$base/initrd.img" "${out%.img}.initrd"
mv "$out.tmp" "$out"
log "built in $((SECONDS - start)) s: $out ($(( $(stat -c %s "$out") / 1048576 )) MiB, $(du -m "$out" | cut -f1) MiB used)"
echo "$out"
