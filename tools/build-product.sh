#!/usr/bin/env bash
# The product build: Embedded Swift, static, stripped.   tools/build-product.sh ARCH CRYPTO OUT
# CRYPTO=openssl links glibc (Debian's libcrypto.a is built for it); CRYPTO=mbedtls links musl (smaller).
set -euo pipefail
arch=$1 crypto=$2 out=$3
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
TC=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
EMB=$TC/lib/swift/embedded
prefix=$(tools/deps.sh libs "$arch" "$crypto")
libc=gnu; [ "$crypto" = mbedtls ] && libc=musl
scratch=${SLUICE_SCRATCH:-.build-emb-$arch-$crypto}
# SwiftPM does not see a change of the C libraries behind -I/-L: a build folder is reused for one prefix only
if [ "$(cat "$scratch/.prefix" 2>/dev/null)" != "$prefix" ]; then rm -rf "$scratch"; fi
mkdir -p "$scratch" "$(dirname "$out")"
echo "$prefix" > "$scratch/.prefix"
export EMBEDDED=1 SLUICE_CRYPTO=$crypto

case "$arch" in
  x86_64) swift_triple=x86_64-unknown-linux-gnu; tables=$EMB/x86_64-unknown-linux-gnu ;;
  aarch64) swift_triple=aarch64-none-none-elf; tables=$EMB/aarch64-none-none-elf ;;
  *) echo "unknown ARCH $arch" >&2; exit 1 ;;
esac

# C flags of the target (the same compiler line tools/deps.sh built the C libraries with), as JSON strings
read -r -a cflags <<< "$(tools/deps.sh cc "$arch" "$libc" | cut -d' ' -f2-)"
json() { local first=1 a; for a in "$@"; do [ $first = 1 ] || printf ', '; first=0; printf '"%s"' "$a"; done; }
xcc=(); for a in "${cflags[@]}" "-I$prefix/include"; do case "$a" in -B*|-L*) ;; *) xcc+=("-Xcc" "$a");; esac; done
xlink=(); for a in "${cflags[@]}"; do case "$a" in --target=*|--sysroot=*|-B*|-L*) xlink+=("-Xclang-linker" "$a");; esac; done
ccompile=(); for a in "${cflags[@]}"; do case "$a" in -B*|-L*) ;; *) ccompile+=("$a");; esac; done   # link-only flags

if [ "$arch" = x86_64 ] && [ "$libc" = gnu ]; then
  # the host's own target: no toolset needed
  swift build -c release --scratch-path "$scratch" \
    -Xswiftc -Xclang-linker -Xswiftc -static \
    -Xcc -I"$prefix/include" \
    -Xlinker "$tables/libswiftUnicodeDataTables.a" \
    -Xlinker -L"$prefix/lib" -Xlinker -lm -Xlinker --gc-sections \
    -Xswiftc -Xllvm -Xswiftc -enable-machine-outliner
  triple_args=()
else
  cat > "$scratch/toolset.json" <<JSON
{ "schemaVersion": "1.0",
  "swiftCompiler": { "extraCLIOptions": [
    $(json "${xcc[@]}" "${xlink[@]}"),
    "-Xclang-linker", "-static", "-use-ld=lld",
    "-Xlinker", "$tables/libswiftUnicodeDataTables.a",
    "-Xlinker", "-L$prefix/lib", "-Xlinker", "--gc-sections", "-Xlinker", "--icf=all",
    "-Xllvm", "-enable-machine-outliner" ] },
  "cCompiler": { "extraCLIOptions": [$(json "${ccompile[@]}" "-I$prefix/include")] } }
JSON
  triple_args=(--triple "$swift_triple")
  swift build -c release "${triple_args[@]}" --toolset "$scratch/toolset.json" --scratch-path "$scratch"
fi
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path "${triple_args[@]}")/sluice
# Sources/CSupport/EmbeddedRuntimeFixes.c must replace the Embedded runtime's weak swift_bridgeObjectRetain(_n):
# a product still carrying the runtime's own would corrupt small strings (issue #13)
for symbol in swift_bridgeObjectRetain swift_bridgeObjectRetain_n; do
  if ! "$TC/bin/llvm-nm" "$bin" | grep -E "^[0-9a-f]+ T $symbol\$" >/dev/null; then
    echo "build-product: $symbol in $bin is not Sources/CSupport/EmbeddedRuntimeFixes.c's definition" >&2
    exit 1
  fi
done
# a constant a function's literals became must have one content per name across the modules' objects (issue #25,
# tools/embedded-runtime-check/static-objects.py): otherwise the linker hands one literal's bytes to another
if ! python3 tools/embedded-runtime-check/static-objects.py "$(dirname "$bin")" > "$scratch/static-objects.txt"; then
  cat "$scratch/static-objects.txt" >&2
  echo "build-product: same-named constant objects differ between modules in $bin (issue #25)" >&2
  exit 1
fi
"$TC/bin/llvm-objcopy" --strip-all "$bin" "$out"
printf 'built %s (%s bytes, %s)\n' "$out" "$(stat -c %s "$out")" "$libc"
