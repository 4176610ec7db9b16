"""A minimal reverse proxy that serves Sluice under a path prefix (like nginx `location /sluice/ { proxy_pass
http://sluice/; }`): it strips the prefix from each request line and relays bytes both ways, streaming (SSE)."""
import socket
import threading


class PrefixProxy:
    def __init__(self, upstream_port, prefix="/sluice"):
        self.upstream_port = upstream_port
        self.prefix = prefix.encode()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.paths = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                client.close()
                return
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        method, path, version = lines[0].split(b" ", 2)
        if not path.startswith(self.prefix + b"/"):
            client.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            client.close()
            return
        path = path[len(self.prefix):]
        self.paths.append(path.decode())
        # one request per connection keeps the rewrite simple
        headers = [l for l in lines[1:] if not l.lower().startswith(b"connection:")] + [b"Connection: close"]
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        upstream.sendall(b" ".join([method, path, version]) + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + rest)
        threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        self._pipe(upstream, client)

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
