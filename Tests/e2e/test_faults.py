"""Fault injection (issue #6): the e2e sshd runs in a private network namespace behind a veth pair, and the link, the
server, the target, the buffer pool, the descriptor table and the state directory's disk are broken one at a time.
Each scenario ends in the status tunnels-api.md §8 says, with a clear reason, and the process keeps serving
(/healthz and a status call answer afterwards)."""
import json
import os
import resource
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from harness.api import request
from harness.appliance import Appliance
from harness.netio import recv_exact
from harness.netns import NetNS, unavailable
from harness.ports import free_port
from harness.servers import ChecksumSink, EchoServer, send_and_checksum
from harness.sshd import Sshd
from harness.s2s import connect, connected, descendants_of, disconnect, failed, status, wait_status

MiB = 1 << 20
SESSION_DEATH = ("closed by remote host", "connection reset", "broken pipe", "end of file", "eof")


# ---- fixtures -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ns():
    why = unavailable()
    if why:
        pytest.skip(f"fault injection needs network namespaces: {why}")
    n = NetNS().create()
    yield n
    n.close()


@pytest.fixture
def ns_sshd(ns):
    server = Sshd(address=ns.ns_ip, prefix=ns.prefix).start()
    yield server
    ns.clear()
    kill_sshd(server)           # SIGKILL works on stopped processes too
    server.cleanup()


def kill_sshd(server, sig=signal.SIGKILL):
    """The listener and every per-connection child (a session lives in sshd's grandchild)."""
    if not server.proc:
        return
    pids = [server.proc.pid] + descendants_of(server.proc.pid)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    server.proc.wait(5)
    server.proc = None


def assert_serving(app):
    """The process is alive and answers: /healthz without a token, and an authenticated status call."""
    assert app.sluice.proc.poll() is None, "sluice exited"
    r = request(app.port, "GET", "/healthz")
    assert (r.status, r.body) == (200, b"ok"), r
    r = request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin"))
    assert r.status == 200, r
    return r.json()


