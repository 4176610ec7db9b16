"""appliance.md §2 limits on both dynamic paths (a dynamic forward through an SSH host, and one of the appliance's
own host): a SOCKS client over `maxConnectionsPerTunnel` gets a valid exchange — its greeting answered `05 00`, its
request read, then reply `01` and the close, never bytes before its greeting — and the refusal is counted in
`/metrics`. Real SOCKS5 bytes over sockets (issue #25)."""
import re
import socket
import struct
import time

import pytest

from harness.api import request
from harness.appliance import Appliance
from harness.netio import recv_exact, recv_to_eof
from harness.ports import free_port
from harness.s2s import connect, connected, disconnect, socks_connect

LIMIT = 2
PATHS = {"through-ssh": (1, "edge"), "appliance-host": (0, "appliance")}


@pytest.fixture(scope="module")
def app(sluice_bin, sshd):
    a = Appliance(sluice_bin, sshd, limits={"maxConnectionsPerTunnel": LIMIT}).start()
    yield a
    a.stop()


def refused_total(app):
    text = request(app.port, "GET", "/metrics", token=app.token("u-admin")).body.decode()
    found = re.search(r'^sluice_refused_connections_total\{cause="connection_limit"\} (\d+)$', text, re.M)
    assert found, text
    return int(found.group(1))


def connect_request(port):
    return b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", port)


def held_streams(source, echo_server):
    """LIMIT clients through the forward, each proven relayed by an echo."""
    held = []
    for i in range(LIMIT):
        s, reply = socks_connect(source, echo_server.port, timeout=15)
        assert reply == b"\x05\x00\x00\x01" + bytes(6), reply
        s.sendall(b"held %d" % i)
        assert recv_exact(s, 6) == b"held %d" % i
        held.append(s)
    return held


@pytest.mark.parametrize("path", list(PATHS))
def test_socks_client_over_the_limit_is_answered_after_its_greeting(app, echo_server, path):
    host_id, host_name = PATHS[path]
    source = free_port()
    name = connect(app, host_id, host_name, 40 + list(PATHS).index(path), "dynamic", source, 1)
    connected(app, name)
    held = held_streams(source, echo_server)
    try:
        before = refused_total(app)
        # one step at a time, as a careful client does: nothing may arrive before the greeting was sent
        s = socket.create_connection(("127.0.0.1", source), timeout=15)
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            early = s.recv(16)
            raise AssertionError(f"bytes before the greeting: {early!r}")
        s.settimeout(15)
        s.sendall(b"\x05\x01\x00")
        assert recv_exact(s, 2) == b"\x05\x00"          # method 00 (no authentication) selected
        s.sendall(connect_request(echo_server.port))
        assert recv_exact(s, 10) == b"\x05\x01\x00\x01" + bytes(6)   # general failure
        assert recv_to_eof(s) == b""
        s.close()
        # greeting and request in one segment: both answers, in order
        s = socket.create_connection(("127.0.0.1", source), timeout=15)
        s.sendall(b"\x05\x01\x00" + connect_request(echo_server.port))
        assert recv_exact(s, 12) == b"\x05\x00" + b"\x05\x01\x00\x01" + bytes(6)
        assert recv_to_eof(s) == b""
        s.close()
        deadline = time.monotonic() + 5
        while refused_total(app) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refused_total(app) == before + 2
        # the held streams are unharmed
        for i, h in enumerate(held):
            h.sendall(b"more %d" % i)
            assert recv_exact(h, 6) == b"more %d" % i
    finally:
        for h in held:
            h.close()
    # room again once a held stream has ended
    deadline = time.monotonic() + 10
    while True:
        s, reply = socks_connect(source, echo_server.port, timeout=15)
        if reply[1] == 0:
            break
        s.close()
        assert time.monotonic() < deadline, reply
        time.sleep(0.1)
    s.sendall(b"again")
    assert recv_exact(s, 5) == b"again"
    s.close()
    disconnect(app, name)
