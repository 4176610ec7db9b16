"""The disk image booted whole (issue 22): Sluice from its .deb under a real systemd, kernel and ext4, on a read-only
root with its state on the sluice-data partition. Each guest boots a copy-on-write overlay of the built image; the
host reaches it only through the restricted user-mode network's forwards and the test agent.

Split: the emulated arm64 guest always runs boot, API, tunnel, read-only root, power cuts (a few) and the tmpfs
fallback; the long stages (watchdog soak, package life, the many power-cut rounds) run on the amd64 KVM guest where
KVM works, else on the arm64 guest (conftest.heavy_arch), so every machine runs each stage once."""
import hashlib
import json
import os
import random
import re
import subprocess
import threading
import time

import pytest

from conftest import heavy_arch, measure, need_arch
from harness.api import request, token_for
from harness.flavour import login_key
from harness.servers import send_and_checksum
from vm import ROOT, SSH_ADDR, Guest, partitions

ARCHES = ["arm64", "amd64"]
TUNNEL_PORT = 18080          # the checked-data tunnel's listener in the guest (forwarded from the host)
CHURN_BASE = 19000           # listeners of the power-cut rounds' tunnels (guest loopback)
SSH_PORT_BASE = 2200         # 10.0.2.100:<2200+i> → the harness sshd: a new host (a new known_hosts entry) each
WATCHDOG_SEC = 30
DEB_HOST = "10.0.2.101"      # guestfwd that serves a newer .deb to the guest (one `cat` per connection)
BINARY = {"amd64": "build/x86_64/sluice", "arm64": "build/aarch64/sluice"}
TARGET = {"amd64": "x86_64", "arm64": "aarch64"}
BOOT_TIMEOUT = {"arm64": 240, "amd64": 90}


def rounds(arch):
    if arch == heavy_arch():
        default = 20 if arch == "amd64" else 2
        return int(os.environ.get("SLUICE_BOOT_ROUNDS") or default)
    return int(os.environ.get("SLUICE_BOOT_ROUNDS_LIGHT") or 2)


def tunnel_name(host_id, index, host_name, source, endpoint_host, endpoint_port):
    return f"{host_id}::{index}::{host_name}::{source}::{endpoint_host}::{endpoint_port}"