class Pump:
    """Streams data through a forwarded connection on a thread (an echo target sends it back) until the
    connection ends; records how it ended."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sent = 0
        self.received = 0
        self.ended = threading.Event()
        self.how = None
        threading.Thread(target=self._send, daemon=True).start()
        threading.Thread(target=self._recv, daemon=True).start()

    def _send(self):
        block = os.urandom(64 * 1024)
        try:
            while not self.ended.is_set():
                self.sock.sendall(block)
                self.sent += len(block)
        except OSError as e:
            self._end(f"send: {e!r}")

    def _recv(self):
        try:
            while True:
                chunk = self.sock.recv(262144)
                if not chunk:
                    self._end("eof")
                    return
                self.received += len(chunk)
        except OSError as e:
            self._end(f"recv: {e!r}")

    def _end(self, how):
        if not self.ended.is_set():
            self.how = how
            self.ended.set()

    def close(self):
        self.ended.set()
        self.sock.close()


def echo_once(port, data=b"still here"):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(data)
            return recv_exact(s, len(data))
    except OSError as e:
        return repr(e)


def need_loss(ns):
    if not ns.netem and not ns.has_iptables():
        pytest.skip("packet loss needs the netem qdisc or iptables; this machine has neither")


def first_down(seen):
    return next(s for s in seen if s.get("status") not in ("connected", "connecting", None))


# ---- the server and the link --------------------------------------------------------------------------------------

def test_sshd_killed_mid_transfer(sluice_bin, ns, ns_sshd):
    echo = EchoServer(host=ns.host_ip)          # the target, reached by sshd across the veth
    app = Appliance(sluice_bin, ns_sshd).start()
    pump = None
    try:
        source = free_port()
        name = connect(app, 1, "edge", 0, "local", source, echo.port, maxRetries=-1, retryInterval=1000,
                       targetHost=ns.host_ip)
        connected(app, name)
        pump = Pump(source)
        wait_status(app, name, lambda s: s.get("bytesIn", 0) >= 4 * MiB, timeout=30)
        kill_sshd(ns_sshd)
        killed = time.monotonic()
        st, seen = wait_status(app, name, lambda s: s.get("status") == "waiting", timeout=15, interval=0.02)
        down = first_down(seen)
        print(f"sshd killed: {down}, then {st}")
        assert down["errorType"] == "NETWORK_ERROR", seen
        assert any(w in down["reason"].lower() for w in SESSION_DEATH), seen
        assert st["errorType"] in ("NETWORK_ERROR",) and st["maxRetries"] == -1, st
        assert pump.ended.wait(10), "the forwarded connection was left hanging"
        print(f"stream ended ({pump.how}) {time.monotonic() - killed:.2f} s after the kill, {pump.received} bytes echoed")
        assert_serving(app)
        ns_sshd.start()
        connected(app, name, timeout=20)
        assert echo_once(source) == b"still here"
        assert_serving(app)
    finally:
        if pump:
            pump.close()
        app.stop()
        echo.close()


def test_sshd_frozen_mid_transfer_keepalive(sluice_bin, ns, ns_sshd):
    echo = EchoServer(host=ns.host_ip)
    app = Appliance(sluice_bin, ns_sshd).start()
    pump = None
    frozen = []
    try:
        source = free_port()
        name = connect(app, 1, "edge", 0, "local", source, echo.port, maxRetries=-1, retryInterval=1000,
                       keepaliveInterval=1000, keepaliveCountMax=2, targetHost=ns.host_ip)
        connected(app, name)
        pump = Pump(source)
        wait_status(app, name, lambda s: s.get("bytesIn", 0) >= 4 * MiB, timeout=30)
        frozen = [ns_sshd.proc.pid] + descendants_of(ns_sshd.proc.pid)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        st, seen = wait_status(app, name, lambda s: s.get("reason") == "Keepalive timeout", timeout=15,
                               interval=0.02)
        took = time.monotonic() - stopped
        print(f"frozen sshd mid-transfer: keepalive timeout after {took:.2f} s; {st}")
        assert st["errorType"] == "TIMEOUT", st
        assert took <= 1 * 2 + 1 + 1.5, took                 # interval × countMax + 1 s, plus slack
        assert pump.ended.wait(10), "the forwarded connection was left hanging"
        assert_serving(app)
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        frozen = []
        connected(app, name, timeout=30)
        assert echo_once(source) == b"still here"
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        if pump:
            pump.close()
        app.stop()
        echo.close()


def test_blackhole_detected_retried_and_recovered(sluice_bin, ns, ns_sshd):
    """Every packet on the link vanishes (netem loss 100%, or iptables DROP where the kernel has no netem): no RST,
    no error, only silence. Keepalive finds it; the retries wait in `waiting` while SYNs vanish; lifting the
    blackhole lets the pending attempt through."""
    need_loss(ns)
    echo = EchoServer(host=ns.host_ip)
    app = Appliance(sluice_bin, ns_sshd).start()
    pump = None
    try:
        source = free_port()
        name = connect(app, 1, "edge", 0, "local", source, echo.port, maxRetries=-1, retryInterval=1000,
                       keepaliveInterval=1000, keepaliveCountMax=2, targetHost=ns.host_ip)
        connected(app, name)
        pump = Pump(source)
        wait_status(app, name, lambda s: s.get("bytesIn", 0) >= 2 * MiB, timeout=30)
        ns.blackhole()
        dropped = time.monotonic()
        st, seen = wait_status(app, name, lambda s: s.get("reason") == "Keepalive timeout", timeout=15,
                               interval=0.02)
        took = time.monotonic() - dropped
        print(f"blackhole ({'netem' if ns.netem else 'iptables DROP'}): keepalive timeout after {took:.2f} s")
        assert st["errorType"] == "TIMEOUT" and took <= 4.5, (took, st)
        assert pump.ended.wait(10), "the forwarded connection was left hanging"
        # the next attempts go nowhere: the tunnel stays in the retry path, never connected, never terminal
        st, _ = wait_status(app, name, lambda s: s.get("status") == "waiting", timeout=10)
        time.sleep(3)
        st = status(app, name)
        assert st["status"] in ("waiting", "retrying", "failed") and not st.get("retryExhausted"), st
        assert st["errorType"] == "TIMEOUT", st
        assert_serving(app)
        ns.clear()
        lifted = time.monotonic()
        connected(app, name, timeout=40)
        print(f"blackhole lifted: connected again after {time.monotonic() - lifted:.1f} s")
        assert echo_once(source) == b"still here"
    finally:
        ns.clear()
        if pump:
            pump.close()
        app.stop()
        echo.close()


def test_lossy_link_carries_data_intact(sluice_bin, ns, ns_sshd):
    need_loss(ns)
    sink = ChecksumSink(host=ns.host_ip)
    app = Appliance(sluice_bin, ns_sshd).start()
    try:
        ns.loss(5)
        source = free_port()
        name = connect(app, 1, "edge", 0, "local", source, sink.port, maxRetries=-1, retryInterval=1000,
                       targetHost=ns.host_ip)
        connected(app, name, timeout=60)
        data = os.urandom(8 * MiB)
        import hashlib
        started = time.monotonic()
        assert send_and_checksum(source, data, timeout=120) == (len(data), hashlib.sha256(data).hexdigest())
        dropped = ns.dropped()
        print(f"5% loss each way: 8 MiB intact in {time.monotonic() - started:.1f} s, {dropped} packets dropped")
        assert dropped is None or dropped > 0
        assert status(app, name)["status"] == "connected"
        assert_serving(app)
    finally:
        ns.clear()
        app.stop()
        sink.close()


def test_delayed_link(sluice_bin, ns, ns_sshd):
    if not ns.netem:
        pytest.skip("delay needs the netem qdisc: this kernel is built without CONFIG_NET_SCH_NETEM "
                    "(loss and the blackhole use iptables instead)")
    echo = EchoServer(host=ns.host_ip)
    app = Appliance(sluice_bin, ns_sshd).start()
    try:
        ns.delay(150)
        source = free_port()
        name = connect(app, 1, "edge", 0, "local", source, echo.port, targetHost=ns.host_ip)
        connected(app, name, timeout=30)
        assert echo_once(source) == b"still here"
        assert_serving(app)
    finally:
        ns.clear()
        app.stop()
        echo.close()


# ---- refusals -----------------------------------------------------------------------------------------------------

def test_target_refusing(sluice_bin, ns, ns_sshd):
    """The forward's target refuses: each client connection is closed promptly, the tunnel stays connected.
    The SSH server's port refusing: NETWORK_ERROR retries, then `Max retries exhausted: …` (terminal)."""
    app = Appliance(sluice_bin, ns_sshd).start()
    try:
        source = free_port()
        closed_port = free_port(ns.host_ip)
        name = connect(app, 1, "edge", 0, "local", source, closed_port, targetHost=ns.host_ip)
        connected(app, name)
        for _ in range(50):
            with socket.create_connection(("127.0.0.1", source), timeout=10) as s:
                s.settimeout(5)
                try:
                    assert s.recv(10) == b""
                except ConnectionResetError:
                    pass
        st = wait_status(app, name, lambda s: s.get("activeConnections", 0) == 0, timeout=5)[0]
        assert st["status"] == "connected", st
        disconnect(app, name)

        kill_sshd(ns_sshd)
        name = connect(app, 1, "edge", 1, "local", free_port(), 9, maxRetries=2, retryInterval=1000)
        st, seen = wait_status(app, name, lambda s: s.get("retryExhausted") is True, timeout=20)
        print(f"sshd port refusing: {st}")
        assert (st["connected"], st["status"], st["errorType"]) == (False, "failed", "NETWORK_ERROR"), st
        assert st["reason"].startswith("Max retries exhausted: SSH connection to ") and \
            st["reason"].endswith("connection refused") and "exhausted: Max" not in st["reason"], st
        assert_serving(app)
    finally:
        app.stop()


