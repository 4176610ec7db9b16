"""Server-to-server tunnels in direct mode (tunnels-api.md §7, §8; appliance.md §2) against the static binary:
local, remote and dynamic forwards through the e2e sshd, every user-key type, host-key pinning and TOFU, and the
faults (sshd gone, sshd wedged, many streams, many cycles)."""
import hashlib
import os
import signal
import socket
import threading
import time

import pytest

from harness.appliance import Appliance
from harness.flavour import full_crypto
from harness.netio import half_close_exchange, recv_exact
from harness.ports import free_port
from harness.servers import EchoServer, checksum_over
from harness.sshd import Sshd
from harness.s2s import (connect, connected, descendants_of, disconnect, failed, host_entry,
                         secret_file, socks_connect, status, stop_sshd_completely, timed_checksum, wait_status)

MiB = 1 << 20


@pytest.fixture(scope="module")
def payload():
    data = os.urandom(64 * MiB)
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def app(sluice_bin, sshd, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("s2s-secrets"))
    passphrase = secret_file(d, "passphrase", sshd.passphrase)
    password = secret_file(d, "password", sshd.password)
    wrong = secret_file(d, "wrong", "not-the-password")
    hosts = [host_entry(sshd, 10, "k-ed25519", {"type": "key", "keyFile": sshd.keys["ed25519"]}),
             host_entry(sshd, 11, "k-ecdsa384", {"type": "key", "keyFile": sshd.keys["ecdsa384"]}),
             host_entry(sshd, 12, "k-ecdsa521", {"type": "key", "keyFile": sshd.keys["ecdsa521"]}),
             host_entry(sshd, 13, "k-ecdsa-pem", {"type": "key", "keyFile": sshd.keys["ecdsa256_pem"]}),
             host_entry(sshd, 14, "k-ed25519-pass", {"type": "key", "keyFile": sshd.keys["ed25519_pass"],
                                                     "passphraseFile": passphrase}),
             host_entry(sshd, 15, "k-ecdsa-pass", {"type": "key", "keyFile": sshd.keys["ecdsa256_pass"],
                                                   "passphraseFile": passphrase}),
             host_entry(sshd, 16, "pw", {"type": "password", "passwordFile": password}),
             host_entry(sshd, 17, "pw-wrong", {"type": "password", "passwordFile": wrong}),
             host_entry(sshd, 18, "k-rsa", {"type": "key", "keyFile": sshd.keys["rsa"]}),
             host_entry(sshd, 19, "k-rsa-pem", {"type": "key", "keyFile": sshd.keys["rsa_pem"]})]
    a = Appliance(sluice_bin, sshd, extra_hosts=hosts).start()
    yield a
    a.stop()


# ---- forwards ------------------------------------------------------------------------------------------------

@pytest.mark.alone
def test_local_forward_64mib(app, checksum_sink, payload):
    source = free_port()
    name = connect(app, 1, "edge", 0, "local", source, checksum_sink.port)
    st = connected(app, name)
    assert st["connected"] is True
    rate = timed_checksum(source, payload)
    print(f"local 64 MiB: {rate:.0f} MB/s")
    st = wait_status(app, name, lambda s: s.get("bytesOut", 0) >= 64 * MiB, timeout=5)[0]
    assert st["bytesOut"] >= 64 * MiB
    disconnect(app, name)


@pytest.mark.alone
def test_remote_forward_64mib(app, checksum_sink, payload):
    remote_port = free_port()
    name = connect(app, 1, "edge", 1, "remote", remote_port, checksum_sink.port)
    connected(app, name)
    rate = timed_checksum(remote_port, payload)
    print(f"remote 64 MiB: {rate:.0f} MB/s")
    disconnect(app, name)
    time.sleep(0.3)
    with pytest.raises(OSError):     # the forward was cancelled with the session
        socket.create_connection(("127.0.0.1", remote_port), timeout=2).close()


