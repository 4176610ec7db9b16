"""A private dropbear server (Debian's dropbear-bin) on a free 127.0.0.1 port (shared/design/interop.md).

dropbear reads the login user's ~/.ssh/authorized_keys (owned by the user, modes 700/600), so it logs in a user of
its own, `sluice-dropbear`, whose authorized_keys holds the client keys of the running instances (each adds its lines
and removes them when it stops). Host keys: ed25519 and ECDSA P-256 (the mbedTLS flavour has no ed25519)."""
import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import tempfile

from .ports import free_port, wait_port

DROPBEAR_USER = "sluice-dropbear"


def _ensure_user():
    try:
        return pwd.getpwnam(DROPBEAR_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", DROPBEAR_USER], check=True)
        return pwd.getpwnam(DROPBEAR_USER)


class Dropbear:
    def __init__(self, extra_args=()):
        self.user = DROPBEAR_USER
        self.entry = _ensure_user()
        self.root = tempfile.mkdtemp(prefix="sluice-dropbear-")
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.proc = None
        self.keys = {}
        self.host_keys = []
        for kind, args in {"ed25519": ["-t", "ed25519"], "ecdsa": ["-t", "ecdsa", "-s", "256"]}.items():
            path = os.path.join(self.root, f"hostkey_{kind}")
            subprocess.run(["dropbearkey", *args, "-f", path], check=True, capture_output=True)
            self.host_keys.append(path)
        lines = []
        for name, args in {"ecdsa256": ["-t", "ecdsa", "-b", "256"], "ed25519": ["-t", "ed25519"],
                           "rsa_pem": ["-t", "rsa", "-b", "3072", "-m", "PEM"]}.items():
            path = os.path.join(self.root, name)
            subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-C", f"{name}@{os.path.basename(self.root)}",
                            "-f", path], check=True)
            os.chmod(path, 0o600)
            self.keys[name] = path
            with open(path + ".pub") as f:
                lines.append(f.read().strip())
        self._lines = lines
        self._edit_authorized(add=lines)
        self.log = os.path.join(self.root, "dropbear.log")

    def _edit_authorized(self, add=(), remove=()):
        ssh_dir = os.path.join(self.entry.pw_dir, ".ssh")
        os.makedirs(ssh_dir, exist_ok=True)
        path = os.path.join(ssh_dir, "authorized_keys")
        with open(os.path.join(ssh_dir, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = []
            if os.path.exists(path):
                with open(path) as f:
                    current = [line.strip() for line in f if line.strip()]
            current = [line for line in current if line not in set(remove)] + list(add)
            with open(path + ".tmp", "w") as f:
                f.write("\n".join(current) + ("\n" if current else ""))
            os.replace(path + ".tmp", path)
            for p, mode in ((ssh_dir, 0o700), (path, 0o600)):
                os.chown(p, self.entry.pw_uid, self.entry.pw_gid)
                os.chmod(p, mode)

    def start(self):
        args = ["dropbear", "-F", "-E", "-s", "-p", f"127.0.0.1:{self.port}", "-P", os.path.join(self.root, "pid")]
        for key in self.host_keys:
            args += ["-r", key]
        self.proc = subprocess.Popen(args + self.extra_args, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        wait_port(self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        self._edit_authorized(remove=self._lines)
        shutil.rmtree(self.root, ignore_errors=True)
