"""`sluice check`: the whole configuration is validated, every problem printed as `<json-path>: <problem>`."""
import json
import os
import re
import subprocess

import pytest

from harness.sluice import command

JWT_SECRET = "0123456789abcdef" * 4


def example(keyfile="keys/edge_ed25519"):
    """appliance.md §2's example, with paths relative to the config file's folder."""
    return {
        "listen": "127.0.0.1:30003",
        "stateDir": "state",
        "jwtSecretFile": "secrets/jwt_secret",
        "allowedOrigins": ["https://termix.example.org"],
        "sseKeepaliveSeconds": 30,
        "bindAllow": ["127.0.0.1", "::1"],
        "destinations": {"allow": ["10.0.0.0/8", "192.168.0.0/16:22-443", "db.lan:5432", "[fd00::/8]:22-443"],
                         "deny": []},
        "limits": {"bufferSize": 32768, "bufferCount": 1024, "maxTunnels": 256,
                   "maxConnectionsPerTunnel": 512, "maxRelays": 512, "buffersPerStream": 4},
        "users": [{"id": "u-admin", "username": "admin", "admin": True},
                  {"id": "u-ops", "username": "ops"}],
        "hosts": [
            {"id": 0, "name": "appliance", "local": True, "owner": "u-admin"},
            {"id": 1, "name": "edge", "ip": "192.0.2.10", "port": 22, "username": "pi",
             "owner": "u-admin", "sharedWith": ["u-ops"],
             "auth": {"type": "key", "keyFile": keyfile, "passphraseFile": "keys/edge.pass"},
             "keepaliveInterval": 30000, "keepaliveCountMax": 3,
             "tunnels": [{"mode": "local", "sourcePort": 8080, "endpointHost": "", "endpointPort": 80,
                          "bindHost": "127.0.0.1", "targetHost": "10.1.1.5",
                          "maxRetries": 3, "retryInterval": 10, "autoStart": True}]},
            {"id": 2, "name": "db", "ip": "10.1.1.20", "port": 22, "username": "admin", "owner": "u-admin",
             "auth": {"type": "password", "passwordFile": "secrets/db.pass"}},
        ],
    }


@pytest.fixture
def confdir(tmp_path):
    """A config folder with a real passphrase-protected key, its host key pin, and secret files."""
    d = tmp_path / "etc"
    (d / "keys").mkdir(parents=True)
    (d / "secrets").mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "open sesame", "-C", "edge",
                    "-f", str(d / "keys" / "edge_ed25519")], check=True)
    (d / "keys" / "edge.pass").write_text("open sesame\n")
    (d / "secrets" / "db.pass").write_text("db-password\n")
    (d / "secrets" / "jwt_secret").write_text(JWT_SECRET + "\n")
    return d


def write(folder, config, name="sluice.json"):
    path = folder / name
    path.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
    return str(path)


def check(sluice_bin, *args, env=None, cwd=None):
    environment = {k: v for k, v in os.environ.items() if k not in ("SLUICE_CONFIG", "SLUICE_STATE")}
    environment.update(env or {})
    return subprocess.run(command(sluice_bin) + ["check", *args], capture_output=True, text=True, timeout=60,
                          env=environment, cwd=cwd)


def test_valid_example_config(sluice_bin, confdir):
    config = example()
    pub = (confdir / "keys" / "edge_ed25519.pub").read_text().strip()
    config["hosts"][1]["hostKey"] = pub
    r = check(sluice_bin, "--config", write(confdir, config))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith("ok")


