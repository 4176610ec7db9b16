"""SSH hosts by DNS name (issue #23; appliance.md §2, tunnels-api.md §8) through a real dnsmasq on loopback, with
the product's /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf replaced in a private mount namespace, in both
nsswitch shapes (Debian's, and Raspberry Pi OS's with mdns4_minimal, which a static binary cannot load). Run by
every pass: both flavours, both targets (aarch64 under qemu)."""
import os
import socket
import struct
import subprocess
import time

import pytest

from harness.appliance import Appliance
from harness.dns import DOMAIN, Dnsmasq, namespace_prefix
from harness.flavour import login_key
from harness.ports import free_port
from harness.s2s import connect, disconnect, wait_status
from harness.sluice import command

NAME = "sshd." + DOMAIN
HOSTS_ONLY = "hostsfile." + DOMAIN       # in the namespace's /etc/hosts only: the "files" source answers first
NOWHERE = "127.0.0.3"                    # loopback, nothing listens on the sshd's port there: refused at once


@pytest.fixture(scope="module")
def dns():
    server = Dnsmasq()
    yield server
    server.stop()


@pytest.fixture(params=["files-dns", "mdns4-minimal"])
def named_app(request, sluice_bin, sshd, dns):
    key = login_key(sshd)
    hosts = [{"id": 5, "name": "named", "ip": NAME, "port": sshd.port, "username": sshd.user, "owner": "u-admin",
              "auth": {"type": "key", "keyFile": key}},
             {"id": 6, "name": "hostsfile", "ip": HOSTS_ONLY, "port": sshd.port, "username": sshd.user,
              "owner": "u-admin", "auth": {"type": "key", "keyFile": key}},
             {"id": 7, "name": "fqdn", "ip": NAME + ".", "port": sshd.port, "username": sshd.user,
              "owner": "u-admin", "auth": {"type": "key", "keyFile": key}}]
    prefix = namespace_prefix(request.param, [f"127.0.0.1 {HOSTS_ONLY}"])
    app = Appliance(sluice_bin, sshd, prefix=prefix, extra_hosts=hosts).start()
    app.prefix = prefix
    yield app
    app.stop()


def echo_through(port):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"by name\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(64)
            assert chunk, "closed before the echo"
            data += chunk
        return data


def test_host_by_name_connects_stops_resolving_and_follows_a_new_address(named_app, dns, sshd, echo_server):
    app = named_app
    dns.set(NAME, "127.0.0.1")
    source = free_port()
    name = connect(app, 5, "named", 0, "local", source, echo_server.port, maxRetries=-1, retryInterval=1000)
    wait_status(app, name, lambda s: s.get("status") == "connected", timeout=60)
    assert echo_through(source) == b"by name\n"
    # known_hosts records the name as OpenSSH does (`[name]:port` off port 22), not the address
    with open(os.path.join(app.sluice.state_dir, "known_hosts")) as f:
        hosts = [line.split()[0] for line in f if line.strip()]
    assert f"[{NAME}]:{sshd.port}" in hosts, hosts
    disconnect(app, name)

    # the name stops resolving: the attempt fails with the reason, a NETWORK_ERROR, and is retried
    dns.set(NAME, None)
    name = connect(app, 5, "named", 0, "local", source, echo_server.port, maxRetries=-1, retryInterval=1000)
    st, seen = wait_status(app, name, lambda s: s.get("status") in ("retrying", "waiting")
                           and s.get("reason") == f"Cannot resolve host {NAME}", timeout=60)
    assert st["errorType"] == "NETWORK_ERROR", st
    # it resolves again, to an address where nothing answers: the next attempt follows it there
    dns.set(NAME, NOWHERE)
    wait_status(app, name, lambda s: (s.get("reason") or "").startswith(f"SSH connection to {NOWHERE}:{sshd.port} failed"),
                timeout=60)
    # and back to the server's address: the next attempt connects, with the same recorded host key
    dns.set(NAME, "127.0.0.1")
    wait_status(app, name, lambda s: s.get("status") == "connected", timeout=60)
    assert echo_through(source) == b"by name\n"
    disconnect(app, name)