def test_remote_forward_port_taken_is_terminal(sluice_bin, ns, ns_sshd):
    port = free_port()
    holder = ns.popen(["python3", "-c", "import socket,sys,time\n"
                       f"s=socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(1)\n"
                       "print('held', flush=True); time.sleep(600)"], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    app = Appliance(sluice_bin, ns_sshd).start()
    try:
        name = connect(app, 1, "edge", 0, "remote", port, 9, maxRetries=3, retryInterval=1000)
        st = failed(app, name)
        assert (st["reason"], st["errorType"]) == (f"Remote port forwarding failed for listen port {port}",
                                                   "CONNECTION_FAILED"), st
        time.sleep(2.5)                      # a retry (1 s) would show by now
        st = status(app, name)
        assert st["status"] == "failed" and "retryCount" not in st, st
        assert_serving(app)
    finally:
        holder.kill()
        holder.wait()
        app.stop()


# ---- resources ----------------------------------------------------------------------------------------------------

def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_many(port, count, timeout=5):
    socks, failures = [], 0
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=timeout))
        except OSError:
            failures += 1
    return socks, failures


def alive(socks, wait=1.0):
    """The sockets the far side has not closed (no EOF, no reset)."""
    time.sleep(wait)
    live = []
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                continue
        except BlockingIOError:
            live.append(s)
            continue
        except OSError:
            continue
    return live


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_buffer_pool_exhausted_by_5000_connections(sluice_bin, sshd, echo_server):
    if raise_nofile(6000) < 6000:
        pytest.skip("the test process cannot hold 5000 sockets (RLIMIT_NOFILE hard limit)")
    # 64 buffers = 32 streams; the per-tunnel limit is above that, so the pool is what runs out
    app = Appliance(sluice_bin, sshd, limits={"bufferSize": 4096, "bufferCount": 64,
                                              "maxConnectionsPerTunnel": 10000}).start()
    existing, flood = [], []
    try:
        source = free_port()
        name = connect(app, 1, "edge", 0, "local", source, echo_server.port)
        connected(app, name)
        for i in range(10):
            s = socket.create_connection(("127.0.0.1", source), timeout=10)
            s.sendall(b"before %d" % i)
            assert recv_exact(s, len(b"before %d" % i)) == b"before %d" % i
            existing.append(s)
        started = time.monotonic()
        flood, failures = open_many(source, 5000)
        live = alive(flood)
        print(f"5000 connections in {time.monotonic() - started:.1f} s: {len(live)} kept, "
              f"{len(flood) - len(live)} closed by Sluice, {failures} connects failed")
        assert len(live) <= 32 - 10, len(live)
        assert len(flood) - len(live) >= 4900
        for i, s in enumerate(existing):         # the streams that had their buffers are unharmed
            s.sendall(b"after %d" % i)
            assert recv_exact(s, len(b"after %d" % i)) == b"after %d" % i
        assert status(app, name)["status"] == "connected"
        assert_serving(app)
        for s in flood + existing:
            s.close()
        flood, existing = [], []
        wait_status(app, name, lambda s: s.get("activeConnections", 0) == 0, timeout=10)
        again, _ = open_many(source, 30)           # every buffer came back
        for i, s in enumerate(again):
            s.sendall(b"again")
            assert recv_exact(s, 5) == b"again", i
            s.close()
        assert_serving(app)
    finally:
        for s in flood + existing:
            s.close()
        app.stop()


