"""A TCP server that sends each connection `bytes` of a fixed pattern (`pattern`) and closes it. Runs as its own
process so it can live in another network namespace (`ip netns exec NS python3 pattern_source.py PORT BYTES`);
prints `listening` once it accepts."""
import socket
import sys
import threading

MiB = 1 << 20


def pattern(size):
    """`size` bytes (a whole number of MiB): MiB i is bytes 0..255 repeated, with its first byte set to i."""
    block = bytes(range(256)) * (MiB // 256)
    return b"".join(bytes([i % 256]) + block[1:] for i in range(size // MiB))


def main():
    port, size = int(sys.argv[1]), int(sys.argv[2])
    data = pattern(size)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    print("listening", flush=True)

    def send(conn):
        try:
            conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=send, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
