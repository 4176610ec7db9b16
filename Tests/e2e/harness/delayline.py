"""A link with a fixed round trip, for `make bench` and the e2e tests of wide windows: a private network namespace joined to the root one by two TUN
devices and `delayline` (delayline.c) between them, which holds every packet for half the round trip each way and
drops none (tools/bench/delayline.c). This kernel has no netem; a TCP proxy would not do, since each side's TCP would see loopback and its
window would never be tested. The addresses are from 198.18.0.0/15, the range set aside for benchmarks (RFC 2544).

    root ns  198.18.0.1 [tun]  --- delayline (RTT/2 each way) ---  [tun] 198.18.0.2  private ns (sshd, a target)
"""
import os
import shutil
import subprocess

ROOT_IP, FAR_IP = "198.18.0.1", "198.18.0.2"
MTU = "9000"


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                      "tools", "bench", "delayline.c")


def build(path):
    """Compiles delayline.c to `path` (the system C compiler, as the bench's load tools)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    subprocess.run([cc, "-O2", "-Wall", "-o", path, SOURCE], check=True)
    return path


def unavailable():
    """None when this machine can build the link, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if not shutil.which("ip"):
        return "iproute2 (ip) is not installed"
    return None


class DelayLine:
    def __init__(self, binary, rtt_ms):
        tag = f"{os.getpid() % 100000}{rtt_ms}"
        self.binary = binary
        self.rtt_ms = rtt_ms
        self.ns = f"sluice-bench-{tag}"
        self.root_if, self.far_if = f"sbr{tag}"[:15], f"sbf{tag}"[:15]
        self.prefix = ["ip", "netns", "exec", self.ns]
        self.proc = None

    def __enter__(self):
        _ip("netns", "add", self.ns)
        try:
            _ip("netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
            self.proc = subprocess.Popen([self.binary, self.ns, str(self.rtt_ms * 500), self.root_if, self.far_if],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
            line = self.proc.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"delayline: {line} {self.proc.stderr.read().strip()}")
            _ip("addr", "add", ROOT_IP, "peer", FAR_IP, "dev", self.root_if)
            _ip("link", "set", self.root_if, "mtu", MTU, "up")
            _ip(*self.prefix[1:], "ip", "addr", "add", FAR_IP, "peer", ROOT_IP, "dev", self.far_if)
            _ip(*self.prefix[1:], "ip", "link", "set", self.far_if, "mtu", MTU, "up")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        _ip("netns", "del", self.ns, check=False)
        return False
