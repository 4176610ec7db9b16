"""A private network namespace joined to the root one by a veth pair, for fault injection between Sluice (in the root
namespace) and a server (in the private one): loss, delay and a blackhole on the link.

    root ns  <host_ip> [veth host_if] ======= [veth ns_if] <ns_ip>  private ns (sshd runs here)

Faults are applied inside the private namespace only (nothing on the machine's own interfaces or firewall changes):
with `tc qdisc ... netem` when the kernel has it; else with iptables' DROP target and its `statistic` match (the
loss is the same: packets vanish without an error to either side). Delay needs netem.
"""
import itertools
import os
import shutil
import subprocess

_counter = itertools.count()


def _run(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def unavailable():
    """None when namespaces and veth pairs work here, else why not (a test skips with that reason)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip"):
        return "iproute2 (ip) is not installed"
    probe = f"sluice-probe-{os.getpid()}"
    r = _run("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


class NetNS:
    def __init__(self):
        n = next(_counter)
        tag = f"{os.getpid() % 100000}{n}"
        self.name = f"sluice-e2e-{tag}"
        self.host_if = f"vsh{tag}"[:15]
        self.ns_if = f"vsn{tag}"[:15]
        octet = (os.getpid() + n) % 250 + 1
        # a /16 of its own per pytest-xdist worker (gw0, gw1, …): parallel workers' links never share a subnet
        net = 231 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
        self.host_ip = f"10.{net}.{octet}.1"
        self.ns_ip = f"10.{net}.{octet}.2"
        self.prefix = ["ip", "netns", "exec", self.name]
        self.netem = False
        self.fault = None

    def create(self):
        _run("ip", "netns", "add", self.name)
        try:
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _run("ip", "link", "set", self.ns_if, "netns", self.name)
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _run("ip", "link", "set", self.host_if, "up")
            _run(*self.prefix, "ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
            _run(*self.prefix, "ip", "link", "set", self.ns_if, "up")
            _run(*self.prefix, "ip", "link", "set", "lo", "up")
        except subprocess.CalledProcessError:
            self.close()
            raise
        self.netem = self._probe_netem()
        return self

    def _probe_netem(self):
        r = _run(*self.prefix, "tc", "qdisc", "add", "dev", self.ns_if, "root", "netem", "delay", "0ms", check=False)
        if r.returncode == 0:
            _run(*self.prefix, "tc", "qdisc", "del", "dev", self.ns_if, "root", check=False)
            return True
        return False

    def has_iptables(self):
        return shutil.which("iptables") is not None and \
            _run(*self.prefix, "iptables", "-S", check=False).returncode == 0

    # ---- faults (each replaces the previous one) ------------------------------------------------------------

    def loss(self, percent):
        """Drops `percent` % of the packets in each direction of the link (100: a blackhole)."""
        self.clear()
        if self.netem:
            self._netem("loss", f"{percent}%")
        elif self.has_iptables():
            match = [] if percent >= 100 else ["-m", "statistic", "--mode", "random",
                                                "--probability", f"{percent / 100:.4f}"]
            for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
                _run(*self.prefix, "iptables", "-A", chain, flag, self.ns_if, *match, "-j", "DROP")
        else:
            raise RuntimeError("neither netem nor iptables is available for packet loss")
        self.fault = ("loss", percent)

    def blackhole(self):
        self.loss(100)

    def delay(self, ms):
        """Adds `ms` in each direction (netem only)."""
        self.clear()
        if not self.netem:
            raise RuntimeError("delay needs the netem qdisc, which this kernel lacks")
        self._netem("delay", f"{ms}ms")
        self.fault = ("delay", ms)

    def _netem(self, *args):
        _run(*self.prefix, "tc", "qdisc", "replace", "dev", self.ns_if, "root", "netem", *args)
        _run("tc", "qdisc", "replace", "dev", self.host_if, "root", "netem", *args)

    def clear(self):
        if self.fault is None:
            return
        if self.netem:
            _run(*self.prefix, "tc", "qdisc", "del", "dev", self.ns_if, "root", check=False)
            _run("tc", "qdisc", "del", "dev", self.host_if, "root", check=False)
        if self.has_iptables():
            _run(*self.prefix, "iptables", "-F", check=False)
        self.fault = None

    def dropped(self):
        """Packets the iptables rules dropped so far (None under netem)."""
        if self.netem or not self.has_iptables():
            return None
        out = _run(*self.prefix, "iptables", "-L", "-v", "-x", "-n").stdout
        return sum(int(line.split()[0]) for line in out.splitlines() if line.split()[2:3] == ["DROP"])

    def popen(self, argv, **kwargs):
        """A process inside the namespace."""
        return subprocess.Popen(self.prefix + list(argv), **kwargs)

    def close(self):
        _run("ip", "link", "del", self.host_if, check=False)     # deletes the peer too
        _run("ip", "netns", "del", self.name, check=False)
