"""tunnels-api.md §7 for the appliance's own host (`"local": true`): local and dynamic tunnels with no SSH, relayed
by splice(2); appliance.md §2 `bindAllow` and `destinations`."""
import hashlib
import os
import socket
import struct
import time

import pytest

from harness.netio import recv_exact, recv_to_eof
from harness.api import SSEStream, request
from harness.appliance import Appliance
from harness.ports import free_port
from harness.servers import send_and_checksum


@pytest.fixture(scope="module")
def app(sluice_bin):
    a = Appliance(sluice_bin).start()
    yield a
    a.stop()


_index = [100]


def tunnel(app, mode="local", source=None, endpoint_host="", endpoint_port=22, **extra):
    """Connects a tunnel on host 0; returns (name, port)."""
    _index[0] += 1
    source = source or free_port()
    name = f"0::{_index[0]}::appliance::{source}::{endpoint_host}::{endpoint_port}"
    b = {"name": name, "sourceHostId": 0, "tunnelIndex": _index[0], "sourcePort": source,
         "endpointHost": endpoint_host, "endpointPort": endpoint_port, "mode": mode,
         "maxRetries": 2, "retryInterval": 1000}
    b.update(extra)
    r = request(app.port, "POST", "/ssh/tunnel/connect", body=b, token=app.token("u-admin"))
    assert r.status == 200, r
    return name, source


def status(app, name):
    return request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin")).json()[name]


def wait_status(app, name, predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        st = status(app, name)
        if predicate(st):
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.05)


def connected(app, name):
    return wait_status(app, name, lambda s: s["status"] == "connected")


def disconnect(app, name):
    r = request(app.port, "POST", "/ssh/tunnel/disconnect", body={"tunnelName": name}, token=app.token("u-admin"))
    assert r.status == 200, r


