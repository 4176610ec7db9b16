"""WebSocket clients for the C2S relay: the `websockets` library for protocol-correct traffic, and a raw-socket
client that can send what no library would (unmasked frames, reserved bits, bad UTF-8) to check close codes."""
import base64
import json
import os
import socket
import struct

from websockets.sync.client import connect as ws_connect

PATH = "/ssh/tunnel/c2s/stream"


def open_ws(port, token=None, origin=None, max_size=2 ** 21, **kw):
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return ws_connect(f"ws://127.0.0.1:{port}{PATH}", additional_headers=headers, origin=origin,
                      max_size=max_size, open_timeout=10, close_timeout=5, compression=None, **kw)


def relay(port, token, first, **kw):
    """Opens a relay, sends the first message, returns (websocket, first server message as a dict)."""
    ws = open_ws(port, token, **kw)
    ws.send(json.dumps(first))
    reply = json.loads(ws.recv(timeout=30))
    return ws, reply


def local_open(host_id, port, target="127.0.0.1", kind="open"):
    return {"type": kind, "tunnelConfig": {"sourceHostId": host_id, "mode": "local", "endpointPort": port,
                                           "targetHost": target}}


def dynamic_open(host_id, target_host, target_port, kind="open"):
    return {"type": kind, "tunnelConfig": {"sourceHostId": host_id, "mode": "dynamic"},
            "targetHost": target_host, "targetPort": target_port}


def remote_open(host_id, port, kind="open", bind="127.0.0.1"):
    return {"type": kind, "tunnelConfig": {"sourceHostId": host_id, "mode": "remote", "sourcePort": port,
                                           "targetHost": bind}}


class RawWS:
    """A hand-made client: the upgrade request, then frames byte for byte."""

    def __init__(self, port, token, extra_headers=""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Bearer {token}\r\n{extra_headers}\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("closed during the upgrade")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, key=b"\x11\x22\x33\x44", length=None):
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length is None else length
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", first, m | n)
        elif n <= 0xFFFF:
            head = struct.pack("!BBH", first, m | 126, n)
        else:
            head = struct.pack("!BBQ", first, m | 127, n)
        if mask:
            head += key
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + payload)

    def send_text(self, text, **kw):
        self.send_frame(1, text.encode() if isinstance(text, str) else text, **kw)

    def _need(self, n, timeout):
        self.sock.settimeout(timeout)
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buffer += chunk

    def recv_frame(self, timeout=10):
        """(fin, opcode, payload) of the next server frame (server frames are never masked)."""
        self._need(2, timeout)
        b0, b1 = self.buffer[0], self.buffer[1]
        assert b1 & 0x80 == 0, "server frames must not be masked"
        n, offset = b1 & 0x7F, 2
        if n == 126:
            self._need(4, timeout)
            n, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif n == 127:
            self._need(10, timeout)
            n, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
        self._need(offset + n, timeout)
        payload = self.buffer[offset:offset + n]
        self.buffer = self.buffer[offset + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def close_code(self, timeout=10):
        """Skips data frames until the server's close frame; its code (None without one)."""
        while True:
            _, opcode, payload = self.recv_frame(timeout)
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
