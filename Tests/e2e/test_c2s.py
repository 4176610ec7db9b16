"""The C2S WebSocket relay (tunnels-api.md §9) end to end: the product binary, the real sshd, Python `websockets`
as the client, and plain TCP peers as targets."""
import base64
import hashlib
import json
import os
import socket
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness.appliance import Appliance
from harness.dns import DOMAIN, namespace_prefix
from harness.netio import recv_exact, recv_to_eof
from harness.ports import free_port
from harness.servers import ChecksumSink, EchoServer
from harness.sshd import Sshd
from harness.s2s import stop_sshd_completely
from harness.ws import RawWS, dynamic_open, local_open, open_ws, relay, remote_open

MiB = 1024 * 1024
EDGE = 1        # the e2e sshd, owned by u-admin, shared with u-ops
APPLIANCE = 0   # the appliance itself ("local": true)
PRIVATE = 2     # owned by u-other only


class Source:
    """Sends `size` deterministic bytes to each connection, then closes; `digest` is their sha256."""

    def __init__(self, size, endless=False):
        self.size = size
        self.endless = endless
        block = hashlib.sha256(b"sluice").digest() * 2048          # 64 KiB
        self.block = block
        h = hashlib.sha256()
        for i in range(0, size, len(block)):
            h.update(block[:min(len(block), size - i)])
        self.digest = h.hexdigest()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            try:
                left = self.size
                while self.endless or left > 0:
                    chunk = self.block if self.endless else self.block[:min(left, len(self.block))]
                    conn.sendall(chunk)
                    self.sent += len(chunk)
                    left -= len(chunk)
            except OSError:
                return

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def appliance(sluice_bin, sshd):
    a = Appliance(sluice_bin, sshd, allowedOrigins=["https://termix.example.org"]).start()
    yield a
    a.stop()


def admin(a):
    return a.token("u-admin")


def send_all(ws, payload, chunk=256 * 1024):
    for i in range(0, len(payload), chunk):
        ws.send(payload[i:i + chunk])


def receive_all(ws):
    h = hashlib.sha256()
    n = 0
    try:
        while True:
            data = ws.recv(timeout=60)
            assert isinstance(data, bytes), data
            h.update(data)
            n += len(data)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1000, closed
    return n, h.hexdigest()


def wait_result(sink, count=1, timeout=60):
    deadline = time.monotonic() + timeout
    while len(sink.results) < count:
        assert time.monotonic() < deadline, "the target saw no EOF"
        time.sleep(0.05)
    return sink.results[count - 1]


def upload(appliance, first, size=64 * MiB):
    sink = ChecksumSink()
    try:
        payload = os.urandom(size)
        first = json.loads(json.dumps(first).replace('"SINK"', str(sink.port)))
        ws, reply = relay(appliance.port, admin(appliance), first)
        assert reply == {"type": "ready"}
        send_all(ws, payload)
        ws.close()
        assert wait_result(sink) == (size, hashlib.sha256(payload).hexdigest())
    finally:
        sink.close()


def download(appliance, first, size=64 * MiB):
    source = Source(size)
    try:
        first = json.loads(json.dumps(first).replace('"SOURCE"', str(source.port)))
        ws, reply = relay(appliance.port, admin(appliance), first)
        assert reply == {"type": "ready"}
        assert receive_all(ws) == (size, source.digest)
    finally:
        source.close()


def with_port(message, marker):
    """A first message whose port is filled in later: the quoted placeholder becomes a bare marker that
    `upload`/`download` replace with the port number."""
    return json.loads(json.dumps(message).replace('"PORT"', f'"{marker}"'))


# ---------------------------------------------------------------------------------------------- data, each way

@pytest.mark.parametrize("host", [EDGE, APPLIANCE], ids=["via-ssh", "via-appliance"])
@pytest.mark.alone
def test_local_64mib_each_way(appliance, host):
    upload(appliance, with_port(local_open(host, "PORT"), 'SINK'))
    download(appliance, with_port(local_open(host, "PORT"), 'SOURCE'))


@pytest.mark.parametrize("host", [EDGE, APPLIANCE], ids=["via-ssh", "via-appliance"])
@pytest.mark.alone
def test_dynamic_64mib_each_way(appliance, host):
    upload(appliance, with_port(dynamic_open(host, "127.0.0.1", "PORT"), 'SINK'))
    download(appliance, with_port(dynamic_open(host, "127.0.0.1", "PORT"), 'SOURCE'))


