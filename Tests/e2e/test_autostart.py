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
