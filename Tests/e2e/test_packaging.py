"""The appliance packaging (appliance.md §3, §4): the systemd unit, the read-only-root overlay tarball with the
aarch64 binary, sd_notify (READY/WATCHDOG/STOPPING), running on a read-only root with only the state directory
writable, and state files that survive SIGKILL at any instant."""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time

import pytest

from harness.api import SSEStream, request, token_for
from harness.appliance import SECRET
from harness.notify import NotifySocket
from harness.readonly import wrapper
from harness.sluice import Sluice, command

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
IMAGE = os.path.join(ROOT, "image")
OVERLAY_FILES = ["usr/bin/sluice", "etc/sluice/sluice.json", "lib/systemd/system/sluice.service",
                 "lib/systemd/system/sluice-state-fallback.service", "usr/lib/tmpfiles.d/sluice.conf",
                 "usr/lib/sysusers.d/sluice.conf", "usr/share/doc/sluice/fstab.sluice",
                 "usr/share/doc/sluice/operations.md"]


@pytest.fixture(scope="module")
def arm_bin():
    path = os.environ.get("SLUICE_ARM_BIN") or os.path.join(ROOT, "build/aarch64/sluice")
    assert os.path.exists(path), f"{path} missing: run make aarch64"
    return path


@pytest.fixture(scope="module")
def overlay(arm_bin, tmp_path_factory):
    """The overlay tarball (make image's, else built here from the aarch64 binary) and its unpacked tree."""
    out = tmp_path_factory.mktemp("image")
    tarball = os.environ.get("SLUICE_IMAGE")
    if not tarball:
        tarball = str(out / "sluice-rootfs-aarch64.tar.gz")
        subprocess.run([os.path.join(IMAGE, "build-overlay.sh"), arm_bin, tarball], check=True,
                       capture_output=True, timeout=120)
    tree = out / "tree"
    tree.mkdir()
    subprocess.run(["tar", "-xzf", tarball, "-C", str(tree)], check=True)
    return tarball, str(tree)