def test_local_echo_interleaved_small_messages(appliance, echo_server):
    ws, reply = relay(appliance.port, admin(appliance), local_open(EDGE, echo_server.port))
    assert reply == {"type": "ready"}
    for i in range(200):
        msg = f"ping {i} ".encode() * (i + 1)
        ws.send(msg)
        got = b""
        while len(got) < len(msg):
            got += ws.recv(timeout=10)
        assert got == msg
    ws.send("text frames are ignored after ready")
    ws.send(b"last")
    assert ws.recv(timeout=10) == b"last"
    ws.close()


def test_target_closing_closes_the_websocket_normally(appliance):
    source = Source(1000)
    try:
        ws, reply = relay(appliance.port, admin(appliance), local_open(APPLIANCE, source.port))
        assert reply == {"type": "ready"}
        assert receive_all(ws) == (1000, source.digest)
    finally:
        source.close()


# ---------------------------------------------------------------------------------------------- remote

def test_remote_twenty_concurrent_streams(appliance):
    port = free_port()
    ws, reply = relay(appliance.port, admin(appliance), remote_open(EDGE, port))
    assert reply == {"type": "ready", "bindHost": "127.0.0.1", "bindPort": port}
    results = {}

    def client(i):
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(f"hello {i}\n".encode())
            results[i] = recv_exact(s, len(f"hello {i}\n"))
        # our close must reach the relay client as a `close` message

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    opened, closed, answered = set(), set(), 0
    deadline = time.monotonic() + 60
    while len(closed) < 20:
        assert time.monotonic() < deadline, (opened, closed)
        msg = json.loads(ws.recv(timeout=30))
        if msg["type"] == "connection":
            assert set(msg) == {"type", "streamId"} and isinstance(msg["streamId"], str)
            opened.add(msg["streamId"])
        elif msg["type"] == "data":
            assert set(msg) == {"type", "streamId", "data"}
            text = base64.b64decode(msg["data"])
            assert text.startswith(b"hello ")
            ws.send(json.dumps({"type": "data", "streamId": msg["streamId"],
                                "data": base64.b64encode(text.upper()).decode()}))
            answered += 1
        elif msg["type"] == "close":
            assert msg["streamId"] in opened and "error" not in msg, msg
            closed.add(msg["streamId"])
    for t in threads:
        t.join(10)
    assert answered == 20 and len(opened) == 20
    assert sorted(results.values()) == sorted(f"HELLO {i}\n".encode() for i in range(20))
    ws.close()


def test_remote_client_close_ends_the_tcp_stream(appliance):
    port = free_port()
    ws, reply = relay(appliance.port, admin(appliance), remote_open(EDGE, port))
    assert reply["type"] == "ready"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        msg = json.loads(ws.recv(timeout=10))
        assert msg["type"] == "connection"
        ws.send(json.dumps({"type": "data", "streamId": msg["streamId"], "data": base64.b64encode(b"bye").decode()}))
        ws.send(json.dumps({"type": "close", "streamId": msg["streamId"]}))
        assert recv_to_eof(s) == b"bye"
    ws.close()
    # the forward ends with the relay: the port is free again on the server
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            break
        assert time.monotonic() < deadline, "remote forward still listening after the relay closed"
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------- test messages

def test_test_answers_ready_for_each_mode(appliance, echo_server):
    for message in [local_open(EDGE, echo_server.port, kind="test"),
                    dynamic_open(EDGE, "", 0, kind="test"),
                    remote_open(EDGE, free_port(), kind="test"),
                    local_open(APPLIANCE, echo_server.port, kind="test"),
                    dynamic_open(APPLIANCE, "", 0, kind="test")]:
        ws, reply = relay(appliance.port, admin(appliance), message)
        assert reply == {"type": "ready"}, message
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1000


# ---------------------------------------------------------------------------------------------- §9 errors

def expect_error(port, token, message, error, code):
    ws, reply = relay(port, token, message)
    assert reply == {"type": "error", "error": error}, reply
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code, closed.value
    return reply


@pytest.mark.parametrize("message", [[], "open", {"type": "connect"}, {"tunnelConfig": {"sourceHostId": 1}}],
                         ids=["array", "string", "unknown-type", "no-type"])
