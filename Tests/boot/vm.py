"""One booted disk image under qemu-system (tools/boot-image.sh): a copy-on-write qcow2 overlay of the built image, the
restricted user-mode network with a hostfwd to the API (and to chosen guest ports) and guestfwds to the harness's
sshd, and the image's test agent on a virtio-serial socket (image/sluice-agent) as the way in."""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BOOT = os.path.join(ROOT, "tools", "boot-image.sh")
SSH_ADDR = "10.0.2.100"      # the guest's view of the harness sshd (guestfwd)


def image_path(arch):
    return os.path.join(ROOT, "build", "image", f"sluice-{arch}.img")


def partitions(image):
    """(start, size) in bytes of each partition, by GPT name."""
    table = json.loads(subprocess.run(["sfdisk", "-J", image], capture_output=True, text=True, check=True).stdout)
    sector = table["partitiontable"].get("sectorsize", 512)
    return {p["name"]: (p["start"] * sector, p["size"] * sector) for p in table["partitiontable"]["partitions"]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgentError(AssertionError):
    pass


class Guest:
    def __init__(self, arch, guest_ports=(), ssh_port=None, ssh_ports=(), workdir=None, extra_net=""):
        """`guest_ports`: guest TCP ports to forward from host ports (self.fwd[guest_port]); `ssh_port`: the host sshd
        that the guest reaches at 10.0.2.100:22 and at 10.0.2.100:<p> for each p in `ssh_ports`."""
        self.arch = arch
        self.image = image_path(arch)
        self.dir = workdir or tempfile.mkdtemp(prefix=f"sluice-boot-{arch}-")
        self.disk = os.path.join(self.dir, "disk.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", self.image, "-F", "raw", self.disk],
                       check=True)
        self.api_port = free_port()
        self.fwd = {p: free_port() for p in guest_ports}
        net = "".join(f",hostfwd=tcp:127.0.0.1:{h}-:{g}" for g, h in self.fwd.items())
        if ssh_port:
            for p in (22, *ssh_ports):
                # one socat per guest connection (a chardev target would carry a single connection only)
                net += f",guestfwd=tcp:{SSH_ADDR}:{p}-cmd:socat - TCP:127.0.0.1:{ssh_port}"
        self.net = net + extra_net
        self.proc = None
        self.sock = None
        self.boots = 0
        self.console = None

    # --- power ---
    def boot(self):
        self.boots += 1
        self.console = os.path.join(self.dir, f"console-{self.boots}.log")
        self.agent_path = os.path.join(self.dir, "agent.sock")
        if os.path.exists(self.agent_path):
            os.unlink(self.agent_path)
        env = dict(os.environ, SLUICE_BOOT_DISK=self.disk, SLUICE_BOOT_NET=self.net,
                   SLUICE_BOOT_AGENT=self.agent_path, SLUICE_BOOT_CONSOLE=self.console)
        self.started = time.monotonic()
        self.proc = subprocess.Popen([BOOT, self.arch, str(self.api_port)], env=env, stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.dir, "qemu.log"), "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.agent_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"qemu did not start: {self.tail('qemu.log')}")
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.agent_path)
        self.buf = b""
        self.seq = 0
        return self

    def power_cut(self):
        """SIGKILL to qemu: no shutdown, no flush of anything the guest had not yet written to the disk."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close()

    def shutdown(self, timeout=120):
        try:
            self.run("systemctl --no-block poweroff", timeout=10)
        except AgentError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.power_cut()
            raise AssertionError("the guest did not power off")
        self._close()

    def _close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.power_cut()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, name=None, n=4000):
        try:
            with open(os.path.join(self.dir, name) if name else self.console, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    # --- the agent ---
    def _send(self, command):
        self.sock.sendall(base64.b64encode(command.encode()) + b"\n")

    def _line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError("no answer from the agent")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AgentError("agent socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        rc, _, out = line.decode().partition(" ")
        return int(rc), base64.b64decode(out).decode(errors="replace")

    def wait_agent(self, timeout):
        """Until the agent answers: pings that arrive before it runs are answered late, so each carries a number."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"qemu exited ({self.proc.returncode}): {self.tail()}")
            self.seq += 1
            self._send(f"echo ping-{self.seq}")
            try:
                while True:
                    _, out = self._line(min(deadline, time.monotonic() + 2))
                    if out.strip() == f"ping-{self.seq}":
                        return time.monotonic() - self.started
            except AgentError:
                if time.monotonic() > deadline:
                    raise AgentError(f"agent not up after {timeout}s; console:\n{self.tail()}")

    def run(self, command, check=False, timeout=60):
        """Runs a shell command as root in the guest: (exit status, stdout+stderr)."""
        self.seq += 1
        marker = f"seq-{self.seq}"
        self._send(f"echo {marker}; {command}")
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self._line(deadline)
            if out.startswith(marker + "\n"):       # answers to earlier pings are skipped
                out = out[len(marker) + 1:]
                break
        if check and rc != 0:
            raise AgentError(f"guest: `{command}` exited {rc}: {out}")
        return rc, out

    def sh(self, command, timeout=60):
        return self.run(command, check=True, timeout=timeout)[1]

    def write(self, path, data, mode="0644", owner="root:root"):
        b = base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()
        self.sh(f"echo {b} | base64 -d > {path}.new && chmod {mode} {path}.new && chown {owner} {path}.new && "
                f"mv {path}.new {path}")

    def unit(self, name="sluice", *props):
        props = props or ("ActiveState", "SubState", "MainPID", "NRestarts", "ActiveEnterTimestampMonotonic",
                          "ExecMainStartTimestampMonotonic", "Result")
        out = self.sh(f"systemctl show {name} " + " ".join(f"-p {p}" for p in props))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_active(self, timeout, name="sluice"):
        deadline = time.monotonic() + timeout
        while True:
            u = self.unit(name)
            if u["ActiveState"] == "active":
                return u
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not active: {u}\n" + self.run(f"journalctl -b -u {name} | tail -30")[1])
            time.sleep(0.2)

    def journal(self, args="-u sluice"):
        return self.run(f"journalctl -b --no-pager -o short-monotonic {args}")[1]
