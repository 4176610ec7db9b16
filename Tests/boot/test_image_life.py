"""The image without its data partition (the tmpfs fallback), and the package's life inside a booted image: upgrade
keeping the edited conffile, remove, purge."""
import hashlib
import os
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, heavy_arch, measure, need_arch
from harness.api import request
from vm import Guest, partitions

BOOT_TIMEOUT = {"arm64": 240, "amd64": 90}
DEB_HOST = "10.0.2.101"      # guestfwd that serves the newer .deb to the guest (one `cat` per connection)
BINARY = {"amd64": "build/x86_64/sluice", "arm64": "build/aarch64/sluice"}
TARGET = {"amd64": "x86_64", "arm64": "aarch64"}


@pytest.mark.parametrize("arch", ["arm64", "amd64"])
def test_no_data_partition_tmpfs_fallback(arch):
    """The data partition's first MiB zeroed in the overlay (no ext4, no label): the boot goes on after fstab's device
    timeout, sluice-state-fallback mounts a tmpfs, Sluice runs and answers, and the journal warns that its state will not
    survive a reboot. Nothing is written to the root partition."""
    need_arch(arch)
    g = Guest(arch)
    try:
        start, _ = partitions(g.image)["sluice-data"]
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -z {start} 1M", g.disk], check=True,
                       capture_output=True)
        t0 = time.monotonic()
        g.boot()
        g.wait_agent(BOOT_TIMEOUT[arch])
        g.wait_active(BOOT_TIMEOUT[arch] + 30)
        measure(f"{arch}.fallback_boot_to_active_s", round(time.monotonic() - t0, 1))
        assert g.sh("findmnt -no FSTYPE /var/lib/sluice").strip() == "tmpfs"
        assert g.sh("systemctl is-active sluice-state-fallback").strip() == "active"
        warnings = g.run("journalctl -b -p warning -o cat")[1]
        assert "will not survive a reboot" in warnings, warnings[-3000:]
        assert g.sh("stat -c %U /var/lib/sluice/jwt_secret").strip() == "sluice"
        assert request(g.api_port, "GET", "/").status == 200
        assert g.sh("cat /sys/class/block/$(basename $(readlink -f $(findmnt -no SOURCE /)))/stat").split()[6] == "0"
    finally:
        g.cleanup()


def build_deb(arch, version, outdir):
    script = os.environ.get("SLUICE_BUILD_DEB") or os.path.join(ROOT, "tools", "build-deb.sh")
    out = subprocess.run([script, TARGET[arch], os.path.join(ROOT, BINARY[arch]), outdir, version], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    assert os.path.exists(out), out
    return out


def test_package_upgrade_remove_purge(sshd):
    """In the booted image (root remounted read-write for the step): an upgrade to a newer build of the .deb keeps the
    edited conffile and the state and restarts the service; `apt-get remove` stops it and keeps the configuration;
    `apt-get purge` removes the configuration, the user and the state."""
    arch = heavy_arch()
    need_arch(arch)
    installed = subprocess.run(["dpkg-deb", "-f", os.environ.get(f"SLUICE_DEB_{arch.upper()}") or "", "Version"],
                               capture_output=True, text=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="sluice-deb-up-")
    g = None
    try:
        # the version installed in the image, read from the image itself below; the newer one sorts after any
        g = Guest(arch, extra_net="")
        new_deb_path = os.path.join(tmp, "new.deb")
        g.net += f",guestfwd=tcp:{DEB_HOST}:80-cmd:cat {new_deb_path}"
        g.boot()
        g.wait_agent(BOOT_TIMEOUT[arch])
        g.wait_active(BOOT_TIMEOUT[arch])
        old = g.sh("dpkg-query -W -f '${Version}' sluice").strip()
        assert not installed or installed == old
        new = old + "+boottest1"
        built = build_deb(arch, new, tmp)
        os.rename(built, new_deb_path)
        digest = hashlib.sha256(open(new_deb_path, "rb").read()).hexdigest()
        conf_before = g.sh("sha256sum < /etc/sluice/sluice.json")
        # the image's copy is an edited conffile (listen on every address): dpkg must keep it
        assert '"0.0.0.0:30003"' in g.sh("cat /etc/sluice/sluice.json")
        secret = g.sh("cat /var/lib/sluice/jwt_secret")
        pid0 = g.unit()["MainPID"]
        g.sh("mount -o remount,rw /")
        g.sh(f"cat < /dev/tcp/{DEB_HOST}/80 > /run/new.deb")
        assert g.sh("sha256sum < /run/new.deb").split()[0] == digest
        t0 = time.monotonic()
        g.sh("DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold /run/new.deb", timeout=300)
        measure(f"{arch}.package_upgrade_s", round(time.monotonic() - t0, 1))
        assert g.sh("dpkg-query -W -f '${Version}' sluice") == new
        assert g.sh("sha256sum < /etc/sluice/sluice.json") == conf_before
        u = g.wait_active(60)
        assert u["MainPID"] != pid0, "not restarted on upgrade"
        assert g.sh("cat /var/lib/sluice/jwt_secret") == secret
        assert request(g.api_port, "GET", "/").status == 200
        # remove: stopped, configuration and state kept
        g.sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q sluice", timeout=300)
        assert g.run("systemctl is-active sluice")[1].strip() in ("inactive", "failed", "unknown")
        assert g.run("pgrep -x sluice")[0] != 0
        assert g.sh("dpkg-query -W -f '${Status}' sluice") == "deinstall ok config-files"
        assert g.sh("sha256sum < /etc/sluice/sluice.json") == conf_before
        assert g.run("test -e /usr/bin/sluice")[0] != 0
        assert g.sh("cat /var/lib/sluice/jwt_secret") == secret
        # purge: configuration, user and state gone
        g.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q sluice", timeout=300)
        assert g.run("getent passwd sluice")[0] != 0
        assert g.run("getent group sluice")[0] != 0
        assert g.run("test -e /etc/sluice/sluice.json")[0] != 0
        assert g.sh("ls -A /var/lib/sluice | grep -v '^lost+found$' || true").strip() == ""
        assert g.run("dpkg-query -W -f '${Status}' sluice")[1].strip() in ("", "unknown ok not-installed") or \
            "no packages found" in g.run("dpkg-query -W sluice")[1]
        g.sh("sync; mount -o remount,ro /")
    finally:
        if g:
            g.cleanup()