def test_invalid_request(appliance, message):
    expect_error(appliance.port, admin(appliance), message, "Invalid client tunnel relay request", 1008)


def test_invalid_json_first_message(appliance):
    ws = open_ws(appliance.port, admin(appliance))
    ws.send("{not json")
    assert json.loads(ws.recv(timeout=10)) == {"type": "error", "error": "Invalid client tunnel relay request"}


@pytest.mark.parametrize("config", [None, {}, {"sourceHostId": "1"}], ids=["absent", "empty", "string-id"])
def test_host_required(appliance, config):
    message = {"type": "open"} if config is None else {"type": "open", "tunnelConfig": config}
    expect_error(appliance.port, admin(appliance), message, "Endpoint SSH host is required", 1008)


@pytest.mark.parametrize("user,host", [("u-ops", PRIVATE), ("u-admin", 99), ("u-other", EDGE)])
def test_access_denied_same_answer_for_unknown_and_forbidden(appliance, user, host, echo_server):
    expect_error(appliance.port, appliance.token(user), local_open(host, echo_server.port),
                 "Access denied to this host", 1008)


def test_shared_host_is_usable_by_the_user_it_is_shared_with(appliance, echo_server):
    ws, reply = relay(appliance.port, appliance.token("u-ops"), local_open(EDGE, echo_server.port))
    assert reply == {"type": "ready"}
    ws.send(b"x")
    assert ws.recv(timeout=10) == b"x"
    ws.close()


@pytest.mark.parametrize("message", [local_open(EDGE, 0), local_open(EDGE, 65536),
                                     {"type": "open", "tunnelConfig": {"sourceHostId": EDGE, "mode": "local"}},
                                     dynamic_open(EDGE, "", 80), dynamic_open(EDGE, "127.0.0.1", 0)],
                         ids=["port-0", "port-65536", "no-port", "dynamic-no-host", "dynamic-port-0"])
def test_invalid_target(appliance, message):
    expect_error(appliance.port, admin(appliance), message, "Invalid client tunnel target", 1008)


def test_invalid_remote_port(appliance):
    expect_error(appliance.port, admin(appliance), remote_open(EDGE, 70000), "Invalid remote port", 1008)


def test_remote_port_taken(appliance):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        ws, reply = relay(appliance.port, admin(appliance), remote_open(EDGE, taken.getsockname()[1]))
        assert reply["type"] == "error"
        assert reply["error"].startswith("Remote port is not available on the endpoint server: "), reply
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1011
    finally:
        taken.close()


def test_target_not_reachable_through_ssh(appliance):
    dead = free_port()
    ws, reply = relay(appliance.port, admin(appliance), local_open(EDGE, dead))
    assert reply["type"] == "error"
    assert reply["error"].startswith("Tunnel target is not reachable from the endpoint host: "), reply
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1011


def test_target_not_reachable_from_the_appliance(appliance):
    ws, reply = relay(appliance.port, admin(appliance), local_open(APPLIANCE, free_port()))
    assert reply == {"type": "error",
                     "error": "Tunnel target is not reachable from the endpoint host: connection refused"}


def test_forwarding_rejected_by_the_server(sluice_bin):
    strict = Sshd(extra_config="PermitOpen 127.0.0.1:9").start()
    a = Appliance(sluice_bin, strict).start()
    try:
        ws, reply = relay(a.port, admin(a), local_open(EDGE, 22))
        assert reply["type"] == "error"
        assert reply["error"].startswith("SSH forwarding was rejected by the endpoint server: "), reply
        assert "prohibited" in reply["error"]
    finally:
        a.stop()
        strict.stop()
        strict.cleanup()


def test_failed_ssh_login_is_failed_to_open_relay(sluice_bin, sshd, echo_server):
    wrong = {"id": 5, "name": "wrong", "ip": "127.0.0.1", "port": sshd.port, "username": sshd.user,
             "owner": "u-admin", "auth": {"type": "password", "password": "not-the-password"}}
    a = Appliance(sluice_bin, sshd, extra_hosts=[wrong]).start()
    try:
        expect_error(a.port, admin(a), local_open(5, echo_server.port), "Failed to open relay", 1011)
        expect_error(a.port, admin(a), local_open(5, echo_server.port, kind="test"), "Failed to open relay", 1011)
        assert "not-the-password" not in a.sluice.log()
    finally:
        a.stop()