class Box:
    """A configured guest: its API token, hosts and the names of its tunnels."""

    def __init__(self, guest, sshd, sink, n_hosts):
        self.g = guest
        self.sshd = sshd
        self.sink = sink
        self.n_hosts = n_hosts
        self.secret = None

    @property
    def port(self):
        return self.g.api_port

    def token(self):
        return token_for("u-admin", self.secret)

    def api(self, method, path, body=None, timeout=20):
        return request(self.port, method, path, body=body, token=self.token(), timeout=timeout)

    def read_secret(self):
        self.secret = self.g.sh("cat /var/lib/sluice/jwt_secret").rstrip("\n")
        assert re.fullmatch(r"[0-9a-f]{64}", self.secret), self.secret

    def config(self):
        hosts = [{"id": 0, "name": "appliance", "local": True, "owner": "u-admin"}]
        for i in range(self.n_hosts):
            hosts.append({"id": i + 1, "name": f"h{i}", "ip": SSH_ADDR, "port": 22 if i == 0 else SSH_PORT_BASE + i,
                          "username": self.sshd.user, "owner": "u-admin",
                          "auth": {"type": "key", "keyFile": "/etc/sluice/keys/login"}})
        return {"listen": "0.0.0.0:30003", "stateDir": "/var/lib/sluice", "sseKeepaliveSeconds": 30,
                "bindAllow": ["127.0.0.1", "0.0.0.0"],
                "users": [{"id": "u-admin", "username": "admin", "admin": True}], "hosts": hosts}

    def configure(self):
        """The test configuration and login key, written on the root for a moment made writable."""
        g = self.g
        g.sh("mount -o remount,rw /")
        try:
            g.write("/etc/sluice/keys/login", open(login_key(self.sshd), "rb").read(), mode="0640",
                    owner="root:sluice")
            g.write("/etc/sluice/sluice.json", json.dumps(self.config(), indent=2))
            g.sh("sluice check --config /etc/sluice/sluice.json")
        finally:
            g.sh("sync; mount -o remount,ro /")
        g.sh("systemctl restart sluice")
        g.wait_active(60)

    def connect(self, host_id, index, source, endpoint_port, bind="127.0.0.1", auto=True, endpoint_host="127.0.0.1"):
        name = tunnel_name(host_id, index, f"h{host_id - 1}", source, endpoint_host, endpoint_port)
        body = {"name": name, "sourceHostId": host_id, "tunnelIndex": index, "sourcePort": source,
                "endpointHost": endpoint_host, "endpointPort": endpoint_port, "mode": "local", "bindHost": bind,
                "maxRetries": -1, "retryInterval": 1000, "autoStart": auto}
        r = self.api("POST", "/ssh/tunnel/connect", body)
        assert r.status == 200, r
        return name

    def disconnect(self, name):
        r = self.api("POST", "/ssh/tunnel/disconnect", {"tunnelName": name})
        assert r.status == 200, r

    def statuses(self):
        return self.api("GET", "/ssh/tunnel/status").json()

    def wait_connected(self, names, timeout):
        deadline = time.monotonic() + timeout
        while True:
            st = self.statuses()
            if all(st.get(n, {}).get("status") == "connected" for n in names):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not all connected: { {n: st.get(n) for n in names} }\n"
                                     + self.g.journal("-u sluice")[-3000:])
            time.sleep(0.3)

    def data_name(self):
        return tunnel_name(1, 0, "h0", TUNNEL_PORT, "127.0.0.1", self.sink.port)

    def checked_transfer(self, size=256 * 1024):
        payload = os.urandom(size)
        n, digest = send_and_checksum(self.g.fwd[TUNNEL_PORT], payload, timeout=120)
        assert (n, digest) == (size, hashlib.sha256(payload).hexdigest())


def ready_times(g):
    u = g.unit()
    return int(u["ActiveEnterTimestampMonotonic"]) / 1e6, int(u["ExecMainStartTimestampMonotonic"]) / 1e6


def root_writes(g):
    """Sectors written to the root partition since boot (block layer counters)."""
    dev = g.sh("findmnt -no SOURCE /").strip()
    name = g.sh(f"basename $(readlink -f {dev})").strip()
    fields = g.sh(f"cat /sys/class/block/{name}/stat").split()
    return int(fields[6])


@pytest.fixture(scope="module", params=ARCHES)
def box(request, sshd, sink):
    arch = request.param
    need_arch(arch)
    n_hosts = 1 + 2 * rounds(arch)
    g = Guest(arch, guest_ports=[TUNNEL_PORT], ssh_port=sshd.port,
              ssh_ports=[SSH_PORT_BASE + i for i in range(1, n_hosts)])
    b = Box(g, sshd, sink, n_hosts)
    b.new_deb = os.path.join(g.dir, "new.deb")
    g.net += f",guestfwd=tcp:{DEB_HOST}:80-cmd:cat {b.new_deb}"
    started = time.monotonic()
    g.boot()
    g.wait_agent(BOOT_TIMEOUT[arch])
    g.wait_active(BOOT_TIMEOUT[arch])
    b.boot_wall = time.monotonic() - started
    yield b
    g.cleanup()


def test_boot_ready_and_api(box):
    """The unit reaches active through READY=1 with the package's configuration; the status page and the API answer
    from the host through the hostfwd."""
    g = box.g
    u = g.unit()
    assert u["ActiveState"] == "active" and u["SubState"] == "running", u
    assert g.sh("systemctl show sluice -p Type -p WatchdogUSec") == "Type=notify\nWatchdogUSec=30s\n"
    ready, started = ready_times(g)
    measure(f"{g.arch}.ready_after_kernel_start_s", round(ready, 2))
    measure(f"{g.arch}.exec_to_ready_s", round(ready - started, 3))
    measure(f"{g.arch}.qemu_start_to_active_wall_s", round(box.boot_wall, 1))
    assert "event=serve.listening" in g.journal("-u sluice")
    page = request(box.port, "GET", "/")
    assert page.status == 200 and b"<html" in page.body.lower(), page
    box.read_secret()
    r = box.api("GET", "/ssh/tunnel/status")
    assert r.status == 200 and isinstance(r.json(), dict), r
    assert request(box.port, "GET", "/ssh/tunnel/status").status == 401


