#!/usr/bin/env bash
# The product build: Embedded Swift, static, stripped.   tools/build-product.sh ARCH CRYPTO OUT
set -euo pipefail
arch=$1 crypto=$2 out=$3
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
TC=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
EMB=$TC/lib/swift/embedded
prefix=$(tools/deps.sh libs "$arch" "$crypto")
scratch=${SLUICE_SCRATCH:-.build-emb-$arch-$crypto}
mkdir -p "$scratch" "$(dirname "$out")"
export EMBEDDED=1 SLUICE_CRYPTO=$crypto

case "$arch" in
  x86_64)
    swift build -c release --scratch-path "$scratch" \
      -Xswiftc -Xclang-linker -Xswiftc -static \
      -Xcc -I"$prefix/include" \
      -Xlinker "$EMB/x86_64-unknown-linux-gnu/libswiftUnicodeDataTables.a" \
      -Xlinker -L"$prefix/lib" -Xlinker -lm -Xlinker --gc-sections \
      -Xswiftc -Xllvm -Xswiftc -enable-machine-outliner ;;
  aarch64)
    sr=$(tools/deps.sh sysroot aarch64)
    cat > "$scratch/toolset.json" <<JSON
{ "schemaVersion": "1.0",
  "swiftCompiler": { "extraCLIOptions": [
    "-Xcc", "--target=aarch64-unknown-linux-gnu", "-Xcc", "--sysroot=$sr", "-Xcc", "-I$prefix/include",
    "-Xclang-linker", "--target=aarch64-unknown-linux-gnu", "-Xclang-linker", "--sysroot=$sr",
    "-Xclang-linker", "-static", "-use-ld=lld",
    "-Xlinker", "$EMB/aarch64-none-none-elf/libswiftUnicodeDataTables.a",
    "-Xlinker", "-L$prefix/lib", "-Xlinker", "--gc-sections", "-Xlinker", "--icf=all",
    "-Xllvm", "-enable-machine-outliner" ] },
  "cCompiler": { "extraCLIOptions": ["--target=aarch64-unknown-linux-gnu", "--sysroot=$sr", "-I$prefix/include"] } }
JSON
    swift build -c release --triple aarch64-none-none-elf --toolset "$scratch/toolset.json" --scratch-path "$scratch" ;;
  *) echo "unknown ARCH $arch" >&2; exit 1 ;;
esac
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path $( [ "$arch" = aarch64 ] && echo --triple aarch64-none-none-elf))/sluice
"$TC/bin/llvm-objcopy" --strip-all "$bin" "$out"
printf 'built %s (%s bytes)\n' "$out" "$(stat -c %s "$out")"
