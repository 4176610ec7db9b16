"""Runs last: no password, passphrase, JWT secret or private key that the suite used appears in anything Sluice
wrote (logs and stdout) during the whole run (spec: secrets never reach logs)."""
import pytest

from harness.appliance import SECRET
from harness.sluice import EVERY_LINE
from harness.sshd import KEY_PASSPHRASE, TEST_PASSWORD


def test_no_secret_in_any_output():
    if len(EVERY_LINE) < 50:
        pytest.skip("run with the rest of the suite")
    from test_login import PASSWORD
    secrets = {"sshd password": TEST_PASSWORD, "key passphrase": KEY_PASSPHRASE, "jwt secret": SECRET,
               "page password": PASSWORD}
    text = "\n".join(EVERY_LINE)
    for label, secret in secrets.items():
        assert secret not in text, f"the {label} appears in Sluice's output"
    assert "PRIVATE KEY" not in text
