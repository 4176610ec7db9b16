#!/usr/bin/env bash
# The Embedded toolchain check, for ARCH (x86_64 | aarch64): programs built as the product builds (Embedded, -Osize,
# wmo) and run (aarch64 under qemu-aarch64-static); main.swift and enums/ are linked twice, with the toolchain's
# runtime as it is and with Sources/CSupport/EmbeddedRuntimeFixes.c as the product links it; constants/ with the fix:
#   main.swift        issue #13: swift_bridgeObjectRetain must return its argument (the runtime masks it)
#   constants/        issue #25's second defect: a library (Lib/) and a client module built as SwiftPM builds them
#                     (wmo, -num-threads, -function-sections), linked client first: the library's SOCKS greeting
#                     answers with the client's copy of another literal (05 FF for 05 01 00). Built a second time
#                     with -D PAIRS_AT_RUN_TIME (the workaround in Sources/Relay/Protocols/SOCKS5.swift), and
#                     static-objects.py (the guard tools/build-product.sh runs) must flag the first build's objects
#   enums/main.swift  what issue #25 blamed: switches over payload enums in the shapes the product had before its
#                     workarounds (SOCKS5.Step, SSHCredentials, SSHForward), with the product's code-generation and
#                     link flags; they take the right cases
# Fails when a build with the fixes fails or the guard misses the defect; reports what the toolchain does without
# the fixes (once it is right, the fix can go).      tools/embedded-runtime-check/run.sh ARCH
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

# issue #25: literals of a library function compiled again in a client module, as the product's modules are built
flags=(-target "$target" -enable-experimental-feature Embedded -wmo -num-threads 2 -Osize -Xfrontend -function-sections
       -Xllvm -enable-machine-outliner -Xcc --target="$arch-unknown-linux-gnu" -Xcc --sysroot="$sysroot")
linkx=(-Wl,--gc-sections); [ "$arch" = aarch64 ] && linkx+=(-Wl,--icf=all)
for variant in literals pairs; do
  defines=(); [ $variant = pairs ] && defines=(-D PAIRS_AT_RUN_TIME)
  lib=$out/constants-$variant/lib client=$out/constants-$variant/client
  rm -rf "$lib" "$client"; mkdir -p "$lib" "$client"
  (cd "$lib" && swiftc "${flags[@]}" "${defines[@]}" -parse-as-library -module-name Lib -emit-module \
     -emit-module-path "$lib/Lib.swiftmodule" "$here/constants/Lib/Greeting.swift" "$here/constants/Lib/Server.swift" -c)
  (cd "$client" && swiftc "${flags[@]}" -parse-as-library -I "$lib" -I "$here" \
     "$here/constants/main.swift" "$here/constants/Other.swift" -c)
  "${cc[@]}" -static -fuse-ld=lld "${linkx[@]}" "$client"/*.o "$lib"/*.o "$out/fixed.o" "$tables" \
    -o "$out/constants-$variant/program"
  if "${run[@]}" "$out/constants-$variant/program" > "$out/constants-$variant.txt"; then result=0; else result=1; fi
  if python3 "$here/static-objects.py" "$lib" "$client" > "$out/constants-$variant-guard.txt"; then guard=0; else guard=1; fi
  if [ $variant = literals ]; then
    if [ $result = 1 ]; then
      echo "runtime-check $arch: the toolchain has the constant-literal defect ($(tail -1 "$out/constants-$variant.txt"))"
    else
      echo "runtime-check $arch: the toolchain now keeps a function's literals apart across modules: SOCKS5.pair can go"
    fi
    if [ $result != $guard ]; then
      cat "$out/constants-$variant.txt" "$out/constants-$variant-guard.txt"
      echo "runtime-check $arch: FAILED: static-objects.py (tools/build-product.sh's guard) disagrees with the program" >&2
      exit 1
    fi
    echo "runtime-check $arch: static-objects.py on those objects: $(tail -1 "$out/constants-$variant-guard.txt")"
  elif [ $result = 1 ] || [ $guard = 1 ]; then
    cat "$out/constants-$variant.txt" "$out/constants-$variant-guard.txt"
    echo "runtime-check $arch: FAILED with the answers built at run time (SOCKS5.pair's workaround)" >&2; exit 1
  else
    echo "runtime-check $arch: with the answers built at run time (SOCKS5.pair): $(tail -1 "$out/constants-$variant.txt")"
  fi
done

# issue #25 as it was told: payload-enum switches, with the product's flags (tools/build-product.sh)
linkx=(-Wl,--gc-sections); [ "$arch" = aarch64 ] && linkx+=(-Wl,--icf=all)
swiftc -target "$target" -enable-experimental-feature Embedded -wmo -parse-as-library -Osize \
  -Xllvm -enable-machine-outliner -Xcc --target="$arch-unknown-linux-gnu" -Xcc --sysroot="$sysroot" -I "$here" \
  -c "$here/enums/main.swift" "$root/Sources/Relay/Protocols/SOCKS5.swift" \
  "$root/Sources/Relay/Protocols/SOCKS5Server.swift" -o "$out/enums.o"
for variant in unfixed fixed; do
  "${cc[@]}" -static -fuse-ld=lld "${linkx[@]}" "$out/enums.o" "$out/$variant.o" "$tables" -o "$out/enums-$variant"
done
if "${run[@]}" "$out/enums-unfixed" > "$out/enums-unfixed.txt"; then
  echo "runtime-check $arch: payload-enum switches take the right cases with the toolchain's own runtime too"
else
  echo "runtime-check $arch: payload-enum switches go wrong with the toolchain's own runtime ($(tail -1 "$out/enums-unfixed.txt"))"
fi
if ! "${run[@]}" "$out/enums-fixed" > "$out/enums-fixed.txt"; then
  cat "$out/enums-fixed.txt"
  echo "runtime-check $arch: payload-enum switches FAILED with Sources/CSupport/EmbeddedRuntimeFixes.c" >&2; exit 1
fi
echo "runtime-check $arch: payload-enum switches with Sources/CSupport/EmbeddedRuntimeFixes.c: $(tail -1 "$out/enums-fixed.txt")"
