"""A stand-in for systemd's notification socket: an AF_UNIX datagram socket (a path, or an abstract `@name`) that
records every message Sluice sends with sd_notify, with the time it arrived."""
import os
import socket
import tempfile
import threading
import time


class NotifySocket:
    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.name = f"@sluice-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + self.name[1:])
            self.path = None
        else:
            self.path = os.path.join(tempfile.mkdtemp(prefix="sluice-notify-"), "notify")
            self.sock.bind(self.path)
            self.name = self.path
        self.messages = []          # (monotonic time, text)
        self._cv = threading.Condition()
        self._closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            with self._cv:
                self.messages.append((time.monotonic(), data.decode()))
                self._cv.notify_all()

    def assignments(self, key):
        """Arrival times of the messages holding `key` (e.g. `READY=1`) as one of their lines."""
        with self._cv:
            return [t for t, text in self.messages if key in text.split("\n")]

    def wait_for(self, key, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        with self._cv:
            while len([1 for _, text in self.messages if key in text.split("\n")]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{key} x{count} not received; got {self.messages}")
                self._cv.wait(left)

    def close(self):
        self._closed = True
        self.sock.close()
        if self.path:
            os.unlink(self.path)
            os.rmdir(os.path.dirname(self.path))
