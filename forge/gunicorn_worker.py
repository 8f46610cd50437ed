"""gunicorn's threaded worker, shaped for a registry: slow clients cost a socket, not a
thread, and quick requests never queue behind long transfers.

- **Request heads are read by the event loop.** gthread hands a connection to a thread
  as soon as a byte arrives, and the thread then waits for the rest of the head: twenty
  clients sending a header a byte a second took every thread. Here the main loop reads
  heads without blocking, and a connection reaches a thread only with a whole head; a
  head not complete within FORGE_HEADER_TIMEOUT seconds (or larger than
  limit_request_field_size allows) closes the connection.
- **The first bytes of a body too.** A request with a body reaches a thread only once
  its body has arrived, or its first BODY_PREFETCH bytes: a client trickling a body a
  byte a second costs a socket, and is closed when FORGE_BODY_TIMEOUT passes first.
  `Expect: 100-continue` is answered here, so such clients send their body.
- **Two lanes.** Quick requests (manifests, blob HEADs, tags, tokens, pages) run on one
  thread per process, one after another: threads of one process share one interpreter
  lock, and four of them answering manifests took four times the CPU per request.
  Requests that move bulk (a blob GET, an upload's POST, PATCH or PUT) run on the
  transfer pool (`threads`), where a slow or large body waits in `recv` without
  holding anyone up. A body that stalls for FORGE_BODY_TIMEOUT seconds ends. So do
  pulls from a mirror (docs/mirrors.md), which may wait on its upstream: a slow
  upstream must not stall every manifest behind it.
- **Big socket reads.** Layers arrive as request bodies of hundreds of megabytes;
  gunicorn reads 8 KiB per call and joins the pieces in Python. Reading up to RECV_SIZE
  per call lifts that cap.
- **One send for a small response.** Headers go out with the first piece of the body
  in one `sendmsg` (ForgeResponse).
- **A quick answer to TLS.** podman, skopeo and buildah try HTTPS first even with
  `--tls-verify=false`. A plain gunicorn reads the TLS ClientHello as the start of a
  request and waits for the rest, so every command would stall for Go's 10 s handshake
  timeout. Like Go's own server, a handshake record is answered with a plain 400.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import os
import queue
import selectors
import socket
import threading
import time
from concurrent import futures
from functools import partial
from urllib.parse import unquote_to_bytes

from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

RECV_SIZE = 1024 * 1024
HEAD_READ_SIZE = 65536
TLS_HANDSHAKE_RECORD = 0x16
NOT_TLS_ANSWER = (
    b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)
HEAD_TOO_LARGE_ANSWER = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)
TRANSFER_METHODS = frozenset({"POST", "PUT", "PATCH"})
# An unread request body up to this is read and dropped to keep the connection; a
# longer one closes it.
DRAIN_LIMIT = 1024 * 1024
# Body bytes the event loop gathers before a request goes to a thread: a manifest
# whole, an upload's first pieces. A real client sends this in a blink.
BODY_PREFETCH = 64 * 1024
CHUNKED = -1
CONTINUE_ANSWER = b"HTTP/1.1 100 Continue\r\n\r\n"


def header_timeout() -> float:
    return float(os.environ.get("FORGE_HEADER_TIMEOUT", "") or 10)


def body_timeout() -> float:
    return float(os.environ.get("FORGE_BODY_TIMEOUT", "") or 60)


def starts_tls_handshake(data: bytes) -> bool:
    """Whether the first bytes of a connection open a TLS handshake."""
    return data[:1] == bytes([TLS_HANDSHAKE_RECORD])


def is_transfer(head: bytes, waiting_namespaces: frozenset[bytes] = frozenset()) -> bool:
    """Whether the request this head opens moves bulk (an upload, a blob download) or
    may wait on another server: a pull from one of `waiting_namespaces`, a mirror's
    (lowercase), whose misses are fetched from its upstream before they are answered.
    """
    method, _, rest = head.partition(b" ")
    method = method.decode("latin-1")
    if method in TRANSFER_METHODS:
        return True
    path = rest.partition(b" ")[0].partition(b"?")[0]
    if not path.startswith(b"/v2/"):
        return False
    if method == "GET" and b"/blobs/" in path:
        return True
    if not waiting_namespaces:
        return False
    # As Django will read it: /v2/h%75b/... is the mirror hub's.
    namespace = unquote_to_bytes(path[4:].partition(b"/")[0]).lower()
    return namespace in waiting_namespaces


def mirror_namespaces() -> frozenset[bytes]:
    """The mirrors this process knows of (registry/mirrors/service.py); none before the
    site's apps are loaded.
    """
    try:
        from registry.mirrors.service import mirror_names
    except Exception:  # the apps not ready yet, or a site without the registry
        return frozenset()
    return mirror_names()


def body_wanted(head: bytes) -> tuple[int, bool]:
    """Body bytes to gather before dispatch (CHUNKED: a chunked body), and whether the
    client waits for `100 Continue` before sending them.

    A head gunicorn will refuse (a bad Content-Length) wants nothing: it goes to a
    thread at once for its 400.
    """
    length, chunked, expects = 0, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if not value.isdigit():
                return 0, False
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"expect":
            expects = value == b"100-continue"
    wanted = CHUNKED if chunked else min(length, BODY_PREFETCH)
    return wanted, expects and wanted != 0


def without_expect(head: bytes) -> bytes:
    """The head without its Expect header: the event loop has answered it already."""
    lines = head.split(b"\r\n")
    kept = [line for line in lines if line.partition(b":")[0].strip().lower() != b"expect"]
    return b"\r\n".join(kept)


def chunked_body_ended(body: bytes) -> bool:
    """Whether what arrived of a chunked body holds its last chunk and trailers.

    Malformed framing counts as ended: gunicorn's parser answers it from a thread.
    """
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return False
        try:
            size = int(body[position:line_end].partition(b";")[0].strip(), 16)
        except ValueError:
            return True
        if size < 0:
            return True
        if size == 0:
            rest = body[line_end + 2 :]
            return rest.startswith(b"\r\n") or b"\r\n\r\n" in rest
        position = line_end + 2 + size + 2
        if position > len(body):
            return False


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


class QuickLane:
    """One thread running quick requests, a connection's first request before the rest.

    Under load every kept-alive connection always has a request waiting; taken in
    arrival order, a newcomer (a client's `GET /v2/` before a push, a health probe)
    would queue behind all of them. First requests of connections go first; requests
    on kept-alive connections take turns in arrival order.
    """

    def __init__(self, name: str):
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, first: bool, function, /, *args) -> futures.Future:
        future: futures.Future = futures.Future()
        self._queue.put((0 if first else 1, next(self._order), future, function, args))
        return future

    def shutdown(self, wait: bool = True) -> None:
        self._queue.put((2, next(self._order), None, None, ()))
        if wait:
            self._thread.join()

    def _run(self) -> None:
        while True:
            _, _, future, function, args = self._queue.get()
            if future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = function(*args)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)


class ForgeConn(TConn):
    """A connection, with the bytes of a request head the event loop has read so far."""

    def __init__(self, cfg, sock, client, server):
        super().__init__(cfg, sock, client, server)
        self.head = bytearray()
        self.fresh = True  # no request seen yet: the TLS check applies
        self.waiting = 0  # bumped whenever the connection starts waiting anew
        self.deadline = 0.0
        self.wanted: int | None = None  # body bytes to gather, once the head is in

    def request_ready(self) -> bool:
        """Whether the head, and as much of the body as is gathered, has arrived."""
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return False
        end += 4
        if self.wanted is None:
            self.wanted, expects = body_wanted(bytes(self.head[:end]))
            if expects:
                with contextlib.suppress(OSError):
                    self.sock.send(CONTINUE_ANSWER)
                head = without_expect(bytes(self.head[: end - 2])) + b"\r\n"
                self.head[:end] = head
                end = len(head)
        body = self.head[end:]
        if self.wanted == CHUNKED:
            return len(body) >= BODY_PREFETCH or chunked_body_ended(bytes(body))
        return len(body) >= self.wanted

    def init(self):
        first = self.parser is None
        super().init()
        if first:
            unreader = self.parser.unreader
            if getattr(unreader, "mxchunk", RECV_SIZE) < RECV_SIZE:
                unreader.mxchunk = RECV_SIZE
        # A body that stalls this long ends the request (the thread is freed).
        self.sock.settimeout(body_timeout())


class ForgeWorker(ThreadWorker):
    def init_process(self):
        # wsgi.create() makes gunicorn's Response; this worker's are ForgeResponses.
        wsgi.Response = ForgeResponse
        self.quick = QuickLane("quick")
        # (deadline, order, connection, its wait) of connections waiting for a head.
        self._deadlines: list = []
        self._order = itertools.count()
        super().init_process()

    # -- connections waiting for a request head ------------------------------------------

    def accept(self, server, listener):
        try:
            sock, client = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.await_head(ForgeConn(self.cfg, sock, client, server), self.cfg.keepalive or 2)

    def await_head(self, conn: ForgeConn, timeout: float) -> None:
        """Watch the connection for its next request head, giving up after `timeout`."""
        self.wait_until(conn, timeout)
        with self._lock:
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
            )

    def wait_until(self, conn: ForgeConn, timeout: float) -> None:
        """Close the connection if nothing more happens to it within `timeout` seconds."""
        conn.waiting += 1
        conn.deadline = time.monotonic() + timeout
        with self._lock:
            heapq.heappush(self._deadlines, (conn.deadline, next(self._order), conn, conn.waiting))

    def on_client_socket_readable(self, conn: ForgeConn, client) -> None:
        """Read what arrived of the head, without blocking; dispatch a complete one."""
        try:
            data = conn.sock.recv(HEAD_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        if conn.fresh and not conn.head and not self.cfg.is_ssl and starts_tls_handshake(data):
            with contextlib.suppress(OSError):
                conn.sock.sendall(NOT_TLS_ANSWER)
            self.drop(conn)
            return
        started = not conn.head
        conn.head += data
        awaited_head = conn.wanted is None
        if not conn.request_ready():
            if conn.wanted is not None:
                if awaited_head:
                    # The head is in; the body's first bytes have FORGE_BODY_TIMEOUT.
                    self.wait_until(conn, body_timeout())
            elif len(conn.head) > self.head_limit():
                with contextlib.suppress(OSError):
                    conn.sock.sendall(HEAD_TOO_LARGE_ANSWER)
                self.drop(conn)
            elif started:
                # The head has begun: from now on it has FORGE_HEADER_TIMEOUT to finish.
                self.wait_until(conn, header_timeout())
            return
        with self._lock:
            self.poller.unregister(client)
        conn.waiting += 1
        self.dispatch(conn)

    def head_limit(self) -> int:
        return self.cfg.limit_request_line + self.cfg.limit_request_fields * (
            self.cfg.limit_request_field_size or 8190
        )

    def dispatch(self, conn: ForgeConn) -> None:
        """Hand a connection whose head has arrived to the lane its request belongs in."""
        head, conn.head = bytes(conn.head), bytearray()
        conn.wanted = None
        first, conn.fresh = conn.fresh, False
        conn.init()
        conn.parser.unreader.unread(head)
        if is_transfer(head, mirror_namespaces()):
            future = self.tpool.submit(self.handle, conn)
        else:
            future = self.quick.submit(first, self.handle, conn)
        self._wrap_future(future, conn)

    def drop(self, conn: ForgeConn) -> None:
        conn.waiting += 1
        with self._lock, contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self):
        """Close connections whose head did not come in time (idle keep-alive ones too)."""
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._deadlines or self._deadlines[0][0] > now:
                    return
                _deadline, _, conn, waiting = heapq.heappop(self._deadlines)
            if conn.waiting == waiting:
                self.drop(conn)

    # -- after a request ------------------------------------------------------------------

    def handle(self, conn):
        keepalive, conn = super().handle(conn)
        # The event loop reads the next head off the socket, so what the app left of
        # this request's body must go first: read it here (a little), or close.
        if keepalive and not self.drain_body(conn):
            keepalive = False
        return keepalive, conn

    @staticmethod
    def drain_body(conn) -> bool:
        """Read what is left of the last request's body; False if it is too much."""
        message = conn.parser.mesg if conn.parser is not None else None
        if message is None:
            return True
        remaining = getattr(message.body.reader, "length", None)
        if remaining is not None and remaining > DRAIN_LIMIT:
            return False
        drained = 0
        try:
            while data := message.body.read(65536):
                drained += len(data)
                if drained > DRAIN_LIMIT:
                    return False
        except Exception:
            return False
        return True

    def finish_request(self, fs):
        if fs.cancelled():
            self.nr_conns -= 1
            fs.conn.close()
            return
        try:
            keepalive, conn = fs.result()
        except Exception:
            self.nr_conns -= 1
            fs.conn.close()
            return
        if not (keepalive and self.alive):
            self.nr_conns -= 1
            conn.close()
            return
        buffered = conn.parser.unreader.buf.getvalue()
        if buffered:
            conn.parser.unreader.buf = type(conn.parser.unreader.buf)()
            conn.head = bytearray(buffered)
            if conn.request_ready():
                # A pipelined request already read with the last one's body: go on at once.
                self.dispatch(conn)
                return
        conn.sock.setblocking(False)
        timeout = body_timeout() if conn.wanted is not None else self.cfg.keepalive or 2
        self.await_head(conn, timeout)

    def handle_quit(self, sig, frame):
        self.quick.shutdown(False)
        super().handle_quit(sig, frame)

    def run(self):
        try:
            super().run()
        finally:
            self.quick.shutdown(False)


# The name gunicorn.conf.py used before the worker took over reading heads.
ForgeThreadWorker = ForgeWorker
