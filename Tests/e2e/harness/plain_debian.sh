#!/usr/bin/env bash
# README's set-up on a plain Debian 12 (issue #23), for Tests/e2e/test_setup.py. Run inside `unshare --mount --pid
# --fork` (as root), so every mount below and every process started in the root end with it.
#   plain_debian.sh BASE WORK CHECKOUT
# BASE: tools/debian12-root.sh's folder (its root/ is only read: an overlay takes the writes, under WORK). CHECKOUT is
# cloned into the root's /root/sluice, and the steps run there as root, as README says, each leaving
# WORK/<step>.out (output), WORK/<step>.rc and WORK/<step>.seconds:
#   pip      `python3 -m pip install pytest` (Debian 12 refuses it: PEP 668)
#   venv     `make venv`, then build/venv's python3 imports the test requirements
#   deps     `make deps-build` (what `make run` installs and builds first)
#   run      `make run` in a network namespace of its own (nobody else's port 30003), until `/healthz` answers; then
#            `build/x86_64/sluice version`
# The Swift toolchain is this machine's /opt/swift, mounted where README puts it, and nothing else of this machine is
# visible but its network (name servers, certificate authorities) and three folders of the C-library cache (sysroot,
# src, prefix), read-only: a cache key that does not match this machine's would rebuild, which fails there instead of
# costing minutes. Downloads (apt's .debs, pip's wheels) are kept between runs in the cache's debian12/ folder; what
# they install is not.
set -euo pipefail
base=$1 work=$2 checkout=$3
cache=${SLUICE_DEPS:-/var/cache/sluice}
root=$work/root
mkdir -p "$work/upper" "$work/overlay-work" "$root" "$cache/debian12/apt-archives/partial" "$cache/debian12/pip"
mount -t overlay overlay -o "lowerdir=$base/root,upperdir=$work/upper,workdir=$work/overlay-work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
# this machine's network as it is reached from here: its name servers, and the certificate authorities its egress
# may need (a TLS-inspecting proxy's; the root's own bundle of Debian's authorities is otherwise the same)
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
ro_bind() { mkdir -p "$2"; mount --bind "$1" "$2"; mount -o remount,bind,ro "$2"; }
ro_bind /opt/swift "$root/opt/swift"
for d in sysroot src prefix; do ro_bind "$cache/$d" "$root/var/cache/sluice/$d"; done
mount --bind "$cache/debian12/apt-archives" "$root/var/cache/apt/archives"
mkdir -p "$root/root/.cache/pip"
mount --bind "$cache/debian12/pip" "$root/root/.cache/pip"
git clone -q "$checkout" "$root/root/sluice"

# a login shell's environment on that machine, with the toolchain on PATH as README says
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /root/sluice && $1"
}
step() {
  local name=$1 start=$SECONDS rc=0
  shift
  "$@" > "$work/$name.out" 2>&1 || rc=$?
  echo "$rc" > "$work/$name.rc"
  echo $((SECONDS - start)) > "$work/$name.seconds"
}

step pip in_root "python3 -m pip install pytest"
step venv in_root "make venv && build/venv/bin/python3 -c 'import pytest, websockets, selenium; print(\"imports ok\")'"
step deps in_root "make deps-build"
# `make run` serves until stopped: in a network namespace of its own (loopback only, nothing to install by then),
# left serving once /healthz answered and the product told its version: the PID namespace ends it with this script
run_until_healthy() {
  in_root "make run > /root/run.log 2>&1 & pid=\$!
    ok=0
    for i in \$(seq 1 3000); do
      if grep -q 'event=serve.listening' /root/run.log && curl -sf http://127.0.0.1:30003/healthz; then ok=1; break; fi
      kill -0 \$pid 2>/dev/null || break
      sleep 0.2
    done
    cat /root/run.log
    [ \$ok = 1 ] && echo && echo 'healthz answered' && /root/sluice/build/x86_64/sluice version"
}
export -f in_root run_until_healthy
export root
step run unshare --net bash -c 'ip link set lo up && run_until_healthy'
