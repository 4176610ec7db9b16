"""Wide receive windows (issue #17): a channel opens with a 16 MiB receive window while the process-wide budget
(`limits.receiveWindowBudget`) has room, the others keep libssh2's 2 MiB, and a reader that stalls parks at most its
channel's window inside libssh2: memory stays within the budget however many readers stall, and every byte still
arrives once they read again."""
import os
import re
import socket
import threading
import time

from harness.api import request
from harness.appliance import Appliance
from harness.ports import free_port
from harness.s2s import connect, connected, disconnect

MiB = 1 << 20
WIDE, STANDARD = 16 * MiB, 2 * MiB
SENT = 40 * MiB                 # per stream: more than a wide window, so every window fills
ASAN = bool(os.environ.get("SLUICE_ASAN"))


class Source:
    """Sends SENT bytes (a position-dependent pattern) to each connection, then closes it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        block = bytes(range(256)) * (MiB // 256)
        self.blocks = [bytes([i]) + block[1:] for i in range(SENT // MiB)]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._send, args=(conn,), daemon=True).start()

    def _send(self, conn):
        try:
            for block in self.blocks:
                conn.sendall(block)
        except OSError:
            pass
        finally:
            conn.close()

    def check(self, data):
        return data == b"".join(self.blocks)

    def close(self):
        self.sock.close()


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def windows(app):
    text = request(app.port, "GET", "/metrics", token=app.token("u-admin")).body.decode()
    cap = re.search(r'sluice_pool_capacity\{pool="relay",kind="windows",bytes="(\d+)"\} (\d+)', text)
    use = re.search(r'sluice_pool_in_use\{pool="relay",kind="windows"\} (\d+)', text)
    assert cap and use, text
    assert int(cap.group(1)) == WIDE
    return int(cap.group(2)), int(use.group(1))


def settle(pid, timeout=30):
    """RSS once it stopped growing for a second (the windows have filled and the server is paused)."""
    deadline = time.monotonic() + timeout
    last, still = rss(pid), 0
    while time.monotonic() < deadline and still < 10:
        time.sleep(0.1)
        now = rss(pid)
        still = still + 1 if abs(now - last) < 256 * 1024 else 0
        last = now
    return last


def test_stalled_readers_park_no_more_than_the_window_budget(sluice_bin, sshd):
    source = Source()
    app = Appliance(sluice_bin, sshd, limits={"receiveWindowBudget": 2 * WIDE + WIDE // 2}).start()
    clients = []
    try:
        assert windows(app) == (2, 0)           # whole windows only: 40 MiB of budget is two
        port = free_port()
        name = connect(app, 1, "edge", 0, "local", port, source.port)
        connected(app, name)
        # warm up: one stream read to the end (libssh2's and the allocator's first costs are not the windows')
        with socket.create_connection(("127.0.0.1", port)) as warm:
            got = bytearray()
            while chunk := warm.recv(1 << 20):
                got += chunk
        assert source.check(bytes(got))
        pid = app.sluice.proc.pid
        time.sleep(0.5)
        base = settle(pid)
        assert windows(app) == (2, 0)           # the slot came back when the stream closed

        for _ in range(5):                      # five readers that never read: two wide windows, three standard
            c = socket.create_connection(("127.0.0.1", port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            clients.append(c)
        peak = settle(pid)
        assert windows(app) == (2, 2)
        parked = peak - base
        bound = 2 * WIDE + 3 * STANDARD
        print(f"5 stalled readers: RSS {base / MiB:.1f} → {peak / MiB:.1f} MiB (parked {parked / MiB:.1f} MiB, "
              f"windows {bound / MiB:.0f} MiB)")
        if not ASAN:
            # the wide windows did fill (standard windows alone park at most 5 × 2 MiB; the stalled sockets' kernel
            # buffers take a few MiB of each window) ...
            assert parked > WIDE, f"parked only {parked / MiB:.1f} MiB"
            # ... and nothing beyond the windows was kept: libssh2 keeps each parked packet in its own allocation
            # (about 32 KiB, which musl's allocator rounds up: up to a quarter more), plus the relay buffers
            limit = bound * 5 // 4 + 8 * MiB
            assert parked < limit, f"parked {parked / MiB:.1f} MiB, windows are {bound / MiB:.0f} MiB"

        # the readers read again: every stream delivers every byte, in order
        for c in clients:
            c.settimeout(60)
            got = bytearray()
            while chunk := c.recv(1 << 20):
                got += chunk
            assert len(got) == SENT and source.check(bytes(got))
            c.close()
        clients = []
        deadline = time.monotonic() + 10
        while windows(app) != (2, 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert windows(app) == (2, 0)
        disconnect(app, name)
    finally:
        for c in clients:
            c.close()
        app.stop()
        source.close()


def test_no_budget_keeps_every_window_standard(sluice_bin, sshd):
    source = Source()
    app = Appliance(sluice_bin, sshd, limits={"receiveWindowBudget": 0}).start()
    clients = []
    try:
        assert windows(app) == (0, 0)
        port = free_port()
        name = connect(app, 1, "edge", 0, "local", port, source.port)
        connected(app, name)
        pid = app.sluice.proc.pid
        with socket.create_connection(("127.0.0.1", port)) as warm:
            while warm.recv(1 << 20):
                pass
        time.sleep(0.5)
        base = settle(pid)
        for _ in range(3):
            c = socket.create_connection(("127.0.0.1", port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            clients.append(c)
        parked = settle(pid) - base
        print(f"3 stalled readers, no budget: parked {parked / MiB:.1f} MiB")
        if not ASAN:
            assert parked < 3 * STANDARD + 8 * MiB
        assert windows(app) == (0, 0)
        disconnect(app, name)
    finally:
        for c in clients:
            c.close()
        app.stop()
        source.close()
