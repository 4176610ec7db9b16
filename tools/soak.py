#!/usr/bin/env python3
"""Load soak (`make soak`, issue #6): a product binary under 200 concurrent API clients (wrk), 100 status-stream
subscribers and data through 20 SSH tunnels, for SOAK_SECONDS (default 60).

Passes when: wrk saw no socket error and no non-2xx answer, every subscriber stayed connected and got events, every
tunnel carried its bytes intact (echoed and compared), the process is alive, and its RSS, sampled every second, is
flat after the warm-up (growth of the later samples over the first post-warm-up ones within SOAK_RSS_SLACK_KIB).

    tools/soak.py [--seconds N] [--bin PATH] [--json OUT]
"""
import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))

from harness.api import SSEStream, request  # noqa: E402
from harness.appliance import Appliance  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.servers import EchoServer  # noqa: E402
from harness.sshd import Sshd  # noqa: E402

TUNNELS = 20
SUBSCRIBERS = 100
API_CLIENTS = 200
RATE = 1 << 20            # bytes per second per tunnel, each way
WARMUP = 10               # seconds before RSS counts


class Pump:
    """One connection through a tunnel to an echo server: sends a known pattern at RATE and checks every byte
    that comes back."""
    BLOCK = os.urandom(16384)

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sent = self.received = 0
        self.error = None
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._recv, daemon=True)]
        for t in self.threads:
            t.start()

    def _send(self):
        started = time.monotonic()
        try:
            while not self.stop.is_set():
                due = (time.monotonic() - started) * RATE
                if self.sent < due:
                    self.sock.sendall(self.BLOCK)
                    self.sent += len(self.BLOCK)
                else:
                    time.sleep(0.005)
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = self.error or f"send: {e!r}"

    def _recv(self):
        doubled = self.BLOCK * 2
        n = len(self.BLOCK)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                for i in range(0, len(chunk), n):
                    part = chunk[i:i + n]
                    o = (self.received + i) % n
                    if doubled[o:o + len(part)] != part:
                        self.error = self.error or f"corrupt at byte {self.received + i}"
                        return
                self.received += len(chunk)
        except OSError as e:
            self.error = self.error or f"recv: {e!r}"

    def finish(self, timeout=30):
        self.stop.set()
        self.threads[0].join(timeout)
        self.threads[1].join(timeout)
        self.sock.close()
        if not self.error and self.received != self.sent:
            self.error = f"sent {self.sent}, echoed {self.received}"
        return self.error


class Subscriber:
    def __init__(self, port, token):
        self.events = 0
        self.error = None
        self.stop = threading.Event()
        try:
            # from an address of their own: one address holds at most 256 of the API's connections (issue #24)
            # and wrk's clients already come from 127.0.0.1
            self.stream = SSEStream(port, token, source="127.0.0.2")
        except OSError as e:
            self.stream, self.error = None, f"connect: {e!r}"
            return
        if self.stream.status != 200:
            self.error = f"status {self.stream.status}"
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stop.is_set():
            try:
                block = self.stream.next_block(timeout=40)    # events, or a keepalive within 30 s
            except TimeoutError:
                self.error = "silent for 40 s"
                return
            except (OSError, EOFError) as e:
                if not self.stop.is_set():
                    self.error = f"stream ended: {e!r}"
                return
            if block.startswith(b"event: statuses"):
                self.events += 1

    def finish(self):
        self.stop.set()
        if self.stream:
            self.stream.close()
        return self.error


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def run_wrk(port, token, seconds, path):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
    script.close()
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{API_CLIENTS}", f"-d{seconds}s", "--timeout", "10s", "--latency",
                              "-s", script.name, f"http://127.0.0.1:{port}{path}"],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script.name)
    return out


