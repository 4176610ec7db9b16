"""A real DNS server on loopback (dnsmasq from Debian's dnsmasq-base) whose records a test changes, and a wrapper
that runs a command with its own /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf (bind mounts in a private
mount namespace), so the product's resolver is tested as it runs on a board without touching this machine's files."""
import os
import shlex
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

# port 53 is the only one resolv.conf can name: an address of its own on loopback, one per pytest-xdist worker
# (PYTEST_XDIST_WORKER gw0, gw1, …) so that parallel workers' servers never collide
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
ADDRESS = f"127.77.{_WORKER}.1"
DEAD_ADDRESS = f"127.77.{_WORKER}.2"   # a DNS server that reads every query and never answers (DeadServer)
DOMAIN = "sluice.test"

# the two shapes of issue #23: Debian's, and Raspberry Pi OS's with an NSS module a static binary cannot load
NSSWITCH = {
    "files-dns": "hosts: files dns\n",
    "mdns4-minimal": "hosts: files mdns4_minimal [NOTFOUND=return] dns\n",
    # no "files": the products do not consult nsswitch.conf for hosts (glibc is pinned to files+dns, musl never
    # reads it), so /etc/hosts still answers; a dynamic getent would not
    "dns-only": "hosts: dns\n",
}


class Dnsmasq:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-dns-")
        os.chmod(self.dir, 0o755)
        self.hosts = os.path.join(self.dir, "records")
        self.records = {}
        self._write()
        # names under DOMAIN that have no record answer NXDOMAIN at once (--local); nothing is forwarded anywhere
        self.proc = subprocess.Popen(
            ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file=", "-u", "root",
             f"--listen-address={ADDRESS}", "--bind-interfaces", "--port=53", f"--addn-hosts={self.hosts}",
             f"--local=/{DOMAIN}/", "--no-negcache", "--local-ttl=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while self.query("probe." + DOMAIN) is None:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "dnsmasq did not answer"
            time.sleep(0.05)

    def _write(self):
        with open(self.hosts, "w") as f:
            for name, address in self.records.items():
                f.write(f"{address} {name}\n")
        os.chmod(self.hosts, 0o644)

    def set(self, name, address):
        """`address` None: the name stops resolving (NXDOMAIN). dnsmasq rereads its records on SIGHUP."""
        if address is None:
            self.records.pop(name, None)
        else:
            self.records[name] = address
        self._write()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while self.query(name) != ([] if address is None else [address]):
            assert time.monotonic() < deadline, f"dnsmasq still answers the old record of {name}"
            time.sleep(0.05)

    @staticmethod
    def query(name):
        """A addresses of `name` as the server answers them; None when it does not answer."""
        q = struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0) + b"".join(
            bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.sendto(q, (ADDRESS, 53))
            answer = s.recv(512)
        except OSError:
            return None
        finally:
            s.close()
        count = struct.unpack(">H", answer[6:8])[0]
        addresses, at = [], len(q)
        for _ in range(count):
            at += 2   # a compressed name pointer
            rtype, _, _, length = struct.unpack(">HHIH", answer[at:at + 10])
            at += 10
            if rtype == 1:
                addresses.append(socket.inet_ntoa(answer[at:at + length]))
            at += length
        return addresses

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


class DeadServer:
    """A UDP port 53 that takes queries and answers none: lookups against it hang until the libc gives up."""
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((DEAD_ADDRESS, 53))
        # a thread blocked in recv keeps the socket (and its port) alive past close(): it wakes to look at `stopped`
        self.sock.settimeout(0.2)
        self.stopped = False
        self.queries = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        while not self.stopped:
            try:
                self.sock.recv(512)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1

    def stop(self):
        """The port is free again when this returns (the next test's server binds it)."""
        self.stopped = True
        self.thread.join(5)
        self.sock.close()


def namespace_prefix(shape, hosts_lines=(), server=ADDRESS, options="timeout:1 attempts:2"):
    """A command prefix: what follows runs with resolv.conf naming the test server, /etc/hosts holding `hosts_lines`
    (and localhost), and nsswitch.conf of `shape` (a key of NSSWITCH), in a private mount namespace."""
    d = tempfile.mkdtemp(prefix="sluice-etc-")
    os.chmod(d, 0o755)
    files = {"resolv.conf": f"nameserver {server}\noptions {options}\n",
             "hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost\n" + "".join(l + "\n" for l in hosts_lines),
             "nsswitch.conf": NSSWITCH[shape]}
    binds = []
    for name, text in files.items():
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        binds.append(f"mount --bind {shlex.quote(path)} /etc/{name}")
    script = " && ".join(binds) + ' && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sluice-names"]
