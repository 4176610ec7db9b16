"""tunnels-api.md §4–§6 and §8 against the static binary: the six tunnel routes with their exact answers, the
status registry, per-user isolation, and the state machine driven by a real failing attempt."""
import urllib.parse

import pytest

from harness.api import SSEStream, request
from harness.appliance import Appliance
from harness.ports import free_port

CONFIGURED = "1::0::edge::18080::::80"


@pytest.fixture(scope="module")
def app(sluice_bin, sshd):
    dead = {"id": 3, "name": "dead", "ip": "127.0.0.1", "port": free_port(), "username": "x", "owner": "u-admin",
            "auth": {"type": "password", "password": "unused-pw"}}
    a = Appliance(sluice_bin, sshd, extra_hosts=[dead]).start()
    yield a
    a.stop()


def body(name, host=1, index=0, source=8080, endpoint_host="", endpoint_port=22, **extra):
    b = {"name": name, "sourceHostId": host, "tunnelIndex": index, "sourcePort": source,
         "endpointHost": endpoint_host, "endpointPort": endpoint_port, "mode": "local",
         "maxRetries": 1, "retryInterval": 1000}
    b.update(extra)
    return b


def connect(app, user, b):
    return request(app.port, "POST", "/ssh/tunnel/connect", body=b, token=app.token(user))


def test_configured_tunnels_listed_from_start(app):
    r = request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin"))
    assert r.status == 200
    status = r.json()[CONFIGURED]
    assert status["connected"] is False and status["status"] == "disconnected"
    for absent in ("retryCount", "reason", "errorType", "manualDisconnect"):
        assert absent not in status, status     # optional fields are omitted, never null
    assert {"bytesIn", "bytesOut", "activeConnections", "since"} <= set(status)


def test_connect_validation_order_and_strings(app):
    bad = [
        (None, 400, "Invalid tunnel configuration"),
        ([], 400, "Invalid tunnel configuration"),
        ({"sourceHostId": 1}, 400, "Invalid tunnel configuration"),
        (body("1::0::edge::8080::"), 400, "Tunnel configuration does not match tunnel name"),
        (body("legacy-name"), 400, "Tunnel configuration does not match tunnel name"),
        (body("1::0::edge::8080::::22", source=8081), 400, "Tunnel configuration does not match tunnel name"),
        (body("1::0::edge::8080::::22", source="08080"), 400, "Tunnel configuration does not match tunnel name"),
        (body("1::0::edge::8080::x::22"), 400, "Tunnel configuration does not match tunnel name"),
        (dict(body("1::0::edge::8080::::22"), sourcePort=None), 400, "Tunnel configuration does not match tunnel name"),
        (body("1::0::edge::8080::::22", mode="sideways"), 400, "Invalid tunnel configuration"),
        (body("1::0::edge::8080::::22", source="8080"), 400, "Invalid tunnel configuration"),
        (body("1::0::edge::70000::::22", source=70000), 400, "Invalid tunnel configuration"),
        (body("1::0::edge::8080::::0", endpoint_port=0), 400, "Invalid tunnel configuration"),
        (body("1::0::edge::8080::::22", maxRetries=-2), 400, "Invalid tunnel configuration"),
        (body("1::0::edge::8080::::22", retryInterval=-1), 400, "Invalid tunnel configuration"),
        (body("9::0::ghost::8080::::22", host=9), 403, "Access denied to this host"),
        (body("1::0::edge::8080::::22", sourceIP="10.9.9.9"), 400, "Tunnel configuration does not match host"),
        (body("1::0::edge::8080::::22", sourceUsername="root"), 400, "Tunnel configuration does not match host"),
        (body("0::0::appliance::8080::::22", host=0, mode="remote"), 400, "Invalid tunnel configuration"),
    ]
    for b, status, message in bad:
        payload = "" if b is None else b
        r = request(app.port, "POST", "/ssh/tunnel/connect", body=payload, token=app.token("u-admin"))
        assert (r.status, r.json()) == (status, {"error": message}), b
    # an unshared host is 403 for a non-admin even when it exists
    r = connect(app, "u-ops", body("2::0::private::8080::::22", host=2))
    assert (r.status, r.json()) == (403, {"error": "Access denied to this host"})


