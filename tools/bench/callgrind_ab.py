#!/usr/bin/env python3
"""Instructions and allocations per MB of S2S traffic, for A/B comparisons of builds that a loaded machine makes
useless to time (docs/benchmarks.md, "libssh2: one HMAC context per direction, receive buffers reused").

    tools/bench/callgrind_ab.py [--mib 64] [--runs 1] [--native] LABEL=BINARY [LABEL=BINARY ...]

Each BINARY (unstripped, so that callgrind sees malloc by name: .build-emb-x86_64-openssl/release/sluice) runs under
`valgrind --tool=callgrind` with a local-forward tunnel to a `bload serve` target through the e2e sshd, with the
bench's forced algorithms (aes128-ctr, hmac-sha2-256, ecdh-sha2-nistp256). The counters are zeroed once the tunnel
is up; then `bload up` and `bload down` move MiB each way, each followed by a dump. Per direction it prints
instructions per MB (10^6 bytes) and calls to malloc/calloc/realloc/posix_memalign per MB. Runs of one build give
the same counts to well under 1 % (no timing involved), so one run per build is enough; --runs repeats the pairs.
Under valgrind OpenSSL sees the CPU valgrind emulates (no SHA-NI), so absolute counts are higher than natively;
both builds see the same CPU.

--native: no valgrind; allocations counted by uprobes (`perf probe` on malloc, calloc, realloc, posix_memalign and
libssh2_default_alloc of each BINARY; LABEL must then be a C identifier) with `perf stat -p` around each transfer.
Under callgrind the relay is ~100x slower than sshd, so libssh2's packet queue is always deep; natively it is not,
which matters for buffer reuse. Prints allocations per MB (all, and libssh2's own) and MB/s.
"""
import signal
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))

import bench                                        # noqa: E402  (its helpers: tunnel, tool, kv, forced config)
from harness.appliance import Appliance             # noqa: E402
from harness.sshd import Sshd                       # noqa: E402

ALLOC = re.compile(r"^(__libc_)?(malloc|calloc|realloc)$|^(__)?posix_memalign$|^aligned_alloc$")


def parse(path):
    """(total Ir, allocation calls) of one callgrind dump: the calls= lines under a cfn= naming an allocator."""
    names, total, allocs, target = {}, 0, 0, None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
            elif line.startswith("cfn="):
                m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.strip())
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    target = names.get(m.group(1), "")
                else:
                    target = line.strip()[4:]
            elif line.startswith("fn="):
                m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.strip())
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
            elif line.startswith("calls=") and target is not None:
                if ALLOC.match(target):
                    allocs += int(line.split("=")[1].split()[0])
                target = None
    return total, allocs


PROBES = ("malloc", "calloc", "realloc", "posix_memalign", "libssh2_default_alloc")


def add_probes(label, binary):
    for fn in PROBES:
        subprocess.run(["perf", "probe", "-q", "-d", f"probe_sluice:{label}_{fn}"], capture_output=True)
        subprocess.run(["perf", "probe", "-q", "-x", os.path.abspath(binary), "--add", f"{label}_{fn}={fn}"],
                       check=True, capture_output=True)


def measure_native(label, binary, mib, target, sshd, outdir):
    app = Appliance(binary, sshd, limits=bench.LIMITS)
    app.sluice.start()
    pid = app.sluice.proc.pid
    try:
        lport = bench.listen_port()
        bench.tunnel(app, 1, "edge", "local", lport, target)
        result = {}
        for way in ("up", "down"):
            out = os.path.join(outdir, f"{label}-{way}.perf")
            events = ",".join(f"probe_sluice:{label}_{fn}" for fn in PROBES)
            perf = subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e", events, "-p", str(pid)])
            time.sleep(0.5)
            r = bench.tool("bload", way, lport, mib << 20, 1, timeout=600)
            perf.send_signal(signal.SIGINT)
            perf.wait(30)
            counts = {}
            for line in open(out):
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[2].startswith("probe_sluice:"):
                    counts[parts[2].split(f"{label}_", 1)[1]] = int(parts[0]) if parts[0].isdigit() else 0
            mb = (mib << 20) / 1e6
            total = sum(v for k, v in counts.items() if k != "libssh2_default_alloc")
            result[way] = (total / mb, counts.get("libssh2_default_alloc", 0) / mb, float(r.get("mbps", 0)))
        return result
    finally:
        app.stop()