def test_root_read_only_only_state_written(box):
    """/ is mounted read-only and a write under it fails; the only read-write disk file system is the data partition
    on /var/lib/sluice, which Sluice has written (jwt_secret), while not one sector of the root partition was."""
    g = box.g
    assert "ro" in g.sh("findmnt -no OPTIONS /").split(",")
    rc, out = g.run("touch /sluice-write-probe")
    assert rc != 0 and "Read-only file system" in out, out
    rc, out = g.run("runuser -u sluice -- touch /etc/sluice/probe")
    assert rc != 0
    disks = g.sh("findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS -t ext4").splitlines()
    rw = [d.split()[0] for d in disks if "rw" in d.split()[3].split(",")]
    assert rw == ["/var/lib/sluice"], disks
    assert g.sh("findmnt -no SOURCE /var/lib/sluice").strip() == g.sh("readlink -f /dev/disk/by-label/sluice-data").strip()
    assert g.sh("stat -c %U /var/lib/sluice/jwt_secret").strip() == "sluice"
    assert root_writes(g) == 0


def test_tunnel_from_guest_carries_checked_data(box):
    """A local tunnel of the guest's Sluice to the harness sshd (through the guestfwd) carries checked data from the
    host (through a hostfwd to its listener) to a checksum sink on the host."""
    box.configure()
    name = box.connect(1, 0, TUNNEL_PORT, box.sink.port, bind="0.0.0.0")
    box.wait_connected([name], 60)
    box.checked_transfer(1024 * 1024)
    known = box.g.sh("cat /var/lib/sluice/known_hosts")
    assert f"{SSH_ADDR} " in known, known


