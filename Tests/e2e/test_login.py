"""Password login for the status page (POST /users/login, /users/logout), the configured-tunnels route, and the
page itself — over HTTP, against the static binary."""
import http.client
import json
import threading
import time
import subprocess

import pytest

from harness.api import request
from harness.appliance import Appliance
from harness.login import PASSWORD, hash_password, slow_hash
from harness.sluice import command


def appliance_with_password(sluice_bin, password_hash):
    """An appliance whose user `ops` logs in with PASSWORD (hashed as given)."""
    a = Appliance(sluice_bin)
    a.config["users"][1]["passwordHash"] = password_hash
    a.rewrite(a.config)
    return a.start()


@pytest.fixture(scope="module")
def app(sluice_bin):
    a = appliance_with_password(sluice_bin, hash_password(sluice_bin, PASSWORD))
    yield a
    a.stop()


def login(app, username, password, headers=None):
    return request(app.port, "POST", "/users/login", body={"username": username, "password": password},
                   headers=headers)


def test_login_sets_cookie_and_returns_token(app):
    r = login(app, "ops", PASSWORD)
    assert r.status == 200, r
    token = r.json()["token"]
    cookie = r.header("Set-Cookie")
    assert cookie.startswith(f"jwt={token}; Path=/;") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    assert request(app.port, "GET", "/ssh/tunnel/status", cookie=f"jwt={token}").status == 200
    behind_tls = login(app, "ops", PASSWORD, headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" in behind_tls.header("Set-Cookie")
    assert PASSWORD not in app.sluice.log()


def test_bad_logins_are_refused_and_slowed(app):
    assert login(app, "", "x").status == 400
    assert request(app.port, "POST", "/users/login", body="not json").status == 400
    for _ in range(3):
        r = login(app, "admin", "wrong")       # admin has no passwordHash: same answer as a wrong password
        assert (r.status, r.json()) == (401, {"error": "Invalid username or password"})
    r = login(app, "admin", "wrong")
    assert r.status == 401
    r = login(app, "admin", "wrong")
    assert (r.status, r.json()) == (429, {"error": "Too many failed logins for this user from this address"})
    assert int(r.header("Retry-After")) >= 1
    assert "wrong" not in app.sluice.log()


def test_dns_rebinding_is_refused(sluice_bin):
    """Issue #24 item 9: a page of evil.example whose name was rebound to the appliance sends `Host` and `Origin`
    both evil.example:PORT (same-origin to the browser): refused with 421 before any login or cookie use. IP
    literals, `localhost`, `serverNames` and the hosts of `allowedOrigins` are answered."""
    a = Appliance(sluice_bin, serverNames=["sluice.lan"], allowedOrigins=["https://termix.example.org"])
    a.config["users"][1]["passwordHash"] = hash_password(sluice_bin, PASSWORD)
    a.rewrite(a.config)
    a.start()
    try:
        evil = f"evil.example:{a.port}"
        r = login(a, "ops", PASSWORD, headers={"Host": evil, "Origin": f"http://{evil}"})
        assert (r.status, r.json()) == (421, {"error": "Host not allowed"}), r.status
        assert r.header("Set-Cookie") is None
        token = login(a, "ops", PASSWORD).json()["token"]
        for path in ("/ssh/tunnel/status", "/", "/ssh/tunnel/status/stream"):
            r = request(a.port, "GET", path, cookie=f"jwt={token}", headers={"Host": evil})
            assert (r.status, r.json()) == (421, {"error": "Host not allowed"}), path
        assert request(a.port, "GET", "/healthz", headers={"Host": evil}).status == 200   # monitors: nothing to steal
        for host in (f"127.0.0.1:{a.port}", f"[::1]:{a.port}", f"LOCALHOST:{a.port}", f"sluice.lan:{a.port}",
                     "Sluice.LAN.", "termix.example.org"):
            r = request(a.port, "GET", "/ssh/tunnel/status", cookie=f"jwt={token}", headers={"Host": host})
            assert r.status == 200, host
        for host in ("sluice.lan.evil.example", "127.0.0.1.evil.example", "sluice.lan:x", "[::1"):
            r = request(a.port, "GET", "/ssh/tunnel/status", cookie=f"jwt={token}", headers={"Host": host})
            assert r.status == 421, host
    finally:
        a.stop()


def login_from(a, source, username, password):
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=20, source_address=(source, 0))
    conn.request("POST", "/users/login", body=json.dumps({"username": username, "password": password}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, json.loads(body)


def test_failures_slow_the_attacker_not_the_user(sluice_bin):
    """Issue #24 item 6: wrong passwords for `ops` from rotating addresses do not lock ops out: a correct password
    from an address with no failures passes; the attacker's addresses are held (by the name's lock once they failed
    themselves, by their own count after a few failures), each lock with its own answer."""
    a = appliance_with_password(sluice_bin, hash_password(sluice_bin, PASSWORD))
    try:
        for i in range(9):
            status, body = login_from(a, f"127.0.0.{10 + i}", "ops", "wrong")
            assert (status, body) == (401, {"error": "Invalid username or password"}), (i, status, body)
        status, _ = login_from(a, "127.0.0.1", "ops", PASSWORD)
        assert status == 200                                   # the user, from an address with no failures
        status, body = login_from(a, "127.0.0.10", "ops", "wrong-again")
        assert (status, body) == (429, {"error": "Too many failed logins for this user"}), body
        for _ in range(4):
            login_from(a, "127.0.0.30", "nobody", "x")          # made-up names: the address's own count
        status, body = login_from(a, "127.0.0.30", "admin", "x")
        assert (status, body) == (429, {"error": "Too many failed logins from this address"}), body
        status, _ = login_from(a, "127.0.0.1", "ops", PASSWORD)
        assert status == 200
    finally:
        a.stop()


def test_logout_clears_cookie(app):
    r = request(app.port, "POST", "/users/logout")
    assert r.status == 200
    assert r.header("Set-Cookie") == "jwt=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"


def test_configured_tunnels_route(app):
    r = request(app.port, "GET", "/ssh/tunnel/configs", token=app.token("u-ops"))
    assert r.status == 200
    items = r.json()
    assert [i["name"] for i in items] == ["1::0::edge::18080::::80"]
    body = items[0]["body"]
    # the exact body a client would send: it is accepted as is
    assert request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=app.token("u-ops")).status == 200
    assert request(app.port, "GET", "/ssh/tunnel/configs", token=app.token("u-other")).json() == []
    assert request(app.port, "GET", "/ssh/tunnel/configs").status == 401


def test_page_is_served_self_contained(app):
    r = request(app.port, "GET", "/")
    assert r.status == 200 and r.header("Content-Type").startswith("text/html")
    csp = r.header("Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert b"http://" not in r.body and b"https://" not in r.body
    assert len(r.body) < 64 * 1024
    assert request(app.port, "GET", "/index.html").status == 404


def test_invalid_password_hash_in_config(sluice_bin, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"users": [{"id": "a", "username": "a", "passwordHash": "plain"}]}))
    r = subprocess.run([*command(sluice_bin), "check", "--config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "users[0].passwordHash:" in r.stderr


@pytest.fixture
def slow_app(sluice_bin):
    a = appliance_with_password(sluice_bin, slow_hash(sluice_bin, PASSWORD))
    yield a
    a.stop()


def timed_login(app, results, key):
    started = time.monotonic()
    try:
        r = login(app, "ops", PASSWORD)
    except OSError as e:          # the appliance stopped under it
        results[key] = (str(e), time.monotonic() - started, time.monotonic())
        return
    results[key] = (r.status, time.monotonic() - started, time.monotonic())


def test_password_hashing_does_not_hold_the_http_thread(slow_app):
    """Issue #15: PBKDF2 ran on the thread that answers every request, so a login (or a guess at one) held
    `/healthz` and every API call for its whole duration."""
    results = {}
    t = threading.Thread(target=timed_login, args=(slow_app, results, "slow"))
    t.start()
    time.sleep(0.3)
    health = []
    for _ in range(3):
        started = time.monotonic()
        r = request(slow_app.port, "GET", "/healthz")
        health.append((r.status, time.monotonic() - started, time.monotonic()))
    t.join(timeout=60)
    status, took, finished = results["slow"]
    assert status == 200 and took >= 0.8, results
    assert all(s == 200 for s, _, _ in health), health
    # every health check was answered while the login was still being hashed
    assert all(at < finished for _, _, at in health), (health, results)


def test_logins_from_one_address_are_bounded_and_stop_is_clean(slow_app):
    """At most two logins per address wait for the worker (the rest are told to retry), and SIGTERM while hashes
    are queued ends cleanly: libmicrohttpd aborts when stopped with a connection suspended."""
    results = {}
    threads = [threading.Thread(target=timed_login, args=(slow_app, results, i)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    r = login(slow_app, "ops", PASSWORD)
    assert (r.status, r.json()) == (429, {"error": "Too many login attempts"}), r
    assert r.header("Retry-After") == "1"
    code, _ = slow_app.sluice.stop()
    for t in threads:
        t.join(timeout=60)
    assert code == 0, slow_app.sluice.log()
    assert "serve.stopped" in slow_app.sluice.log()