@pytest.mark.parametrize("listen_host", ["127.0.0.1", "localhost", "::1"])
def test_remote_forward_with_target_host(app, echo_server, listen_host):
    """`targetHost` names the server-side listen address of a remote forward. On aarch64 the request's own string
    (not a literal) once reached libssh2 corrupted and crashed the process (issue #13)."""
    remote_port = free_port()
    name = connect(app, 1, "edge", 9, "remote", remote_port, echo_server.port, targetHost=listen_host)
    connected(app, name)
    family = socket.AF_INET6 if listen_host == "::1" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(("::1" if listen_host == "::1" else "127.0.0.1", remote_port))
        c.sendall(b"remote with a targetHost")
        assert recv_exact(c, 24) == b"remote with a targetHost"
    disconnect(app, name)
    assert "panic" not in app.sluice.log() and app.sluice.proc.poll() is None


@pytest.mark.alone
def test_dynamic_forward_64mib_and_socks_replies(app, checksum_sink, payload):
    source = free_port()
    name = connect(app, 1, "edge", 2, "dynamic", source, 1)
    connected(app, name)
    data, digest = payload
    s, reply = socks_connect(source, checksum_sink.port)
    assert reply == b"\x05\x00\x00\x01" + bytes(6)
    started = time.monotonic()
    answer = checksum_over(s, data)
    s.close()
    print(f"dynamic 64 MiB: {len(data) / (time.monotonic() - started) / 1e6:.0f} MB/s")
    assert answer == (len(data), digest)
    # a domain target
    s, reply = socks_connect(source, checksum_sink.port, dst=b"localhost", atyp=3)
    assert reply[1] == 0
    s.close()
    # refused target → 05, BIND → 07, unknown ATYP → 08; never a hang
    s, reply = socks_connect(source, free_port())
    assert reply == b"\x05\x05\x00\x01" + bytes(6)
    s.close()
    s, reply = socks_connect(source, checksum_sink.port, cmd=2)
    assert reply[1] == 7
    s.close()
    s = socket.create_connection(("127.0.0.1", source), timeout=10)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x09\x00\x00")
    assert recv_exact(s, 10)[1] == 8
    s.close()
    disconnect(app, name)


def test_half_closed_stream_gets_its_reply(app, echo_server):
    source = free_port()
    name = connect(app, 1, "edge", 3, "local", source, echo_server.port)
    connected(app, name)
    assert half_close_exchange(source, b"hello, half-closed world") == b"hello, half-closed world"
    disconnect(app, name)


@pytest.mark.alone
def test_200_parallel_streams(app, echo_server):
    source = free_port()
    name = connect(app, 1, "edge", 4, "local", source, echo_server.port)
    connected(app, name)
    errors = []

    def one(i):
        try:
            blob = os.urandom(64 * 1024 + i)
            got = half_close_exchange(source, blob, timeout=60)
            if got != blob:
                errors.append((i, len(got)))
        except Exception as e:       # noqa: BLE001 - collected and asserted below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print(f"200 streams: {time.monotonic() - started:.1f} s")
    assert errors == []
    disconnect(app, name)


# ---- authentication ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host_id,host_name", [(1, "edge")] + [
    pytest.param(i, n, marks=full_crypto) for i, n in [(10, "k-ed25519"), (11, "k-ecdsa384"), (12, "k-ecdsa521"),
                                                      (13, "k-ecdsa-pem"), (14, "k-ed25519-pass"), (15, "k-ecdsa-pass")]
] + [(16, "pw")])
def test_auth_methods(app, echo_server, host_id, host_name):
    source = free_port()
    name = connect(app, host_id, host_name, 0, "local", source, echo_server.port)
    connected(app, name)
    with socket.create_connection(("127.0.0.1", source), timeout=10) as s:
        s.sendall(b"ping")
        assert recv_exact(s, 4) == b"ping"
    disconnect(app, name)