def write_config(directory, **overrides):
    """A configuration with the appliance's own host; its JWT secret in a file, so tokens are known."""
    with open(os.path.join(directory, "jwt.secret"), "w") as f:
        f.write(SECRET + "\n")
    config = {"jwtSecretFile": "jwt.secret",
              "users": [{"id": "u-admin", "username": "admin", "admin": True}],
              "hosts": [{"id": 0, "name": "appliance", "local": True, "owner": "u-admin"}]}
    config.update(overrides)
    path = os.path.join(directory, "sluice.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def local_tunnel(port, auto_start=False, target_port=80):
    name = f"0::0::appliance::{port}::::{target_port}"
    return {"name": name, "sourceHostId": 0, "tunnelIndex": 0, "sourcePort": port, "endpointHost": "",
            "endpointPort": target_port, "mode": "local", "maxRetries": 1, "retryInterval": 1000,
            "autoStart": auto_start}


# (1) the unit -------------------------------------------------------------------------------------------------------

def test_systemd_analyze_verify(overlay):
    _, tree = overlay
    assert shutil.which("systemd-analyze"), "systemd-analyze missing (tools/deps.sh host installs systemd)"
    # the unit as shipped; only its binary path points into the unpacked overlay (verify checks it is executable)
    units = tempfile.mkdtemp(prefix="sluice-units-")
    for name in ("sluice.service", "sluice-state-fallback.service"):
        with open(os.path.join(IMAGE, name)) as f:
            text = f.read().replace("/usr/bin/sluice", os.path.join(tree, "usr/bin/sluice"))
        with open(os.path.join(units, name), "w") as f:
            f.write(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", os.path.join(units, "sluice.service"),
                        os.path.join(units, "sluice-state-fallback.service")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "sluice" not in r.stderr, r.stderr
    with open(os.path.join(IMAGE, "sluice.service")) as f:
        unit = f.read()
    # no StateDirectory=: its implicit RequiresMountsFor=/var/lib/sluice fails the unit when the data partition's mount
    # fails, which is when the tmpfs fallback must take over (make boot-test boots that case)
    assert not any(line.startswith("StateDirectory") for line in unit.splitlines())
    for line in ["Type=notify", "WatchdogSec=30", "User=sluice", "ProtectSystem=strict", "ReadWritePaths=/var/lib/sluice",
                 "ExecStartPre=+/bin/systemd-tmpfiles --create /usr/lib/tmpfiles.d/sluice.conf",
                 "NoNewPrivileges=yes", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ExecStart=/usr/bin/sluice serve --config /etc/sluice/sluice.json",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"]:
        assert line in unit.splitlines(), line


# (2) the overlay tarball --------------------------------------------------------------------------------------------

def test_overlay_tarball_contents(overlay):
    tarball, tree = overlay
    with tarfile.open(tarball) as t:
        members = {m.name: m for m in t.getmembers()}
    for name in OVERLAY_FILES:
        assert name in members and members[name].isfile(), name
    assert members["usr/bin/sluice"].mode == 0o755
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    # unpacking over a merged-/usr root must never replace /lib (a symlink) or touch system folders
    for system in ("lib", "lib/systemd", "lib/systemd/system", "etc", "usr", "usr/bin", "var", "var/lib"):
        assert system not in members, system
    assert members["var/lib/sluice"].isdir() and members["var/lib/sluice"].mode == 0o700
    link = members["etc/systemd/system/multi-user.target.wants/sluice.service"]
    assert link.issym() and link.linkname == "/lib/systemd/system/sluice.service"
    with open(os.path.join(tree, "usr/share/doc/sluice/fstab.sluice")) as f:
        assert any(l.split()[1:3] == ["/var/lib/sluice", "ext4"] for l in f if l.strip() and not l.startswith("#"))
    print(f"\noverlay tarball: {os.path.getsize(tarball)} bytes")


def test_overlay_binary_runs_under_qemu(overlay):
    _, tree = overlay
    binary = os.path.join(tree, "usr/bin/sluice")
    info = subprocess.run(["file", "-L", binary], capture_output=True, text=True).stdout
    assert "aarch64" in info and "statically linked" in info, info
    out = subprocess.run(command(binary) + ["version"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.splitlines()[0].startswith("sluice ") and out.splitlines()[0].endswith(" aarch64-unknown-linux-gnu")
    r = subprocess.run(command(binary) + ["check", "--config", os.path.join(tree, "etc/sluice/sluice.json")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: ")
    with open(os.path.join(tree, "etc/sluice/sluice.json")) as f:
        example = json.load(f)
    assert example["stateDir"] == "/var/lib/sluice" and "jwtSecretFile" not in example


# (3) sd_notify ------------------------------------------------------------------------------------------------------

def test_sd_notify_ready_watchdog_stopping(sluice_bin, tmp_state):
    notify = NotifySocket()
    s = Sluice(sluice_bin, state_dir=tmp_state, env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "2000000"})
    try:
        s.start()
        notify.wait_for("READY=1")
        ready = notify.assignments("READY=1")
        assert len(ready) == 1
        notify.wait_for("WATCHDOG=1", count=4, timeout=8)
        pings = [t for t in notify.assignments("WATCHDOG=1") if t >= ready[0]]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert gaps and all(0.7 <= g <= 1.5 for g in gaps), gaps     # half of WATCHDOG_USEC, on a 200 ms tick
    finally:
        code, took = s.stop(signal.SIGTERM)
    notify.wait_for("STOPPING=1", timeout=2)
    assert code == 0 and took < 5, (code, took)
    print(f"\nSIGTERM → exit in {took:.3f} s")
    notify.close()


def test_sd_notify_abstract_socket_and_no_watchdog_unless_asked(sluice_bin, tmp_state):
    notify = NotifySocket(abstract=True)
    # WATCHDOG_PID names another process: the watchdog is not Sluice's to feed
    s = Sluice(sluice_bin, state_dir=tmp_state, env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "400000",
                                                      "WATCHDOG_PID": "1"})
    try:
        s.start()
        notify.wait_for("READY=1")
        time.sleep(1.0)
        assert notify.assignments("WATCHDOG=1") == []
    finally:
        code, _ = s.stop(signal.SIGTERM)
    notify.wait_for("STOPPING=1", timeout=2)
    assert code == 0
    notify.close()


# (4) read-only root -------------------------------------------------------------------------------------------------

def test_full_api_on_a_read_only_root(sluice_bin, tmp_path, echo_server):
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = write_config(str(conf_dir))
    os.remove(os.path.join(conf_dir, "jwt.secret"))     # the secret is created in the state dir, like the example
    with open(config) as f:
        data = json.load(f)
    del data["jwtSecretFile"]
    with open(config, "w") as f:
        json.dump(data, f)
    before = sorted(os.listdir(conf_dir)), os.stat(conf_dir).st_mtime_ns
    s = Sluice(wrapper(sluice_bin, [str(state)]), args=["--config", config], state_dir=str(state))
    try:
        s.start()
        with open(state / "jwt_secret") as f:
            secret = f.read().strip()
        assert len(secret) == 64 and os.stat(state / "jwt_secret").st_mode & 0o777 == 0o600
        token = token_for("u-admin", secret)
        assert request(s.port, "GET", "/healthz").status == 200
        stream = SSEStream(s.port, token)
        try:
            assert stream.status == 200
            assert stream.next_statuses() == {}
            t = local_tunnel(18391, auto_start=True, target_port=echo_server.port)
            r = request(s.port, "POST", "/ssh/tunnel/connect", body=t, token=token)
            assert r.status == 200, r
            stream.wait_for(lambda st: st.get(t["name"], {}).get("status") == "connected")
            with socket.create_connection(("127.0.0.1", 18391), timeout=5) as c:    # the tunnel carries data
                c.sendall(b"read-only root")
                assert c.recv(100) == b"read-only root"
            r = request(s.port, "GET", "/ssh/tunnel/status", token=token)
            assert r.status == 200 and t["name"] in r.json()
            r = request(s.port, "POST", "/ssh/tunnel/disconnect", body={"tunnelName": t["name"]}, token=token)
            assert r.status == 200, r
            stream.wait_for(lambda st: st.get(t["name"], {}).get("manualDisconnect") is True)
        finally:
            stream.close()
        s.proc.send_signal(signal.SIGHUP)                   # reading the configuration again writes nothing either
        s.wait_for("event=config.reloaded")
        assert request(s.port, "GET", "/healthz").status == 200
        open_stream = SSEStream(s.port, token)              # a subscriber still connected when SIGTERM comes
        assert open_stream.next_statuses()
    finally:
        code, took = s.stop(signal.SIGTERM)
    log = s.log()
    assert code == 0 and took < 5, log
    print(f"\nSIGTERM with an SSE subscriber → exit in {took:.3f} s")
    assert "readonly:" not in log and "level=error" not in log and "Read-only file system" not in log, log
    assert (sorted(os.listdir(conf_dir)), os.stat(conf_dir).st_mtime_ns) == before
    leftovers = [n for n in os.listdir(state) if ".tmp-" in n or ".corrupt-" in n]
    assert leftovers == [], leftovers


# (5) power cuts -----------------------------------------------------------------------------------------------------

KILLS = 200


def check_state_dir(state):
    """Every state file is whole: JSON files parse, and nothing was set aside as corrupt."""
    seen = set()
    for name in os.listdir(state):
        path = os.path.join(state, name)
        assert ".corrupt-" not in name, f"{name}: a state file was found damaged"
        if is_temp(name):
            continue      # a temp file of a write cut short: removed at the next start, never read
        seen.add(name)
        if name.endswith(".json"):
            with open(path, "rb") as f:
                json.loads(f.read())
    return seen


def is_temp(name):
    return name.startswith(".") and ".tmp-" in name


def hammer(port, stop, token):
    """Connect/disconnect with autoStart until told to stop: every call rewrites the autoStart state."""
    t = local_tunnel(18392, auto_start=True)
    while not stop.is_set():
        try:
            request(port, "POST", "/ssh/tunnel/connect", body=t, token=token, timeout=2)
            request(port, "POST", "/ssh/tunnel/disconnect", body={"tunnelName": t["name"]}, token=token, timeout=2)
        except OSError:
            return


def test_state_survives_sigkill_at_any_instant(sluice_bin, tmp_path):
    config = write_config(str(tmp_path))
    state = str(tmp_path / "state")
    os.mkdir(state, 0o700)
    token = token_for("u-admin", SECRET)
    rng = random.Random(20240531)
    ever = set()
    started = time.monotonic()
    for i in range(KILLS):
        if i % 5 == 4:       # a cut while starting: reading the state, removing temp files
            p = subprocess.Popen(command(sluice_bin) + ["serve", "--config", config, "--listen", "127.0.0.1:0",
                                                        "--state", state],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, 0.03))
            p.kill()
            p.wait(5)
            ever |= check_state_dir(state)
            continue
        s = Sluice(sluice_bin, args=["--config", config], state_dir=state)
        s.start()                                             # Sluice always starts again
        assert not [n for n in os.listdir(state) if is_temp(n)], "stale temp files not removed"
        stop = threading.Event()
        worker = threading.Thread(target=hammer, args=(s.port, stop, token), daemon=True)
        worker.start()
        time.sleep(rng.uniform(0.0, 0.12))
        s.proc.send_signal(signal.SIGKILL)                    # the power cut
        s.proc.wait(5)
        stop.set()
        worker.join(5)
        ever |= check_state_dir(state)
    took = time.monotonic() - started
    print(f"\n{KILLS} SIGKILLs in {took:.1f} s; state files seen: {sorted(ever)}")
    if "autostart.json" not in ever:
        pytest.xfail("autostart.json lands with the S2S issue")
