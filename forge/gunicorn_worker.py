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

from gunicorn.http import wsgi
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


class _Joined:
    """The connection's socket for one write: what was held is sent in the same call."""

    def __init__(self, sock: socket.socket, held: bytes):
        self.sock, self.held = sock, held

    def sendall(self, data) -> None:
        held, self.held = self.held, None
        if held is None:
            self.sock.sendall(data)
            return
        pieces = [memoryview(held), memoryview(data)]
        while pieces:
            sent = self.sock.sendmsg(pieces)
            while pieces and sent >= len(pieces[0]):
                sent -= len(pieces[0])
                pieces.pop(0)
            if pieces and sent:
                pieces[0] = pieces[0][sent:]


class _Capture:
    def __init__(self):
        self.data = b""

    def sendall(self, data) -> None:
        self.data += data


class ForgeResponse(wsgi.Response):
    """gunicorn's response, sending its headers together with the first piece of the
    body: one system call (`sendmsg` of both) instead of two. On loopback or a VM's
    network each send costs more than building the response did.
    """

    _held: bytes | None = None

    def send_headers(self):
        if self.headers_sent:
            return
        real, self.sock = self.sock, _Capture()
        try:
            super().send_headers()
        finally:
            self._held, self.sock = self.sock.data, real

    def release_headers(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self.sock.sendall(held)

    def write(self, arg):
        if self._held is None:
            self.send_headers()
        if self._held is None:
            return super().write(arg)
        real, self.sock = self.sock, _Joined(self.sock, self._held)
        try:
            return super().write(arg)
        finally:
            # Still held if gunicorn sent nothing (a HEAD, say): close() sends it.
            self._held, self.sock = self.sock.held, real

    def sendfile(self, respiter):
        self.send_headers()
        self.release_headers()
        return super().sendfile(respiter)

    def close(self):
        self.send_headers()
        self.release_headers()
        super().close()


class ForgeThreadWorker(ThreadWorker):
    def init_process(self):
        # wsgi.create() makes gunicorn's Response; this worker's are ForgeResponses.
        wsgi.Response = ForgeResponse
        super().init_process()

    def handle(self, conn):
        # gthread calls handle() only once the socket is readable, so the peek
        # never waits; an HTTP request cannot start with byte 0x16. Only a new
        # connection is looked at: a TLS client says so first.
        first = not getattr(conn, "forge_seen", False)
        conn.forge_seen = True
        if first and not self.cfg.is_ssl and starts_tls_handshake(conn.sock):
            with contextlib.suppress(OSError):
                conn.sock.sendall(NOT_TLS_ANSWER)
            return (False, conn)
        unreader = getattr(conn.parser, "unreader", None)
        if unreader is not None and getattr(unreader, "mxchunk", RECV_SIZE) < RECV_SIZE:
            unreader.mxchunk = RECV_SIZE
        return super().handle(conn)
