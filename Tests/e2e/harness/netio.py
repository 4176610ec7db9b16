"""Small socket helpers the data-plane tests share."""
import socket


def recv_exact(s, n):
    """n bytes, or fewer if the peer closes first."""
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_to_eof(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def half_close_exchange(port, message, timeout=10):
    """Sends `message`, half-closes, and returns everything the far side sends back before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(message)
        s.shutdown(socket.SHUT_WR)
        return recv_to_eof(s)
