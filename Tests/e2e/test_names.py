"""SSH hosts by DNS name (issue #23; appliance.md §2, tunnels-api.md §8) through a real dnsmasq on loopback, with
the product's /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf replaced in a private mount namespace, in both
nsswitch shapes (Debian's, and Raspberry Pi OS's with mdns4_minimal, which a static binary cannot load). Run by
every pass: both flavours, both targets (aarch64 under qemu)."""
import json
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


def echo_through(port, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=20) as s:
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


TARGET = "target." + DOMAIN


def test_appliance_fixed_target_by_name(sluice_bin, dns, echo_server):
    """The appliance's own host (issue #23): a local tunnel's fixed target given as a name is judged at start by the
    dial's own rule (Dialer.judge: resolved with the user's share, every address against `destinations`). A name that
    does not resolve fails the attempt as an SSH host's does (a NETWORK_ERROR, retried: DNS may come up after
    Sluice), an address outside `destinations` is terminal, and the connections dial the name."""
    hosts = [{"id": 0, "name": "appliance", "local": True, "owner": "u-admin"}]
    app = Appliance(sluice_bin, prefix=namespace_prefix("files-dns"), hosts=hosts,
                    destinations={"allow": ["127.0.0.1"], "deny": []}).start()
    try:
        dns.set(TARGET, None)
        source = free_port()
        name = connect(app, 0, "appliance", 1, "local", source, echo_server.port, targetHost=TARGET, maxRetries=-1,
                       retryInterval=1000)
        st, _ = wait_status(app, name, lambda s: s.get("status") in ("retrying", "waiting")
                            and s.get("reason") == f"Cannot resolve host {TARGET}", timeout=30)
        assert st["errorType"] == "NETWORK_ERROR", st
        # the name resolves: the next attempt listens, and a connection reaches the target through the name
        dns.set(TARGET, "127.0.0.1")
        wait_status(app, name, lambda s: s.get("status") == "connected", timeout=30)
        assert echo_through(source) == b"by name\n"
        disconnect(app, name)
        # an address outside `destinations`: refused before anything listens, for good
        dns.set(TARGET, "127.0.0.3")
        name = connect(app, 0, "appliance", 2, "local", source, echo_server.port, targetHost=TARGET, maxRetries=-1,
                       retryInterval=1000)
        st, _ = wait_status(app, name, lambda s: s.get("status") == "failed", timeout=30)
        assert st["reason"] == f"Destination not allowed: {TARGET}:{echo_server.port}", st
        assert st["errorType"] == "CONNECTION_FAILED" and "retryCount" not in st, st
    finally:
        app.stop()


def test_managed_remote_bind_host_name_is_the_servers(sluice_bin, sshd, echo_server):
    """A managed remote tunnel listens on E at `bindHost` (tunnels-api.md §7): a name there is E's to resolve, so
    Sluice passes it through. E (an sshd in a mount namespace of its own) knows the name from its /etc/hosts; Sluice's
    namespace cannot resolve it at all (its DNS server never answers), and `sluice check` accepts it."""
    from harness.dns import DEAD_ADDRESS, DeadServer
    from harness.sshd import Sshd

    only_e, e_address = "listen-here.e-only.test", "127.0.0.9"
    sshd_e = Sshd(prefix=namespace_prefix("files-dns", [f"{e_address} {only_e}"]))
    # E binds the address the client names (sshd takes a keyword's first value: replace the harness's `no`)
    with open(sshd_e.config) as f:
        text = f.read()
    with open(sshd_e.config, "w") as f:
        f.write(text.replace("GatewayPorts no", "GatewayPorts clientspecified"))
    sshd_e.start()
    dead = DeadServer()
    hosts = [{"id": 20, "name": "exit-e", "ip": "127.0.0.1", "port": sshd_e.port, "username": sshd_e.user,
              "owner": "u-admin", "auth": {"type": "key", "keyFile": login_key(sshd_e)}}]
    app = Appliance(sluice_bin, sshd, prefix=namespace_prefix("files-dns", server=DEAD_ADDRESS), extra_hosts=hosts)
    try:
        listen = free_port()
        tunnel = {"mode": "remote", "sourcePort": echo_server.port, "endpointHost": "exit-e", "endpointPort": listen,
                  "bindHost": only_e, "targetHost": "127.0.0.1", "maxRetries": 0, "retryInterval": 1000}
        # the same tunnel in a configuration file (a copy: the appliance's own would start it)
        config = dict(app.config, hosts=[dict(h) for h in app.config["hosts"]])
        config["hosts"][1]["tunnels"] = [tunnel]
        path = os.path.join(app.dir, "with-tunnel.json")
        with open(path, "w") as f:
            json.dump(config, f)
        r = subprocess.run(command(sluice_bin) + ["check", "--config", path], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        app.start()
        name = connect(app, 1, "edge", 7, "remote", echo_server.port, listen, endpoint_host="exit-e",
                       bindHost=only_e, targetHost="127.0.0.1")
        wait_status(app, name, lambda s: s.get("status") == "connected", timeout=60)
        # E listens where the name points in E's world, and only there
        assert echo_through(listen, host=e_address) == b"by name\n"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", listen), timeout=5)
        assert dead.queries == 0, "Sluice looked the server's bind name up itself"
        disconnect(app, name)
    finally:
        app.stop()
        sshd_e.cleanup()
        dead.stop()


def test_direct_remote_bind_host_by_name(named_app, dns, echo_server):
    """A direct remote tunnel's `bindHost` is where Sluice connects each connection the server forwards back
    (tunnels-api.md §7: the server listens at targetHost:sourcePort): a name there is resolved at every attempt
    through the Dialer's rule, as an appliance host's fixed target is (issue #23; it was refused with "host names are
    not resolved yet")."""
    app = named_app
    dns.set(NAME, "127.0.0.1")
    dns.set(TARGET, None)
    listen = free_port()
    name = connect(app, 5, "named", 3, "remote", listen, echo_server.port, bindHost=TARGET, targetHost="127.0.0.1",
                   maxRetries=-1, retryInterval=1000)
    st, _ = wait_status(app, name, lambda s: s.get("status") in ("retrying", "waiting")
                        and s.get("reason") == f"Cannot resolve host {TARGET}", timeout=60)
    assert st["errorType"] == "NETWORK_ERROR", st
    dns.set(TARGET, "127.0.0.1")
    wait_status(app, name, lambda s: s.get("status") == "connected", timeout=60)
    assert echo_through(listen) == b"by name\n"
    disconnect(app, name)
    # an address outside `destinations` (loopback by default): terminal
    dns.set(TARGET, "192.0.2.1")
    name = connect(app, 5, "named", 4, "remote", listen, echo_server.port, bindHost=TARGET, targetHost="127.0.0.1",
                   maxRetries=-1, retryInterval=1000)
    st, _ = wait_status(app, name, lambda s: s.get("status") == "failed", timeout=60)
    assert st["reason"] == f"Destination not allowed: {TARGET}:{echo_server.port}", st
    assert st["errorType"] == "CONNECTION_FAILED" and "retryCount" not in st, st


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
