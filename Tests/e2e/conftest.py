import os
import shutil

import pytest

from harness.appliance import SECRET
from harness.login import PASSWORD
from harness.servers import ChecksumSink, EchoServer
from harness.sluice import EVERY_LINE
from harness.sshd import KEY_PASSPHRASE, TEST_PASSWORD, Sshd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# Tests about the product binary itself (size, static linking, targets, flavours, the image) rather than about
# behaviour: marked `product`, or using one of these fixtures. Against a sanitizer build (SLUICE_ASAN=1) they skip.
PRODUCT_FIXTURES = {"product", "product_binaries", "overlay", "small"}


def pytest_configure(config):
    config.addinivalue_line("markers", "product: about the product binary itself; skipped against a sanitizer build")
    config.addinivalue_line("markers", "once: independent of the binary under test; runs in the first pass only")
    config.addinivalue_line("markers", "timing: waits out a timer or measures time, fds or RSS; not against the "
                                       "sanitizer build (docs/architecture.md, Tests: which pass runs what)")
    config.addinivalue_line("markers", "alone: moves bulk data or needs RSS to settle: runs after a pass's parallel "
                                       "part, with no other test beside it (tools/e2e-pass.sh)")


def pytest_collection_modifyitems(config, items):
    """Product tests run once, in the pass against the x86_64 product: skipped against a sanitizer build (SLUICE_ASAN)
    and in the passes against another product (SLUICE_PASS names it: they already checked every product). So are
    tests of the harness itself (`once`). Against the sanitizer build, `timing` tests skip too: ASan changes time and
    RSS, and the code they run is what the shorter tests run."""
    asan, later = os.environ.get("SLUICE_ASAN"), os.environ.get("SLUICE_PASS")
    if asan:
        reason = "about the product binary, not its behaviour (SLUICE_ASAN: sanitizer build)"
    elif later:
        reason = f"about the product binaries, checked once in the first pass (this pass: {later})"
    else:
        return
    skip = pytest.mark.skip(reason=reason)
    once = pytest.mark.skip(reason="independent of the binary under test: run in the first pass")
    timing = pytest.mark.skip(reason="a timing or resource test: run against the products, not the sanitizer build")
    for item in items:
        if item.get_closest_marker("product") or PRODUCT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)
        elif item.get_closest_marker("once"):
            item.add_marker(once)
        elif asan and item.get_closest_marker("timing"):
            item.add_marker(timing)


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


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_output():
    """After the whole run, whatever subset of it ran: no password, passphrase, JWT secret or private key that the
    tests used appears in anything Sluice wrote (logs and stdout). Spec: secrets never reach logs."""
    yield
    secrets = {"sshd password": TEST_PASSWORD, "key passphrase": KEY_PASSPHRASE, "jwt secret": SECRET,
               "page password": PASSWORD}
    text = "\n".join(EVERY_LINE)
    for label, secret in secrets.items():
        assert secret not in text, f"the {label} appears in Sluice's output"
    assert "PRIVATE KEY" not in text


def pytest_terminal_summary(terminalreporter):
    """Each pass's counts for the table at the end of `make test` (tools/stage.sh table): written by the controller
    only (pytest-xdist workers report their own share to it)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    stats = terminalreporter.stats
    passed, skipped = len(stats.get("passed", [])), len(stats.get("skipped", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    label = os.environ.get("SLUICE_PASS") or ("asan" if os.environ.get("SLUICE_ASAN") else "x86_64-openssl")
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "test-counts.tsv"), "a") as f:
        f.write(f"e2e {label}\t{passed}\t{failed}\t{skipped}\n")