def test_destination_not_allowed_from_the_appliance(appliance):
    for host, port, shown in [("10.1.2.3", 80, "10.1.2.3:80"), ("169.254.169.254", 80, "169.254.169.254:80"),
                              ("::ffff:169.254.169.254", 80, "[::ffff:169.254.169.254]:80")]:
        expect_error(appliance.port, admin(appliance), dynamic_open(APPLIANCE, host, port),
                     f"Destination not allowed: {shown}", 1008)


def test_remote_on_the_appliance_itself_is_refused(appliance):
    ws, reply = relay(appliance.port, admin(appliance), remote_open(APPLIANCE, free_port()))
    assert reply["type"] == "error" and reply["error"].startswith("Remote port is not available"), reply


def test_appliance_target_by_name_tries_every_allowed_address(sluice_bin):
    """Issue #25/#23: a target named through the appliance itself is dialled as every connection out is
    (`Dialer`): `destinations` judges each address of the name, and each allowed one is tried in turn. The names live
    in the /etc/hosts of the product's own mount namespace (harness/dns.py): `first-refuses` has an address where
    nothing listens before the echo server's (in file order and in getaddrinfo's order), `first-denied` a
    non-loopback address first, which `destinations` (loopback only) refuses, and `all-denied` only such addresses."""
    echo = EchoServer(host="127.0.0.5")
    with socket.socket() as probe:       # nothing listens on the echo server's port at the first address
        assert probe.connect_ex(("127.0.0.1", echo.port)) != 0
    lines = [f"127.0.0.1 first-refuses.{DOMAIN}", f"127.0.0.5 first-refuses.{DOMAIN}",
             f"192.0.2.1 first-denied.{DOMAIN}", f"127.0.0.5 first-denied.{DOMAIN}",
             f"192.0.2.1 all-denied.{DOMAIN}", f"198.51.100.1 all-denied.{DOMAIN}"]
    a = Appliance(sluice_bin, prefix=namespace_prefix("files-dns", lines)).start()
    try:
        for name in ["first-refuses", "first-denied"]:
            for message in [local_open(APPLIANCE, echo.port, target=f"{name}.{DOMAIN}"),
                            dynamic_open(APPLIANCE, f"{name}.{DOMAIN}", echo.port)]:
                ws, reply = relay(a.port, admin(a), message)
                assert reply == {"type": "ready"}, (name, reply)
                ws.send(b"every address\n")
                assert ws.recv(timeout=10) == b"every address\n"
                ws.close()
        expect_error(a.port, admin(a), dynamic_open(APPLIANCE, f"all-denied.{DOMAIN}", echo.port),
                     f"Destination not allowed: all-denied.{DOMAIN}:{echo.port}", 1008)
    finally:
        a.stop()
        echo.close()


# ---------------------------------------------------------------------------------------------- upgrade checks

def test_upgrade_needs_a_token(appliance):
    with pytest.raises(InvalidStatus) as refused:
        open_ws(appliance.port)
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        open_ws(appliance.port, token="not.a.token")
    assert refused.value.response.status_code == 401


def test_upgrade_with_cookie(appliance, echo_server):
    from websockets.sync.client import connect
    ws = connect(f"ws://127.0.0.1:{appliance.port}/ssh/tunnel/c2s/stream",
                 additional_headers={"Cookie": f"jwt={admin(appliance)}"}, open_timeout=10)
    ws.send(json.dumps(local_open(APPLIANCE, echo_server.port)))
    assert json.loads(ws.recv(timeout=10)) == {"type": "ready"}
    ws.close()


def test_origin_rules(appliance):
    for origin in ["https://evil.example", "http://127.0.0.1:1", "null"]:
        with pytest.raises(InvalidStatus) as refused:
            open_ws(appliance.port, admin(appliance), origin=origin)
        assert refused.value.response.status_code == 403, origin
    for origin in ["https://termix.example.org", "HTTPS://Termix.Example.Org:443",
                   f"http://127.0.0.1:{appliance.port}"]:
        open_ws(appliance.port, admin(appliance), origin=origin).close()


