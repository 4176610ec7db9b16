"""Tunnel helpers for the SSH-layer tests (interop, idle sessions): connect through the API, wait for a status,
move checked data through local/remote/dynamic forwards, and read an SSH socket's receive queue with `ss`."""
import hashlib
import os
import socket
import struct
import subprocess
import time

from . import s2s
from .s2s import connect, disconnect, status  # noqa: F401 (the tunnels API for the SSH-layer tests)
from .netio import recv_exact
from .servers import checksum_over


def host_entry(port, host_id, name, user, key_file, **extra):
    return {"id": host_id, "name": name, "ip": "127.0.0.1", "port": port, "username": user,
            "owner": "u-admin", "auth": {"type": "key", "keyFile": key_file}, **extra}


def wait_status(app, name, predicate, timeout=30, interval=0.1):
    return s2s.wait_status(app, name, predicate, timeout, interval)[0]


def connected(app, name, timeout=30):
    return wait_status(app, name, lambda s: s.get("status") == "connected", timeout)


def socks_connect(port, dst_port, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", dst_port))
    reply = recv_exact(s, 10)
    assert reply[:2] == b"\x05\x00", reply
    return s


def checked_transfer(port, size, socks_to=None, timeout=120):
    """Sends `size` random bytes through a forward that ends at a ChecksumSink (SOCKS5 first when `socks_to` names
    the sink's port) and checks the sink saw exactly them. Returns MB/s."""
    data = os.urandom(size)
    started = time.monotonic()
    if socks_to is None:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    else:
        s = socks_connect(port, socks_to, timeout=timeout)
    with s:
        s.settimeout(timeout)
        answer = checksum_over(s, data)
    elapsed = time.monotonic() - started
    assert answer == (len(data), hashlib.sha256(data).hexdigest())
    return len(data) / elapsed / 1e6


def recv_queues(server_port):
    """Recv-Q of every TCP socket connected to 127.0.0.1:server_port from this machine (the SSH clients' side)."""
    out = subprocess.run(["ss", "-tnH", "state", "established", "dst", f"127.0.0.1:{server_port}"],
                         capture_output=True, text=True, check=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if line.strip()]
