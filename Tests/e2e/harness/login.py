"""Password login helpers: the status page's test password and `sluice hash-password` run through the harness."""
import subprocess

from .sluice import command

PASSWORD = "page-Pa55-not-secret"


def hash_password(binary, password, iterations=1000):
    r = subprocess.run([*command(binary), "hash-password", "--iterations", str(iterations)], input=password + "\n",
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert password not in r.stdout
    return r.stdout.strip()