def test_plain_get_is_not_upgraded(appliance):
    from harness.api import request
    r = request(appliance.port, "GET", "/ssh/tunnel/c2s/stream", token=admin(appliance))
    assert r.status == 426 and r.json() == {"error": "WebSocket upgrade required"}
    r = request(appliance.port, "GET", "/ssh/tunnel/c2s/stream")
    assert r.status == 401


def test_relay_share_per_user(sluice_bin, sshd, echo_server):
    """Issue #24 item 3: a non-admin holds at most a quarter of `maxRelays` (here 2 of 8): beyond it 429 with its own
    answer, while the admin and other users still open relays."""
    a = Appliance(sluice_bin, sshd, limits={"maxRelays": 8}).start()
    held = []
    try:
        ops = a.token("u-ops")
        held += [open_ws(a.port, ops) for _ in range(2)]
        with pytest.raises(InvalidStatus) as refused:
            open_ws(a.port, ops)
        assert refused.value.response.status_code == 429
        assert json.loads(refused.value.response.body) == {"error": "Relay limit reached for this user"}
        held.append(open_ws(a.port, a.token("u-other")))
        ws, reply = relay(a.port, admin(a), local_open(APPLIANCE, echo_server.port))
        assert reply == {"type": "ready"}
        held.append(ws)
        from harness.api import request
        metrics = request(a.port, "GET", "/metrics", token=admin(a)).body.decode()
        assert 'sluice_c2s_relays_by_user{user="u-ops"} 2\n' in metrics, metrics
    finally:
        for ws in held:
            ws.close()
        a.stop()


def test_unfinished_text_has_a_share_per_user(sluice_bin, sshd, echo_server):
    """Issue #24 item 4: unfinished text messages are held within 8 MiB per user (32 MiB in all): a relay whose
    text would pass it is closed with 1013, the user's other relays and another user's go on."""
    a = Appliance(sluice_bin, sshd).start()
    held = []
    try:
        ops = a.token("u-ops")
        for i in range(9):
            raw = RawWS(a.port, ops)
            assert raw.status == 101
            raw.send_text(json.dumps(local_open(EDGE, echo_server.port)))
            assert raw.recv_frame()[2] == b'{"type":"ready"}'
            held.append(raw)
        piece = b"a" * (1000 * 1024)
        for raw in held[:8]:
            raw.send_text(piece, fin=False)          # 8 × 1000 KiB: within the 8 MiB share
        time.sleep(1)
        held[8].send_text(piece, fin=False)
        assert held[8].close_code(timeout=5) == 1013
        from harness.api import request
        metrics = request(a.port, "GET", "/metrics", token=admin(a)).body.decode()
        assert "sluice_c2s_text_bytes 8192000\n" in metrics, [l for l in metrics.splitlines() if "text" in l]
        for raw in held[:8]:                         # the others are still open (a ping may come between fragments)
            raw.send_frame(9, b"alive?")
            assert raw.recv_frame()[1:] == (10, b"alive?")
        ws, reply = relay(a.port, admin(a), local_open(APPLIANCE, echo_server.port))
        assert reply == {"type": "ready"}
        ws.close()
    finally:
        for raw in held:
            raw.close()
        a.stop()


def test_relay_limit(sluice_bin, sshd, echo_server):
    a = Appliance(sluice_bin, sshd, limits={"maxRelays": 2}).start()
    try:
        held = [relay(a.port, admin(a), local_open(APPLIANCE, echo_server.port))[0] for _ in range(2)]
        with pytest.raises(InvalidStatus) as refused:
            open_ws(a.port, admin(a))
        assert refused.value.response.status_code == 503
        assert json.loads(refused.value.response.body) == {"error": "Too many relays"}
        from harness.api import request
        metrics = request(a.port, "GET", "/metrics", token=admin(a)).body.decode()
        assert 'sluice_refused_connections_total{cause="relay_limit"} 1\n' in metrics
        assert "sluice_c2s_relays 2\n" in metrics
        held[0].close()
        deadline = time.monotonic() + 5
        while True:             # the slot frees once the relay has ended on the server
            try:
                ws, reply = relay(a.port, admin(a), local_open(APPLIANCE, echo_server.port))
                break
            except InvalidStatus:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert reply == {"type": "ready"}
        ws.close()
        held[1].close()
    finally:
        a.stop()


def test_first_message_deadline(appliance):
    raw = RawWS(appliance.port, admin(appliance))
    assert raw.status == 101
    started = time.monotonic()
    assert raw.close_code(timeout=20) == 1008
    assert 9 <= time.monotonic() - started <= 12
    raw.close()


