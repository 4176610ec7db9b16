import os
import shutil

import pytest

from harness.servers import ChecksumSink, EchoServer
from harness.sshd import Sshd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _binary(var, default):
    path = os.environ.get(var) or os.path.join(ROOT, default)
    return path


@pytest.fixture(scope="session")
def sluice_bin():
    path = _binary("SLUICE_BIN", "build/x86_64/sluice")
    assert os.path.exists(path), f"{path} missing: run make static"
    return path


@pytest.fixture(scope="session")
def product_binaries():
    """Every product binary that was built: (label, path). Both flavours, both targets."""
    found = []
    for label, var, default in [("x86_64-openssl", "SLUICE_BIN", "build/x86_64/sluice"),
                                ("aarch64-openssl", "SLUICE_ARM_BIN", "build/aarch64/sluice"),
                                ("x86_64-mbedtls", "SLUICE_BIN_MBEDTLS", "build/x86_64-mbedtls/sluice"),
                                ("aarch64-mbedtls", "SLUICE_ARM_BIN_MBEDTLS", "build/aarch64-mbedtls/sluice")]:
        path = _binary(var, default)
        if os.path.exists(path):
            found.append((label, path))
    return found


@pytest.fixture(scope="session")
def sshd():
    server = Sshd().start()
    yield server
    server.cleanup()


@pytest.fixture
def echo_server():
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def checksum_sink():
    server = ChecksumSink()
    yield server
    server.close()


@pytest.fixture
def tmp_state(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    yield str(d)
    shutil.rmtree(d, ignore_errors=True)
