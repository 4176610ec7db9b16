#!/usr/bin/env bash
# The expensive, Sluice-independent part of the bootable disk image, cached: Debian bookworm (debootstrap minbase +
# systemd, udev, kmod, iproute2, e2fsprogs), Debian's cloud kernel with an initramfs that carries the virtio drivers,
# the read-only-root fstab, DHCP on wired links, and the hypervisor-only test agent (image/sluice-agent).
#   image/build-base.sh ARCH        (amd64|arm64; as root, network to the Debian mirror of this machine's apt sources)
# prints the cache folder: root/ (the file system tree), vmlinuz, initrd.img. The key is a hash of this script and the
# files it installs, so a change to the recipe builds a new base; SLUICE_DEPS overrides /var/cache/sluice.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:?usage: build-base.sh amd64|arm64}
suite=bookworm
log() { printf 'image-base(%s): %s\n' "$arch" "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root (debootstrap, chroot)"; exit 1; }
case "$arch" in amd64) kernel=linux-image-cloud-amd64 ;; arm64) kernel=linux-image-cloud-arm64 ;;
  *) log "unknown arch"; exit 1 ;; esac
PACKAGES="systemd,systemd-sysv,udev,kmod,iproute2,e2fsprogs,procps,netbase,less,zstd"
KERNEL_PACKAGES="initramfs-tools busybox $kernel"
# the drivers the root disk, the network and the test agent's port need before / is mounted (modules in this kernel)
INITRAMFS_MODULES="virtio_pci virtio_mmio virtio_blk virtio_net virtio_console"

cache_root=${SLUICE_DEPS:-/var/cache/sluice}/image
key=$( { echo "$PACKAGES $KERNEL_PACKAGES $INITRAMFS_MODULES"; cat "$0" "$here/image/sluice-agent" \
         "$here/image/sluice-agent.service" "$here/image/60-sluice-agent.rules"; } | sha256sum | cut -c1-16)
dir=$cache_root/$arch-$key
mkdir -p "$cache_root"
exec 9>"$cache_root/.lock-$arch"
flock 9
if [ -f "$dir/done" ]; then echo "$dir"; exit 0; fi

mirror() {   # the first Debian (not security) URI of the system's sources: no registry address lives in this project
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
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2

rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
root=$dir.tmp/root
mounted_binfmt=0 registered=0
cleanup() {
  for m in "$root/proc" "$root/dev"; do mountpoint -q "$m" && umount -l "$m"; done
  [ $registered = 1 ] && echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64
  [ $mounted_binfmt = 1 ] && umount /proc/sys/fs/binfmt_misc
  return 0
}
trap cleanup EXIT
m=$(mirror)
start=$SECONDS
if [ "$arch" = arm64 ] && [ "$(dpkg --print-architecture)" != arm64 ]; then
  qemu=$(command -v qemu-aarch64-static) || { log "qemu-aarch64-static missing (tools/deps.sh host)"; exit 1; }
  # arm64 binaries run through qemu (F: the interpreter is opened now, so it works inside the chroot)
  if [ ! -f /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; mounted_binfmt=1
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    echo ":qemu-aarch64:M::$magic:$mask:$qemu:F" > /proc/sys/fs/binfmt_misc/register; registered=1
  fi
  log "debootstrap $suite from $m (foreign, second stage under qemu)"
  debootstrap --foreign --arch=arm64 --variant=minbase --include="$PACKAGES" "$suite" "$root" "$m" >&2
  chroot "$root" /debootstrap/debootstrap --second-stage >&2
else
  log "debootstrap $suite from $m"
  debootstrap --arch="$arch" --variant=minbase --include="$PACKAGES" "$suite" "$root" "$m" >&2
fi
log "debootstrap took $((SECONDS - start)) s"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$m" "$suite" "$m" "$suite" > "$root/etc/apt/sources.list"
printf '%s\n' $INITRAMFS_MODULES >> "$root/etc/initramfs-tools/modules" 2>/dev/null || {
  mkdir -p "$root/etc/initramfs-tools"; printf '%s\n' $INITRAMFS_MODULES >> "$root/etc/initramfs-tools/modules"; }
log "kernel and initramfs"
chroot "$root" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends $KERNEL_PACKAGES >&2
for mod in $INITRAMFS_MODULES; do
  chroot "$root" sh -c "lsinitramfs /boot/initrd.img-* | grep -q '/$mod.ko'" || { log "initramfs lacks $mod"; exit 1; }
done
cp "$(readlink -f "$root/vmlinuz" 2>/dev/null || ls "$root"/boot/vmlinuz-* | head -1)" "$dir.tmp/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | head -1)" "$dir.tmp/initrd.img"

log "system configuration"
echo sluice > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsluice\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nType=ether\n\n[Network]\nDHCP=ipv4\n' > "$root/etc/systemd/network/20-wired.network"
chroot "$root" systemctl enable systemd-networkd >&2
# systemd-firstboot would prompt on the console; nothing here needs it
chroot "$root" systemctl mask systemd-firstboot.service >&2
install -m 0755 "$here/image/sluice-agent" "$root/usr/lib/sluice-image/sluice-agent" -D
install -m 0644 "$here/image/sluice-agent.service" "$root/lib/systemd/system/sluice-agent.service"
install -m 0644 "$here/image/60-sluice-agent.rules" "$root/lib/udev/rules.d/60-sluice-agent.rules"
{
  echo "# / is read-only: Sluice writes only /var/lib/sluice (the data partition below, else a tmpfs)"
  echo "LABEL=rootfs  /         ext4   ro,noatime,errors=remount-ro  0  1"
  echo "tmpfs         /tmp      tmpfs  nosuid,nodev,mode=1777        0  0"
  echo "tmpfs         /var/tmp  tmpfs  nosuid,nodev,mode=1777        0  0"
  echo "tmpfs         /var/log  tmpfs  nosuid,nodev,mode=0755,size=32m  0  0"
  grep -v '^#' "$here/image/fstab.sluice"
} > "$root/etc/fstab"
mkdir -p "$root/var/lib/sluice"
# a transient machine-id on the read-only root; root has no password (no console or network login)
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
umount "$root/proc" "$root/dev"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/debootstrap
[ -e "$root/usr/bin/qemu-aarch64-static" ] && rm -f "$root/usr/bin/qemu-aarch64-static"
touch "$dir.tmp/done"
rm -rf "$dir"; mv "$dir.tmp" "$dir"
log "built in $((SECONDS - start)) s"
echo "$dir"
