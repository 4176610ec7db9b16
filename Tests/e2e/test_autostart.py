"""appliance.md §3 autostart.json: API tunnels with autoStart and configured autoStart tunnels come back after a
restart; a user's disconnect keeps them stopped; the file is atomic and holds no secrets."""
import json
import os

from harness.api import request
from harness.appliance import Appliance
from harness.sluice import Sluice


def body(name, index, port, auto):
    return {"name": name, "sourceHostId": 1, "tunnelIndex": index, "sourcePort": port, "endpointHost": "",
            "endpointPort": 22, "mode": "local", "maxRetries": -1, "retryInterval": 60000, "autoStart": auto}


def restart(app):
    code, took = app.stop()
    assert code == 0 and took < 5
    app.sluice = Sluice(app.sluice.binary, args=app.sluice.args, state_dir=app.sluice.state_dir)
    app.start()


def test_api_autostart_survives_restart_until_disconnected(sluice_bin, sshd):
    app = Appliance(sluice_bin, sshd).start()
    try:
        token = app.token("u-ops")
        keep, once = "1::20::edge::18220::::22", "1::21::edge::18221::::22"
        assert request(app.port, "POST", "/ssh/tunnel/connect", body=body(keep, 20, 18220, True), token=token).status == 200
        assert request(app.port, "POST", "/ssh/tunnel/connect", body=body(once, 21, 18221, False), token=token).status == 200
        path = os.path.join(app.sluice.state_dir, "autostart.json")
        saved = json.load(open(path))
        assert [t["body"]["name"] for t in saved["tunnels"]] == [keep]
        assert saved["tunnels"][0]["userId"] == "u-ops"
        text = open(path).read()
        assert sshd.password not in text and "BEGIN" not in text
        restart(app)
        app.sluice.wait_for(f"event=tunnel.autostart tunnel={keep}")
        statuses = request(app.port, "GET", "/ssh/tunnel/status", token=token).json()
        assert keep in statuses and statuses[keep]["status"] != "disconnected"
        assert once not in statuses                       # not remembered
        r = request(app.port, "POST", "/ssh/tunnel/disconnect", body={"tunnelName": keep}, token=token)
        assert r.status == 200
        assert json.load(open(path))["tunnels"] == []
        restart(app)
        statuses = request(app.port, "GET", "/ssh/tunnel/status", token=token).json()
        assert keep not in statuses
        assert "event=tunnel.autostart " not in app.sluice.log()
        assert [f for f in os.listdir(app.sluice.state_dir) if ".tmp" in f] == []
    finally:
        app.stop()


def test_configured_autostart_and_user_stop(sluice_bin, sshd):
    app = Appliance(sluice_bin, sshd)
    app.config["hosts"][1]["tunnels"][0]["autoStart"] = True
    app.rewrite(app.config)
    app.start()
    name = "1::0::edge::18080::::80"
    try:
        app.sluice.wait_for("source=config")
        token = app.token("u-admin")
        assert request(app.port, "GET", "/ssh/tunnel/status", token=token).json()[name]["status"] != "disconnected"
        assert request(app.port, "POST", "/ssh/tunnel/cancel", body={"tunnelName": name}, token=token).status == 200
        restart(app)
        st = request(app.port, "GET", "/ssh/tunnel/status", token=token).json()[name]
        assert st["status"] == "disconnected" and "source=config" not in app.sluice.log()
        # a connect of that name ends the user stop
        b = {"name": name, "sourceHostId": 1, "tunnelIndex": 0, "sourcePort": 18080, "endpointHost": "",
             "endpointPort": 80, "mode": "local"}
        assert request(app.port, "POST", "/ssh/tunnel/connect", body=b, token=token).status == 200
        restart(app)
        app.sluice.wait_for("source=config")
    finally:
        app.stop()


def wait_idle(app, token, name, timeout=15):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = request(app.port, "GET", "/ssh/tunnel/status", token=token).json().get(name)
        if status and status["status"] == "failed":
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} not failed: {status}")