# ---------------------------------------------------------------------------------------------- frame edge cases

def raw_with(appliance):
    raw = RawWS(appliance.port, admin(appliance))
    assert raw.status == 101
    return raw


@pytest.mark.parametrize("send,code", [
    (lambda r: r.send_text('{"type":"open"}', mask=False), 1002),            # unmasked client frame
    (lambda r: r.send_text("x", rsv=4), 1002),                                # RSV1 without an extension
    (lambda r: r.send_frame(3, b"x"), 1002),                                  # reserved opcode
    (lambda r: r.send_frame(9, b"p" * 126), 1002),                            # control frame over 125 bytes
    (lambda r: r.send_frame(9, b"p", fin=False), 1002),                       # fragmented control frame
    (lambda r: r.send_frame(0, b"x"), 1002),                                  # continuation without a message
    (lambda r: (r.send_text("a", fin=False), r.send_text("b")), 1002),        # new message inside a fragmented one
    (lambda r: r.send_text(b"\xc3\x28"), 1007),                               # invalid UTF-8
    (lambda r: (r.send_text(b"\xe2\x82", fin=False), r.send_frame(0, b"")), 1007),   # truncated sequence at the end
    (lambda r: r.send_frame(2, b"", length=2 * MiB), 1009),                   # a frame over 1 MiB
    (lambda r: (r.send_text(b"[" * 700000, fin=False), r.send_frame(0, b" " * 400000)), 1009),  # message over 1 MiB
    (lambda r: r.send_frame(8, b"\x03\xed"), 1002),                           # close code 1005 may not be sent
    (lambda r: r.send_frame(8, b"\x03"), 1002),                               # one-byte close payload
], ids=["unmasked", "rsv", "opcode", "big-control", "fragmented-control", "orphan-continuation", "nested",
        "bad-utf8", "truncated-utf8", "frame-1mib", "message-1mib", "close-1005", "close-1-byte"])
def test_frame_edge_cases_get_rfc_close_codes(appliance, send, code):
    raw = raw_with(appliance)
    send(raw)
    assert raw.close_code() == code
    raw.close()


def test_ping_pong_and_close_echo(appliance):
    raw = raw_with(appliance)
    raw.send_frame(9, b"are you there")
    assert raw.recv_frame() == (True, 10, b"are you there")
    raw.send_frame(8, b"\x03\xe8bye")
    fin, opcode, payload = raw.recv_frame()
    assert opcode == 8 and payload[:2] == b"\x03\xe8"
    raw.close()


def test_fragmented_first_message_with_interleaved_ping(appliance, echo_server):
    raw = raw_with(appliance)
    text = json.dumps(local_open(APPLIANCE, echo_server.port)).encode()
    raw.send_text(text[:10], fin=False)
    raw.send_frame(9, b"mid")
    raw.send_frame(0, text[10:20], fin=False)
    raw.send_frame(0, text[20:], fin=True)
    frames = [raw.recv_frame(), raw.recv_frame()]
    assert (True, 10, b"mid") in frames
    assert (True, 1, b'{"type":"ready"}') in frames
    raw.send_frame(2, b"abc", key=b"\x00\x00\x00\x00")   # a zero mask key: no unmasking at all
    assert raw.recv_frame() == (True, 2, b"abc")
    raw.close()


# ---------------------------------------------------------------------------------------------- sharing and bounds

