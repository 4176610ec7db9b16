"""A private OpenSSH sshd on a free 127.0.0.1 port, in a temp dir, with generated host keys (ed25519, ECDSA, RSA),
client keys of each type (OpenSSH and PEM formats, one with a passphrase) in authorized_keys, and a password user."""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile

from .ports import free_port, wait_port

TEST_USER = "sluice-e2e"
TEST_PASSWORD = "e2e-Pa55word-not-secret"
KEY_PASSPHRASE = "e2e-passphrase"

# name -> ssh-keygen arguments
CLIENT_KEYS = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "3072"],
    "ecdsa256_pem": ["-t", "ecdsa", "-b", "256", "-m", "PEM"],
    "rsa_pem": ["-t", "rsa", "-b", "3072", "-m", "PEM"],
    "ed25519_pass": ["-t", "ed25519"],
    "ecdsa256_pass": ["-t", "ecdsa", "-b", "256"],
}


def ensure_user():
    """The login user for key and password tests (created once; CI runs as root)."""
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], check=True)
    subprocess.run(["chpasswd"], input=f"{TEST_USER}:{TEST_PASSWORD}\n", text=True, check=True)


class Sshd:
    def __init__(self, root=None, extra_config="", address="127.0.0.1", prefix=(), user_keys=False):
        """`address`: where it listens; `prefix`: a command it runs under (e.g. `ip netns exec NAME`); `user_keys`:
        the login user's own ~/.ssh/authorized_keys counts too (where `ssh-copy-id` writes)."""
        self.user_keys = user_keys
        self.root = root or tempfile.mkdtemp(prefix="sluice-sshd-")
        self.address = address
        self.prefix = list(prefix)
        self.port = free_port()
        self.extra_config = extra_config
        self.proc = None
        self.keys = {}            # client key name -> private key path
        self.host_keys = {}       # type -> public key line
        self.user = TEST_USER
        self.password = TEST_PASSWORD
        self.passphrase = KEY_PASSPHRASE
        self._prepare()

    def _keygen(self, path, args, passphrase=""):
        subprocess.run(["ssh-keygen", "-q", *args, "-N", passphrase, "-C", os.path.basename(path), "-f", path],
                       check=True)

    def _prepare(self):
        ensure_user()
        os.makedirs("/run/sshd", exist_ok=True)
        hk = os.path.join(self.root, "hostkeys")
        ck = os.path.join(self.root, "clientkeys")
        os.makedirs(hk)
        os.makedirs(ck)
        for kind, args in {"ed25519": ["-t", "ed25519"], "ecdsa": ["-t", "ecdsa", "-b", "256"],
                           "rsa": ["-t", "rsa", "-b", "3072"]}.items():
            path = os.path.join(hk, f"ssh_host_{kind}_key")
            self._keygen(path, args)
            with open(path + ".pub") as f:
                self.host_keys[kind] = f.read().strip()
        authorized = []
        for name, args in CLIENT_KEYS.items():
            path = os.path.join(ck, name)
            self._keygen(path, args, KEY_PASSPHRASE if name.endswith("_pass") else "")
            os.chmod(path, 0o600)
            self.keys[name] = path
            with open(path + ".pub") as f:
                authorized.append(f.read().strip())
        self.authorized_keys = os.path.join(self.root, "authorized_keys")
        with open(self.authorized_keys, "w") as f:
            f.write("\n".join(authorized) + "\n")
        # sshd reads authorized_keys with the login user's rights
        os.chmod(self.root, 0o755)
        os.chmod(self.authorized_keys, 0o644)
        self.log = os.path.join(self.root, "sshd.log")
        self.config = os.path.join(self.root, "sshd_config")
        with open(self.config, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress {self.address}
HostKey {hk}/ssh_host_ed25519_key
HostKey {hk}/ssh_host_ecdsa_key
HostKey {hk}/ssh_host_rsa_key
PidFile {self.root}/sshd.pid
AuthorizedKeysFile {self.authorized_keys}{" .ssh/authorized_keys" if self.user_keys else ""}
UsePAM no
StrictModes no
PermitRootLogin no
PasswordAuthentication yes
KbdInteractiveAuthentication yes
PubkeyAuthentication yes
AllowTcpForwarding yes
GatewayPorts no
MaxSessions 1000
MaxStartups 200:30:400
LogLevel VERBOSE
{self.extra_config}
""")

    def start(self):
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        subprocess.run([sshd, "-t", "-f", self.config], check=True)
        self.proc = subprocess.Popen(self.prefix + [sshd, "-D", "-e", "-f", self.config],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        wait_port(self.port, host=self.address)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def pause(self):
        """SIGSTOP: the kernel still ACKs, but nothing answers (a wedged server)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def ssh_base(self, key=None):
        args = ["ssh", "-p", str(self.port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=" + ("yes" if key else "no"), "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]
        if key:
            args += ["-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no", "-i", self.keys[key]]
        return args

    def run_with_key(self, key, command="true", passphrase=None):
        env = dict(os.environ)
        if passphrase is not None:
            env.update(self._askpass(passphrase))
            args = self.ssh_base() + ["-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no",
                                      "-o", "KbdInteractiveAuthentication=no", "-i", self.keys[key]]
        else:
            args = self.ssh_base(key)
        return subprocess.run(args + [f"{self.user}@127.0.0.1", command], capture_output=True, text=True,
                              timeout=30, env=env, stdin=subprocess.DEVNULL)

    def run_with_password(self, password, command="true"):
        env = dict(os.environ)
        env.update(self._askpass(password))
        args = self.ssh_base() + ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
                                  "-o", "NumberOfPasswordPrompts=1"]
        return subprocess.run(args + [f"{self.user}@127.0.0.1", command], capture_output=True, text=True,
                              timeout=30, env=env, stdin=subprocess.DEVNULL)

    def _askpass(self, secret):
        script = os.path.join(self.root, f"askpass-{abs(hash(secret))}")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nprintf '%s\\n' " + "'" + secret.replace("'", "'\\''") + "'\n")
        os.chmod(script, 0o700)
        return {"SSH_ASKPASS": script, "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
