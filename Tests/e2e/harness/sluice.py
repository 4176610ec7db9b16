"""Runs the built static binary (natively, or under qemu for aarch64) and finds the port it really listens on."""
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

# the board's CPU: cortex-a72 (Raspberry Pi 4) unless SLUICE_QEMU_CPU names another (cortex-a53: Pi 3, cortex-a76: Pi 5)
QEMU = ["qemu-aarch64-static", "-cpu", os.environ.get("SLUICE_QEMU_CPU") or "cortex-a72"]

# every line any Sluice under test wrote, for the final secrets check (conftest.py: no_secret_in_any_output)
EVERY_LINE = []


def emulated(binary):
    """Whether `binary` is an aarch64 ELF, which this machine runs under qemu-user."""
    with open(binary, "rb") as f:
        header = f.read(20)
    return header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183   # EM_AARCH64


def command(binary):
    """How to run a product binary on this machine: aarch64 ones go through qemu-user (binfmt_misc is not set up)."""
    return (QEMU + [binary]) if emulated(binary) else [binary]


class Sluice:
    def __init__(self, binary, args=(), state_dir=None, env=None, prefix=()):
        """`prefix`: a command to run it under (e.g. `prlimit --nofile=256 --`)."""
        self.binary = binary
        self.prefix = list(prefix)
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="sluice-state-")
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.lines = []
        self.port = None
        self._cv = threading.Condition()

    def start(self, listen="127.0.0.1:0", timeout=30):
        argv = self.prefix + command(self.binary) + ["serve", "--listen", listen, "--state", self.state_dir] + self.args
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        self._readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                         for stream in (self.proc.stderr, self.proc.stdout)]
        for reader in self._readers:
            reader.start()
        line = self.wait_for("event=serve.listening", timeout)
        self.port = int(re.search(r"addr=\S+:(\d+)", line).group(1))
        return self

    def _read(self, stream):
        for raw in stream:
            with self._cv:
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                EVERY_LINE.append(line)
                self._cv.notify_all()

    def wait_for(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        exited_at = None
        with self._cv:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                now = time.monotonic()
                if self.proc.poll() is not None:
                    exited_at = exited_at or now
                if now >= deadline or (exited_at and now - exited_at > 0.5):
                    raise AssertionError(f"'{text}' not seen; output so far:\n" + "\n".join(self.lines))
                self._cv.wait(0.1)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        return "\n".join(self.lines)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the process; returns its exit code and how long it took."""
        if self.proc is None:
            return None, 0.0
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"sluice did not stop within {timeout}s of signal {sig}")
        took = time.monotonic() - started
        for reader in self._readers:        # everything the process wrote is in self.lines before we answer
            reader.join(5)
        return self.proc.returncode, took