def measure(label, binary, mib, target, sshd, outdir):
    out = os.path.join(outdir, f"{label}.callgrind")
    prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
    app = Appliance(binary, sshd, prefix=prefix, limits=bench.LIMITS)
    app.sluice.start(timeout=120)
    pid = app.sluice.proc.pid
    try:
        lport = bench.listen_port()
        bench.tunnel(app, 1, "edge", "local", lport, target, timeout=120)
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
        result = {}
        for way in ("up", "down"):
            before = set(os.listdir(outdir))
            r = bench.tool("bload", way, lport, mib << 20, 1, timeout=1800)
            subprocess.run(["callgrind_control", "-d", way, str(pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
            deadline = time.monotonic() + 60
            while True:
                new = [n for n in set(os.listdir(outdir)) - before if n.startswith(f"{label}.callgrind")]
                if new or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            ir = allocs = 0
            for n in new:       # one dump file per thread with --separate-threads, else one
                i, a = parse(os.path.join(outdir, n))
                ir, allocs = ir + i, allocs + a
            mb = (mib << 20) / 1e6
            result[way] = (ir / mb, allocs / mb, float(r.get("mbps", 0)))
        return result
    finally:
        app.stop()


def main():
    args = sys.argv[1:]
    mib, runs, native = 64, 1, False
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--mib":
            mib = int(args.pop(0))
        elif opt == "--runs":
            runs = int(args.pop(0))
        elif opt == "--native":
            native = True
        else:
            sys.exit(__doc__)
    builds = [a.split("=", 1) for a in args]
    if not builds:
        sys.exit(__doc__)
    bench.compile_tools()
    if native:
        for label, binary in builds:
            add_probes(label, binary)
    outdir = tempfile.mkdtemp(prefix="callgrind-ab-")
    target_proc = bench.start([os.path.join(bench.OUT_DIR, "bload"), "serve", str(bench.listen_port())],
                              stdout=subprocess.PIPE, text=True)
    target = int(bench.kv(target_proc.stdout.readline())["port"])
    sshd = Sshd(extra_config=bench.forced_sshd_config()).start()
    try:
        print(f"{mib} MiB each way through a local forward, {bench.CIPHER} + {bench.MAC}; output in {outdir}")
        if native:
            print("| build | run | direction | allocations per MB | of them libssh2's | MB/s |")
        else:
            print("| build | run | direction | instructions per MB | allocations per MB | MB/s under callgrind |")
        print("|---|---|---|---|---|---|")
        for run in range(runs):
            for label, binary in builds:
                if native:
                    res = measure_native(label, binary, mib, target, sshd, outdir)
                    for way, (allocs, ours, mbps) in res.items():
                        print(f"| {label} | {run + 1} | {way} | {allocs:.1f} | {ours:.1f} | {mbps:.0f} |", flush=True)
                    continue
                res = measure(f"{label}-{run}", binary, mib, target, sshd, outdir)
                for way, (ir, allocs, mbps) in res.items():
                    print(f"| {label} | {run + 1} | {way} | {ir:,.0f} | {allocs:.1f} | {mbps:.1f} |", flush=True)
    finally:
        sshd.cleanup()
        bench.stop(target_proc)
        if native:
            for label, _ in builds:
                for fn in PROBES:
                    subprocess.run(["perf", "probe", "-q", "-d", f"probe_sluice:{label}_{fn}"], capture_output=True)


if __name__ == "__main__":
    main()
