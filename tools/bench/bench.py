#!/usr/bin/env python3
"""`make bench` / `make bench-smoke`: every Sluice data path next to its reference, in the same run, on loopback.

Python only orchestrates: the bytes are moved by `bload` and `wsload` (C, compiled here at bench time), the
references are OpenSSH's `ssh`, `socat` and `websockify`. Each measured row runs Sluice and its reference
interleaved (S, R, S, R, ...) so both see the same machine; medians, min-max, CPU seconds per GB of the relay
process (its threads' schedstat run time plus cutime+cstime from /proc/<pid>/stat, before and after) and the ratio Sluice/reference.

    tools/bench/bench.py                 full run, rewrites the table part of docs/benchmarks.md
    tools/bench/bench.py --smoke         ~20 s, one short run per row, writes build/bench/smoke.md, exit 1 if a path broke
Environment: SLUICE_BIN, SLUICE_BIN_MBEDTLS (default build/x86_64{,-mbedtls}/sluice), BENCH_RUNS (5), BENCH_MIB (1024).
"""
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))

from harness.api import request                     # noqa: E402
from harness.appliance import Appliance             # noqa: E402
from harness.ports import free_port, wait_port      # noqa: E402
from harness.sluice import QEMU                     # noqa: E402
from harness.sshd import Sshd                       # noqa: E402
from harness import delayline                       # noqa: E402

SMOKE = "--smoke" in sys.argv
OUT_DIR = os.path.join(ROOT, "build", "bench")
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
RUNS = 1 if SMOKE else int(os.environ.get("BENCH_RUNS", "5"))
MIB = 1 << 20
BULK = (64 if SMOKE else int(os.environ.get("BENCH_MIB", "1024"))) * MIB
RR_COUNT = 300 if SMOKE else 5000
TICK = os.sysconf("SC_CLK_TCK")
CIPHER, MAC, KEX, HOSTKEY = "aes128-ctr", "hmac-sha2-256", "ecdh-sha2-nistp256", "ecdsa-sha2-nistp256"
KEY = "ecdsa256"
LIMITS = {"bufferCount": 2048, "maxConnectionsPerTunnel": 1100, "maxTunnels": 256}

BINARIES = [("openssl", os.environ.get("SLUICE_BIN") or os.path.join(ROOT, "build/x86_64/sluice")),
            ("mbedtls", os.environ.get("SLUICE_BIN_MBEDTLS") or os.path.join(ROOT, "build/x86_64-mbedtls/sluice"))]

rows = []          # dicts: section, name, unit, sluice [values], ref [values], ref_name, goal, better ('high'|'low'), ...
failures = []
commands = {}      # label -> exact command line (for the docs)
procs = []         # everything we started, stopped at the end by pid


_next_port = [20000 + os.getpid() % 5000]


def listen_port():
    """A port below the ephemeral range (32768+) that binds now: a port the kernel hands out as free may next be the
    source port of one of the many outgoing connections (100 tunnels, 1000 streams), and then a tunnel's bind fails."""
    import socket
    while True:
        _next_port[0] = 20000 + (_next_port[0] - 20000 + 1) % 12000
        port = _next_port[0]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def log(*a):
    print("[bench]", *a, flush=True)


# ---- processes and /proc ----------------------------------------------------------------------------------------

