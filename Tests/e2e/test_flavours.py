"""The other product binaries doing real work: the aarch64 binary (under qemu-aarch64 -cpu cortex-a72) carries a
local forward over SSH, and the small (mbedTLS/musl) flavour authenticates with what it supports and says clearly
what it does not."""
import hashlib
import os

import pytest

from harness.api import SSEStream, request
from harness.appliance import Appliance
from harness.ports import free_port
from harness.servers import send_and_checksum


def binary(product_binaries, label):
    paths = dict(product_binaries)
    assert label in paths, f"{label} was not built (make products)"
    return paths[label]


def host(sshd, host_id, name, auth):
    return {"id": host_id, "name": name, "ip": "127.0.0.1", "port": sshd.port, "username": sshd.user,
            "owner": "u-admin", "auth": auth}


def connect_local(app, host_id, name, index, target_port, max_retries=1):
    source = free_port()
    tunnel = f"{host_id}::{index}::{name}::{source}::::{target_port}"
    body = {"name": tunnel, "sourceHostId": host_id, "tunnelIndex": index, "sourcePort": source,
            "endpointHost": "", "endpointPort": target_port, "mode": "local", "maxRetries": max_retries,
            "retryInterval": 60000}
    assert request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=app.token("u-admin")).status == 200
    return tunnel, source


def test_aarch64_local_forward_under_qemu(product_binaries, sshd, checksum_sink):
    app = Appliance(binary(product_binaries, "aarch64-openssl"), sshd).start()
    stream = SSEStream(app.port, app.token("u-admin"))
    try:
        tunnel, source = connect_local(app, 1, "edge", 5, checksum_sink.port)
        final, _ = stream.wait_for(lambda s: s.get(tunnel, {}).get("status") in ("connected", "failed"), timeout=60)
        assert final[tunnel]["status"] == "connected", final[tunnel]
        payload = os.urandom(4 << 20)
        assert send_and_checksum(source, payload) == (len(payload), hashlib.sha256(payload).hexdigest())
    finally:
        stream.close()
        app.stop()


@pytest.fixture(scope="module")
def small(product_binaries, sshd):
    hosts = [host(sshd, 11, "pw", {"type": "password", "password": sshd.password}),
             host(sshd, 12, "rsa-pem", {"type": "key", "keyFile": sshd.keys["rsa_pem"]}),
             host(sshd, 13, "ed", {"type": "key", "keyFile": sshd.keys["ed25519"]}),
             host(sshd, 14, "ec-pem", {"type": "key", "keyFile": sshd.keys["ecdsa256_pem"]})]
    app = Appliance(binary(product_binaries, "x86_64-mbedtls"), sshd, extra_hosts=hosts).start()
    yield app
    app.stop()


@pytest.mark.parametrize("host_id,name", [(11, "pw"), (12, "rsa-pem")])
def test_small_flavour_authenticates(small, echo_server, host_id, name):
    stream = SSEStream(small.port, small.token("u-admin"))
    try:
        tunnel, source = connect_local(small, host_id, name, 0, echo_server.port)
        final, _ = stream.wait_for(lambda s: s.get(tunnel, {}).get("status") in ("connected", "failed"), timeout=30)
        assert final[tunnel]["status"] == "connected", final[tunnel]
        import socket
        with socket.create_connection(("127.0.0.1", source), timeout=5) as c:
            c.sendall(b"small flavour")
            assert c.recv(100) == b"small flavour"
    finally:
        stream.close()


@pytest.mark.parametrize("host_id,name,kind", [(13, "ed", "ssh-ed25519"), (14, "ec-pem", "ecdsa PEM")])
def test_small_flavour_names_the_key_it_cannot_use(small, host_id, name, kind):
    stream = SSEStream(small.port, small.token("u-admin"))
    try:
        tunnel, _ = connect_local(small, host_id, name, 0, 22)
        final, _ = stream.wait_for(lambda s: s.get(tunnel, {}).get("status") == "failed", timeout=30)
        st = final[tunnel]
        assert st["errorType"] == "AUTHENTICATION_FAILED" and "retryCount" not in st, st   # terminal, no retry
        assert kind in st["reason"] and "mbedTLS" in st["reason"], st["reason"]
    finally:
        stream.close()