def test_probe_prints_the_addresses_tried(named_app, dns, sshd):
    app = named_app
    dns.set(NAME, "127.0.0.1")

    def probe(host_id):
        r = subprocess.run(app.prefix + command(app.sluice.binary) + ["probe", "--host", str(host_id), "--config",
                           app.config_path, "--state", app.sluice.state_dir], capture_output=True, text=True,
                           timeout=120)
        return r.returncode, r.stdout

    rc, out = probe(5)
    assert rc == 0 and "addresses tried: 127.0.0.1\n" in out, out
    rc, out = probe(6)        # from /etc/hosts (the "files" source, first in both shapes)
    assert rc == 0 and "addresses tried: 127.0.0.1\n" in out, out
    rc, out = probe(7)        # a fully qualified name with its trailing dot, from DNS
    assert rc == 0 and "addresses tried: 127.0.0.1\n" in out, out
    dns.set(NAME, None)
    rc, out = probe(5)
    assert rc == 2, out
    assert "addresses tried: none (the name did not resolve)" in out
    assert f"verdict: FAILED: Cannot resolve host {NAME}" in out


def test_nsswitch_is_not_consulted(sluice_bin, sshd, dns, tmp_path):
    prefix = namespace_prefix("dns-only", [f"127.0.0.1 {HOSTS_ONLY}"])
    # the check is discriminating: a dynamically linked lookup in the same namespace follows nsswitch.conf
    assert subprocess.run(prefix + ["getent", "hosts", HOSTS_ONLY], capture_output=True).returncode != 0
    app = Appliance(sluice_bin, sshd, extra_hosts=[
        {"id": 6, "name": "hostsfile", "ip": HOSTS_ONLY, "port": sshd.port, "username": sshd.user,
         "owner": "u-admin", "auth": {"type": "key", "keyFile": login_key(sshd)}}])
    r = subprocess.run(prefix + command(sluice_bin) + ["probe", "--host", "6", "--config", app.config_path, "--state",
                       str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "addresses tried: 127.0.0.1\n" in r.stdout, r.stdout


def test_check_accepts_names_without_resolving(sluice_bin, tmp_path):
    config = tmp_path / "sluice.json"
    config.write_text('{"users":[{"id":"u","username":"u"}],"hosts":[{"id":1,"owner":"u","ip":"no-such-host.invalid",'
                      '"username":"pi","auth":{"type":"none"}},{"id":2,"owner":"u","ip":"edge","username":"pi",'
                      '"auth":{"type":"none"}}]}')
    r = subprocess.run(command(sluice_bin) + ["check", "--config", str(config)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_hanging_lookups_of_one_user_do_not_delay_another(sluice_bin, echo_server):
    """Issue #24 item 8: 40 SOCKS CONNECTs by name from one user against a DNS server that never answers, then
    another user's CONNECT to `localhost` (from /etc/hosts) is answered at once, not after the 40."""
    from harness.api import request
    from harness.dns import DEAD_ADDRESS, DeadServer
    from harness.s2s import socks_connect

    dead = DeadServer()
    prefix = namespace_prefix("files-dns", server=DEAD_ADDRESS, options="timeout:5 attempts:2")
    hosts = [{"id": 0, "name": "appliance", "local": True, "owner": "u-admin", "sharedWith": ["u-ops"]}]
    app = Appliance(sluice_bin, prefix=prefix, hosts=hosts).start()
    sockets = []
    try:
        ports = {}
        for user, index in (("u-admin", 1), ("u-ops", 2)):
            source = free_port()
            name = f"0::{index}::appliance::{source}::::0"
            body = {"name": name, "sourceHostId": 0, "tunnelIndex": index, "sourcePort": source, "endpointHost": "",
                    "endpointPort": 0, "mode": "dynamic", "maxRetries": 0, "retryInterval": 1000}
            assert request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=app.token(user)).status == 200
            ports[user] = (name, source)
        for user, (name, _) in ports.items():
            wait_status(app, name, lambda s: s.get("status") == "connected", timeout=30)
        # the admin's 40 CONNECTs by name hang in the resolver (each answered 04 after the 10 s lookup timeout)
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", ports["u-admin"][1]), timeout=30)
            s.sendall(b"\x05\x01\x00")
            assert s.recv(2) == b"\x05\x00"
            host = f"n{i}.hangs.example".encode()
            s.sendall(bytes([5, 1, 0, 3, len(host)]) + host + struct.pack(">H", 80))
            sockets.append(s)
        deadline = time.monotonic() + 10
        while dead.queries == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dead.queries > 0, "the lookups never reached the dead server"
        started = time.monotonic()
        s, answer = socks_connect(ports["u-ops"][1], echo_server.port, dst=b"localhost", atyp=3, timeout=30)
        elapsed = time.monotonic() - started
        s.close()
        assert answer[1] == 0, answer
        assert elapsed < 1.0, f"another user's lookup of localhost waited {elapsed:.1f} s"
        # and the hanging ones end with 04 (host unreachable) within the lookup timeout plus the setup's
        sockets[0].settimeout(30)
        assert sockets[0].recv(10)[1] == 4
    finally:
        for s in sockets:
            s.close()
        app.stop()
        dead.stop()