def test_fd_limit_reached(sluice_bin, sshd, echo_server):
    """Sluice under RLIMIT_NOFILE 256 gets 400 connections on an SSH tunnel, 400 on a tunnel of the appliance's
    own host and 300 idle ones on the API: accept fails with EMFILE. It must not crash or spin, and answers the API once the load drops."""
    app = Appliance(sluice_bin, sshd, prefix=["prlimit", "--nofile=256:256"]).start()
    flood = []
    try:
        pid = app.sluice.proc.pid
        with open(f"/proc/{pid}/limits") as f:
            assert any(l.startswith("Max open files") and l.split()[3] == "256" for l in f), "prlimit not applied"
        ssh_port, local_port = free_port(), free_port()
        ssh_name = connect(app, 1, "edge", 0, "local", ssh_port, echo_server.port)
        local_name = connect(app, 0, "appliance", 0, "local", local_port, echo_server.port)
        connected(app, ssh_name)
        connected(app, local_name)
        for port, count in ((ssh_port, 400), (local_port, 400), (app.port, 300)):     # and idle API connections
            got, _ = open_many(port, count, timeout=2)
            flood += got
        cpu = cpu_seconds(pid)
        time.sleep(3)
        busy = (cpu_seconds(pid) - cpu) / 3
        print(f"fd limit 256: {len(flood)} client sockets open (API too); sluice CPU while exhausted {busy:.0%}; "
              f"fds {len(os.listdir(f'/proc/{pid}/fd'))}")
        assert app.sluice.proc.poll() is None
        for s in flood:
            s.close()
        flood = []
        deadline = time.monotonic() + 20
        while True:
            try:
                assert_serving(app)
                break
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        for name, port in ((ssh_name, ssh_port), (local_name, local_port)):
            # the listen backlog still holds connections the clients gave up on: Sluice accepts (and drops) them
            # first, and may be short of descriptors for a moment while it does
            deadline = time.monotonic() + 20
            while echo_once(port) != b"still here":
                assert time.monotonic() < deadline, f"{name} does not carry data again"
                time.sleep(0.5)
            st = wait_status(app, name, lambda s: s.get("activeConnections", 0) == 0, timeout=20)[0]
            assert st["status"] == "connected", st
        assert "level=error event=serve" not in app.sluice.log()
        # a listener left on epoll after EMFILE fires again at once (level-triggered): both kinds pause theirs
        assert busy < 0.5, f"sluice spun at {busy:.0%} CPU while out of descriptors"
    finally:
        for s in flood:
            s.close()
        app.stop()


