#!/usr/bin/env bash
# Builds the libssh2 checks against the deps prefixes and runs them against a private sshd (see README.md).
#   tools/libssh2-check/run.sh [MIB]      MIB: size of each throughput transfer (default 512; 0 skips throughput)
#   CIPHERS="aes128-ctr aes128-gcm@openssh.com …"  the throughput ciphers (default aes128-ctr; MAC hmac-sha2-256 where
#   the cipher has none of its own); OPENSSL_PREFIX=DIR  a libssh2/OpenSSL prefix to measure instead of the deps one
#   (e.g. one built without a patch); SKIP_MATRIX=1  throughput only
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
mib=${1:-512}
work=$(mktemp -d /tmp/libssh2-check.XXXXXX)
chmod 755 "$work"
TC=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
sr=$("$here/tools/deps.sh" sysroot x86_64)
cc() { "$TC/bin/clang" --target=x86_64-linux-gnu --sysroot="$sr" -fuse-ld=lld -static -O2 "$@"; }
src=$here/tools/libssh2-check
for c in openssl mbedtls; do
  p=$("$here/tools/deps.sh" libs x86_64 $c)
  [ $c = openssl ] && [ -n "${OPENSSL_PREFIX:-}" ] && p=$OPENSSL_PREFIX
  if [ $c = openssl ]; then libs="-lcrypto -lz -ldl"; else libs="-lmbedcrypto"; fi
  cc -I"$p/include" "$src/auth_check.c" -L"$p/lib" -lssh2 $libs -lpthread -o "$work/auth_$c"
  [ $c = openssl ] && cc -I"$p/include" "$src/throughput.c" -L"$p/lib" -lssh2 $libs -lpthread -o "$work/throughput"
done
cc "$src/tcpbench.c" -o "$work/tcpbench"

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
id sluice-e2e >/dev/null 2>&1 || useradd --create-home --shell /bin/sh sluice-e2e
mkdir -p "$work/hk" "$work/ck" /run/sshd
for t in ed25519 ecdsa rsa; do ssh-keygen -q -t $t -N "" -f "$work/hk/ssh_host_${t}_key"; done
k() { ssh-keygen -q "$@"; }
k -t ed25519 -N "" -f "$work/ck/ed25519";            k -t ecdsa -b 256 -N "" -f "$work/ck/ecdsa256"
k -t ecdsa -b 256 -m PEM -N "" -f "$work/ck/ecdsa256_pem"; k -t ecdsa -b 256 -N secret-pw -f "$work/ck/ecdsa256_pass"
k -t rsa -b 3072 -N "" -f "$work/ck/rsa";             k -t rsa -b 3072 -N secret-pw -f "$work/ck/rsa_pass"
k -t rsa -b 3072 -m PEM -N "" -f "$work/ck/rsa_pem";  k -t rsa -b 3072 -m PEM -N secret-pw -f "$work/ck/rsa_pem_pass"
k -t rsa -b 2048 -m PKCS8 -N "" -f "$work/ck/rsa_pkcs8"
cat "$work"/ck/*.pub > "$work/authorized_keys"; chmod 644 "$work/authorized_keys"
port=$(free_port)
cat > "$work/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $work/hk/ssh_host_ed25519_key
HostKey $work/hk/ssh_host_ecdsa_key
HostKey $work/hk/ssh_host_rsa_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin no
PubkeyAuthentication yes
AllowTcpForwarding yes
Ciphers +aes128-cbc,aes192-cbc,aes256-cbc,3des-cbc
MACs +hmac-sha1-96,hmac-md5,hmac-md5-96
# a new key exchange every MiB: the MAC round trips below cross several (patch 0005 keys its contexts per exchange)
RekeyLimit 1M
LogLevel DEBUG1
CFG
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2> "$work/sshd.log" &
sshd_pid=$!
pids=("$sshd_pid")
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
sleep 1
K=$work/ck
keys=("$K/rsa" "$K/rsa_pass:secret-pw" "$K/rsa_pem" "$K/rsa_pem_pass:secret-pw" "$K/rsa_pkcs8" "$K/ed25519" "$K/ecdsa256"
      "$K/ecdsa256_pem" "$K/ecdsa256_pass:secret-pw")
for c in openssl mbedtls; do
  [ -n "${SKIP_MATRIX:-}" ] && break
  echo "== keys, $c (public key derived from the private key)"
  "$work/auth_$c" -p "$port" "${keys[@]}" | sed "s#$K/##" || true
  echo "== keys, $c (with KEY.pub)"
  "$work/auth_$c" -p "$port" -P "${keys[@]}" | sed "s#$K/##" || true
  echo "== rsa-sha2 host keys, $c"
  for h in rsa-sha2-512 rsa-sha2-256; do "$work/auth_$c" -p "$port" -m memory -H $h "$K/rsa_pem" | sed "s#$K/##" || true; done
  echo "== ciphers, $c (4 MB cat round trip)"
  for ci in aes128-ctr aes192-ctr aes256-ctr aes128-cbc aes192-cbc aes256-cbc 3des-cbc; do
    "$work/auth_$c" -p "$port" -m memory -c $ci -e 4000000 "$K/rsa_pem" | sed "s#$K/##" || true
  done
  echo "== MACs, $c (aes128-ctr, 4 MB cat round trip, a key exchange every MiB)"
  for m in hmac-sha2-256 hmac-sha2-512 hmac-sha1 hmac-sha1-96 hmac-md5 hmac-md5-96 hmac-sha2-256-etm@openssh.com \
           hmac-sha2-512-etm@openssh.com hmac-sha1-etm@openssh.com; do
    "$work/auth_$c" -p "$port" -m memory -c aes128-ctr -M $m -e 4000000 "$K/rsa_pem" | sed "s#$K/##" || true
  done
done
grep -E "publickey test pkalg" "$work/sshd.log" | sed 's/.*pkalg \([^ ]*\).*/\1/' | sort | uniq -c | sed 's/^/signature algorithms seen by sshd: /' || true

[ "$mib" = 0 ] && exit 0
target=$(free_port)
"$work/tcpbench" serve "$target" & pids+=($!)
for ci in ${CIPHERS:-aes128-ctr}; do
echo "== throughput, $mib MiB per transfer, $ci (+ hmac-sha2-256 unless AEAD)"
for round in 1 2; do
  lp=$(free_port)
  ssh -N -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o KexAlgorithms=curve25519-sha256 \
      -c "$ci" -m hmac-sha2-256 -i "$K/ed25519" -p "$port" -L "$lp:127.0.0.1:$target" sluice-e2e@127.0.0.1 &
  ssh_pid=$!; sleep 1
  echo -n "ssh -L     "; "$work/tcpbench" up "$lp" "$mib"
  echo -n "ssh -L     "; "$work/tcpbench" down "$lp" "$mib"
  kill $ssh_pid
  lp=$(free_port)
  "$work/throughput" -p "$port" -k "$K/ed25519" -l "$lp" -t "$target" -n 2 -c "$ci" > "$work/thr.out" 2>/dev/null & thr=$!; sleep 1
  echo -n "libssh2    "; "$work/tcpbench" up "$lp" "$mib"
  echo -n "libssh2    "; "$work/tcpbench" down "$lp" "$mib"
  wait $thr; sed 's/^/libssh2    /' "$work/thr.out"
done
done