# RSA user keys sign with rsa-sha2-512/256 (libssh2 1.11.1 itself; 1.10 needed our patch, it sent ssh-rsa)
@pytest.mark.parametrize("host_id,host_name", [pytest.param(18, "k-rsa", marks=full_crypto), (19, "k-rsa-pem")])
def test_auth_rsa(app, echo_server, host_id, host_name):
    source = free_port()
    name = connect(app, host_id, host_name, 0, "local", source, echo_server.port)
    try:
        connected(app, name, timeout=10)
    finally:
        disconnect(app, name)


def test_wrong_password_is_terminal(app):
    source = free_port()
    name = connect(app, 17, "pw-wrong", 0, "local", source, 9, maxRetries=3)
    st = failed(app, name)
    assert st["errorType"] == "AUTHENTICATION_FAILED", st
    assert "Authentication failed" in st["reason"] and "password" in st["reason"], st
    time.sleep(2.5)       # a retry would have shown up by now (retryInterval 1 s)
    st = status(app, name)
    assert st["status"] == "failed" and "retryCount" not in st, st


def test_keyboard_interactive_with_pam(sluice_bin, tmp_path):
    """The shared sshd has UsePAM no, where keyboard-interactive always fails; this one has PAM and no
    password method, so only keyboard-interactive can log in."""
    server = Sshd()
    with open(server.config) as f:
        text = f.read()
    with open(server.config, "w") as f:
        f.write(text.replace("UsePAM no", "UsePAM yes").replace("PasswordAuthentication yes",
                                                                 "PasswordAuthentication no"))
    try:
        server.start()
    except Exception as e:      # noqa: BLE001
        server.cleanup()
        pytest.skip(f"no PAM sshd here: {e}")
    echo = EchoServer()
    app = None
    try:
        pw = secret_file(str(tmp_path), "pw", server.password)
        app = Appliance(sluice_bin, server, extra_hosts=[
            host_entry(server, 20, "kbd", {"type": "password", "passwordFile": pw})]).start()
        source = free_port()
        name = connect(app, 20, "kbd", 0, "local", source, echo.port)
        connected(app, name)
        with socket.create_connection(("127.0.0.1", source), timeout=10) as s:
            s.sendall(b"kbd")
            assert recv_exact(s, 3) == b"kbd"
    finally:
        if app:
            app.stop()
        echo.close()
        server.cleanup()


# ---- host keys ----------------------------------------------------------------------------------------------------

