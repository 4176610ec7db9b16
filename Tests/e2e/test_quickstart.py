"""README's quick start, run as written (issue #23): the fenced block between `<!-- quickstart -->` markers is
extracted and run by bash in the checkout, with only its documented placeholders substituted (SSH_HOST, SSH_PORT,
SSH_USER, and the free ports 30003 and 8022), against an sshd of its own that reads the user's ~/.ssh/authorized_keys
(where the block's ssh-copy-id writes, with the user's password). Then the tunnel it connected must carry the SSH
server's banner. Runs in the first pass only: the block builds and runs the x86_64 product."""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from harness.api import request
from harness.ports import free_port
from harness.sshd import Sshd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEFT_BEHIND = ["sluice.json", "sluice_key", "sluice_key.pub", "sluice-state"]

pytestmark = pytest.mark.product


def quickstart_block():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    m = re.search(r"<!-- quickstart -->\n```sh\n(.*?)```\n<!-- /quickstart -->", text, re.S)
    assert m, "README has no quick-start block between <!-- quickstart --> markers"
    return m.group(1)


def test_block_is_at_most_ten_commands():
    block = quickstart_block()
    commands, in_heredoc = 0, None
    for line in block.splitlines():
        if in_heredoc:
            if line.strip() == in_heredoc:
                in_heredoc = None
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            commands += 1
            m = re.search(r"<<'?(\w+)'?", line)
            in_heredoc = m.group(1) if m else None
    assert commands <= 10, block


@pytest.fixture
def own_sshd():
    server = Sshd(user_keys=True).start()
    home = pwd.getpwnam(server.user).pw_dir
    keys = os.path.join(home, ".ssh", "authorized_keys")
    before = open(keys).read() if os.path.exists(keys) else None
    yield server
    server.cleanup()
    if before is None:
        if os.path.exists(keys):
            os.unlink(keys)
    else:
        with open(keys, "w") as f:
            f.write(before)


def test_readme_quickstart_runs_as_written(own_sshd):
    for name in LEFT_BEHIND:
        if os.path.exists(os.path.join(ROOT, name)):
            pytest.skip(f"{name} exists in the checkout: the quick start would overwrite it")
    http, local = free_port(), free_port()
    block = quickstart_block()
    for placeholder, value in [("SSH_HOST", "localhost"), ("SSH_PORT", str(own_sshd.port)),
                               ("SSH_USER", own_sshd.user), ("30003", str(http)), ("8022", str(local))]:
        block = block.replace(placeholder, value)
    home = tempfile.mkdtemp(prefix="sluice-quickstart-home-")
    env = dict(os.environ, HOME=home, **own_sshd._askpass(own_sshd.password))
    serve_pid = None
    started = time.monotonic()
    try:
        # output to files, not pipes: the appliance the block leaves running holds them open
        out_path, err_path = os.path.join(home, "stdout"), os.path.join(home, "stderr")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            rc = subprocess.run(["bash", "-e", "-x", "-c", """trap 'echo "quickstart-serve-pid=$!"' EXIT\n""" + block], cwd=ROOT,
                                env=env, stdout=out, stderr=err, timeout=1800, stdin=subprocess.DEVNULL).returncode
        stdout, stderr = open(out_path).read(), open(err_path).read()
        m = re.search(r"quickstart-serve-pid=(\d+)", stdout)
        serve_pid = int(m.group(1)) if m else None
        assert rc == 0, (stdout[-3000:], stderr[-3000:])
        name = f"1::0::server::{local}::127.0.0.1::{own_sshd.port}"
        # curl prints the connect answer, then the status (which names the tunnel), without newlines
        answer = '{"message":"Connection request received","tunnelName":"' + name + '"}{'
        assert answer in stdout and stdout.count(name) >= 2, stdout[-2000:]
        # the tunnel comes up and carries the server's banner
        token = subprocess.run([os.path.join(ROOT, "build/x86_64/sluice"), "token", "--user", "admin", "--config",
                                os.path.join(ROOT, "sluice.json")], capture_output=True, text=True, check=True).stdout.strip()
        deadline = time.monotonic() + 60
        while True:
            st = request(http, "GET", "/ssh/tunnel/status", token=token).json().get(name, {})
            if st.get("status") == "connected":
                break
            assert time.monotonic() < deadline, st
            time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", local), timeout=20) as s:
            assert s.recv(64).startswith(b"SSH-2.0-"), "the tunnel does not reach the SSH server"
        print(f"quick start: {time.monotonic() - started:.1f} s from the first command to a connected tunnel")
    finally:
        if serve_pid:
            try:
                os.kill(serve_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for name in LEFT_BEHIND:
            path = os.path.join(ROOT, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.unlink(path)
        shutil.rmtree(home, ignore_errors=True)
