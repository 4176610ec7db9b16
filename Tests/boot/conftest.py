"""make boot-test: the disk images booted under qemu-system (Tests/boot/vm.py), driven through the image's test agent,
with the e2e harness's sshd on the host's loopback as the guests' SSH server."""
import os
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))
sys.path.insert(0, HERE)

from harness.sshd import Sshd  # noqa: E402
from harness.servers import ChecksumSink  # noqa: E402
from vm import image_path  # noqa: E402

# measurements, printed at the end of the run and written to build/boot-test.json
MEASURED = {}


def measure(key, value):
    MEASURED[key] = value
    print(f"measured {key} = {value}")


_kvm = {}


def kvm_problem():
    """None when an amd64 guest can run under KVM here, else why not. /dev/kvm can exist and open while a guest kernel
    makes no progress (nested virtualisation that does not work): a 20 s probe boots the amd64 kernel alone and waits
    for its first message."""
    if "why" in _kvm:
        return _kvm["why"]
    why = None
    if os.environ.get("SLUICE_BOOT_KVM") == "0":
        # boot-image.sh then runs amd64 under TCG: slow, for trying the amd64 image where KVM does not work
        return None
    if not os.path.exists("/dev/kvm"):
        why = "/dev/kvm absent: the amd64 guest needs KVM (arm64 runs under TCG)"
    elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
        why = "/dev/kvm not usable by this user"
    else:
        kernel = image_path("amd64")[:-4] + ".vmlinuz"
        log = tempfile.mktemp(prefix="sluice-kvm-probe-")
        p = subprocess.Popen(["qemu-system-x86_64", "-M", "q35", "-enable-kvm", "-m", "256", "-nodefaults",
                              "-display", "none", "-no-reboot", "-serial", f"file:{log}", "-kernel", kernel,
                              "-append", "console=ttyS0 panic=-1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        seen = False
        while time.monotonic() < deadline and not seen:
            time.sleep(0.2)
            try:
                seen = "Linux version" in open(log, errors="replace").read()
            except OSError:
                pass
            if p.poll() is not None:
                break
        p.kill()
        p.wait()
        if os.path.exists(log):
            os.unlink(log)
        if not seen:
            why = "/dev/kvm opens, but an amd64 guest kernel prints nothing within 20 s under it (nested KVM broken here)"
    _kvm["why"] = why
    return why


def need_arch(arch):
    assert os.path.exists(image_path(arch)), f"{image_path(arch)} missing: make image-disk"
    if arch == "amd64":
        why = kvm_problem()
        if why:
            pytest.skip(why)


def heavy_arch():
    """Where the long stages (watchdog, package life, the many power-cut rounds) run: the KVM guest when it works,
    else the emulated arm64 guest, so every machine runs them once."""
    return "amd64" if kvm_problem() is None else "arm64"


@pytest.fixture(scope="session")
def sshd():
    server = Sshd().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def sink():
    server = ChecksumSink()
    yield server
    server.close()


def pytest_terminal_summary(terminalreporter):
    stats = terminalreporter.stats        # the counts for make test's table (tools/stage.sh)
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "test-counts.tsv"), "a") as f:
        f.write(f"boot\t{len(stats.get('passed', []))}\t{failed}\t{len(stats.get('skipped', []))}\n")
    if not MEASURED:
        return
    import json
    terminalreporter.write_sep("-", "boot-test measurements")
    for k, v in MEASURED.items():
        terminalreporter.write_line(f"{k}: {v}")
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "boot-test.json"), "w") as f:
        json.dump(MEASURED, f, indent=2)