def test_config_from_environment_and_relative_paths(sluice_bin, confdir, tmp_path):
    write(confdir, example())
    # relative to the working directory for the file itself, then to the file's folder for what it names
    r = check(sluice_bin, env={"SLUICE_CONFIG": "etc/sluice.json"}, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    r = check(sluice_bin, "--config", "etc/sluice.json", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(os.path.exists("/etc/sluice/sluice.json"), reason="a system configuration is installed")
def test_no_configuration_means_the_embedded_default(sluice_bin, tmp_path):
    r = check(sluice_bin, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "default" in r.stdout


def test_every_problem_is_printed(sluice_bin, confdir):
    (confdir / "secrets" / "short").write_text("hunter2\n")
    config = example(keyfile="keys/missing_key")
    config["listenn"] = "127.0.0.1:1"
    config["jwtSecretFile"] = "secrets/short"
    config["destinations"]["allow"].append("10.0.0.0/33")
    config["hosts"][1]["port"] = "22"
    config["hosts"][1]["sharedWith"] = ["u-nobody"]
    config["hosts"][0]["tunnels"] = [{"mode": "remote", "sourcePort": 9000, "endpointPort": 22}]
    config["hosts"][2]["auth"]["password"] = "inline-pw"
    config["hosts"][2]["tunnels"] = [{"mode": "local", "sourcePort": 0, "endpointPort": 80}]
    r = check(sluice_bin, "--config", write(confdir, config))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    expected = [
        "listenn: unknown key",
        "jwtSecretFile: must hold at least 64 characters",
        "destinations.allow[4]: prefix length must be from 0 to 32",
        "hosts[0].tunnels[0].mode: remote tunnels are not possible on a local host",
        "hosts[1].sharedWith[0]: unknown user \"u-nobody\"",
        "hosts[1].port: must be an integer",
        "hosts[1].auth.keyFile: file not found",
        "hosts[2].auth.passwordFile: give password or passwordFile, not both",
        "hosts[2].tunnels[0].sourcePort: must be from 1 to 65535",
    ]
    for line in expected:
        assert line in lines, r.stderr
    assert len(lines) == len(expected), r.stderr
    assert all(re.match(r"^[\w\[\].\"]+: \S", line) for line in lines), r.stderr
    assert "hunter2" not in r.stderr and "inline-pw" not in r.stderr
    assert r.stdout == ""


def test_unknown_key(sluice_bin, tmp_path):
    r = check(sluice_bin, "--config", write(tmp_path, '{"listenn": "127.0.0.1:30003"}'))
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["listenn: unknown key"]


def test_missing_key_file(sluice_bin, confdir):
    os.remove(confdir / "keys" / "edge_ed25519")
    r = check(sluice_bin, "--config", write(confdir, example()))
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["hosts[1].auth.keyFile: file not found"]


def test_jwt_secret_file_too_short_or_missing(sluice_bin, confdir):
    (confdir / "secrets" / "jwt_secret").write_text(JWT_SECRET[:63] + "\n")
    r = check(sluice_bin, "--config", write(confdir, example()))
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["jwtSecretFile: must hold at least 64 characters"]
    assert JWT_SECRET[:63] not in r.stderr
    os.remove(confdir / "secrets" / "jwt_secret")
    r = check(sluice_bin, "--config", write(confdir, example()))
    assert r.stderr.splitlines() == ["jwtSecretFile: file not found"]


def test_invalid_json_names_its_position(sluice_bin, tmp_path):
    r = check(sluice_bin, "--config", write(tmp_path, '{\n  "listen": "127.0.0.1:30003",\n  "stateDir": tru\n}\n'))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("invalid JSON: ")
    assert lines[0].endswith("at line 3, column 15"), lines[0]


def test_missing_configuration_file(sluice_bin, tmp_path):
    r = check(sluice_bin, "--config", str(tmp_path / "absent.json"))
    assert r.returncode == 1
    assert "not found" in r.stderr
    r = check(sluice_bin, env={"SLUICE_CONFIG": str(tmp_path / "absent.json")})
    assert r.returncode == 1
    assert "not found" in r.stderr


def test_bad_arguments(sluice_bin):
    assert check(sluice_bin, "--verbose").returncode == 1
    r = check(sluice_bin, "--config")
    assert r.returncode == 1
    assert "--config" in r.stderr
