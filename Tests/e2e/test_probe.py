"""`sluice probe --host ID`: the host key fingerprint as `ssh-keygen -l` prints it, the negotiated algorithms, the
host-key check against the configuration, authentication, a verdict and its exit code; nothing recorded."""
import base64
import hashlib
import os
import re
import subprocess

import pytest

from harness.appliance import write_config
from harness.sluice import command
from harness.tunnels import host_entry

TYPES = {"ssh-ed25519": "ed25519", "ecdsa-sha2-nistp256": "ecdsa", "rsa-sha2-512": "rsa", "rsa-sha2-256": "rsa",
         "ssh-rsa": "rsa"}


def fingerprint(public_line):
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@pytest.fixture(scope="module")
def probe_config(sshd, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("probe"))
    key = sshd.keys["ecdsa256"]
    hosts = [host_entry(sshd.port, 30, "tofu", sshd.user, key),
             host_entry(sshd.port, 31, "pinned", sshd.user, key, hostKey=sshd.host_keys["ed25519"]),
             host_entry(sshd.port, 32, "wrong-pin", sshd.user, key,
                        hostKey="SHA256:" + base64.b64encode(bytes(32)).decode().rstrip("=")),
             host_entry(sshd.port, 33, "not-authorized", sshd.user, key, username="nobody")]
    hosts[3]["username"] = "root"
    path, _ = write_config(d, sshd, extra_hosts=hosts)
    state = os.path.join(d, "state")
    os.makedirs(state)
    return path, state


def probe(sluice_bin, config, state, host):
    r = subprocess.run(command(sluice_bin) + ["probe", "--host", str(host), "--config", config, "--state", state],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def test_probe_reports_fingerprint_algorithms_and_ok(sluice_bin, sshd, probe_config):
    config, state = probe_config
    rc, out, err = probe(sluice_bin, config, state, 30)
    assert rc == 0, (out, err)
    m = re.search(r"^host key: (\S+) (SHA256:\S+)$", out, re.M)
    assert m, out
    assert m.group(2) == fingerprint(sshd.host_keys[TYPES[m.group(1)]]), out
    for field in ("kex", "cipher", "mac"):
        assert re.search(rf"^{field}: \S+", out, re.M), out
    assert "not in known_hosts" in out and "not recorded" in out
    assert "authentication: ok" in out and out.rstrip().endswith("verdict: OK")
    assert not os.path.exists(os.path.join(state, "known_hosts")), "a probe records nothing"


def test_probe_pinned_key_and_wrong_pin(sluice_bin, sshd, probe_config):
    config, state = probe_config
    rc, out, _ = probe(sluice_bin, config, state, 31)
    assert rc == 0 and "host key: ssh-ed25519 " + fingerprint(sshd.host_keys["ed25519"]) in out, out
    assert "matches the pinned key" in out
    rc, out, _ = probe(sluice_bin, config, state, 32)
    assert rc == 2, out
    assert "host key check: FAILED" in out and "verdict: FAILED: Host key verification failed for wrong-pin" in out
    checks = [line for line in out.splitlines() if "host key check" in line]
    assert len(checks) == 1 and checks[0].startswith("host key check: FAILED ("), out   # said once (issue #24)
    assert re.search(r"^host key: \S+ SHA256:\S+$", out, re.M), "the fingerprint is printed to pin it"
    assert "authentication:" not in out, "no credential is sent to a server that failed the host-key check"


def test_probe_authentication_refused(sluice_bin, probe_config):
    config, state = probe_config
    rc, out, _ = probe(sluice_bin, config, state, 33)
    assert rc == 2, out
    assert "authentication: FAILED" in out and "verdict: FAILED: " in out


def test_probe_usage_errors(sluice_bin, probe_config):
    config, state = probe_config
    assert probe(sluice_bin, config, state, 0)[0] == 1          # the appliance itself
    rc, _, err = probe(sluice_bin, config, state, 999)
    assert rc == 1 and "no host with id 999" in err
    r = subprocess.run(command(sluice_bin) + ["probe"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "--host" in r.stderr
