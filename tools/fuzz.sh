#!/usr/bin/env bash
# libFuzzer over every pure parser (JSON, JWT, names, config, SOCKS5, connect bodies, small parsers, WebSocket frames,
# private-key files).   tools/fuzz.sh SECONDS_PER_TARGET
# Seeds live in Tests/fuzz/corpus/<target>/ (read only here); new inputs go to a scratch corpus; a crash leaves its
# input in build/fuzz/ and fails the run (turn it into a unit test).
set -euo pipefail
seconds=${1:-60}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
p=$(tools/deps.sh libs x86_64 openssl)
SLUICE_FUZZ=1 swift build -q --scratch-path .build-fuzz --product SluiceFuzz --sanitize fuzzer --sanitize address \
  -Xcc -I"$p/include" -Xlinker -L"$p/lib"
bin=$(SLUICE_FUZZ=1 swift build --scratch-path .build-fuzz --show-bin-path)/SluiceFuzz
mkdir -p build/fuzz
status=0
for target in json jwt name config socks connect http ws key; do
  work=$(mktemp -d)
  log=build/fuzz/$target.log
  if FUZZ_TARGET=$target "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=8192 \
       -artifact_prefix=build/fuzz/$target- "$work" "Tests/fuzz/corpus/$target" > "$log" 2>&1; then
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo "?")
    printf 'fuzz: %-8s %12s execs in %ss, no findings\n' "$target" "$runs" "$seconds"
  else
    printf 'fuzz: %-8s FAILED, see %s\n' "$target" "$log"; tail -n 30 "$log"; status=1
  fi
  rm -rf "$work"
done
exit $status
