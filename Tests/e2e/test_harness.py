"""The e2e harness's own sshd: every client key type and the password user log in with OpenSSH's `ssh`, and the
start/stop/restart/pause helpers do what they say. Later suites rely on all of this."""
import hashlib
import socket
import subprocess

import pytest

from harness.servers import send_and_checksum
from harness.sshd import CLIENT_KEYS

# the harness itself, not Sluice: whichever binary a pass tests, this checks the same thing
pytestmark = pytest.mark.once


@pytest.mark.parametrize("key", sorted(k for k in CLIENT_KEYS if not k.endswith("_pass")))
def test_client_key_accepted(sshd, key):
    r = sshd.run_with_key(key, "echo key-ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "key-ok"


@pytest.mark.parametrize("key", ["ed25519_pass", "ecdsa256_pass"])
def test_encrypted_client_key_accepted_with_passphrase(sshd, key):
    r = sshd.run_with_key(key, "echo key-ok", passphrase=sshd.passphrase)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "key-ok"


def test_password_user(sshd):
    assert sshd.run_with_password(sshd.password, "echo pw-ok").stdout.strip() == "pw-ok"
    assert sshd.run_with_password("wrong-password").returncode != 0


def test_three_host_key_types(sshd):
    assert sorted(sshd.host_keys) == ["ecdsa", "ed25519", "rsa"]
    for kind in ("ed25519", "ecdsa", "rsa"):
        out = subprocess.run(["ssh-keyscan", "-p", str(sshd.port), "-t", kind, "127.0.0.1"],
                             capture_output=True, text=True, timeout=20).stdout
        assert sshd.host_keys[kind].split()[1] in out, f"no {kind} host key offered"


def test_restart_and_pause(sshd):
    sshd.restart()
    assert sshd.run_with_key("ed25519").returncode == 0
    sshd.pause()
    try:
        with socket.create_connection(("127.0.0.1", sshd.port), timeout=2) as s:
            s.settimeout(1.5)
            with pytest.raises(socket.timeout):
                s.recv(100)          # a stopped sshd sends no banner
    finally:
        sshd.resume()
    assert sshd.run_with_key("ed25519").returncode == 0


def test_echo_and_checksum_servers(echo_server, checksum_sink):
    payload = bytes(range(256)) * 4096
    n, digest = send_and_checksum(checksum_sink.port, payload)
    assert n == len(payload) and digest == hashlib.sha256(payload).hexdigest()
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as s:
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                break
            got += chunk
    assert got == b"hello"


def test_binaries_start_through_the_harness():
    """Every e2e test runs the product through `harness.sluice.command` (or `Sluice`), so that the aarch64 passes run
    it under qemu: a bare `[sluice_bin, ...]` fails with ENOEXEC there (issue #13)."""
    import os
    import re
    here = os.path.dirname(os.path.abspath(__file__))
    bare = re.compile(r"(subprocess\.\w+|Popen)\(\s*\[\s*(sluice_bin|binary|bin|path)\s*,")
    offenders = []
    for folder in (here, os.path.join(here, "harness")):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    for number, line in enumerate(f, 1):
                        if bare.search(line):
                            offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
