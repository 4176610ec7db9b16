#!/usr/bin/env bash
# A plain Debian 12 root file system for the set-up check (Tests/e2e/test_setup.py): debootstrap minbase with what a
# fresh Debian 12 server brings that matters to our set-up (python3, here with pip so that PEP 668's refusal is
# visible, and ca-certificates) plus make and git, and nothing of ours: no pyenv, no Swift, no build packages. The
# check runs README's commands on a throwaway overlay over it, so the cached tree itself stays fresh.
#   tools/debian12-root.sh        (as root, network to the Debian mirror of this machine's apt sources)
# prints the cache folder holding root/. The key is a hash of this script and of the apt sources it copies in, so a
# change to the recipe builds a new root; SLUICE_DEPS overrides /var/cache/sluice.
set -euo pipefail
suite=bookworm
log() { printf 'debian12-root: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root (debootstrap)"; exit 1; }
PACKAGES="python3,python3-pip,ca-certificates,make,git"
# the machine's own apt sources go in as they are (bookworm, -updates, -security: what an installed server has), so
# the root's package versions are this machine's, and the C-library cache keys (tools/deps.sh) match
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || { log "$sources missing: the root takes this machine's apt sources"; exit 1; }

cache_root=${SLUICE_DEPS:-/var/cache/sluice}/debian12
key=$( { echo "$suite $PACKAGES"; cat "$0" "$sources"; } | sha256sum | cut -c1-16)
dir=$cache_root/$key
mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
if [ -f "$dir/done" ]; then echo "$dir"; exit 0; fi

# the first Debian (not security) URI of the system's sources: no registry address lives in this project
uri=$(awk '/^Types:/ {deb = ($0 ~ /[ \t]deb([ \t]|$)/)} deb && /^URIs:/ && $2 !~ /security/ {print $2; exit}' "$sources")
[ -n "$uri" ] || { log "no Debian mirror found in $sources"; exit 1; }
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2

rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
start=$SECONDS
log "debootstrap $suite from $uri"
debootstrap --variant=minbase --include="$PACKAGES" "$suite" "$dir.tmp/root" "$uri" >&2
root=$dir.tmp/root
rm -f "$root/etc/apt/sources.list"
cp "$sources" "$root/etc/apt/sources.list.d/debian.sources"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/debootstrap
touch "$dir.tmp/done"
rm -rf "$dir"; mv "$dir.tmp" "$dir"
log "built in $((SECONDS - start)) s"
echo "$dir"