def cpu_seconds(pid):
    """CPU time of the process: its threads' run time in ns from /proc/<pid>/task/*/schedstat (tick-granular
    utime+stime would round a short splice transfer to zero), plus its reaped children's cutime+cstime (socat and
    websockify relay in forked children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3): utime=14 stime=15 cutime=16 cstime=17 -> indexes 11..14
    children = sum(int(x) for x in fields[13:15]) / TICK
    own = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                own += int(f.read().split()[0])
        except OSError:
            pass            # a thread that ended meanwhile
    return own / 1e9 + children


def rss_kib(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def start(argv, prefix=(), **kw):
    p = subprocess.Popen([*prefix, *argv], stdin=kw.pop("stdin", subprocess.DEVNULL), stdout=kw.pop("stdout", subprocess.DEVNULL),
                         stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)
    procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def kv(text):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", text)}


def tool(name, *args, timeout=300, check=True, prefix=(), env=None):
    """`prefix`: a command to run it under (`ip netns exec NS`); `env`: variables added (BLOAD_ADDR)."""
    argv = [*prefix, os.path.join(OUT_DIR, name), *[str(a) for a in args]]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    out = kv(r.stdout)
    if check and (r.returncode != 0 or out.get("ok", "1") != "1"):
        raise RuntimeError(f"{' '.join(argv)} -> rc {r.returncode}: {r.stdout.strip()} {r.stderr.strip()}")
    out["rc"] = r.returncode
    return out


def compile_tools():
    os.makedirs(OUT_DIR, exist_ok=True)
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    for name, extra in (("bload", ["-pthread"]), ("wsload", []), ("delayline", [])):
        src = os.path.join(ROOT, "tools", "bench", name + ".c")
        subprocess.run([cc, "-O2", "-Wall", "-o", os.path.join(OUT_DIR, name), src, *extra], check=True)
    commands["compile"] = f"{os.path.basename(cc)} -O2 -pthread -o build/bench/bload tools/bench/bload.c; " \
                          f"{os.path.basename(cc)} -O2 -o build/bench/wsload tools/bench/wsload.c; " \
                          f"{os.path.basename(cc)} -O2 -o build/bench/delayline tools/bench/delayline.c"


# ---- the machine -------------------------------------------------------------------------------------------------

def cpu_busy(seconds=1.0):
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit=0.15, need=3, timeout=90):
    """Until the whole machine is under `limit` busy for `need` consecutive seconds (other engineers share it)."""
    started = time.monotonic()
    streak, last = 0, 1.0
    while time.monotonic() - started < timeout:
        last = cpu_busy()
        streak = streak + 1 if last < limit else 0
        if streak >= need:
            return f"quiet after {time.monotonic() - started:.0f} s ({last * 100:.0f}% busy)"
        log(f"waiting for a quiet machine: {last * 100:.0f}% busy")
    return f"NOT quiet after {timeout} s ({last * 100:.0f}% busy): figures are noisier than usual"


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    debian = open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"

    def ver(argv, pick=None):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            lines = (r.stdout + r.stderr).strip().splitlines()
            return next((x for x in lines if pick in x), lines[0]) if pick else lines[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    def websockify_version():
        try:
            from importlib.metadata import version
            return "websockify " + version("websockify")
        except Exception:       # noqa: BLE001
            return "?"
    return {"cpu": f"{model}, {os.cpu_count()} cores", "memory": f"{mem} MiB", "kernel": platform.release(),
            "os": f"Debian {debian}", "ssh": ver(["ssh", "-V"]), "openssl": ver(["openssl", "version"]),
            "socat": ver(["socat", "-V"], "socat version") if shutil.which("socat") else "missing",
            "websockify": websockify_version(),
            "cc": ver([shutil.which("cc") or "gcc", "--version"])}


# ---- measuring ---------------------------------------------------------------------------------------------------

def bulk_once(pid, fn):
    """One transfer: (MB/s, CPU-s per GB of the relay process `pid`)."""
    c0 = cpu_seconds(pid)
    out = fn()
    time.sleep(0.05)        # forked relays (socat, websockify) are reaped into cutime
    c1 = cpu_seconds(pid)
    return float(out["mbps"]), (c1 - c0) / (int(out["bytes"]) / 1e9)


def add_row(section, name, unit, s, r, ref_name, goal, better="high", s_cpu=None, r_cpu=None, note=""):
    rows.append({"section": section, "name": name, "unit": unit, "sluice": s, "ref": r, "ref_name": ref_name,
                 "goal": goal, "better": better, "s_cpu": s_cpu or [], "r_cpu": r_cpu or [], "note": note})


def compare(section, name, sluice, reference, ref_name, goal, runs=RUNS):
    """Interleaved bulk runs; sluice/reference are (pid, fn) or None (not available)."""
    s, r, sc, rc = [], [], [], []
    for _ in range(runs):
        for target, vals, cpus in ((sluice, s, sc), (reference, r, rc)):
            if target is None:
                continue
            try:
                v, c = bulk_once(*target)
                vals.append(v)
                cpus.append(c)
            except Exception as e:      # noqa: BLE001 - a broken path is a row result, and a smoke failure
                failures.append(f"{name}: {e}")
                log("FAILED", name, e)
                break
    add_row(section, name, "MB/s", s, r, ref_name, goal, "high", sc, rc)
    log(f"{name}: sluice {fmt_vals(s)} | {ref_name} {fmt_vals(r)}")


def fmt_vals(v):
    if not v:
        return "—"
    med = statistics.median(v)
    if len(v) == 1:
        return f"{med:.4g}"
    return f"{med:.4g} ({min(v):.4g}–{max(v):.4g})"


# ---- Sluice and references ---------------------------------------------------------------------------------------

_index = [0]


def tunnel(app, host_id, host_name, mode, source, endpoint_port, wait=True, timeout=30):
    _index[0] += 1
    name = f"{host_id}::{_index[0]}::{host_name}::{source}::::{endpoint_port}"
    body = {"name": name, "sourceHostId": host_id, "tunnelIndex": _index[0], "sourcePort": source,
            "endpointHost": "", "endpointPort": endpoint_port, "mode": mode, "maxRetries": 0, "retryInterval": 1000}
    t0 = time.monotonic()
    resp = request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=app.token("u-admin"))
    if resp.status != 200:
        raise RuntimeError(f"connect {name}: {resp}")
    if wait:
        wait_connected(app, [name], timeout)
    return name, time.monotonic() - t0


def statuses(app):
    return request(app.port, "GET", "/ssh/tunnel/status", token=app.token("u-admin")).json()


def wait_connected(app, names, timeout=30, interval=0.002):
    deadline = time.monotonic() + timeout
    while True:
        st = statuses(app)
        bad = [n for n in names if st.get(n, {}).get("status") in ("failed",)]
        if bad:
            raise RuntimeError(f"tunnel failed: {st[bad[0]]}\n{app.sluice.log()[-2000:]}")
        if all(st.get(n, {}).get("status") == "connected" for n in names):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not connected after {timeout}s: {[st.get(n) for n in names][:3]}")
        time.sleep(interval)


def disconnect(app, name):
    request(app.port, "POST", "/ssh/tunnel/disconnect", body={"tunnelName": name}, token=app.token("u-admin"))


def forced_sshd_config(cipher=CIPHER):
    """The sshd side of the forced algorithms (every row but the cipher pairs; the board rows vary the cipher)."""
    return f"Ciphers {cipher}\nMACs {MAC}\nKexAlgorithms {KEX}\nHostKeyAlgorithms {HOSTKEY}\nLogLevel ERROR\n"


def ssh_argv(sshd, *forward, forced=True, host="127.0.0.1"):
    """`forced`: cipher, MAC, KEX and host key told (every row but the cipher pairs)."""
    told = ["-c", CIPHER, "-m", MAC, "-o", f"KexAlgorithms={KEX}", "-o", f"HostKeyAlgorithms={HOSTKEY}"] if forced else []
    return ["ssh", "-N", "-p", str(sshd.port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "Compression=no",
            "-o", "ExitOnForwardFailure=yes", "-i", sshd.keys[KEY], *told, *forward, f"{sshd.user}@{host}"]


def ssh_forward(sshd, flag, spec, port, forced=True, host="127.0.0.1", listening_pid=None):
    """`listening_pid`: a process in the namespace where the forward listens (ssh -R through the delay line)."""
    argv = ssh_argv(sshd, flag, spec, forced=forced, host=host)
    commands.setdefault(f"ssh {flag}" + ("" if forced else " (cipher pairs)"),
                        " ".join(argv).replace(sshd.keys[KEY], "KEY"))
    p = start(argv)
    deadline = time.monotonic() + 15
    while not port_open(port, listening_pid):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ssh {flag} {spec} did not come up")
        time.sleep(0.02)
    return p


def port_open(port, pid=None):
    """Listening in this network namespace, or in that of process `pid`."""
    base = f"/proc/{pid}/net" if pid else "/proc/net"
    return any(f":{port:04X} " in line and line.split()[3] == "0A"
               for path in (f"{base}/tcp", f"{base}/tcp6") for line in open(path).readlines()[1:])


# the mbedTLS flavour reads RSA user keys only (PEM): its tunnels log in as host 3 with the RSA PEM key; the host key,
# cipher, MAC and KEX stay the same as for every other row
EDGE = {"openssl": (1, "edge"), "mbedtls": (3, "edge-rsa")}


def appliance(binary, sshd):
    extra = []
    if sshd:
        extra = [{"id": 3, "name": "edge-rsa", "ip": "127.0.0.1", "port": sshd.port, "username": sshd.user,
                  "owner": "u-admin", "auth": {"type": "key", "keyFile": sshd.keys["rsa_pem"]}}]
    a = Appliance(binary, sshd, limits=LIMITS, extra_hosts=extra)
    a.start()
    procs.append(a.sluice.proc)
    return a


# ---- sections ----------------------------------------------------------------------------------------------------

# OPENSSL_ia32cap masking AES-NI (bit 57) and PCLMULQDQ (bit 33) of the first word, SHA-NI (bit 29) of the second:
# OpenSSL in ssh, sshd and Sluice then runs AES and SHA-2 in software (the Raspberry Pi 4 case), and Sluice's cipher
# preference (SSHAlgorithms) reads the same mask
NO_AES = "~0x200000200000000:~0x20000000"


def cipher_pairs(binaries, target):
    """Issue #14's pairs, against a stock sshd: (a) defaults, neither ssh nor Sluice told a cipher; (b) the same
    with AES instructions masked in every process. Goals: Sluice >= 1.0x ssh, the mbedTLS flavour >= 0.5x (chacha)."""
    size = BULK // 4
    for pair, env in (("defaults", {}), ("no AES instructions", {"OPENSSL_ia32cap": NO_AES})):
        sec = f"Cipher pairs: {pair}"
        saved = dict(os.environ)
        os.environ.update(env)      # inherited by sshd, ssh and Sluice
        sshd = Sshd(extra_config="LogLevel ERROR\n").start()
        try:
            rport = listen_port()
            ref = ssh_forward(sshd, "-L", f"{rport}:127.0.0.1:{target}", rport, forced=False)
            for flavour, binary in binaries:
                app = appliance(binary, sshd)
                try:
                    lport = listen_port()
                    name, _ = tunnel(app, *EDGE[flavour], "local", lport, target)
                    line = app.sluice.wait_for(f"event=ssh.session tunnel={name} ", timeout=10)
                    m = re.search(r"cipher=(\S+)", line)
                    cipher = m.group(1) if m else "?"
                    compare(sec, f"S2S local, 1 stream, {flavour} ({cipher}; ssh: its default)",
                            (app.sluice.proc.pid, lambda: tool("bload", "up", lport, size, 1)),
                            (ref.pid, lambda: tool("bload", "up", rport, size, 1)), "ssh -N -L",
                            1.0 if flavour == "openssl" else 0.5)
                finally:
                    app.stop()
            stop(ref)
        finally:
            sshd.cleanup()
            os.environ.clear()
            os.environ.update(saved)


def s2s_throughput(flavour, binary, sshd, target, full):
    sec = f"S2S throughput ({flavour})"
    # the mbedTLS flavour moves well under 100 MB/s here: a quarter of the bytes keeps `make bench` under 10 minutes
    size = BULK if flavour == "openssl" else BULK // 4
    app = appliance(binary, sshd)
    pid = app.sluice.proc.pid
    host = EDGE[flavour]
    try:
        lport = listen_port()
        tunnel(app, *host, "local", lport, target)
        rport = listen_port()
        ref = ssh_forward(sshd, "-L", f"{rport}:127.0.0.1:{target}", rport)
        compare(sec, "S2S local, 1 stream", (pid, lambda: tool("bload", "up", lport, size, 1)),
                (ref.pid, lambda: tool("bload", "up", rport, size, 1)), "ssh -N -L", 1.0)
        if SMOKE and not full:
            return
        if full or not SMOKE:
            compare(sec, "S2S local, 8 streams", (pid, lambda: tool("bload", "up", lport, size, 8)),
                    (ref.pid, lambda: tool("bload", "up", rport, size, 8)), "ssh -N -L, 8 streams", 1.0)
        if full and flavour == "openssl":
            rr_rows(app, pid, lport, ref, rport)
        stop(ref)

        remote = listen_port()
        tunnel(app, *host, "remote", remote, target)
        remote_ref = listen_port()
        ref = ssh_forward(sshd, "-R", f"{remote_ref}:127.0.0.1:{target}", remote_ref)
        compare(sec, "S2S remote, 1 stream", (pid, lambda: tool("bload", "up", remote, size, 1)),
                (ref.pid, lambda: tool("bload", "up", remote_ref, size, 1)), "ssh -N -R", 1.0)
        stop(ref)

        dport = listen_port()
        tunnel(app, *host, "dynamic", dport, 0)
        dref = listen_port()
        ref = ssh_forward(sshd, "-D", f"127.0.0.1:{dref}", dref)
        compare(sec, "S2S dynamic (SOCKS5), one large download",
                (pid, lambda: tool("bload", "down", dport, size, 1, target)),
                (ref.pid, lambda: tool("bload", "down", dref, size, 1, target)), "ssh -N -D", 1.0)
        stop(ref)
    finally:
        app.stop()


def rr_rows(app, pid, lport, ref, rport):
    s50, s99, r50, r99 = [], [], [], []
    for _ in range(RUNS):
        for port, a, b in ((lport, s50, s99), (rport, r50, r99)):
            try:
                out = tool("bload", "rr", port, RR_COUNT)
                a.append(float(out["p50_us"]))
                b.append(float(out["p99_us"]))
            except Exception as e:      # noqa: BLE001
                failures.append(f"rr: {e}")
    add_row("Latency", "1-byte request/response p50, S2S local", "µs", s50, r50, "ssh -N -L", 1.0, "low")
    add_row("Latency", "1-byte request/response p99, S2S local", "µs", s99, r99, "ssh -N -L", 1.0, "low")
    log(f"rr p50 sluice {fmt_vals(s50)} ssh {fmt_vals(r50)}; p99 sluice {fmt_vals(s99)} ssh {fmt_vals(r99)}")


def splice_rows(binary, target):
    sec = "Appliance host (splice)"
    app = appliance(binary, None)
    pid = app.sluice.proc.pid
    try:
        lport = listen_port()
        tunnel(app, 0, "appliance", "local", lport, target)
        sport = listen_port()
        argv = ["socat", "-b", "262144", f"TCP-LISTEN:{sport},bind=127.0.0.1,fork,reuseaddr", f"TCP:127.0.0.1:{target}"]
        commands["socat"] = " ".join(argv)
        socat = start(argv)
        wait_port(sport)
        size = BULK * 2
        compare(sec, "appliance-host local forward", (pid, lambda: tool("bload", "up", lport, size, 1)),
                (socat.pid, lambda: tool("bload", "up", sport, size, 1)), "socat -b 262144", 1.2)
        # raw loopback: no relay process, so CPU is not comparable
        raw = []
        for _ in range(RUNS):
            raw.append(float(tool("bload", "up", target, size, 1)["mbps"]))
        s = next(r for r in rows if r["name"] == "appliance-host local forward")["sluice"]
        add_row(sec, "appliance-host local forward vs raw loopback", "MB/s", s, raw, "raw loopback (no relay)", 0.75)
        log(f"raw loopback {fmt_vals(raw)}")
        stop(socat)
    finally:
        app.stop()


LONG_LINKS = (20,) if SMOKE else (20, 100)      # round trips, ms


def long_link_rows(binary, target):
    """Issue #17: S2S through a link with a real round trip (delayline.py), one stream each, the OpenSSL flavour
    against `ssh -L`/`-R` through the same link and against one TCP stream over it with no SSH (the link's ceiling for
    this kernel's TCP buffers). Local download and remote are where Sluice's receive window decides; local upload is
    sshd's window (2 MiB) for both."""
    why = delayline.unavailable()
    if why:
        add_row("Long links", "S2S through a delay line", "MB/s", [], [], "—", None, note=f"not available: {why}")
        return
    runs = RUNS
    for rtt in LONG_LINKS:
        sec = f"Long links: {rtt} ms round trip"
        size = (8 if SMOKE else 96 if rtt >= 100 else 192) * MIB
        with delayline.DelayLine(os.path.join(OUT_DIR, "delayline"), rtt) as link:
            far = start([os.path.join(OUT_DIR, "bload"), "serve", str(listen_port())], stdout=subprocess.PIPE,
                        text=True, env={**os.environ, "BLOAD_ADDR": "0.0.0.0"}, prefix=link.prefix)
            far_target = int(kv(far.stdout.readline())["port"])
            sshd = Sshd(address=delayline.FAR_IP, prefix=link.prefix,
                        extra_config=forced_sshd_config()).start()
            app = appliance(binary, sshd)
            pid = app.sluice.proc.pid
            over = {"BLOAD_ADDR": delayline.FAR_IP}
            try:
                ceiling = {"down": [], "up": []}
                for _ in range(runs):
                    for way in ("down", "up"):
                        ceiling[way].append(float(tool("bload", way, far_target, size, 1, env=over)["mbps"]))
                log(f"{rtt} ms ceiling down {fmt_vals(ceiling['down'])} up {fmt_vals(ceiling['up'])}")

                lport = listen_port()
                tunnel(app, 1, "edge", "local", lport, far_target)
                rport = listen_port()
                ref = ssh_forward(sshd, "-L", f"{rport}:127.0.0.1:{far_target}", rport, host=delayline.FAR_IP)
                for way in ("down", "up"):
                    name = f"S2S local, 1 stream, {'download' if way == 'down' else 'upload'}"
                    compare(sec, name, (pid, lambda w=way: tool("bload", w, lport, size, 1)),
                            (ref.pid, lambda w=way: tool("bload", w, rport, size, 1)), "ssh -N -L", 1.0, runs)
                    add_row(sec, f"{name} vs the link's TCP ceiling", "MB/s", rows[-1]["sluice"], ceiling[way],
                            "one TCP stream, no SSH", 0.8 if rtt >= 100 else None)
                stop(ref)

                remote = listen_port()
                tunnel(app, 1, "edge", "remote", remote, target)
                remote_ref = listen_port()
                ref = ssh_forward(sshd, "-R", f"{remote_ref}:127.0.0.1:{target}", remote_ref, host=delayline.FAR_IP,
                                  listening_pid=sshd.proc.pid)
                name = "S2S remote, 1 stream (server side sends)"
                compare(sec, name, (pid, lambda: tool("bload", "up", remote, size, 1, prefix=link.prefix)),
                        (ref.pid, lambda: tool("bload", "up", remote_ref, size, 1, prefix=link.prefix)),
                        "ssh -N -R", 1.0, runs)
                add_row(sec, f"{name} vs the link's TCP ceiling", "MB/s", rows[-1]["sluice"], ceiling["down"],
                        "one TCP stream, no SSH", 0.8 if rtt >= 100 else None)
                stop(ref)
            finally:
                app.stop()
                sshd.cleanup()
                stop(far)


BOARD = [("openssl", "SLUICE_ARM_BIN", "build/aarch64/sluice"),
         ("mbedtls", "SLUICE_ARM_BIN_MBEDTLS", "build/aarch64-mbedtls/sluice")]
BOARD_CIPHERS = ["aes128-ctr", "aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"]


def board_rows(target):
    """Issue #17: the aarch64 products under qemu (Cortex-A72, the Pi 4's core; QEMU's model has the ARMv8 crypto
    extensions the Pi 4 lacks), CPU seconds per GB of S2S local upload for each flavour and cipher (an sshd that
    allows only that cipher; MAC hmac-sha2-256 where the cipher has none). Emulated time is not absolute: every row is
    a ratio against the OpenSSL flavour with aes128-ctr in the same run."""
    sec = "On the board: aarch64 under qemu -cpu cortex-a72, CPU-s per GB"
    found = [(f, os.environ.get(var) or os.path.join(ROOT, default)) for f, var, default in BOARD]
    found = [(f, path) for f, path in found if os.path.exists(path)]
    if not shutil.which(QEMU[0]) or not found:     # QEMU: the e2e harness's runner (with -cpu cortex-a72)
        add_row(sec, "aarch64 products", "CPU-s/GB", [], [], "—", None, note="not available: qemu or build/aarch64*")
        return
    size = (8 if SMOKE else 64) * MIB
    runs = 1 if SMOKE else 3
    results = {}
    for cipher in (BOARD_CIPHERS[:1] if SMOKE else BOARD_CIPHERS):
        sshd = Sshd(extra_config=forced_sshd_config(cipher)).start()
        try:
            for flavour, path in found:
                app = appliance(path, sshd)             # the harness runs aarch64 binaries under QEMU
                try:
                    lport = listen_port()
                    try:
                        tunnel(app, *EDGE[flavour], "local", lport, target)
                    except RuntimeError as e:
                        if cipher == BOARD_CIPHERS[0]:          # every flavour offers it: a broken product
                            failures.append(f"board {flavour}: {e}")
                        results[(flavour, cipher)] = None       # this flavour does not offer the cipher
                        continue
                    cpus, speeds = [], []
                    for _ in range(runs):
                        mbps, cpu = bulk_once(app.sluice.proc.pid, lambda: tool("bload", "up", lport, size, 1))
                        speeds.append(mbps)
                        cpus.append(cpu)
                    results[(flavour, cipher)] = cpus
                    log(f"board {flavour} {cipher}: CPU-s/GB {fmt_vals(cpus)} (emulated {fmt_vals(speeds)} MB/s)")
                finally:
                    app.stop()
        finally:
            sshd.cleanup()
    ref = results.get(("openssl", BOARD_CIPHERS[0])) or []
    for (flavour, cipher), cpus in results.items():
        if cpus is None:
            add_row(sec, f"{flavour}, {cipher}", "CPU-s/GB", [], [], "—", None, "low", note="not offered by this flavour")
            continue
        add_row(sec, f"{flavour}, {cipher}", "CPU-s/GB", cpus, ref, f"openssl, {BOARD_CIPHERS[0]}", None, "low")


def c2s_rows(binary, sshd, target):
    sec = "C2S (WebSocket)"
    app = appliance(binary, sshd)
    pid = app.sluice.proc.pid
    size = BULK // 2
    try:
        wport = listen_port()
        argv = ["websockify", f"127.0.0.1:{wport}", f"127.0.0.1:{target}"]
        commands["websockify"] = " ".join(argv)
        wsfy = start(argv) if shutil.which("websockify") else None   # pip install failed (offline): Sluice rows only
        if wsfy:
            wait_port(wport)
        token = app.token("u-admin")
        path = "/ssh/tunnel/c2s/stream"
        probe = tool("wsload", app.port, path, "down", 1024, token, target, 0, check=False)
        available = probe["rc"] == 0
        note = "" if available else f"Sluice C2S not available ({probe.get('status') or probe.get('error') or probe['rc']})"
        if not available:
            log(note)
        for direction, name, goal in (("down", "C2S local, server→client", 1.5), ("up", "C2S local, client→server", 2.0)):
            sl = (pid, lambda d=direction: tool("wsload", app.port, path, d, size, token, target, 0)) if available else None
            ref = (wsfy.pid, lambda d=direction: tool("wsload", wport, "/", d, size)) if wsfy else None
            compare(sec, name, sl, ref, "websockify" if wsfy else "websockify (not installed)", goal)
            rows[-1]["note"] = note
        if wsfy:
            stop(wsfy)
        if available:
            firsts, seconds = [], []
            for _ in range(RUNS):
                # a fresh appliance each time: the relay keeps its SSH session per (user, host) after the streams
                # end, and the first stream must be a full login
                fresh = appliance(binary, sshd)
                try:
                    out = tool("wsload", fresh.port, path, "openready", 0, fresh.token("u-admin"), target, 1,
                               check=False)
                finally:
                    fresh.stop()
                if out["rc"] == 0:
                    firsts.append(float(out["first_ms"]))
                    seconds.append(float(out["second_ms"]))
                else:
                    failures.append(f"c2s openready: {out}")
            add_row("Setup", "second C2S stream to the same host: open → ready", "ms", seconds, firsts,
                    "first stream (full SSH login)", None, "low", note="goal ≤ 5 ms")
            rows[-1]["goal_abs"] = 5.0
        else:
            add_row("Setup", "second C2S stream to the same host: open → ready", "ms", [], [],
                    "first stream (full SSH login)", None, "low", note=note)
    finally:
        app.stop()


def connect_rows(binary, sshd, target):
    app = appliance(binary, sshd)
    s, r = [], []
    try:
        for _ in range(max(RUNS, 5) if not SMOKE else 1):
            port = listen_port()
            name, took = tunnel(app, 1, "edge", "local", port, target)
            s.append(took * 1000)
            disconnect(app, name)
            argv = ssh_argv(sshd)[:]
            argv.remove("-N")
            t0 = time.monotonic()
            subprocess.run(argv + ["true"], check=True, timeout=30, stdin=subprocess.DEVNULL)
            r.append((time.monotonic() - t0) * 1000)
        commands["ssh true"] = " ".join(argv + ["true"]).replace(sshd.keys[KEY], "KEY")
    except Exception as e:      # noqa: BLE001
        failures.append(f"connect: {e}")
    finally:
        app.stop()
    add_row("Setup", "connect → connected, direct local tunnel", "ms", s, r, "ssh … true", 1.0, "low")
    log(f"connect sluice {fmt_vals(s)} ssh {fmt_vals(r)}")


def anon_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    return 0


def rss_rows(binaries, sshd, target):
    """RSS as `ps` shows it (VmRSS); the notes add the anonymous part (heap, stacks: what the process itself costs,
    as opposed to the binary's clean, shareable text)."""
    mib = lambda k: k / 1024     # noqa: E731
    rport = listen_port()
    ref = ssh_forward(sshd, "-L", f"{rport}:127.0.0.1:{target}", rport)
    time.sleep(0.5)
    ref_idle = mib(rss_kib(ref.pid))
    app = None
    try:
        for flavour, binary in binaries:
            a = appliance(binary, sshd)
            port = listen_port()
            tunnel(a, *EDGE[flavour], "local", port, target)
            time.sleep(0.5)
            pid = a.sluice.proc.pid
            add_row("Memory", f"RSS idle, 1 tunnel ({flavour})", "MiB", [mib(rss_kib(pid))], [ref_idle],
                    "one idle ssh -N -L", None, "low", note=f"anonymous {mib(anon_kib(pid)):.2f} MiB")
            rows[-1]["goal_abs"] = 3.0
            log(f"RSS idle 1 tunnel {flavour}: {mib(rss_kib(pid)):.2f} MiB (anon {mib(anon_kib(pid)):.2f}), "
                f"ssh {ref_idle:.2f}")
            if flavour == "openssl" and not SMOKE:
                app, app_port = a, port
            else:
                a.stop()
        if app is None:
            return
        pid = app.sluice.proc.pid
        names = []
        for _ in range(99):
            names.append(tunnel(app, 1, "edge", "local", listen_port(), target, wait=False)[0])
        wait_connected(app, names, timeout=120, interval=0.2)
        time.sleep(1)
        add_row("Memory", "RSS idle, 100 tunnels (openssl)", "MiB", [mib(rss_kib(pid))], [ref_idle * 100],
                "100 × one idle ssh -N -L", None, "low", note=f"anonymous {mib(anon_kib(pid)):.2f} MiB")
        rows[-1]["goal_abs"] = 16.0
        log(f"RSS 100 tunnels: {mib(rss_kib(pid)):.2f} MiB")
        for n in names:
            disconnect(app, n)
        # 1000 open forwarded connections through one tunnel
        results = {}
        for label, p, proc_pid in (("sluice", app_port, pid), ("ref", rport, ref.pid)):
            holder = start([os.path.join(OUT_DIR, "bload"), "hold", str(p), "1000"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
            line = holder.stdout.readline()
            if not line.startswith("ready"):
                failures.append(f"hold 1000 via {label}: {line!r}")
                stop(holder)
                continue
            time.sleep(0.5)
            results[label] = (mib(rss_kib(proc_pid)), mib(rss_kib(proc_pid, "VmHWM")), mib(anon_kib(proc_pid)))
            holder.stdin.close()
            holder.wait(30)
        budget = LIMITS["bufferCount"] * 32768 / MIB + 8
        sl, rf = results.get("sluice", (0, 0, 0)), results.get("ref", (0, 0, 0))
        add_row("Memory", "RSS with 1000 open forwarded connections (openssl)", "MiB",
                [sl[0]] if "sluice" in results else [], [rf[0]] if "ref" in results else [],
                "ssh -N -L with 1000 connections", None, "low",
                note=f"bufferCount {LIMITS['bufferCount']} × 32 KiB + 8 MiB = {budget:.0f} MiB; anonymous "
                     f"{sl[2]:.1f} MiB; peak (VmHWM) Sluice {sl[1]:.1f}, ssh {rf[1]:.1f} MiB")
        rows[-1]["goal_abs"] = budget
        log(f"RSS 1000 connections: sluice {sl} ssh {rf}")
    except Exception as e:      # noqa: BLE001
        failures.append(f"rss: {e}")
        log("FAILED rss", e)
    finally:
        if app:
            app.stop()
        stop(ref)


# ---- output ------------------------------------------------------------------------------------------------------

def ratio_text(row):
    s, r = row["sluice"], row["ref"]
    if not s:
        return "not available" if row.get("note") else "—", ""
    if row.get("goal_abs") is not None:
        ok = statistics.median(s) <= row["goal_abs"]
        rt = f"{statistics.median(s) / statistics.median(r):.2f}×" if r else "—"
        return rt, "✔" if ok else "✘"
    if not r:
        return "—", ""
    ratio = statistics.median(s) / statistics.median(r)
    goal = row["goal"]
    if goal is None:
        return f"{ratio:.2f}×", ""
    ok = ratio >= goal if row["better"] == "high" else ratio <= goal
    return f"{ratio:.2f}×", "✔" if ok else "✘"


def goal_text(row):
    if row.get("goal_abs") is not None:
        return f"≤ {row['goal_abs']:.0f} {row['unit']}"
    if row["goal"] is None:
        return "—"
    return ("≥ " if row["better"] == "high" else "≤ ") + f"{row['goal']}×"


def cpu_text(v):
    return f"{statistics.median(v):.2f}" if v else "—"


def table():
    out = ["| section | Sluice path | Sluice | reference | reference value | ratio | goal | met | CPU-s/GB Sluice / ref |",
           "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio, met = ratio_text(row)
        s = fmt_vals(row["sluice"]) if row["sluice"] else ("not available" if row.get("note") else "—")
        note = f" — {row['note']}" if row.get("note") and row["sluice"] else ""
        cpu = f"{cpu_text(row['s_cpu'])} / {cpu_text(row['r_cpu'])}" if row["unit"] == "MB/s" and row["s_cpu"] + row["r_cpu"] else ""
        out.append(f"| {row['section']} | {row['name']} ({row['unit']}){note} | {s} | {row['ref_name']} | "
                   f"{fmt_vals(row['ref'])} | {ratio} | {goal_text(row)} | {met} | {cpu} |")
    return "\n".join(out)


def report(info, quiet, started, sizes):
    lines = [f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.monotonic() - started:.0f} s, "
             f"{RUNS} runs per row (median, min–max); bulk transfers of {BULK // MIB} MiB (S2S openssl), "
             f"{BULK // 4 // MIB} MiB (S2S mbedtls), {BULK * 2 // MIB} MiB (splice), {BULK // 2 // MIB} MiB (C2S); "
             f"machine {quiet}.", "",
             "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()) + ".", "",
             "Binary sizes (stripped, x86_64): " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()) + ".",
             "", table(), "", "Exact commands of this run (KEY = the generated ECDSA P-256 client key; ports vary):", ""]
    lines += [f"- {k}: `{v}`" for k, v in commands.items()]
    if failures:
        lines += ["", "Failures in this run:", ""] + [f"- {f}" for f in failures]
    return "\n".join(lines)


def main():
    started = time.monotonic()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    compile_tools()
    if not shutil.which("websockify"):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "websockify"], check=False)
    binaries = [(f, b) for f, b in BINARIES if os.path.exists(b)]
    if not binaries or binaries[0][0] != "openssl":
        sys.exit("build/x86_64/sluice missing: make static")
    sizes = {f: os.path.getsize(b) for f, b in binaries}
    info = machine()
    target_proc = start([os.path.join(OUT_DIR, "bload"), "serve", str(listen_port())], stdout=subprocess.PIPE, text=True)
    target = int(kv(target_proc.stdout.readline())["port"])
    sshd = Sshd(extra_config=forced_sshd_config()).start()
    commands["sshd"] = f"sshd -D -f sshd_config  (Tests/e2e/harness/sshd.py, plus: Ciphers {CIPHER}, MACs {MAC}, " \
                       f"KexAlgorithms {KEX}, HostKeyAlgorithms {HOSTKEY})"
    quiet = "not waited for (smoke)" if SMOKE else wait_quiet()
    log(quiet)
    openssl = binaries[0][1]

    def settle(section):
        # other engineers share the machine: before each section wait briefly for a quiet moment again
        if not SMOKE:
            state = wait_quiet(need=2, timeout=20)
            if state.startswith("NOT"):
                noisy.append(section)
    noisy = []
    try:
        for flavour, binary in binaries:
            settle(f"S2S {flavour}")
            s2s_throughput(flavour, binary, sshd, target, full=(flavour == "openssl"))
        settle("cipher pairs")
        cipher_pairs(binaries, target)
        settle("splice")
        splice_rows(openssl, target)
        settle("C2S")
        c2s_rows(openssl, sshd, target)
        connect_rows(openssl, sshd, target)
        rss_rows(binaries, sshd, target)
        settle("long links")
        long_link_rows(openssl, target)
        settle("board")
        board_rows(target)
    finally:
        sshd.cleanup()
        for p in procs:
            stop(p)
    if noisy:
        quiet += "; still busy (after 20 s of waiting) before: " + ", ".join(noisy)
    text = report(info, quiet, started, sizes)
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "smoke.md" if SMOKE else "bench.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(OUT_DIR, "smoke.json" if SMOKE else "bench.json"), "w") as f:
        json.dump({"rows": rows, "failures": failures, "machine": info, "sizes": sizes}, f, indent=1)
    if not SMOKE:
        write_doc(text)
    print(text)
    log(f"done in {time.monotonic() - started:.0f} s")
    if failures:
        log("FAILURES:", *failures)
        sys.exit(1)


def write_doc(text):
    begin, end = "<!-- bench:begin (written by tools/bench/bench.py) -->", "<!-- bench:end -->"
    doc = open(DOC).read() if os.path.exists(DOC) else f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin not in doc:
        doc += f"\n{begin}\n{end}\n"
    head, rest = doc.split(begin, 1)
    tail = rest.split(end, 1)[1] if end in rest else ""
    with open(DOC, "w") as f:
        f.write(f"{head}{begin}\n{text}\n{end}{tail}")


if __name__ == "__main__":
    main()
