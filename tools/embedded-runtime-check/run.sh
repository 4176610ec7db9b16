#!/usr/bin/env bash
# Builds main.swift as Embedded Swift for ARCH (x86_64 | aarch64) twice — with the toolchain's runtime as it is, and
# with Sources/CSupport/EmbeddedRuntimeFixes.c linked in as the product links it — and runs both (aarch64 under
# qemu-aarch64-static). Fails when the fixed build fails; reports whether the toolchain still has the defect (once it
# does not, the workaround can go).      tools/embedded-runtime-check/run.sh ARCH
set -euo pipefail
arch=$1
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
TC=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
out=$root/build/runtime-check/$arch; mkdir -p "$out"
read -r -a cc <<< "$("$root/tools/deps.sh" cc "$arch" gnu)"
sysroot=""; for a in "${cc[@]}"; do case "$a" in --sysroot=*) sysroot=${a#--sysroot=};; esac; done
case "$arch" in
  x86_64) target=x86_64-unknown-linux-gnu; run=() ;;
  aarch64) target=aarch64-none-none-elf; run=(qemu-aarch64-static -cpu "${SLUICE_QEMU_CPU:-cortex-a72}") ;;
  *) echo "ARCH must be x86_64 or aarch64" >&2; exit 2 ;;
esac
swiftc -target "$target" -enable-experimental-feature Embedded -wmo -parse-as-library -Osize \
  -Xcc --target="$arch-unknown-linux-gnu" -Xcc --sysroot="$sysroot" -I "$here" \
  -c "$here/main.swift" -o "$out/main.o"
fix=$root/Sources/CSupport/EmbeddedRuntimeFixes.c
"${cc[@]}" -O2 -c "$fix" -I "$root/Sources/CSupport/include" -o "$out/unfixed.o"
"${cc[@]}" -O2 -DSLUICE_EMBEDDED -c "$fix" -I "$root/Sources/CSupport/include" -o "$out/fixed.o"
tables=$TC/lib/swift/embedded/$target/libswiftUnicodeDataTables.a
for variant in unfixed fixed; do
  "${cc[@]}" -static -fuse-ld=lld "$out/main.o" "$out/$variant.o" "$tables" -o "$out/$variant"
done
if "${run[@]}" "$out/unfixed" > "$out/unfixed.txt"; then
  echo "runtime-check $arch: the toolchain's own runtime now keeps small strings intact: EmbeddedRuntimeFixes.c can go"
else
  echo "runtime-check $arch: the toolchain's runtime has the defect ($(tail -1 "$out/unfixed.txt"))"
fi
if ! "${run[@]}" "$out/fixed" > "$out/fixed.txt"; then
  cat "$out/fixed.txt"; echo "runtime-check $arch: FAILED with Sources/CSupport/EmbeddedRuntimeFixes.c" >&2; exit 1
fi
echo "runtime-check $arch: with Sources/CSupport/EmbeddedRuntimeFixes.c: $(tail -1 "$out/fixed.txt")"
