"""HTTP helpers for the API tests: an independent HS256 JWT signer, plain requests, and a raw SSE reader."""
import base64
import hashlib
import hmac
import http.client
import json
import socket
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(payload, secret, alg="HS256", header=None):
    """Signs like Termix's jsonwebtoken would (HS256 over the secret's UTF-8 bytes). Other algs for negative tests."""
    head = header or {"alg": alg, "typ": "JWT"}
    signing = b64url(json.dumps(head, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(payload, separators=(",", ":")).encode())
    if alg == "none":
        return signing + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return signing + "." + b64url(hmac.new(secret.encode(), signing.encode(), digest).digest())


def token_for(user_id, secret, ttl=3600, **extra):
    now = int(time.time())
    return jwt({"userId": user_id, "iat": now, "exp": now + ttl, **extra}, secret)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def headers_named(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


def request(port, method, path, body=None, token=None, cookie=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if cookie:
        h["Cookie"] = cookie
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if body is not None:
        # what Termix's clients send; the JSON routes refuse other media types (cross-site POSTs, issue #15)
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return Response(r.status, r.getheaders(), data)


class SSEStream:
    """Reads a text/event-stream over a raw socket, keeping the exact bytes (chunked transfer decoded)."""

    def __init__(self, port, token, path="/ssh/tunnel/status/stream", read=True, source=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=(source, 0) if source else None)
        if not read:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        self.raw = b""
        self.body = b""
        self.status = None
        self.headers = {}
        if read:
            self._read_head()

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("stream closed")
        self.raw += chunk

    def _read_head(self):
        while b"\r\n\r\n" not in self.raw:
            self._fill(10)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()

    def _decode_chunks(self):
        # chunked transfer: <hex>\r\n<data>\r\n ...
        while True:
            if b"\r\n" not in self.raw:
                return
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line, 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]

    def next_block(self, timeout=10):
        """The next `...\\n\\n` block exactly as sent."""
        deadline = time.monotonic() + timeout
        while True:
            # bytes that arrived with the headers or an earlier block come first
            if self.headers.get("transfer-encoding") == "chunked":
                self._decode_chunks()
            else:
                self.body += self.raw
                self.raw = b""
            if b"\n\n" in self.body:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no SSE block")
            self._fill(left)
        block, self.body = self.body.split(b"\n\n", 1)
        return block + b"\n\n"

    def next_statuses(self, timeout=10):
        """Skips keepalives; returns the parsed statuses object."""
        while True:
            block = self.next_block(timeout)
            if block.startswith(b"event: statuses\n"):
                assert block.startswith(b"event: statuses\ndata: ") and block.count(b"\n") == 3, block
                return json.loads(block[len(b"event: statuses\ndata: "):-2])

    def wait_for(self, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"condition not met; seen {seen[-5:]}")
            statuses = self.next_statuses(left)
            seen.append(statuses)
            if predicate(statuses):
                return statuses, seen

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