def echo_roundtrip(port, payload=b"ping", host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return recv_to_eof(s)






def socks(port, request_bytes, greeting=b"\x05\x01\x00"):
    """Greets, sends a request; returns (socket, greeting answer, reply)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(greeting)
    hello = recv_exact(s, 2)
    if hello != b"\x05\x00":
        return s, hello, b""
    s.sendall(request_bytes)
    return s, hello, recv_exact(s, 10)


def connect_v4(ip, port):
    return b"\x05\x01\x00\x01" + socket.inet_aton(ip) + struct.pack(">H", port)


def connect_domain(name, port):
    return b"\x05\x01\x00\x03" + bytes([len(name)]) + name.encode() + struct.pack(">H", port)


def reply(code):
    return bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])


def test_local_connected_once_bound_and_64_mib(app, checksum_sink):
    stream = SSEStream(app.port, app.token("u-admin"))
    try:
        name, port = tunnel(app, endpoint_port=checksum_sink.port)
        stream.wait_for(lambda s: s.get(name, {}).get("status") == "connected")
        # connected means bound: the very next connect must succeed
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        stream.close()
    payload = os.urandom(64 << 20)
    started = time.monotonic()
    n, digest = send_and_checksum(port, payload)
    elapsed = time.monotonic() - started
    assert (n, digest) == (len(payload), hashlib.sha256(payload).hexdigest())
    print(f"64 MiB through a local tunnel: {elapsed:.2f} s, {64 / elapsed:.0f} MiB/s")
    st = wait_status(app, name, lambda s: s["bytesOut"] >= len(payload) + 0 and s["activeConnections"] == 0)
    assert st["bytesIn"] > 0
    disconnect(app, name)


def test_half_close(app, echo_server):
    name, port = tunnel(app, endpoint_port=echo_server.port)
    connected(app, name)
    assert echo_roundtrip(port, b"hello, half-closed") == b"hello, half-closed"
    disconnect(app, name)


def test_target_defaults_and_localhost_name(app, echo_server):
    name, port = tunnel(app, endpoint_host="localhost", endpoint_port=echo_server.port)
    connected(app, name)
    assert echo_roundtrip(port) == b"ping"
    disconnect(app, name)


def test_dynamic_socks5(app, echo_server):
    name, port = tunnel(app, mode="dynamic", endpoint_port=0)
    connected(app, name)
    for req in (connect_v4("127.0.0.1", echo_server.port), connect_domain("localhost", echo_server.port)):
        s, hello, answer = socks(port, req)
        with s:
            assert answer == reply(0), req
            s.sendall(b"through socks")
            s.shutdown(socket.SHUT_WR)
            assert recv_to_eof(s) == b"through socks"
    # BIND and UDP ASSOCIATE: 07; unknown ATYP: 08
    for req, code in ((b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", 7), (b"\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x50", 7),
                      (b"\x05\x01\x00\x09\x00\x00", 8)):
        s, _, answer = socks(port, req)
        with s:
            assert answer == reply(code)
            assert recv_to_eof(s) == b""
    # no acceptable method
    s, hello, _ = socks(port, b"", greeting=b"\x05\x01\x02")
    with s:
        assert hello == b"\x05\xff" and recv_to_eof(s) == b""
    # denied destinations (default destinations: loopback only)
    for req in (connect_v4("169.254.169.254", 80), connect_v4("10.0.0.1", 22)):
        s, _, answer = socks(port, req)
        with s:
            assert answer == reply(2)
    # refused: nothing listens on a fresh loopback port
    s, _, answer = socks(port, connect_v4("127.0.0.1", free_port()))
    with s:
        assert answer == reply(5)
    # a silent client is dropped after the 10 s handshake timeout, never kept forever
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        started = time.monotonic()
        assert s.recv(16) == b""
        assert 8 < time.monotonic() - started < 15
    disconnect(app, name)


@pytest.mark.parametrize("target", [{"targetHost": "169.254.169.254", "endpoint_port": 80},
                                    {"endpoint_host": "10.0.0.1", "endpoint_port": 22}])
def test_fixed_target_not_allowed(app, target):
    target = dict(target)
    name, _ = tunnel(app, **target)
    st = wait_status(app, name, lambda s: s["status"] == "failed")
    host = target.get("targetHost") or target.get("endpoint_host")
    assert st["reason"] == f"Destination not allowed: {host}:{target['endpoint_port']}"
    assert st["errorType"] == "CONNECTION_FAILED"
    time.sleep(1.5)
    st = status(app, name)
    assert st["status"] == "failed" and "retryCount" not in st    # terminal


def test_bind_address_not_allowed(app):
    name, _ = tunnel(app, bindHost="0.0.0.0")
    st = wait_status(app, name, lambda s: s["status"] == "failed")
    assert (st["reason"], st["errorType"]) == ("Bind address not allowed: 0.0.0.0", "CONNECTION_FAILED")


def test_port_in_use_is_terminal(app, echo_server):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        name, _ = tunnel(app, source=holder.getsockname()[1], endpoint_port=echo_server.port)
        st = wait_status(app, name, lambda s: s["status"] == "failed")
        assert "address already in use" in st["reason"] and st["errorType"] == "CONNECTION_FAILED", st
        time.sleep(1.5)
        st = status(app, name)
        assert st["status"] == "failed" and "retryCount" not in st
    finally:
        holder.close()


def test_disconnect_closes_listener_and_reconnect_rebinds(app, echo_server):
    name, port = tunnel(app, endpoint_port=echo_server.port)
    connected(app, name)
    held = socket.create_connection(("127.0.0.1", port), timeout=5)
    held.sendall(b"x")
    assert held.recv(1) == b"x"
    disconnect(app, name)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    held.settimeout(5)
    assert recv_to_eof(held) == b""          # the relayed connection was closed too
    held.close()
    b = {"name": name, "sourceHostId": 0, "tunnelIndex": int(name.split("::")[1]), "sourcePort": port,
         "endpointHost": "", "endpointPort": echo_server.port, "mode": "local"}
    assert request(app.port, "POST", "/ssh/tunnel/connect", body=b, token=app.token("u-admin")).status == 200
    connected(app, name)
    assert echo_roundtrip(port) == b"ping"
    disconnect(app, name)


@pytest.mark.alone
def test_200_parallel_connections(app, echo_server):
    name, port = tunnel(app, endpoint_port=echo_server.port)
    connected(app, name)
    socks_ = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(200)]
    try:
        for i, s in enumerate(socks_):
            s.sendall(f"conn {i:03d}".encode())
        for i, s in enumerate(socks_):
            assert recv_exact(s, 8) == f"conn {i:03d}".encode()
        wait_status(app, name, lambda s: s["activeConnections"] == 200)
    finally:
        for s in socks_:
            s.close()
    wait_status(app, name, lambda s: s["activeConnections"] == 0)
    disconnect(app, name)


def test_no_fd_leak_over_50_cycles(app, echo_server):
    fds = f"/proc/{app.sluice.proc.pid}/fd"

    def cycle(name, port):
        b = {"name": name, "sourceHostId": 0, "tunnelIndex": int(name.split("::")[1]), "sourcePort": port,
             "endpointHost": "", "endpointPort": echo_server.port, "mode": "local"}
        assert request(app.port, "POST", "/ssh/tunnel/connect", body=b, token=app.token("u-admin")).status == 200
        connected(app, name)
        assert echo_roundtrip(port) == b"ping"
        disconnect(app, name)

    name, port = tunnel(app, endpoint_port=echo_server.port)
    connected(app, name)
    disconnect(app, name)
    cycle(name, port)                 # warms the pipe pool
    time.sleep(0.3)
    before = len(os.listdir(fds))
    for _ in range(50):
        cycle(name, port)
    time.sleep(0.3)
    after = len(os.listdir(fds))
    assert after <= before, (before, after)