def test_records_stay_within_each_users_share(sluice_bin, sshd):
    """Issue #24 item 2: autostart.json holds no more than the run-time limits allow, per user (maxTunnels 8: a
    non-admin holds 2); an evicted entry's record goes with it; start-up launches obey the same limits; one user's
    records never cost the admin's."""
    from harness.ports import free_port
    dead = {"id": 3, "name": "dead", "ip": "127.0.0.1", "port": free_port(), "username": "x", "owner": "u-admin",
            "sharedWith": ["u-ops"], "auth": {"type": "password", "password": "unused-pw"}}
    app = Appliance(sluice_bin, sshd, extra_hosts=[dead], limits={"maxTunnels": 8}).start()
    try:
        admin, ops = app.token("u-admin"), app.token("u-ops")
        mine = "1::30::edge::18230::::22"
        assert request(app.port, "POST", "/ssh/tunnel/connect", body=body(mine, 30, 18230, True), token=admin).status == 200
        names = []
        for i in range(10):
            # 512-byte names, each failing at once (nothing listens) so that it is idle and evictable
            head, tail = f"3::{i}::", f"::{19300 + i}::::22"
            name = head + "n" * (512 - len(head) - len(tail)) + tail
            b = dict(body(name, i, 19300 + i, True), sourceHostId=3, maxRetries=1, retryInterval=1)
            r = request(app.port, "POST", "/ssh/tunnel/connect", body=b, token=ops)
            assert r.status == 200, (i, r.status, r.body)
            wait_idle(app, ops, name)
            names.append(name)
        path = os.path.join(app.sluice.state_dir, "autostart.json")
        saved = json.load(open(path))["tunnels"]
        ops_records = [t["body"]["name"] for t in saved if t["userId"] == "u-ops"]
        assert len(ops_records) <= 2, len(ops_records)          # evicted entries took their records with them
        assert set(ops_records) <= set(names[-2:]), "the records left are those of entries still in the registry"
        assert mine in [t["body"]["name"] for t in saved]
        restart(app)
        app.sluice.wait_for(f"event=tunnel.autostart tunnel={mine}")
        statuses = request(app.port, "GET", "/ssh/tunnel/status", token=admin).json()
        assert len(statuses) <= 8, len(statuses)
        assert statuses[mine]["status"] != "disconnected"
        assert len([n for n in statuses if n.startswith("3::")]) <= 2
    finally:
        app.stop()


def test_startup_launches_obey_the_limits(sluice_bin, sshd):
    """Issue #24 item 2: a record written under other limits (or by hand) does not let a user past their share at
    start-up; the admin's record comes back whatever order the file lists them in."""
    app = Appliance(sluice_bin, sshd, limits={"maxTunnels": 8})
    state = app.sluice.state_dir
    os.makedirs(state, exist_ok=True)
    ops = [{"userId": "u-ops", "body": body(f"1::{40 + i}::edge::{18240 + i}::::22", 40 + i, 18240 + i, True)}
           for i in range(12)]
    admins = [{"userId": "u-admin", "body": body("1::60::edge::18260::::22", 60, 18260, True)}]
    with open(os.path.join(state, "autostart.json"), "w") as f:
        json.dump({"version": 1, "tunnels": ops + admins, "stopped": []}, f)
    app.start()
    try:
        app.sluice.wait_for("event=tunnel.autostart tunnel=1::60::edge::18260::::22")
        statuses = request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin")).json()
        assert "1::60::edge::18260::::22" in statuses
        assert len([n for n in statuses if n.startswith("1::4") or n.startswith("1::5")]) == 2, list(statuses)
        assert len(statuses) <= 8
        saved = json.load(open(os.path.join(state, "autostart.json")))["tunnels"]
        assert len([t for t in saved if t["userId"] == "u-ops"]) == 2
    finally:
        app.stop()
