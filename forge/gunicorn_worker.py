"""gunicorn's threaded worker, tuned for a registry: big socket reads, quick TLS refusal.

Layers arrive as request bodies of hundreds of megabytes. gunicorn reads sockets 8 KiB
at a time and joins the pieces in Python, which caps uploads well below what the
disk and the hashing can take; reading up to RECV_SIZE per call lifts that cap.

podman, skopeo and buildah also try HTTPS first even with `--tls-verify=false`, and fall
back to HTTP only when that fails. A plain gunicorn reads the TLS ClientHello as the
start of an HTTP request and waits for the rest, so every client command would stall
for Go's 10 s TLS handshake timeout. Like Go's own HTTP server, we spot the handshake
record and answer it with a plain 400, which fails the TLS attempt straight away.
"""

import contextlib
import socket

from gunicorn.workers.gthread import ThreadWorker

RECV_SIZE = 1024 * 1024
TLS_HANDSHAKE_RECORD = 0x16
NOT_TLS_ANSWER = (
    b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)


def starts_tls_handshake(sock: socket.socket) -> bool:
    """Whether the bytes waiting on `sock` open a TLS handshake (nothing is consumed)."""
    try:
        first = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        return False
    return first[:1] == bytes([TLS_HANDSHAKE_RECORD])


class ForgeThreadWorker(ThreadWorker):
    def handle(self, conn):
        # gthread calls handle() only once the socket is readable, so the peek
        # never waits; an HTTP request cannot start with byte 0x16.
        if not self.cfg.is_ssl and starts_tls_handshake(conn.sock):
            with contextlib.suppress(OSError):
                conn.sock.sendall(NOT_TLS_ANSWER)
            return (False, conn)
        unreader = getattr(conn.parser, "unreader", None)
        if unreader is not None and getattr(unreader, "mxchunk", RECV_SIZE) < RECV_SIZE:
            unreader.mxchunk = RECV_SIZE
        return super().handle(conn)
