"""Helpers of the server-to-server tests (direct mode, managed mode, faults, C2S): connect and disconnect through
the API, wait for a status, SOCKS5 through a dynamic forward, checked transfers, and stopping an sshd with every
session it forked."""
import os
import socket
import struct
import time

from .api import request
from .netio import recv_exact
from .servers import send_and_checksum


def host_entry(sshd, host_id, name, auth, **extra):
    return {"id": host_id, "name": name, "ip": "127.0.0.1", "port": sshd.port, "username": sshd.user,
            "owner": "u-admin", "auth": auth, **extra}


def secret_file(directory, name, value):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(value + "\n")
    return path


def connect(app, host_id, host_name, index, mode, source, endpoint_port, endpoint_host="", expect=200, **extra):
    name = f"{host_id}::{index}::{host_name}::{source}::{endpoint_host}::{endpoint_port}"
    body = {"name": name, "sourceHostId": host_id, "tunnelIndex": index, "sourcePort": source,
            "endpointHost": endpoint_host, "endpointPort": endpoint_port, "mode": mode,
            "maxRetries": 0, "retryInterval": 1000}
    body.update(extra)
    r = request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=app.token("u-admin"))
    assert r.status == expect, r
    return name


def disconnect(app, name):
    r = request(app.port, "POST", "/ssh/tunnel/disconnect", body={"tunnelName": name}, token=app.token("u-admin"))
    assert r.status == 200, r


def status(app, name):
    return request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin")).json().get(name, {})


def wait_status(app, name, predicate, timeout=20, interval=0.05):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        st = status(app, name)
        if not seen or seen[-1] != st:
            seen.append(st)
        if predicate(st):
            return st, seen
        time.sleep(interval)
    raise AssertionError(f"{name}: condition not met; seen {seen[-6:]}\n{app.sluice.log()[-3000:]}")


def connected(app, name, timeout=20):
    return wait_status(app, name, lambda s: s.get("status") == "connected", timeout)[0]


def failed(app, name, timeout=20):
    return wait_status(app, name, lambda s: s.get("status") == "failed", timeout)[0]


def socks_connect(port, dst_port, dst=b"\x7f\x00\x00\x01", atyp=1, cmd=1, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    address = dst if atyp != 3 else bytes([len(dst)]) + dst
    s.sendall(bytes([5, cmd, 0, atyp]) + address + struct.pack(">H", dst_port))
    return s, recv_exact(s, 10)


def timed_checksum(port, payload):
    data, digest = payload
    started = time.monotonic()
    n, got = send_and_checksum(port, data, timeout=120)
    elapsed = time.monotonic() - started
    assert (n, got) == (len(data), digest)
    return len(data) / elapsed / 1e6


def descendants_of(pid):
    """Children, grandchildren…: after privilege separation the session lives in sshd's grandchild."""
    found = []
    todo = [pid]
    while todo:
        kids = children_of(todo.pop())
        found += kids
        todo += kids
    return found


def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def stop_sshd_completely(server):
    """The listener and every per-connection child: stopping only the master leaves live sessions behind."""
    kids = descendants_of(server.proc.pid)
    server.stop()
    for kid in kids:
        try:
            os.kill(kid, 15)
        except ProcessLookupError:
            pass
