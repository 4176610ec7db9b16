"""Password login helpers: the status page's test password and `sluice hash-password` run through the harness."""
import subprocess
import time

from .sluice import command

PASSWORD = "page-Pa55-not-secret"


def hash_password(binary, password, iterations=1000):
    r = subprocess.run([*command(binary), "hash-password", "--iterations", str(iterations)], input=password + "\n",
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert password not in r.stdout
    return r.stdout.strip()


def slow_hash(binary, password, seconds=1.5):
    """A hash whose check takes about `seconds` on this binary (native or emulated): the iteration count is scaled
    from a timed `hash-password`, which runs the same PBKDF2."""
    probe = 200_000
    started = time.monotonic()
    hash_password(binary, password, iterations=probe)
    took = max(time.monotonic() - started, 0.01)
    iterations = min(10_000_000, max(probe, int(probe * seconds / took)))
    return hash_password(binary, password, iterations=iterations)
