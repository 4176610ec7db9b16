"""README's set-up on a plain Debian 12 (issue #23): a debootstrapped bookworm with no pyenv, no Swift and no build
packages (tools/debian12-root.sh, cached), a clone of this checkout in it (its committed state), the Swift toolchain
mounted where README says, and README's commands run there as root (Tests/e2e/harness/plain_debian.sh). It shows
that the system python3 refuses `pip install` (so the check means something), that `make venv` makes build/venv with
the test requirements, and that `make run` installs what it needs (tools/deps.sh host-build), builds the x86_64
product from the C-library cache this machine already holds (no rebuild: the cache is mounted read-only) and serves.
First pass only (`once`): it is about the set-up, not about a product binary."""
import hashlib
import os
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

pytestmark = pytest.mark.once


class Step:
    def __init__(self, work, name):
        self.name = name
        self.output = open(os.path.join(work, f"{name}.out"), errors="replace").read()
        self.rc = int(open(os.path.join(work, f"{name}.rc")).read())
        self.seconds = int(open(os.path.join(work, f"{name}.seconds")).read())

    def __repr__(self):
        return f"step {self.name}: exit {self.rc} after {self.seconds} s\n{self.output[-4000:]}"


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


# What the set-up depends on: when none of it changed since a run that passed on this machine, the check is not paid
# for again (it compiles the product in a fresh clone: minutes). Sources are not in the key: whether they build is
# the products stage's question, not the set-up's. SLUICE_SETUP_CHECK=always runs it regardless.
SETUP_INPUTS = ["Makefile", "tools/deps.sh", "tools/build-product.sh", "tools/debian12-root.sh", "Package.swift",
                "Tests/e2e/harness/plain_debian.sh", "Tests/e2e/test_setup.py", "Tests/e2e/requirements.txt",
                "README.md"]


def setup_key():
    h = hashlib.sha256()
    for name in SETUP_INPUTS:
        h.update(name.encode() + b"\0")
        with open(os.path.join(ROOT, name), "rb") as f:
            h.update(f.read())
    h.update(subprocess.run(["swift", "--version"], capture_output=True).stdout)
    h.update(open("/etc/debian_version").read().encode())
    return h.hexdigest()[:16]


def stamp_path():
    cache = os.environ.get("SLUICE_DEPS") or ("/var/cache/sluice" if os.geteuid() == 0 else os.path.join(ROOT, ".deps"))
    return os.path.join(cache, "setup-check", setup_key())


@pytest.fixture(scope="module")
def plain_debian(request):
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, chroot, mounts)")
    stamp = stamp_path()
    if os.path.exists(stamp) and os.environ.get("SLUICE_SETUP_CHECK") != "always":
        pytest.skip(f"the set-up's inputs are those of a run that passed here: {open(stamp).read().strip()} "
                    f"({stamp}; SLUICE_SETUP_CHECK=always runs it again)")
    failed_before = request.session.testsfailed
    started = time.monotonic()
    base = subprocess.run([os.path.join(ROOT, "tools/debian12-root.sh")], capture_output=True, text=True,
                          timeout=1800)
    assert base.returncode == 0, base.stderr[-3000:]
    root_seconds = time.monotonic() - started
    work = tempfile.mkdtemp(prefix="sluice-plain-debian-", dir="/var/tmp")
    try:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                            os.path.join(HERE, "harness", "plain_debian.sh"), base.stdout.strip(), work, ROOT],
                           capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
        steps = {name: Step(work, name) for name in ("pip", "venv", "deps", "run")}
        print(f"plain Debian 12 set-up: root {root_seconds:.0f} s, "
              + ", ".join(f"{s.name} {s.seconds} s" for s in steps.values())
              + f", in all {time.monotonic() - started:.0f} s")
        yield steps
        if request.session.testsfailed == failed_before:
            os.makedirs(os.path.dirname(stamp), exist_ok=True)
            with open(stamp + ".tmp", "w") as f:
                f.write(f"passed {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                        + ", ".join(f"{s.name} {s.seconds} s" for s in steps.values()) + "\n")
            os.replace(stamp + ".tmp", stamp)
    finally:
        # the namespace's mounts ended with it; never delete through one that did not (the cache, /dev)
        left = mounts_under(work)
        assert not left, f"mounts left under {work}: {left}"
        subprocess.run(["rm", "-rf", "--one-file-system", work], check=False)


def test_the_system_python_refuses_pip_install(plain_debian):
    pip = plain_debian["pip"]
    assert pip.rc != 0 and "externally-managed-environment" in pip.output, pip


def test_make_venv_installs_the_test_requirements(plain_debian):
    venv = plain_debian["venv"]
    assert venv.rc == 0 and "imports ok" in venv.output, venv


def test_make_run_installs_what_it_needs_builds_and_serves(plain_debian):
    deps, run = plain_debian["deps"], plain_debian["run"]
    assert deps.rc == 0, deps
    # the C libraries came from this machine's cache: no key missed
    for text in (deps.output, run.output):
        assert "building C libraries" not in text and "deps: sysroot" not in text and "deps: source" not in text, deps
    assert run.rc == 0, run
    assert "built build/x86_64/sluice" in run.output, run
    assert "event=serve.listening" in run.output and "healthz answered" in run.output, run
    # `sluice version` of the product it built: its first line is fixed by the appliance contract
    version = run.output.split("healthz answered", 1)[1].strip().splitlines()
    assert version and version[0].startswith("sluice ") and "x86_64" in version[0], run
