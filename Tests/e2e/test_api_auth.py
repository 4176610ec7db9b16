"""tunnels-api.md §1–§2: routing, authentication answers, body limits, headers — against the static binary."""
import socket
import time

import pytest

from harness.api import jwt, request
from harness.appliance import SECRET, Appliance
from harness.sluice import command

INVALID = {"error": "Invalid token"}
CLEAR_COOKIE = "jwt=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"


@pytest.fixture(scope="module")
def app(sluice_bin, sshd):
    a = Appliance(sluice_bin, sshd).start()
    yield a
    code, _ = a.stop()
    assert code == 0


def test_healthz_needs_no_token(app):
    r = request(app.port, "GET", "/healthz")
    assert (r.status, r.body) == (200, b"ok")
    assert r.header("Cache-Control") == "no-store"


def test_health_answers_termix_json(app):
    # Termix's desktop "Remote Sync" server check: JSON with status ok, no token; /healthz stays plain text
    r = request(app.port, "GET", "/health")
    assert r.status == 200
    assert r.header("Content-Type").split(";")[0].strip() == "application/json"
    assert r.json() == {"status": "ok"}
    assert request(app.port, "HEAD", "/health").status == 200


def test_unknown_path_and_wrong_method(app):
    r = request(app.port, "GET", "/ssh/tunnel/nope")
    assert (r.status, r.json()) == (404, {"error": "Not found"})
    for method, path in [("POST", "/ssh/tunnel/status"), ("GET", "/ssh/tunnel/connect"),
                         ("DELETE", "/ssh/tunnel/disconnect"), ("PUT", "/metrics")]:
        r = request(app.port, method, path)
        assert (r.status, r.json()) == (405, {"error": "Method not allowed"}), (method, path)
    # routing comes before authentication
    assert request(app.port, "GET", "/nope").status == 404


def test_missing_token(app):
    r = request(app.port, "GET", "/ssh/tunnel/status")
    assert (r.status, r.json()) == (401, {"error": "Missing authentication token"})
    assert r.header("Content-Type") == "application/json"
    assert r.header("Cache-Control") == "no-store"


@pytest.mark.parametrize("case", ["bad-signature", "none", "HS384", "HS512", "expired", "no-exp", "no-userId",
                                  "unknown-user", "garbage", "two-parts", "RS256-header"])
def test_invalid_tokens(app, case):
    now = int(time.time())
    good = {"userId": "u-admin", "iat": now, "exp": now + 600}
    tokens = {
        "bad-signature": jwt(good, SECRET + "x"),
        "none": jwt(good, SECRET, alg="none"),
        "HS384": jwt(good, SECRET, alg="HS384"),
        "HS512": jwt(good, SECRET, alg="HS512"),
        "expired": jwt({"userId": "u-admin", "iat": now - 100, "exp": now - 10}, SECRET),
        "no-exp": jwt({"userId": "u-admin", "iat": now}, SECRET),
        "no-userId": jwt({"iat": now, "exp": now + 600}, SECRET),
        "unknown-user": jwt({"userId": "u-ghost", "iat": now, "exp": now + 600}, SECRET),
        "garbage": "not.a.token",
        "two-parts": "abc.def",
        "RS256-header": jwt(good, SECRET, header={"alg": "RS256", "typ": "JWT"}),
    }
    r = request(app.port, "GET", "/ssh/tunnel/status", token=tokens[case])
    assert (r.status, r.json()) == (401, INVALID)
    assert r.header("Set-Cookie") == CLEAR_COOKIE


def test_pending_totp(app):
    r = request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin", pendingTOTP=True))
    assert (r.status, r.json()) == (401, {"error": "TOTP verification required", "code": "TOTP_REQUIRED"})


def test_cookie_wins_over_bearer(app):
    good, bad = app.token("u-admin"), app.token("u-admin") + "x"
    assert request(app.port, "GET", "/ssh/tunnel/status", token=bad, cookie=f"a=1; jwt={good}; b=2").status == 200
    assert request(app.port, "GET", "/ssh/tunnel/status", token=good, cookie=f"jwt={bad}").status == 401


def test_authentication_before_body(app):
    # a huge body without a token is answered 401, not 413
    r = request(app.port, "POST", "/ssh/tunnel/connect", body="x" * 70000)
    assert r.status == 401


def test_body_over_64k_is_413(app):
    token = app.token("u-admin")
    r = request(app.port, "POST", "/ssh/tunnel/connect", body="{" + " " * 70000 + "}", token=token)
    assert (r.status, r.json()) == (413, {"error": "Request body too large"})
    # chunked, no Content-Length: the limit still holds
    s = socket.create_connection(("127.0.0.1", app.port), timeout=10)
    s.sendall(f"POST /ssh/tunnel/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
              "Transfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"x" * 16384
    try:
        for _ in range(6):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413") and b'{"error":"Request body too large"}' in answer or answer == b""
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        s.close()
    assert request(app.port, "GET", "/healthz").status == 200


def test_malformed_json(app):
    token = app.token("u-admin")
    for body in ["{", "not json", "\xff\xfe", '{"a":1,}']:
        r = request(app.port, "POST", "/ssh/tunnel/connect", body=body.encode("latin-1"), token=token)
        assert (r.status, r.json()) == (400, {"error": "Invalid JSON body"}), body


def test_random_bytes_do_not_hurt(app):
    import os
    for payload in [os.urandom(300), b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x02\x00" + os.urandom(200),
                    b"GET / HTTP/9.9\r\n\r\n"]:
        with socket.create_connection(("127.0.0.1", app.port), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except (socket.timeout, ConnectionResetError):
                pass
    assert request(app.port, "GET", "/healthz").status == 200
    assert request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin")).status == 200


def test_metrics_admin_only(app):
    r = request(app.port, "GET", "/metrics", token=app.token("u-admin"))
    assert r.status == 200
    assert b"sluice_tunnel_status{" in r.body and b"sluice_sse_subscribers" in r.body
    # one pool of relay buffers for tunnels and C2S relays alike, as docs/operations.md states (issue #16)
    text = r.body.decode()
    assert text.count('sluice_pool_capacity{pool="relay",kind="buffers",') == 1, text
    assert 'sluice_pool_capacity{pool="relay",kind="buffers",bytes="32768"} 1024\n' in text
    # and its budget of wide receive windows (issue #17): 64 MiB by default, four 16 MiB windows, none in use
    assert 'sluice_pool_capacity{pool="relay",kind="windows",bytes="16777216"} 4\n' in text
    assert 'sluice_pool_in_use{pool="relay",kind="windows"} 0\n' in text
    assert 'sluice_pool_capacity{pool="websocket_receive",kind="buffers",bytes="65536"} 512\n' in text
    assert 'sluice_pool_in_use{pool="relay",kind="buffers"} 0\n' in text
    r = request(app.port, "GET", "/metrics", token=app.token("u-ops"))
    assert (r.status, r.json()) == (403, {"error": "Admin access required"})
    assert request(app.port, "GET", "/metrics").status == 401


def test_token_command(sluice_bin, app):
    import subprocess
    out = subprocess.run([*command(sluice_bin), "token", "--user", "u-ops", "--config", app.config_path],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert request(app.port, "GET", "/ssh/tunnel/status", token=token).status == 200
    out = subprocess.run([*command(sluice_bin), "token", "--user", "u-ghost", "--config", app.config_path],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1 and "u-ghost" in out.stderr