def sshd_log_since(sshd, offset):
    with open(sshd.log, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


@full_crypto   # ed25519 host keys
def test_wrong_pinned_host_key_sends_no_credential(sluice_bin, sshd):
    app = Appliance(sluice_bin, sshd)
    other = sshd.host_keys["ed25519"].split()
    other[1] = open(sshd.keys["ed25519"] + ".pub").read().split()[1]    # an ed25519 key that is not the host's
    app.config["hosts"][1]["hostKey"] = " ".join(other[:2])
    app.rewrite(app.config)
    app.start()
    try:
        offset = os.path.getsize(sshd.log)
        name = connect(app, 1, "edge", 0, "local", free_port(), 9, maxRetries=3)
        st = failed(app, name)
        assert (st["reason"], st["errorType"]) == ("Host key verification failed for edge", "AUTHENTICATION_FAILED")
        time.sleep(1.5)
        assert "retryCount" not in status(app, name)
        log = sshd_log_since(sshd, offset)
        assert "Accepted" not in log and "Failed" not in log and "Postponed" not in log, log
    finally:
        app.stop()


@full_crypto   # ed25519 host keys
def test_pinned_host_key_and_fingerprint(sluice_bin, sshd, echo_server):
    import base64
    import subprocess
    line = sshd.host_keys["ecdsa"]
    out = subprocess.run(["ssh-keygen", "-lf", "-"], input=line, capture_output=True, text=True, check=True).stdout
    fingerprint = out.split()[1]
    for pin in (" ".join(line.split()[:2]), fingerprint):
        app = Appliance(sluice_bin, sshd)
        app.config["hosts"][1]["hostKey"] = pin
        if pin.startswith("SHA256:"):        # negotiation prefers ed25519: pin that one's fingerprint instead
            blob = base64.b64decode(sshd.host_keys["ed25519"].split()[1])
            app.config["hosts"][1]["hostKey"] = "SHA256:" + base64.b64encode(
                hashlib.sha256(blob).digest()).decode().rstrip("=")
        app.rewrite(app.config)
        app.start()
        try:
            name = connect(app, 1, "edge", 0, "local", free_port(), echo_server.port)
            connected(app, name)
        finally:
            app.stop()


@full_crypto   # ed25519 host keys
def test_tofu_records_then_refuses_a_changed_key(sluice_bin, sshd):
    app = Appliance(sluice_bin, sshd).start()
    try:
        name = connect(app, 1, "edge", 0, "local", free_port(), 9)
        connected(app, name)
        disconnect(app, name)
        known = os.path.join(app.sluice.state_dir, "known_hosts")
        lines = open(known).read().split("\n")
        entry = [l for l in lines if l.startswith(f"[127.0.0.1]:{sshd.port} ")]
        assert len(entry) == 1, lines
        assert entry[0].split()[1:3] == sshd.host_keys["ed25519"].split()[:2], entry
        assert oct(os.stat(known).st_mode & 0o777) == "0o600"
        # the server "changes" its key: same type, different blob
        impostor = open(sshd.keys["ed25519"] + ".pub").read().split()[1]
        with open(known, "w") as f:
            f.write(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {impostor}\n")
        name = connect(app, 1, "edge", 0, "local", free_port(), 9)
        st = failed(app, name)
        assert (st["reason"], st["errorType"]) == ("Host key verification failed for edge", "AUTHENTICATION_FAILED")
    finally:
        app.stop()


# ---- faults ------------------------------------------------------------------------------------------------------

@pytest.fixture
def own_sshd():
    server = Sshd().start()
    yield server
    server.cleanup()


def test_sshd_restart_reconnects(sluice_bin, own_sshd, echo_server):
    app = Appliance(sluice_bin, own_sshd).start()
    try:
        source = free_port()
        name = connect(app, 1, "edge", 0, "local", source, echo_server.port, maxRetries=-1, retryInterval=1000)
        connected(app, name)
        stop_sshd_completely(own_sshd)
        # disconnected → retrying → waiting pass quickly; waiting keeps the last reason (§8)
        st, seen = wait_status(app, name, lambda s: s.get("status") == "waiting", timeout=15)
        assert st["errorType"] == "NETWORK_ERROR", seen
        assert "closed by remote host" in st["reason"] or "connection reset" in st["reason"].lower(), seen
        own_sshd.start()
        connected(app, name, timeout=20)
        with socket.create_connection(("127.0.0.1", source), timeout=10) as s:
            s.sendall(b"back")
            assert recv_exact(s, 4) == b"back"
    finally:
        app.stop()


@pytest.mark.timing
def test_retry_count_resets_after_thirty_seconds_connected(sluice_bin, own_sshd, echo_server):
    """§8, and a §10 hole: the reference's retry counter never resets, so a tunnel that fails once a day runs out of
    retries in a week. Outages close together add up; 30 s connected starts the count again."""
    app = Appliance(sluice_bin, own_sshd).start()

    def outage():
        stop_sshd_completely(own_sshd)
        st, seen = wait_status(app, name, lambda s: s.get("status") == "waiting", timeout=15)
        own_sshd.start()
        connected(app, name, timeout=20)
        return st["retryCount"]

    try:
        name = connect(app, 1, "edge", 0, "local", free_port(), echo_server.port, maxRetries=5, retryInterval=1000)
        connected(app, name)
        assert outage() == 1
        assert outage() == 2            # back for less than 30 s: the streak goes on
        time.sleep(31)
        assert outage() == 1            # 30 s connected: a new streak
    finally:
        app.stop()


def test_wedged_sshd_detected_by_keepalive(sluice_bin, own_sshd):
    app = Appliance(sluice_bin, own_sshd).start()
    wedged = []
    try:
        name = connect(app, 1, "edge", 0, "local", free_port(), 9, maxRetries=-1, retryInterval=60000,
                       keepaliveInterval=1000, keepaliveCountMax=2)
        connected(app, name)
        time.sleep(1.5)          # a keepalive round trip has happened
        # the per-connection child serves the session; stopping only the listener would change nothing
        wedged = [own_sshd.proc.pid] + descendants_of(own_sshd.proc.pid)
        for pid in wedged:
            os.kill(pid, signal.SIGSTOP)
        paused = time.monotonic()
        st, _ = wait_status(app, name, lambda s: s.get("reason") == "Keepalive timeout", timeout=10, interval=0.02)
        elapsed = time.monotonic() - paused
        print(f"keepalive detection: {elapsed:.2f} s")
        assert st["errorType"] == "TIMEOUT"
        assert elapsed <= 1 * 2 + 1 + 0.5, elapsed       # interval × countMax + 1 s, plus polling slack
    finally:
        for pid in wedged:
            os.kill(pid, signal.SIGCONT)
        app.stop()


def test_bind_failures_are_terminal(app):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        name = connect(app, 1, "edge", 5, "local", busy.getsockname()[1], 9, maxRetries=3)
        st = failed(app, name)
        assert "address already in use" in st["reason"] and st["errorType"] == "CONNECTION_FAILED", st
        name = connect(app, 1, "edge", 6, "local", free_port(), 9, bindHost="127.0.0.2")
        st = failed(app, name)
        assert (st["reason"], st["errorType"]) == ("Bind address not allowed: 127.0.0.2", "CONNECTION_FAILED")
    finally:
        busy.close()
    # remote: the port is taken on the server side
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        name = connect(app, 1, "edge", 7, "remote", port, 9)
        st = failed(app, name)
        assert (st["reason"], st["errorType"]) == (f"Remote port forwarding failed for listen port {port}",
                                                   "CONNECTION_FAILED")
    finally:
        busy.close()


def process_counts(pid):
    """(open fds, threads, resident KiB) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task")), rss


@pytest.mark.alone
def test_500_cycles_leave_fds_threads_and_rss_flat(app, echo_server):
    pid = app.sluice.proc.pid
    source = free_port()

    def cycle():
        name = connect(app, 1, "edge", 8, "local", source, echo_server.port)
        connected(app, name)
        with socket.create_connection(("127.0.0.1", source), timeout=10) as s:
            s.sendall(b"x")
            assert recv_exact(s, 1) == b"x"
        disconnect(app, name)

    for _ in range(50):          # warm-up: pools, allocator arenas and caches reach their working size
        cycle()
    time.sleep(0.5)
    fds, threads, rss = process_counts(pid)
    started = time.monotonic()
    for _ in range(500):
        cycle()
    time.sleep(0.5)
    fds_after, threads_after, rss_after = process_counts(pid)
    print(f"500 cycles: {time.monotonic() - started:.1f} s, fds {fds} → {fds_after}, threads {threads} → "
          f"{threads_after}, RSS {rss} → {rss_after} KiB")
    assert fds_after <= fds, (fds, fds_after)
    assert threads_after == threads, (threads, threads_after)
    if not os.environ.get("SLUICE_ASAN"):       # AddressSanitizer's quarantine holds freed memory on purpose
        assert rss_after - rss <= 1024, f"RSS grew by {rss_after - rss} KiB over 500 cycles"
