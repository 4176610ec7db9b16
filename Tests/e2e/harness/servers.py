"""Plain TCP peers for the data plane: an echo server and a checksum sink, each on its own thread."""
import hashlib
import socket
import threading


class _Server:
    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class EchoServer(_Server):
    """Echoes every byte; on the client's EOF it half-closes too (so half-close can be observed end to end)."""

    def _serve(self, conn):
        with conn:
            while True:
                try:
                    data = conn.recv(262144)
                except OSError:
                    return
                if not data:
                    try:
                        conn.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    conn.sendall(data)
                except OSError:         # the client went away mid-echo (fault tests)
                    return


class ChecksumSink(_Server):
    """Reads to EOF, then answers `<bytes> <sha256>\\n` and closes: the client half-closes and reads the answer."""

    def __init__(self, host="127.0.0.1"):
        self.results = []
        super().__init__(host)

    def _serve(self, conn):
        with conn:
            h = hashlib.sha256()
            n = 0
            while True:
                data = conn.recv(262144)
                if not data:
                    break
                h.update(data)
                n += len(data)
            self.results.append((n, h.hexdigest()))
            conn.sendall(f"{n} {h.hexdigest()}\n".encode())


def checksum_over(s, payload):
    """On a connection that leads to a ChecksumSink: sends payload, half-closes, returns its answer (bytes, sha256)."""
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    n, digest = answer.decode().split()
    return int(n), digest


def send_and_checksum(port, payload, host="127.0.0.1", timeout=60):
    """Sends payload, half-closes, returns the sink's answer (bytes, sha256)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        return checksum_over(s, payload)