def test_watchdog(box):
    """A healthy Sluice under load for 2 × WatchdogSec is never killed; frozen with SIGSTOP it is killed by the
    watchdog and restarted, and its autoStart tunnel comes back."""
    g = box.g
    if g.arch != heavy_arch():
        pytest.skip(f"the watchdog stage runs on the {heavy_arch()} guest")
    u0 = g.unit()
    pid0, n0 = int(u0["MainPID"]), int(u0["NRestarts"])
    stop = time.monotonic() + 2 * WATCHDOG_SEC + 5
    errors, counts = [], {"api": 0, "data": 0}

    def api_load():
        while time.monotonic() < stop:
            try:
                assert box.api("GET", "/ssh/tunnel/status").status == 200
                counts["api"] += 1
            except Exception as e:      # noqa: BLE001 (reported below)
                errors.append(repr(e))
                return

    def data_load():
        while time.monotonic() < stop:
            try:
                box.checked_transfer(256 * 1024)
                counts["data"] += 1
            except Exception as e:      # noqa: BLE001
                errors.append(repr(e))
                return

    threads = [threading.Thread(target=f) for f in (api_load, api_load, data_load)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    u1 = g.unit()
    assert (int(u1["MainPID"]), int(u1["NRestarts"])) == (pid0, n0), u1
    assert "Watchdog timeout" not in g.journal("-u sluice")
    measure(f"{g.arch}.watchdog_soak", f"{2 * WATCHDOG_SEC + 5}s, {counts['api']} API requests, "
                                       f"{counts['data']} checked 256 KiB transfers, NRestarts {n0}")
    # frozen
    t0 = time.monotonic()
    g.sh(f"kill -STOP {pid0}")
    while True:
        u = g.unit()
        if u["ActiveState"] == "active" and int(u["MainPID"]) not in (0, pid0):
            break
        assert time.monotonic() - t0 < WATCHDOG_SEC + 20, u
        time.sleep(0.5)
    took = time.monotonic() - t0
    assert int(u["NRestarts"]) == n0 + 1, u
    journal = g.journal("-u sluice")
    assert "Watchdog timeout" in journal, journal[-2000:]
    killed = [float(m) for m in re.findall(r"\[\s*([0-9.]+)\] \S+ systemd\[1\]: sluice.service: Watchdog timeout", journal)]
    ready, _ = ready_times(g)
    measure(f"{g.arch}.watchdog_stop_to_active_s", round(took, 1))
    if killed:
        measure(f"{g.arch}.watchdog_kill_to_ready_s", round(ready - killed[-1], 2))
    box.wait_connected([box.data_name()], 60)
    box.checked_transfer()


class Churn(threading.Thread):
    """Writes state while the power is cut: connects autoStart tunnels on hosts never seen (new known_hosts entries),
    then connects and disconnects them in a loop. Records every request and whether its answer came."""

    def __init__(self, box, hosts, base_names):
        super().__init__(daemon=True)
        self.box = box
        self.hosts = hosts
        self.states = [frozenset(base_names)]   # the autostart set after each request, in order
        self.acked = 0                          # requests answered 200
        self.connected_hosts = set()            # hosts seen connected (their key must be in known_hosts)
        self.attempted_hosts = set()
        self.stop = False

    def run(self):
        try:
            names = []
            for k, h in enumerate(self.hosts):
                src = CHURN_BASE + h
                name = tunnel_name(h + 1, 0, f"h{h}", src, "127.0.0.1", self.box.sink.port)
                self.attempted_hosts.add(h)
                self.states.append(self.states[-1] | {name})
                self.box.connect(h + 1, 0, src, self.box.sink.port)
                self.acked += 1
                names.append(name)
            deadline = time.monotonic() + 60
            while not self.stop and time.monotonic() < deadline:
                st = self.box.statuses()
                for h, n in zip(self.hosts, names):
                    if st.get(n, {}).get("status") == "connected":
                        self.connected_hosts.add(h)
                if len(self.connected_hosts) == len(self.hosts):
                    break
                time.sleep(0.1)
            i = 0
            while not self.stop:
                name = names[i % len(names)]
                if name in self.states[-1]:
                    self.states.append(self.states[-1] - {name})
                    self.box.disconnect(name)
                else:
                    self.states.append(self.states[-1] | {name})
                    src = int(name.split("::")[3])
                    self.box.connect(int(name.split("::")[0]), 0, src, self.box.sink.port)
                self.acked += 1
                i += 1
        except Exception:       # noqa: BLE001 (the power went)
            pass


def parse_known_hosts(text, sshd):
    keys = {" ".join(v.split()[:2]) for v in sshd.host_keys.values()}
    hosts = []
    assert text == "" or text.endswith("\n"), f"torn known_hosts: {text[-200:]!r}"
    for line in text.splitlines():
        m = re.fullmatch(r"(\S+) (\S+ \S+)", line)
        assert m, f"bad known_hosts line {line!r}"
        assert m.group(2) in keys, line
        hm = re.fullmatch(r"\[10\.0\.2\.100\]:(\d+)|10\.0\.2\.100", m.group(1))
        assert hm, line
        port = int(hm.group(1) or 22)
        hosts.append(0 if port == 22 else port - SSH_PORT_BASE)
    assert len(hosts) == len(set(hosts)), text
    return set(hosts)


def test_power_cuts(box):
    """qemu SIGKILLed while Sluice writes state, then booted again, ROUNDS times: autostart.json is exactly the state
    before or after the request in flight (never torn, never older than an answered request); known_hosts parses, holds
    every host seen connected and nothing else; the data partition's fsck at boot succeeds; the tunnels come back."""
    g = box.g
    n = rounds(g.arch)
    rng = random.Random(int(os.environ.get("SLUICE_BOOT_SEED") or time.time()))
    boot_times, files_checked, fsck_lines, writes = [], 0, [], []
    data = box.data_name()
    for r in range(n):
        before = json.loads(g.sh("cat /var/lib/sluice/autostart.json"))
        base = {t["body"]["name"] for t in before["tunnels"]}
        churn = Churn(box, [1 + 2 * r, 2 + 2 * r], base)
        churn.start()
        time.sleep(rng.uniform(0.5, 4.0 if g.arch == "amd64" else 8.0))
        g.power_cut()
        churn.stop = True
        churn.join(30)
        t0 = time.monotonic()
        g.boot()
        g.wait_agent(BOOT_TIMEOUT[g.arch])
        g.wait_active(BOOT_TIMEOUT[g.arch])
        boot_times.append(time.monotonic() - t0)
        # the data partition, not the tmpfs fallback (which a boot slower than fstab's device timeout would get)
        fs = g.sh("findmnt -no FSTYPE /var/lib/sluice").strip()
        assert fs == "ext4", (f"round {r}: /var/lib/sluice is {fs} after {boot_times[-1]:.0f} s of boot\n"
                              + g.journal("-u var-lib-sluice.mount -u sluice-state-fallback")[-2000:])
        # autostart.json: one of the states the requests went through, not older than the last answered one
        rc, text = g.run("cat /var/lib/sluice/autostart.json")
        assert rc == 0, (f"round {r}: autostart.json missing after the power cut ({churn.acked} requests answered)\n"
                         + g.run("findmnt /var/lib/sluice; ls -la --full-time /var/lib/sluice")[1]
                         + g.journal("-u sluice -u var-lib-sluice.mount -u sluice-state-fallback")[-3000:])
        saved = json.loads(text)
        got = frozenset(t["body"]["name"] for t in saved["tunnels"])
        possible = churn.states[churn.acked:]
        assert got in possible, (r, sorted(got), [sorted(s) for s in possible], churn.acked, len(churn.states))
        writes.append(f"{churn.acked} answered, file = state {churn.states.index(got, churn.acked)}"
                      f"/{len(churn.states) - 1}")
        # known_hosts: whole lines, known keys, every host seen connected, no host never tried
        known = parse_known_hosts(g.sh("cat /var/lib/sluice/known_hosts"), box.sshd)
        tried = set(range(0, 3 + 2 * r))
        assert churn.connected_hosts <= known <= tried, (r, churn.connected_hosts, known)
        files_checked += 2
        assert g.sh("ls /var/lib/sluice | grep -c corrupt || true").strip() == "0"
        # the data partition's check at boot
        fsck = g.unit(r"systemd-fsck@dev-disk-by\\x2dlabel-sluice\\x2ddata", "ActiveState", "Result")
        assert fsck == {"ActiveState": "active", "Result": "success"}, fsck
        fsck_lines.append(g.sh(r"journalctl -b -o cat -u 'systemd-fsck@dev-disk-by\x2dlabel-sluice\x2ddata.service' "
                               "| grep sluice-data || true").strip())
        assert root_writes(g) == 0
        # the tunnels come back
        box.wait_connected(sorted(got), 120)
        assert data in got
        box.checked_transfer(64 * 1024)
    measure(f"{g.arch}.power_cut_rounds", n)
    measure(f"{g.arch}.power_cut_files_checked", files_checked)
    measure(f"{g.arch}.power_cut_state_requests", writes)
    measure(f"{g.arch}.power_cut_boot_to_active_s", [round(t, 1) for t in boot_times])
    measure(f"{g.arch}.power_cut_fsck_at_boot_sample", fsck_lines[-3:])


def build_deb(arch, version, outdir):
    script = os.environ.get("SLUICE_BUILD_DEB") or os.path.join(ROOT, "tools", "build-deb.sh")
    out = subprocess.run([script, TARGET[arch], os.path.join(ROOT, BINARY[arch]), outdir, version], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    assert os.path.exists(out), out
    return out


def test_package_upgrade_remove_purge(box):
    """In the booted image (root remounted read-write for the step): an upgrade to a newer build of the .deb keeps the
    edited conffile and the state and restarts the service; `apt-get remove` stops it and keeps the configuration;
    `apt-get purge` removes the configuration, the user and the state."""
    g = box.g
    if g.arch != heavy_arch():
        pytest.skip(f"the package life stage runs on the {heavy_arch()} guest")
    old = g.sh("dpkg-query -W -f '${Version}' sluice").strip()
    new = old + "+boottest1"
    built = build_deb(g.arch, new, g.dir)
    os.rename(built, box.new_deb)
    digest = hashlib.sha256(open(box.new_deb, "rb").read()).hexdigest()
    conf_before = g.sh("sha256sum < /etc/sluice/sluice.json")
    # the configuration is an edited conffile (the test's hosts): dpkg must keep it
    conffiles = g.sh("dpkg-query -W -f '${Conffiles}' sluice").split()
    assert conffiles[0] == "/etc/sluice/sluice.json"
    assert conffiles[1] != g.sh("md5sum < /etc/sluice/sluice.json").split()[0]
    secret = g.sh("cat /var/lib/sluice/jwt_secret")
    pid0 = g.unit()["MainPID"]
    g.sh("mount -o remount,rw /")
    try:
        g.sh(f"cat < /dev/tcp/{DEB_HOST}/80 > /run/new.deb")
        assert g.sh("sha256sum < /run/new.deb").split()[0] == digest
        t0 = time.monotonic()
        g.sh("DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold /run/new.deb", timeout=300)
        measure(f"{g.arch}.package_upgrade_s", round(time.monotonic() - t0, 1))
        assert g.sh("dpkg-query -W -f '${Version}' sluice") == new
        assert g.sh("sha256sum < /etc/sluice/sluice.json") == conf_before
        u = g.wait_active(60)
        assert u["MainPID"] != pid0, "not restarted on upgrade"
        assert g.sh("cat /var/lib/sluice/jwt_secret") == secret
        box.wait_connected([box.data_name()], 120)     # the autoStart tunnel, after the restart
        # remove: stopped, configuration and state kept
        g.sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q sluice", timeout=300)
        assert g.run("systemctl is-active sluice")[1].strip() in ("inactive", "failed", "unknown")
        assert g.run("pgrep -x sluice")[0] != 0
        assert g.sh("dpkg-query -W -f '${Status}' sluice") == "deinstall ok config-files"
        assert g.sh("sha256sum < /etc/sluice/sluice.json") == conf_before
        assert g.run("test -e /usr/bin/sluice")[0] != 0
        assert g.sh("cat /var/lib/sluice/jwt_secret") == secret
        # purge: configuration, user and state gone
        g.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q sluice", timeout=300)
        assert g.run("getent passwd sluice")[0] != 0
        assert g.run("getent group sluice")[0] != 0
        assert g.run("test -e /etc/sluice/sluice.json")[0] != 0
        assert g.sh("ls -A /var/lib/sluice | grep -v '^lost+found$' || true").strip() == ""
        assert g.run("dpkg-query -W -f '${Status}' sluice 2>/dev/null")[1].strip() in ("", "unknown ok not-installed")
    finally:
        g.sh("sync; mount -o remount,ro /")


def test_clean_shutdown_data_partition_fsck(box):
    """After all of it: a clean shutdown, and e2fsck -fn of the data partition from the host finds it clean."""
    g = box.g
    g.shutdown()
    start, size = partitions(g.image)["sluice-data"]
    part = os.path.join(g.dir, "data.raw")
    whole = os.path.join(g.dir, "disk.raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", g.disk, whole], check=True)
    subprocess.run(["dd", f"if={whole}", f"of={part}", "bs=1M", f"skip={start // 1048576}",
                    f"count={size // 1048576}", "status=none"], check=True)
    os.unlink(whole)
    fsck = subprocess.run(["e2fsck", "-fn", part], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    measure(f"{g.arch}.final_e2fsck", fsck.stdout.strip().splitlines()[-1])
    os.unlink(part)
