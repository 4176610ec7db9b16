#!/usr/bin/env bash
# The stages of `make test`, timed (issue #26: the whole must stay within its budget, so every run shows what each
# stage cost).
#   tools/stage.sh start           forget the previous run's table
#   tools/stage.sh NAME CMD...     run one stage; its wall time and exit code go to build/test-stages.tsv
#   tools/stage.sh table           print the table, with the test counts the pytest passes left in build/test-counts.tsv
# A failing stage prints the table so far, so a red run also says where the time went.
set -u
cd "$(dirname "$0")/.."
stages=build/test-stages.tsv counts=build/test-counts.tsv

table() {
  local total=0 name secs rc
  printf '\n%-22s %8s  %s\n' "stage" "seconds" "result"
  while IFS=$'\t' read -r name secs rc; do
    total=$((total + secs))
    printf '%-22s %8s  %s\n' "$name" "$secs" "$([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)")"
  done < "$stages"
  printf '%-22s %8s  (%d min %02d s)\n' "total" "$total" $((total / 60)) $((total % 60))
  if [ -s "$counts" ]; then
    local p=0 f=0 s=0 pass passed failed skipped
    printf '\n%-34s %7s %7s %7s\n' "pytest pass" "passed" "failed" "skipped"
    # a pass may be run as two pytest invocations (its parallel part and its `alone` part): one row per pass
    while IFS=$'\t' read -r pass passed failed skipped; do
      printf '%-34s %7s %7s %7s\n' "$pass" "$passed" "$failed" "$skipped"
      p=$((p + passed)); f=$((f + failed)); s=$((s + skipped))
    done < <(awk -F'\t' '!($1 in p) {order[n++] = $1} {p[$1] += $2; f[$1] += $3; s[$1] += $4}
                         END {for (i = 0; i < n; i++) printf "%s\t%d\t%d\t%d\n", order[i], p[order[i]], f[order[i]], s[order[i]]}' "$counts")
    printf 'pytest: %d passed, %d failed, %d skipped\n' "$p" "$f" "$s"
  fi
}

case "${1:-}" in
  start) mkdir -p build; rm -f "$stages" "$counts"; exit 0 ;;
  table) [ -f "$stages" ] && table; exit 0 ;;
  "") echo "usage: $0 start | table | NAME CMD..." >&2; exit 2 ;;
esac

name=$1; shift
start=$(date +%s)
"$@"; rc=$?
mkdir -p build
printf '%s\t%s\t%s\n' "$name" "$(( $(date +%s) - start ))" "$rc" >> "$stages"
[ $rc = 0 ] || table
exit $rc
