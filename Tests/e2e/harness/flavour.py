"""Which product the suite runs against, as the Makefile says: SLUICE_FLAVOUR=mbedtls for the small flavour, whose
libssh2 on mbedTLS reads RSA keys in PEM/PKCS#8 form and passwords only (tools: see PrivateKeyInfo)."""
import os

import pytest

MBEDTLS = os.environ.get("SLUICE_FLAVOUR") == "mbedtls"


def login_key(sshd):
    """The key the suite's hosts log in with: ECDSA, or RSA PEM where the flavour reads nothing else."""
    return sshd.keys["rsa_pem" if MBEDTLS else "ecdsa256"]


# a test that needs key types, algorithms or sizes the small flavour does not have
full_crypto = pytest.mark.skipif(MBEDTLS, reason="the small (mbedTLS) flavour reads RSA PEM keys and passwords only")
