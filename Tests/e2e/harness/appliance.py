"""A Sluice under test with a real configuration file: three users, the appliance's own host, the e2e sshd as a
shared host, and a host nobody else may use."""
import json
import os
import tempfile

from .api import token_for
from .flavour import login_key
from .sluice import Sluice

SECRET = "e2e-secret-" + "0123456789abcdef" * 4     # ≥ 64 characters, used as its UTF-8 bytes


def write_config(directory, sshd=None, extra_hosts=(), **overrides):
    secret_file = os.path.join(directory, "jwt.secret")
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")
    edge = {"id": 1, "name": "edge", "ip": getattr(sshd, "address", "127.0.0.1"), "port": sshd.port if sshd else 22,
            "username": sshd.user if sshd else "nobody", "owner": "u-admin", "sharedWith": ["u-ops"],
            "auth": {"type": "key", "keyFile": login_key(sshd)} if sshd else {"type": "none"},
            "tunnels": [{"mode": "local", "sourcePort": 18080, "endpointHost": "", "endpointPort": 80,
                         "bindHost": "127.0.0.1", "targetHost": "127.0.0.1", "maxRetries": 1, "retryInterval": 1}]}
    config = {
        "jwtSecretFile": "jwt.secret",
        "sseKeepaliveSeconds": 30,
        "users": [{"id": "u-admin", "username": "admin", "admin": True},
                  {"id": "u-ops", "username": "ops"},
                  {"id": "u-other", "username": "other"}],
        "hosts": [{"id": 0, "name": "appliance", "local": True, "owner": "u-admin"},
                  edge,
                  {"id": 2, "name": "private", "ip": "127.0.0.1", "port": 22, "username": "x", "owner": "u-other",
                   "auth": {"type": "none"}},
                  *extra_hosts],
    }
    config.update(overrides)
    path = os.path.join(directory, "sluice.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return path, config


class Appliance:
    def __init__(self, binary, sshd=None, prefix=(), state_dir=None, **overrides):
        self.dir = tempfile.mkdtemp(prefix="sluice-cfg-")
        self.config_path, self.config = write_config(self.dir, sshd, **overrides)
        self.sluice = Sluice(binary, args=["--config", self.config_path],
                             state_dir=state_dir or os.path.join(self.dir, "state"), prefix=prefix)

    def start(self):
        self.sluice.start()
        return self

    @property
    def port(self):
        return self.sluice.port

    def token(self, user_id, **extra):
        return token_for(user_id, SECRET, **extra)

    def rewrite(self, config):
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)

    def stop(self):
        return self.sluice.stop()