def test_name_is_bounded_at_512_bytes(app):
    """tunnels-api.md §4 (issue #24): every status snapshot carries every name, so a name over 512 bytes of UTF-8 is
    refused; the bound counts bytes, not characters."""
    def named(size):
        head, tail = "1::0::", "::8080::::22"
        room = size - len(head) - len(tail)
        display = "é" * (room // 2) + "x" * (room % 2)      # two bytes a character
        name = head + display + tail
        assert len(name.encode()) == size
        return name
    r = connect(app, "u-admin", body(named(513)))
    assert (r.status, r.json()) == (400, {"error": "Invalid tunnel configuration"})
    assert named(513) not in request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin")).json()
    # the hosts a body names are bounded too (a DNS name is at most 253 bytes), so an autostart record is bounded
    r = connect(app, "u-admin", body("1::0::edge::8080::::22", targetHost="h" * 256))
    assert (r.status, r.json()) == (400, {"error": "Invalid tunnel configuration"})
    r = connect(app, "u-admin", body("1::0::edge::8080::::22", bindHost="1" * 256))
    assert (r.status, r.json()) == (400, {"error": "Invalid tunnel configuration"})
    ok = named(512)
    r = connect(app, "u-admin", body(ok))
    assert (r.status, r.json()) == (200, {"message": "Connection request received", "tunnelName": ok})
    assert ok in request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin")).json()
    r = request(app.port, "POST", "/ssh/tunnel/disconnect", body={"tunnelName": ok}, token=app.token("u-admin"))
    assert r.status == 200


def test_connect_ends_in_a_real_failure_and_retries(app):
    token = app.token("u-admin")
    stream = SSEStream(app.port, token)
    try:
        name = "3::3::dead::18181::::22"          # host 3: an SSH port where nothing listens
        r = connect(app, "u-admin", body(name, host=3, index=3, source=18181, maxRetries=1, retryInterval=1000))
        assert (r.status, r.json()) == (200, {"message": "Connection request received", "tunnelName": name})
        final, seen = stream.wait_for(lambda s: s.get(name, {}).get("retryExhausted") is True, timeout=30)
        states = [s[name]["status"] for s in seen if name in s]
        assert "failed" in states and "waiting" in states, states
        st = final[name]
        assert st["status"] == "failed" and st["connected"] is False
        assert st["reason"].startswith("Max retries exhausted: ") and "refused" in st["reason"].lower(), st
        assert st["errorType"] == "NETWORK_ERROR"
        assert all(s[name].get("reason", "").count("Max retries exhausted") <= 1 for s in seen if name in s)
        waiting = [s[name] for s in seen if name in s and s[name]["status"] == "waiting"]
        assert waiting and all(w["maxRetries"] == 1 and w["retryCount"] == 1 for w in waiting)
    finally:
        stream.close()


def test_status_of_one_tunnel(app):
    name = "1::4::edge::18182::::22"
    assert connect(app, "u-admin", body(name, index=4, source=18182)).status == 200
    quoted = urllib.parse.quote(name, safe="")
    for path in (f"/ssh/tunnel/status/{quoted}", f"/ssh/tunnel/status/{name}"):
        r = request(app.port, "GET", path, token=app.token("u-ops"))
        assert r.status == 200, path
        assert r.json()["name"] == name and "status" in r.json()["status"]
    r = request(app.port, "GET", f"/ssh/tunnel/status/{quoted}", token=app.token("u-other"))
    assert (r.status, r.json()) == (404, {"error": "Tunnel not found"})
    r = request(app.port, "GET", "/ssh/tunnel/status/1::9::nope::1::::1", token=app.token("u-admin"))
    assert (r.status, r.json()) == (404, {"error": "Tunnel not found"})


@pytest.mark.parametrize("route,message", [("disconnect", "Disconnect request received"),
                                           ("cancel", "Cancel request received")])
def test_disconnect_and_cancel(app, route, message):
    token = app.token("u-admin")
    for b in ["", {}, {"tunnelName": ""}, {"tunnelName": 5}, []]:
        r = request(app.port, "POST", f"/ssh/tunnel/{route}", body=b, token=token)
        assert (r.status, r.json()) == (400, {"error": "Tunnel name required"}), b
    r = request(app.port, "POST", f"/ssh/tunnel/{route}", body={"tunnelName": "1::0::x::1::::1"}, token=token)
    assert (r.status, r.json()) == (404, {"error": "Tunnel not found"})

    name = f"1::5::edge::{18190 + len(route)}::::22"
    b = body(name, index=5, source=int(name.split("::")[3]), maxRetries=-1, retryInterval=60000)
    assert connect(app, "u-admin", b).status == 200
    # another user may not stop it, and learns nothing about it
    r = request(app.port, "POST", f"/ssh/tunnel/{route}", body={"tunnelName": name}, token=app.token("u-other"))
    assert (r.status, r.json()) == (404, {"error": "Tunnel not found"})
    r = request(app.port, "POST", f"/ssh/tunnel/{route}", body={"tunnelName": name}, token=token)
    assert (r.status, r.json()) == (200, {"message": message, "tunnelName": name})
    st = request(app.port, "GET", "/ssh/tunnel/status", token=token).json()[name]
    if route == "disconnect":
        assert (st["connected"], st["status"], st["manualDisconnect"]) == (False, "disconnected", True)
    else:
        assert (st["connected"], st["status"], st["reason"]) == (False, "failed", "Retry cancelled")
    assert "retryCount" not in st and "nextRetryIn" not in st


def test_users_see_only_their_hosts(app):
    assert connect(app, "u-admin", body("0::1::appliance::18183::::22", host=0, index=1, source=18183)).status == 200
    seen_by = {u: request(app.port, "GET", "/ssh/tunnel/status", token=app.token(u)).json()
               for u in ("u-admin", "u-ops", "u-other")}
    assert "0::1::appliance::18183::::22" in seen_by["u-admin"]
    assert "0::1::appliance::18183::::22" not in seen_by["u-ops"]
    assert CONFIGURED in seen_by["u-ops"]               # shared with ops
    assert all(k.startswith("2::") for k in seen_by["u-other"])     # other owns host 2 only


def test_reconnect_restarts_cleanly(app):
    name = "1::6::edge::18184::::22"
    for _ in range(3):
        r = connect(app, "u-admin", body(name, index=6, source=18184, maxRetries=-1, retryInterval=60000))
        assert r.status == 200
    st = request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin")).json()[name]
    assert st["status"] in ("connecting", "connected")
    assert st.get("maxRetries", -1) == -1


def test_registry_is_bounded_by_max_tunnels(sluice_bin):
    small = Appliance(sluice_bin, limits={"maxTunnels": 3}).start()     # 1 configured + 2 more
    try:
        token = small.token("u-admin")

        def attempt(i):
            b = {"name": f"0::{i}::appliance::{18300 + i}::::9", "sourceHostId": 0, "tunnelIndex": i,
                 "sourcePort": 18300 + i, "endpointHost": "", "endpointPort": 9, "mode": "local"}
            return request(small.port, "POST", "/ssh/tunnel/connect", body=b, token=token)

        assert attempt(1).status == 200 and attempt(2).status == 200
        r = attempt(3)
        assert (r.status, r.json()) == (503, {"error": "Tunnel limit reached"})   # issue #15: not a 500
        small.sluice.wait_for("event=tunnel.limit_reached")      # stderr is read by another thread
        assert attempt(2).status == 200                  # a name already listed may always reconnect
        assert len(request(small.port, "GET", "/ssh/tunnel/status", token=token).json()) == 3
    finally:
        small.stop()
