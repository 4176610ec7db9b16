"""The image without its data partition: the tmpfs fallback."""
import os
import subprocess
import time

import pytest

from conftest import measure, need_arch
from harness.api import request
from vm import Guest, partitions

BOOT_TIMEOUT = {"arm64": 240, "amd64": 90}


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
