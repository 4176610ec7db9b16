"""appliance.md §1 and §3: the embedded default's first start, the state directory, SIGHUP reload."""
import json
import os
import signal
import stat
import subprocess
import time


from harness.api import request
from harness.appliance import Appliance
from harness.sluice import Sluice, command


def test_first_start_on_embedded_default(sluice_bin, tmp_path):
    state = tmp_path / "state"
    env = {"SLUICE_CONFIG": "", "SLUICE_STATE": str(state)}
    s = Sluice(sluice_bin, state_dir=str(state), env=env).start()
    try:
        line = s.wait_for("Admin token")
        token = line.rsplit(" ", 1)[1]
        assert s.wait_for("Sluice is listening on http://127.0.0.1:")
        secret_file = state / "jwt_secret"
        mode = stat.S_IMODE(os.stat(secret_file).st_mode)
        assert mode == 0o600, oct(mode)
        secret = secret_file.read_text()
        assert len(secret.strip()) == 64 and all(c in "0123456789abcdef" for c in secret.strip())
        assert secret.strip() not in s.log()         # the secret itself is never printed
        r = request(s.port, "GET", "/ssh/tunnel/status", token=token)
        assert r.status == 200
        assert [f for f in os.listdir(state) if f.startswith(".") or ".tmp" in f] == []
    finally:
        assert s.stop()[0] == 0
    # second start: the secret exists, no new admin token is printed, the old token still works
    s2 = Sluice(sluice_bin, state_dir=str(state), env=env).start()
    try:
        assert "Admin token" not in s2.log()
        assert request(s2.port, "GET", "/ssh/tunnel/status", token=token).status == 200
    finally:
        s2.stop()


def test_corrupt_secret_is_renamed_and_replaced(sluice_bin, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "jwt_secret").write_text("short")
    s = Sluice(sluice_bin, state_dir=str(state), env={"SLUICE_CONFIG": ""}).start()
    try:
        names = os.listdir(state)
        assert any(n.startswith("jwt_secret.corrupt-") for n in names), names
        assert len((state / "jwt_secret").read_text().strip()) == 64
    finally:
        s.stop()


def test_invalid_config_exits_1_with_paths(sluice_bin, tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"listenn": "x", "users": [{"id": "a", "username": "a"}], "hosts": []}))
    r = subprocess.run([*command(sluice_bin), "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "listenn: unknown key" in r.stderr


def test_sighup_reload(sluice_bin, sshd):
    app = Appliance(sluice_bin, sshd).start()
    try:
        token = app.token("u-admin")
        before = request(app.port, "GET", "/ssh/tunnel/status", token=token).json()
        assert "1::0::edge::18080::::80" in before
        # a valid change: a new configured tunnel and a new user
        config = json.loads(json.dumps(app.config))
        config["hosts"][1]["tunnels"].append({"mode": "dynamic", "sourcePort": 18099, "endpointHost": "",
                                              "endpointPort": 0})
        config["users"].append({"id": "u-new", "username": "new"})
        app.rewrite(config)
        app.sluice.proc.send_signal(signal.SIGHUP)
        app.sluice.wait_for("event=config.reloaded")
        after = request(app.port, "GET", "/ssh/tunnel/status", token=token).json()
        assert "1::1::edge::18099::::0" in after
        assert request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-new")).status == 200
        # an invalid file is refused and the old configuration stays
        with open(app.config_path, "w") as f:
            f.write('{"users": [}')
        app.sluice.proc.send_signal(signal.SIGHUP)
        app.sluice.wait_for("event=config.reload_refused")
        assert request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-new")).status == 200
        # removing a host removes its tunnels
        config["hosts"] = [h for h in config["hosts"] if h["id"] != 1]
        config["users"] = [u for u in config["users"] if u["id"] != "u-new"]
        app.rewrite(config)
        app.sluice.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            now = request(app.port, "GET", "/ssh/tunnel/status", token=token).json()
            if not any(k.startswith("1::") for k in now):
                break
            time.sleep(0.1)
        assert not any(k.startswith("1::") for k in now), now
        assert request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-new")).status == 401
    finally:
        code, took = app.stop()
        assert code == 0 and took < 5
