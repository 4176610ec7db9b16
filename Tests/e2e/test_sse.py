"""The status stream (tunnels-api.md §6): exact format, headers, keepalive timing, per-user isolation, and 100
subscribers with one that never reads."""
import json
import re
import signal
import time

import pytest

from harness.api import SSEStream, request
from harness.appliance import Appliance


@pytest.fixture(scope="module")
def app(sluice_bin, sshd):
    a = Appliance(sluice_bin, sshd, sseKeepaliveSeconds=2).start()
    yield a
    a.stop()


def connect_body(name, host, index, port):
    return {"name": name, "sourceHostId": host, "tunnelIndex": index, "sourcePort": port, "endpointHost": "",
            "endpointPort": 22, "mode": "local", "maxRetries": -1, "retryInterval": 60000}


def test_format_byte_for_byte(app):
    token = app.token("u-admin")
    s = SSEStream(app.port, token)
    try:
        assert s.status == 200
        assert s.headers["content-type"] == "text/event-stream"
        assert s.headers["cache-control"] == "no-store, no-transform"
        assert s.headers.get("x-accel-buffering") == "no"
        first = s.next_block()
        expected = request(app.port, "GET", "/ssh/tunnel/status", token=token).body
        assert first == b"event: statuses\ndata: " + expected + b"\n\n"
    finally:
        s.close()


def test_keepalive_after_silence(app):
    s = SSEStream(app.port, app.token("u-ops"))
    try:
        s.next_block()
        started = time.monotonic()
        block = s.next_block(timeout=6)
        took = time.monotonic() - started
        assert block == b": keepalive\n\n"
        assert 1.0 <= took <= 3.5, took
    finally:
        s.close()


def test_isolation_between_users(app):
    ops = SSEStream(app.port, app.token("u-ops"))
    other = SSEStream(app.port, app.token("u-other"))
    try:
        ops.next_statuses()
        assert other.next_statuses() == {}
        name = "0::2::appliance::18191::::22"          # host 0 is admin's only
        r = request(app.port, "POST", "/ssh/tunnel/connect", body=connect_body(name, 0, 2, 18191),
                    token=app.token("u-admin"))
        assert r.status == 200
        # neither ops nor other may see host 0: they get no event, only keepalives
        for stream in (ops, other):
            assert stream.next_block(timeout=4) == b": keepalive\n\n"
        shared = "1::7::edge::18192::::22"
        assert request(app.port, "POST", "/ssh/tunnel/connect", body=connect_body(shared, 1, 7, 18192),
                       token=app.token("u-admin")).status == 200
        got, _ = ops.wait_for(lambda s: shared in s)
        assert name not in got
        assert other.next_block(timeout=4) == b": keepalive\n\n"
    finally:
        ops.close()
        other.close()


def test_hundred_subscribers_and_one_that_never_reads(app):
    token = app.token("u-admin")
    stalled = SSEStream(app.port, token, read=False)      # sends the request, never reads a byte
    streams = [SSEStream(app.port, token) for _ in range(100)]
    try:
        for s in streams:
            s.next_statuses()
        # enough changes to fill the stalled reader's socket buffers many times over
        for i in range(40):
            name = f"1::{100 + i}::edge::{19000 + i}::::22"
            r = request(app.port, "POST", "/ssh/tunnel/connect", body=connect_body(name, 1, 100 + i, 19000 + i),
                        token=token)
            assert r.status == 200
        last = "1::139::edge::19039::::22"
        for s in streams:
            s.wait_for(lambda st: last in st, timeout=20)
        assert request(app.port, "GET", "/healthz").status == 200
        metrics = request(app.port, "GET", "/metrics", token=token).body.decode()
        count = int(re.search(r"^sluice_sse_subscribers (\d+)$", metrics, re.M).group(1))
        assert count >= 101, count
    finally:
        for s in streams:
            s.close()
        stalled.close()


def ended(stream, timeout):
    """True when the stream ends (its last chunk, or the connection closed) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stream.raw.endswith(b"0\r\n\r\n") and (stream.raw == b"0\r\n\r\n" or b"\r\n0\r\n\r\n" in stream.raw):
            return True
        try:
            stream._fill(max(0.05, deadline - time.monotonic()))
        except EOFError:
            return True
        except (TimeoutError, OSError):
            return False
    return False


def test_deleted_user_loses_status_stream_at_once(sluice_bin, sshd):
    """Issue #24 item 10: a SIGHUP that deletes a user ends their open status streams at once (not keepalives
    forever); other users' streams go on."""
    a = Appliance(sluice_bin, sshd, sseKeepaliveSeconds=1).start()
    try:
        gone = SSEStream(a.port, a.token("u-other"))
        stays = SSEStream(a.port, a.token("u-ops"))
        gone.next_statuses()
        stays.next_statuses()
        config = json.loads(json.dumps(a.config))
        config["users"] = [u for u in config["users"] if u["id"] != "u-other"]
        for host in config["hosts"]:
            if host.get("owner") == "u-other":
                host["owner"] = "u-admin"
        a.rewrite(config)
        a.sluice.proc.send_signal(signal.SIGHUP)
        a.sluice.wait_for("event=config.reloaded")
        assert ended(gone, 1.5), "the deleted user's stream is still open"
        assert not ended(stays, 2.5), "another user's stream ended"
        assert request(a.port, "GET", "/ssh/tunnel/status/stream", token=a.token("u-other")).status == 401
    finally:
        a.stop()


def test_stream_requires_auth(app):
    assert request(app.port, "GET", "/ssh/tunnel/status/stream").status == 401
