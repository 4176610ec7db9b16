"""The SSH layer against the servers users have (issue #14; shared/design/interop.md).

Idle sessions: a tunnel with no connection open has an SSH session with no channel. It must still read its
transport: answer a probing server's `keepalive@openssh.com` (ClientAliveInterval 2 / CountMax 3 drops a silent
client after ~8 s) and consume the replies to its own keepalives (else they pile up in the socket's receive queue).
Each product binary named by the environment (SLUICE_BIN, and SLUICE_BIN_MBEDTLS / SLUICE_ARM_BIN /
SLUICE_ARM_BIN_MBEDTLS when set) runs both cases at the same time, for IDLE_SECONDS."""
import os
import socket
import threading
import time

import pytest

from harness.appliance import Appliance
from harness.netio import recv_exact
from harness.ports import free_port
from harness.servers import EchoServer
from harness.sshd import Sshd
from harness.tunnels import connect, connected, host_entry, recv_queues, status

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

IDLE_SECONDS = 90          # the probing server's tunnel must stay up this long
QUEUE_SECONDS = 60         # the receive queue is watched at least this long
QUEUE_LIMIT = 1024


def binaries_under_test():
    """(label, path) of the products to run: SLUICE_BIN always, the others when their variable is set (not under a
    sanitizer build, which is x86_64 full Swift only)."""
    found = [("x86_64-" + ("asan" if os.environ.get("SLUICE_ASAN") else "openssl"),
              os.environ.get("SLUICE_BIN") or os.path.join(ROOT, "build/x86_64/sluice"))]
    if not os.environ.get("SLUICE_ASAN"):
        for label, var in [("x86_64-mbedtls", "SLUICE_BIN_MBEDTLS"), ("aarch64-openssl", "SLUICE_ARM_BIN"),
                           ("aarch64-mbedtls", "SLUICE_ARM_BIN_MBEDTLS")]:
            if os.environ.get(var) and os.path.exists(os.environ[var]):
                found.append((label, os.environ[var]))
    return found


BINARIES = binaries_under_test()


def echo_round_trip(port, size=4096):
    data = os.urandom(size)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        assert recv_exact(s, size) == data


class IdleCase:
    """One binary: host 1 on a probing sshd (default keepalive), host 20 on a stock sshd with keepaliveInterval
    1000; one idle local tunnel through each. A sampler records both tunnels' status and the stock sshd's client
    socket receive queue every second."""

    def __init__(self, label, binary, echo):
        self.label = label
        self.probing = Sshd(extra_config="ClientAliveInterval 2\nClientAliveCountMax 3\n").start()
        self.stock = Sshd().start()
        hosts = [host_entry(self.stock.port, 20, "stock", self.stock.user, self.stock.keys["ecdsa256"],
                            keepaliveInterval=1000)]
        self.app = Appliance(binary, self.probing, extra_hosts=hosts).start()
        self.probe_port, self.stock_port = free_port(), free_port()
        self.probe_name = connect(self.app, 1, "edge", 0, "local", self.probe_port, echo.port)
        self.stock_name = connect(self.app, 20, "stock", 0, "local", self.stock_port, echo.port)
        connected(self.app, self.probe_name, timeout=60)
        connected(self.app, self.stock_name, timeout=60)
        self.started = time.monotonic()
        self.samples = []          # (seconds since start, probe status, stock status, [recv-q])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.wait(1.0):
            try:
                self.samples.append((time.monotonic() - self.started,
                                     status(self.app, self.probe_name).get("status"),
                                     status(self.app, self.stock_name).get("status"),
                                     recv_queues(self.stock.port)))
            except Exception as e:          # noqa: BLE001 - recorded, the tests assert on it
                self.samples.append((time.monotonic() - self.started, repr(e), repr(e), []))

    def wait_until(self, seconds):
        remaining = self.started + seconds + 1 - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.app.stop()
        self.probing.cleanup()
        self.stock.cleanup()


@pytest.fixture(scope="module")
def idle_cases():
    echo = EchoServer()
    cases = {}
    try:
        for label, binary in BINARIES:
            cases[label] = IdleCase(label, binary, echo)
        yield cases
    finally:
        for case in cases.values():
            case.close()
        echo.close()


@pytest.mark.parametrize("label", [label for label, _ in BINARIES])
def test_idle_tunnel_survives_client_alive_probes(idle_cases, label):
    case = idle_cases[label]
    case.wait_until(IDLE_SECONDS)
    statuses = [s[1] for s in case.samples]
    assert len(statuses) >= IDLE_SECONDS - 5, case.samples
    assert set(statuses) == {"connected"}, (statuses, case.app.sluice.log()[-3000:])
    with open(case.probing.log) as f:
        assert "Timeout, client not responding" not in f.read()
    echo_round_trip(case.probe_port)


@pytest.mark.parametrize("label", [label for label, _ in BINARIES])
def test_idle_session_reads_its_transport(idle_cases, label):
    case = idle_cases[label]
    case.wait_until(QUEUE_SECONDS)
    samples = [s for s in case.samples if s[0] <= QUEUE_SECONDS + 1]
    assert len(samples) >= QUEUE_SECONDS - 5
    assert all(s[2] == "connected" for s in samples), samples
    queues = [q for s in samples for q in s[3]]
    assert queues, "no SSH client socket seen by ss"
    print(f"{label}: receive queue over {samples[-1][0]:.0f} s: max {max(queues)} bytes, {len(queues)} samples")
    assert max(queues) < QUEUE_LIMIT, samples
    echo_round_trip(case.stock_port)