def ssh_connections(pid, port):
    """TCP connections of process `pid` to `port` (from /proc: its socket inodes matched with /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                remote_port = int(fields[2].split(":")[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_hundred_streams_share_one_ssh_session(sluice_bin, sshd, echo_server):
    a = Appliance(sluice_bin, sshd).start()
    try:
        pid = a.sluice.proc.pid
        sockets = []
        first_ready = None
        for i in range(100):
            started = time.monotonic()
            ws, reply = relay(a.port, admin(a), local_open(EDGE, echo_server.port))
            assert reply == {"type": "ready"}, (i, reply)
            if i == 0:
                first_ready = time.monotonic() - started
            sockets.append(ws)
        for i, ws in enumerate(sockets):
            ws.send(f"stream {i}".encode())
        for i, ws in enumerate(sockets):
            assert ws.recv(timeout=10) == f"stream {i}".encode()
        assert ssh_connections(pid, sshd.port) == 1
        # a second stream costs a channel open, not a login
        started = time.monotonic()
        ws, reply = relay(a.port, admin(a), local_open(EDGE, echo_server.port))
        second_ready = time.monotonic() - started
        assert reply == {"type": "ready"}
        print(f"open→ready: first stream {first_ready * 1000:.1f} ms, a later one {second_ready * 1000:.1f} ms")
        sockets.append(ws)
        for ws in sockets:
            ws.close()
        # another user gets a session of its own
        ws, reply = relay(a.port, a.token("u-ops"), local_open(EDGE, echo_server.port))
        assert reply == {"type": "ready"}
        assert ssh_connections(pid, sshd.port) == 2
        ws.close()
    finally:
        a.stop()


def test_session_loss_closes_its_relays_with_1011(sluice_bin, echo_server):
    own = Sshd().start()
    a = Appliance(sluice_bin, own).start()
    try:
        ws, reply = relay(a.port, admin(a), local_open(EDGE, echo_server.port))
        assert reply == {"type": "ready"}
        stop_sshd_completely(own)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=30)
        assert closed.value.rcvd.code == 1011
        a.sluice.wait_for("event=c2s.session_lost")
        # the relay still works for hosts that are up
        ws, reply = relay(a.port, admin(a), local_open(APPLIANCE, echo_server.port))
        assert reply == {"type": "ready"}
        ws.close()
    finally:
        a.stop()
        own.cleanup()


@pytest.mark.parametrize("host", [EDGE, APPLIANCE], ids=["via-ssh", "via-appliance"])
def test_reader_that_stops_does_not_grow_memory(sluice_bin, sshd, host):
    source = Source(0, endless=True)
    a = Appliance(sluice_bin, sshd).start()
    try:
        pid = a.sluice.proc.pid
        raw = RawWS(a.port, admin(a))
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        raw.send_text(json.dumps(local_open(host, source.port)))
        assert raw.recv_frame()[2] == b'{"type":"ready"}'
        time.sleep(2)                          # kernel buffers fill, then the relay must pause its source
        before, sent_before = rss_kib(pid), source.sent
        time.sleep(3)
        after, sent_after = rss_kib(pid), source.sent
        assert after - before < 1024, (before, after)
        # the source is paused, not drained into memory: at most socket buffers moved meanwhile
        assert sent_after - sent_before < 8 * MiB, (sent_before, sent_after)
        # and other relays still flow meanwhile
        echo = EchoServer()
        ws, reply = relay(a.port, admin(a), local_open(host, echo.port))
        assert reply == {"type": "ready"}
        ws.send(b"alive")
        assert ws.recv(timeout=10) == b"alive"
        ws.close()
        echo.close()
        raw.close()
    finally:
        a.stop()
        source.close()


# ---------------------------------------------------------------------------------------------- every product

@pytest.mark.parametrize("label", ["x86_64-openssl", "aarch64-openssl", "x86_64-mbedtls", "aarch64-mbedtls"])
def test_every_product_relays_and_frames_alike(product_binaries, sshd, label):
    """The Embedded builds of both flavours and both targets: a relay through SSH (password login, which every
    flavour supports) and through the appliance, and a frame the RFC says to refuse."""
    paths = dict(product_binaries)
    assert label in paths, f"{label} was not built (make products)"
    by_password = {"id": 6, "name": "pw", "ip": "127.0.0.1", "port": sshd.port, "username": sshd.user,
                   "owner": "u-admin", "auth": {"type": "password", "password": sshd.password}}
    a = Appliance(paths[label], sshd, extra_hosts=[by_password]).start()
    echo = EchoServer()
    try:
        payload = os.urandom(MiB)
        for host in (6, APPLIANCE):
            ws, reply = relay(a.port, admin(a), local_open(host, echo.port))
            assert reply == {"type": "ready"}, (label, host, reply)
            send_all(ws, payload, chunk=64 * 1024)
            got = b""
            while len(got) < len(payload):
                got += ws.recv(timeout=60)
            assert got == payload
            ws.close()
        raw = raw_with(a)
        raw.send_text(b"\xc3\x28")
        assert raw.close_code() == 1007
        raw.close()
    finally:
        echo.close()
        a.stop()