def test_state_disk_full(sluice_bin, echo_server):
    """The state directory on a 64 KiB tmpfs, filled up: an autostart write fails with a log line, the old file
    stays whole, no temp file is left, the API and the tunnels carry on; once space is back the next write holds
    the whole current state."""
    mnt = tempfile.mkdtemp(prefix="sluice-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mnt], capture_output=True,
                       text=True)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    app = Appliance(sluice_bin, state_dir=mnt)
    try:
        app.start()
        auto = os.path.join(mnt, "autostart.json")
        a = connect(app, 0, "appliance", 0, "local", free_port(), echo_server.port, autoStart=True)
        connected(app, a)
        before = open(auto, "rb").read()
        assert a in json.dumps(json.loads(before))
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        b_port = free_port()
        b = connect(app, 0, "appliance", 1, "local", b_port, echo_server.port, autoStart=True)
        connected(app, b)                                       # the tunnel itself is unaffected
        line = app.sluice.wait_for("event=state.write_failed", 10)
        print(line)
        assert "level=error" in line and "autostart.json" in line and "no space left on device" in line.lower(), line
        assert open(auto, "rb").read() == before                # the old state, whole
        assert [f for f in os.listdir(mnt) if ".tmp-" in f] == []
        assert echo_once(b_port) == b"still here"
        assert_serving(app)
        os.unlink(filler)
        disconnect(app, a)                                      # the next write has room and holds everything
        after = json.loads(open(auto, "rb").read())
        text = json.dumps(after)
        assert b in text, after
        assert [f for f in os.listdir(mnt) if ".tmp-" in f] == []
    finally:
        app.stop()
        subprocess.run(["umount", "-l", mnt], check=False)
        os.rmdir(mnt)