def parse_wrk(out):
    def ms(text):
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    result = {"raw": out}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    result["requests"] = int(m.group(1))
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    for p in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        result[f"p{p}_ms"] = ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", 60)))
    ap.add_argument("--bin", default=os.environ.get("SLUICE_BIN") or os.path.join(ROOT, "build/x86_64/sluice"))
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: tools/deps.sh host installs it")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    seconds = args.seconds
    warmup = min(WARMUP, seconds // 3)

    sshd = Sshd().start()
    echo = EchoServer()
    app = Appliance(args.bin, sshd, limits={"maxTunnels": 256}).start()
    admin = app.token("u-admin")
    pumps, subs, failures = [], [], []
    try:
        pid = app.sluice.proc.pid
        names = []
        for i in range(TUNNELS):
            port = free_port()
            name = f"1::{i}::edge::{port}::::{echo.port}"
            body = {"name": name, "sourceHostId": 1, "tunnelIndex": i, "sourcePort": port, "endpointHost": "",
                    "endpointPort": echo.port, "mode": "local", "maxRetries": 0, "retryInterval": 1000}
            r = request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=admin)
            assert r.status == 200, r
            names.append((name, port))
        deadline = time.monotonic() + 60
        while True:
            st = request(app.port, "GET", "/ssh/tunnel/status", token=admin).json()
            if all(st.get(n, {}).get("status") == "connected" for n, _ in names):
                break
            if time.monotonic() > deadline:
                sys.exit(f"tunnels did not connect: {st}")
            time.sleep(0.2)
        # subscribers: the admin sees every tunnel; ops sees host 1's (shared with it); half each
        ops = app.token("u-ops")
        subs = [Subscriber(app.port, admin if i % 2 else ops) for i in range(SUBSCRIBERS)]
        pumps = [Pump(port) for _, port in names]
        samples = []
        wrk_out = {}
        wrk = threading.Thread(target=lambda: wrk_out.update(out=run_wrk(app.port, admin, seconds,
                                                                          "/ssh/tunnel/status")))
        started = time.monotonic()
        wrk.start()
        for second in range(seconds):
            time.sleep(max(0.0, started + second + 1 - time.monotonic()))
            samples.append(rss_kib(pid))
        wrk.join(120)
        elapsed = time.monotonic() - started
        alive = app.sluice.proc.poll() is None
        healthz = request(app.port, "GET", "/healthz").status if alive else None
        for i, p in enumerate(pumps):
            e = p.finish()
            if e:
                failures.append(f"tunnel {i}: {e}")
        for i, s in enumerate(subs):
            e = s.finish()
            if e:
                failures.append(f"subscriber {i}: {e}")
            elif s.events == 0:
                failures.append(f"subscriber {i}: no event")
        w = parse_wrk(wrk_out.get("out", ""))
        if w["socket_errors"] or w["non_2xx"]:
            failures.append(f"wrk: {w['socket_errors']} socket errors, {w['non_2xx']} non-2xx answers")
        if not alive or healthz != 200:
            failures.append(f"sluice alive={alive} healthz={healthz}")
        post = samples[warmup:]
        base = statistics.mean(post[:5])
        tail = statistics.mean(post[-5:])
        growth = tail - base
        slack = int(os.environ.get("SOAK_RSS_SLACK_KIB", 2048))
        if growth > slack:
            failures.append(f"RSS grew {growth:.0f} KiB after warm-up (slack {slack} KiB)")
        data = sum(p.received for p in pumps)
        figures = {
            "seconds": round(elapsed, 1), "api_clients": API_CLIENTS, "subscribers": SUBSCRIBERS,
            "tunnels": TUNNELS, "requests": w["requests"], "rps": w["rps"],
            "p50_ms": w["p50_ms"], "p90_ms": w["p90_ms"], "p99_ms": w["p99_ms"],
            "socket_errors": w["socket_errors"], "non_2xx": w["non_2xx"],
            "sse_events": sum(s.events for s in subs),
            "sse_events_min": min((s.events for s in subs), default=0),
            "tunnel_bytes_echoed": data, "tunnel_mb_s": round(data / elapsed / 1e6, 1),
            "rss_kib_start": samples[0], "rss_kib_after_warmup": round(base), "rss_kib_end": round(tail),
            "rss_kib_max": max(samples), "rss_growth_kib": round(growth), "rss_samples": samples,
            "failures": failures,
        }
        print(w["raw"])
        print(f"soak {elapsed:.0f} s: {w['requests']} API requests ({w['rps']:.0f}/s) from {API_CLIENTS} clients, "
              f"p50 {w['p50_ms']:.2f} ms, p90 {w['p90_ms']:.2f} ms, p99 {w['p99_ms']:.2f} ms; "
              f"{figures['sse_events']} SSE events to {SUBSCRIBERS} subscribers (min {figures['sse_events_min']}); "
              f"{data / 1e6:.0f} MB echoed through {TUNNELS} tunnels ({figures['tunnel_mb_s']} MB/s each way); "
              f"RSS {samples[0]} → {round(base)} (after {warmup} s) → {round(tail)} KiB, max {max(samples)} KiB")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1)
        if failures:
            print("SOAK FAILED:\n  " + "\n  ".join(failures))
            return 1
        print("soak ok")
        return 0
    finally:
        for p in pumps:
            p.stop.set()
        for s in subs:
            s.stop.set()
        app.stop()
        echo.close()
        sshd.cleanup()


if __name__ == "__main__":
    sys.exit(main())
