#!/usr/bin/env bash
# One e2e pass: its tests on E2E_WORKERS pytest-xdist workers (a file per worker at a time), then the tests marked
# `alone` (bulk transfers, RSS that must settle) one at a time. Both pytest runs see the caller's environment
# (SLUICE_BIN, SLUICE_PASS, …): a pass is one command, so a `VAR=value` prefix applies to all of it.
#   tools/e2e-pass.sh PYTHON PYTEST-ARGS...
set -u
python=$1; shift
"$python" -m pytest -q -n "${E2E_WORKERS:-3}" --dist loadfile -m "not alone" "$@" || exit
"$python" -m pytest -q -m alone "$@"
rc=$?
[ $rc = 5 ] && rc=0    # 5: nothing selected (a subset without an `alone` test)
exit $rc
