#!/usr/bin/env bash
# Boots the disk image in the foreground (until killed, or `poweroff` inside): the API at 127.0.0.1:HOSTPORT.
#   tools/boot-image.sh ARCH HOSTPORT         ARCH: amd64 (KVM when /dev/kvm exists) | arm64 (TCG, -cpu cortex-a72)
# The guest is on qemu's user-mode network with restrict=on: it reaches no address but the forwards given here.
# For the tests (Tests/boot), the environment may add:
#   SLUICE_BOOT_DISK=FILE       another disk than build/image/sluice-ARCH.img (e.g. a qcow2 overlay of it)
#   SLUICE_BOOT_NET=",hostfwd=…,guestfwd=…"   more forwards on the user-mode netdev
#   SLUICE_BOOT_AGENT=SOCKET    the image's test agent (virtio-serial port org.sluice.agent) on a unix socket
#   SLUICE_BOOT_CONSOLE=FILE    the serial console into FILE instead of this terminal
#   SLUICE_BOOT_KVM=0           amd64 under TCG even where /dev/kvm exists
#   SLUICE_BOOT_SMP=N           virtual CPUs (default 2 under KVM, 1 under TCG)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:?usage: boot-image.sh amd64|arm64 HOSTPORT}
port=${2:?usage: boot-image.sh amd64|arm64 HOSTPORT}
img=$here/build/image/sluice-$arch.img
disk=${SLUICE_BOOT_DISK:-$img}
for f in "$disk" "${img%.img}.vmlinuz" "${img%.img}.initrd"; do
  [ -f "$f" ] || { echo "boot-image: $f missing (make image-disk)" >&2; exit 1; }
done
case "$disk" in *.qcow2) fmt=qcow2 ;; *) fmt=raw ;; esac
case "$arch" in
  amd64)
    qemu=(qemu-system-x86_64 -M q35 -m 512)
    if [ "${SLUICE_BOOT_KVM:-1}" = 1 ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then qemu+=(-enable-kvm); smp=2; fi
    console=ttyS0 ;;
  arm64)
    qemu=(qemu-system-aarch64 -M virt -cpu cortex-a72 -m 512)
    console=ttyAMA0 ;;
  *) echo "boot-image: unknown arch $arch" >&2; exit 1 ;;
esac
smp=${SLUICE_BOOT_SMP:-${smp:-1}}
args=(-smp "$smp" -no-reboot -nodefaults
  -kernel "${img%.img}.vmlinuz" -initrd "${img%.img}.initrd"
  -append "root=LABEL=rootfs ro console=$console panic=-1 quiet"
  -drive "file=$disk,format=$fmt,if=none,id=disk,cache=writeback" -device virtio-blk-pci,drive=disk
  -netdev "user,id=net,restrict=on,hostfwd=tcp:127.0.0.1:$port-:30003${SLUICE_BOOT_NET:-}"
  -device virtio-net-pci,netdev=net,romfile=
  -object rng-random,id=rng,filename=/dev/urandom -device virtio-rng-pci,rng=rng)
if [ -n "${SLUICE_BOOT_AGENT:-}" ]; then
  args+=(-device virtio-serial-pci -chardev "socket,id=agent,path=$SLUICE_BOOT_AGENT,server=on,wait=off"
         -device virtserialport,chardev=agent,name=org.sluice.agent)
fi
if [ -n "${SLUICE_BOOT_CONSOLE:-}" ]; then
  args+=(-display none -serial "file:$SLUICE_BOOT_CONSOLE" -monitor none)
else
  args+=(-nographic -serial mon:stdio)
fi
exec "${qemu[@]}" "${args[@]}"
