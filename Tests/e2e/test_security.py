"""Regression tests for holes of tunnels-api.md §10 that Sluice closes (the rest live beside the feature they
guard: bindAllow/destinations in test_local_host.py, non-6-part names and unknown ids in test_api_tunnels.py,
host keys in test_s2s.py, the WebSocket upgrade, Origin, first-message deadline and frame limits in test_c2s.py)."""
import socket

from harness.api import SSEStream, request
from harness.appliance import Appliance


def test_body_supplied_targets_and_credentials_are_ignored(sluice_bin, echo_server):
    app = Appliance(sluice_bin).start()
    try:
        token = app.token("u-admin")
        name = f"0::7::appliance::18401::::{echo_server.port}"
        body = {"name": name, "sourceHostId": 0, "tunnelIndex": 7, "sourcePort": 18401, "endpointHost": "",
                "endpointPort": echo_server.port, "mode": "local",
                # everything below must have no effect: targets and credentials come from the inventory only
                "sourcePassword": "body-pw-1", "sourceSSHKey": "-----BEGIN OPENSSH PRIVATE KEY-----x",
                "sourceKeyPassword": "body-pw-2", "sourceUserId": "u-other", "endpointIP": "203.0.113.9",
                "endpointSSHPort": 2222, "endpointUsername": "root", "endpointPassword": "body-pw-3",
                "endpointSSHKey": "k", "endpointCredentialId": 9, "endpointUserId": "u-other",
                "requestingUserId": "u-other"}
        stream = SSEStream(app.port, token)
        try:
            assert request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=token).status == 200
            stream.wait_for(lambda st: st.get(name, {}).get("status") == "connected")
        finally:
            stream.close()
        with socket.create_connection(("127.0.0.1", 18401), timeout=5) as c:    # still the inventory's target
            c.sendall(b"inventory only")
            assert c.recv(100) == b"inventory only"
        everything = request(app.port, "GET", "/ssh/tunnel/status", token=token).body.decode() + app.sluice.log()
        for leaked in ("body-pw-1", "body-pw-2", "body-pw-3", "203.0.113.9", "PRIVATE KEY"):
            assert leaked not in everything
    finally:
        app.stop()


def test_a_user_cannot_borrow_another_users_host_through_the_body(sluice_bin):
    app = Appliance(sluice_bin).start()
    try:
        # ops may not use host 2; naming a usable host's id in the body fields does not help
        body = {"name": "2::0::private::18402::::22", "sourceHostId": 2, "tunnelIndex": 0, "sourcePort": 18402,
                "endpointHost": "", "endpointPort": 22, "mode": "local", "sourceUserId": "u-other",
                "requestingUserId": "u-other"}
        r = request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=app.token("u-ops"))
        assert (r.status, r.json()) == (403, {"error": "Access denied to this host"})
        # and the answer for an unknown id is the same, so ids cannot be probed
        body.update(name="77::0::x::18402::::22", sourceHostId=77)
        r = request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=app.token("u-ops"))
        assert (r.status, r.json()) == (403, {"error": "Access denied to this host"})
    finally:
        app.stop()


def test_host_id_zero_is_checked_like_any_other(sluice_bin):
    """The reference skips the permission check when `sourceHostId` is falsy; 0 is the appliance itself here, owned
    by u-admin, and ops may not use it: not through the API, not through the relay."""
    from harness.ws import local_open, relay
    app = Appliance(sluice_bin).start()
    try:
        body = {"name": "0::0::appliance::18403::::22", "sourceHostId": 0, "tunnelIndex": 0, "sourcePort": 18403,
                "endpointHost": "", "endpointPort": 22, "mode": "local"}
        r = request(app.port, "POST", "/ssh/tunnel/connect", body=body, token=app.token("u-ops"))
        assert (r.status, r.json()) == (403, {"error": "Access denied to this host"})
        ws, reply = relay(app.port, app.token("u-ops"), local_open(0, 22))
        assert reply == {"type": "error", "error": "Access denied to this host"}
        ws.close()
    finally:
        app.stop()
