"""The live server itself: what gunicorn and the request streaming do on the wire."""

import contextlib
import hashlib
import http.client
import json
import os
import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest

OWN_SERVER_ONLY = "E2E_REGISTRY_URL is set: these tests check our own server"


@pytest.fixture
def own_server(live_registry):
    if live_registry.external:
        pytest.skip(OWN_SERVER_ONLY)
    return live_registry


def test_a_tls_handshake_on_the_plain_port_fails_at_once(own_server):
    """podman and skopeo try HTTPS first; a stalled handshake would cost them 10 s."""
    parts = urlsplit(own_server.url)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    started = time.monotonic()
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname=parts.hostname)
    assert time.monotonic() - started < 2


def send_chunked(own_server, method: str, path: str, pieces: list[bytes]):
    """A request with `Transfer-Encoding: chunked` and no Content-Length, as podman sends."""
    parts = urlsplit(own_server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.putrequest(method, path)
        connection.putheader("Authorization", own_server.alice.basic_header)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", "application/octet-stream")
        connection.endheaders()
        for piece in pieces:
            connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def test_a_chunked_patch_without_length_stores_every_byte(own_server):
    pieces = [os.urandom(n) for n in (1, 70_000, 1024 * 1024 + 3, 5)]
    data = b"".join(pieces)
    started = own_server.request(
        "POST", "/v2/alice/streamed/blobs/uploads/", creds=own_server.alice
    )
    assert started.status == 202, started.body
    location = started.headers["Location"]

    status, headers, body = send_chunked(own_server, "PATCH", location, pieces)
    assert status == 202, body
    assert headers["Range"] == f"0-{len(data) - 1}"

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    finished = own_server.request(
        "PUT", f"{location}?digest={digest}", creds=own_server.alice, body=b""
    )
    assert finished.status == 201, finished.body
    pulled = own_server.request("GET", f"/v2/alice/streamed/blobs/{digest}", creds=own_server.alice)
    assert pulled.status == 200
    assert pulled.body == data


def test_a_ranged_pull_through_the_server_returns_that_part(own_server):
    data = os.urandom(300_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    pushed = own_server.request(
        "POST",
        f"/v2/alice/ranged/blobs/uploads/?digest={digest}",
        creds=own_server.alice,
        headers={"Content-Type": "application/octet-stream"},
        body=data,
    )
    assert pushed.status == 201, pushed.body
    part = own_server.request(
        "GET",
        f"/v2/alice/ranged/blobs/{digest}",
        creds=own_server.alice,
        headers={"Range": "bytes=1000-1999"},
    )
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert part.body == data[1000:2000]


def read_raw_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one response with a Content-Length, read off the raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_headers_and_body_arrive_whole_on_a_kept_alive_connection(own_server):
    """The worker sends a response's headers with its body in one system call; a
    second, third and fourth request on the connection are answered as the first.
    """
    parts = urlsplit(own_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        for path in ["/-/healthz", "/v2/", "/-/healthz", "/v2/nobody/x/tags/list"]:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
            head, body = read_raw_response(sock)
            status = int(head.split(b" ", 2)[1])
            assert status in (200, 401, 404), head
            assert body.startswith(b"{"), (path, body)


def test_a_client_sending_its_head_slowly_does_not_hold_up_others(own_server):
    """Heads are read by the worker's event loop: a thread sees only whole requests."""
    parts = urlsplit(own_server.url)
    slow = [socket.create_connection((parts.hostname, parts.port), timeout=10) for _ in range(30)]
    try:
        for sock in slow:
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        answer = own_server.request("GET", "/-/healthz")
        assert answer.status == 200
        assert time.monotonic() - started < 2
    finally:
        for sock in slow:
            sock.close()


def test_an_unread_request_body_does_not_spoil_the_kept_alive_connection(own_server):
    """A 401 answered before the body was read: the rest of the body is read and dropped
    before the next request's head, which is then answered as usual.
    """
    parts = urlsplit(own_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        body = b"x" * 5000
        sock.sendall(
            f"PATCH /v2/alice/x/blobs/uploads/abc HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head, _ = read_raw_response(sock)
        assert head.split(b" ", 2)[1] == b"401"
        sock.sendall(f"GET /-/healthz HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        head, body = read_raw_response(sock)
        assert head.split(b" ", 2)[1] == b"200"
        assert body == b'{"status": "ok"}'


def open_trickling_uploads(own_server, count: int) -> list[socket.socket]:
    """Connections that each start a monolithic upload and send one byte of its body."""
    parts = urlsplit(own_server.url)
    head = (
        f"POST /v2/alice/slow/blobs/uploads/?digest=sha256:{'0' * 64} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\nAuthorization: {own_server.alice.basic_header}\r\n"
        "Content-Length: 100000\r\n\r\nx"
    ).encode()
    trickling = []
    for _ in range(count):
        sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        sock.sendall(head)
        trickling.append(sock)
    return trickling


def test_clients_trickling_bodies_do_not_hold_up_others(own_server):
    """A body reaches a thread only once its first bytes are in: 200 uploads sending a
    byte now and then (far more than the server has threads) cost sockets only.
    """
    trickling = open_trickling_uploads(own_server, 200)
    try:
        time.sleep(0.5)
        data = os.urandom(300_000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = time.monotonic()
        pushed = own_server.request(
            "POST",
            f"/v2/alice/fast/blobs/uploads/?digest={digest}",
            creds=own_server.alice,
            body=data,
        )
        probe = own_server.request("GET", "/v2/", creds=own_server.alice)
        took = time.monotonic() - started
    finally:
        for sock in trickling:
            sock.close()

    assert pushed.status == 201, pushed.body
    assert probe.status == 200
    assert took < 2


@pytest.fixture(scope="module")
def impatient_server(start_forge, live_registry):
    if live_registry.external:
        pytest.skip(OWN_SERVER_ONLY)
    return start_forge(
        {"FORGE_BODY_TIMEOUT": "2", "FORGE_HEADER_TIMEOUT": "2"}, share_with=live_registry
    )


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closed the connection (None if it did not in time),
    sending `trickle` every half second meanwhile.
    """
    started = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            if trickle:
                with contextlib.suppress(OSError):
                    sock.sendall(trickle)
        except OSError:
            return time.monotonic() - started
    return None


@pytest.mark.parametrize("trickle", [b"", b"x"], ids=["stalled", "a-byte-at-a-time"])
def test_a_body_that_does_not_arrive_in_time_closes_the_connection(impatient_server, trickle):
    [sock] = open_trickling_uploads(impatient_server, 1)
    with sock:
        took = closed_within(sock, 10, trickle)

    assert took is not None, "the server kept a trickling body's connection open"
    assert took < 5  # FORGE_BODY_TIMEOUT is 2 s


def test_a_head_that_does_not_arrive_in_time_closes_the_connection(impatient_server):
    parts = urlsplit(impatient_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\n")
        took = closed_within(sock, 10, trickle=b"X-A: b\r\n")

    assert took is not None, "the server kept a trickling head's connection open"
    assert took < 5


def test_an_upload_expecting_100_continue_is_told_to_go_on(own_server):
    """curl and some libraries send `Expect: 100-continue` and wait before the body."""
    parts = urlsplit(own_server.url)
    data = os.urandom(200_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST /v2/alice/expecting/blobs/uploads/?digest={digest} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\nAuthorization: {own_server.alice.basic_header}\r\n"
            f"Content-Length: {len(data)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            piece = sock.recv(4096)
            assert piece, "closed before 100 Continue"
            interim += piece
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(data)
        head, _ = read_raw_response(sock)

    assert head.split(b" ", 2)[1] == b"201", head


# HEAD answers: headers only, so the next response on the connection is read whole


def read_head(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes]:
    """(head, what arrived after it) of one response, read off the raw socket."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize(
    "path",
    [
        "/v2/",
        "/v2/_catalog",
        "/v2/token",
        "/v2/alice/headed/tags/list",
        "/v2/alice/headed/referrers/sha256:" + "0" * 64,
        "/v2/alice/headed/no/such/route/",
        "/alice/-/packages",
        "/-/healthz",
    ],
)
def test_a_head_answer_carries_no_body_on_a_kept_alive_connection(own_server, path):
    """gunicorn sends whatever body the application returns; after a HEAD's headers
    the client would read it as the start of the next response.
    """
    parts = urlsplit(own_server.url)
    auth = f"Authorization: {own_server.alice.basic_header}\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{auth}\r\n".encode())
        head, rest = read_head(sock)
        assert b"content-length:" in head.lower(), head
        sock.sendall(f"GET /-/healthz HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        following, _ = read_head(sock, rest)
        assert following.startswith(b"HTTP/1.1 200 "), (head, following[:200])


# Request bodies that break or are abandoned part-way


def start_session(own_server, image: str) -> str:
    started = own_server.request(
        "POST", f"/v2/alice/{image}/blobs/uploads/", creds=own_server.alice
    )
    assert started.status == 202, started.body
    return started.headers["Location"]


def staged_bytes(own_server, location: str) -> int:
    """The size of an upload session's staging file in the server's data dir."""
    session = location.rstrip("/").rsplit("/", 1)[1].replace("-", "")
    found = list((own_server.data_dir / "packages").rglob(f"session-{session}"))
    return found[0].stat().st_size if found else 0


def raw_request(own_server, method: str, path: str, headers: dict[str, str], body: bytes):
    """(status, body) of a request whose body is sent exactly as given."""
    parts = urlsplit(own_server.url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head, rest = read_head(sock)
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(head.split(b" ", 2)[1]), rest[:length]


CHUNKED = {"Transfer-Encoding": "chunked", "Content-Type": "application/octet-stream"}


def test_a_malformed_chunked_patch_is_400_and_keeps_nothing(own_server):
    location = start_session(own_server, "broken-patch")
    headers = {"Authorization": own_server.alice.basic_header, **CHUNKED}

    status, body = raw_request(own_server, "PATCH", location, headers, b"5\r\nhello\r\nzz\r\n")

    assert status == 400, body
    assert json.loads(body)["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    state = own_server.request("GET", location, creds=own_server.alice)
    assert state.headers["Range"] == "0-0"
    assert staged_bytes(own_server, location) == 0


def test_a_malformed_chunked_monolithic_push_is_400(own_server):
    digest = "sha256:" + hashlib.sha256(b"hello").hexdigest()
    headers = {"Authorization": own_server.alice.basic_header, **CHUNKED}

    status, body = raw_request(
        own_server,
        "POST",
        f"/v2/alice/broken-post/blobs/uploads/?digest={digest}",
        headers,
        b"5\r\nhello\r\nzz\r\n",
    )

    assert status == 400, body
    assert json.loads(body)["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"


def test_a_malformed_chunked_manifest_put_is_400_manifest_invalid(own_server):
    headers = {
        "Authorization": own_server.alice.basic_header,
        "Transfer-Encoding": "chunked",
        "Content-Type": "application/vnd.oci.image.manifest.v1+json",
    }

    status, body = raw_request(
        own_server,
        "PUT",
        "/v2/alice/broken-manifest/manifests/v1",
        headers,
        b"2\r\n{}\r\nzz\r\n",
    )

    assert status == 400, body
    assert json.loads(body)["errors"][0]["code"] == "MANIFEST_INVALID"


def wait_for(condition, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("framing", "opening"),
    [
        ("chunked", b"400000\r\n"),  # one 4 MiB chunk, of which 1.5 MiB come
        ("Content-Length: 4194304", b""),
    ],
    ids=["chunked", "content-length"],
)
def test_a_patch_abandoned_part_way_leaves_no_bytes_on_disk(own_server, framing, opening):
    """The first MiB reaches the staging file before the client goes away; the file
    is cut back to what the session recorded, and the session goes on from there.
    """
    location = start_session(own_server, f"abandoned-{framing[:7].lower()}")
    parts = urlsplit(own_server.url)
    header = "Transfer-Encoding: chunked" if framing == "chunked" else framing
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"PATCH {location} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: {own_server.alice.basic_header}\r\n{header}\r\n\r\n".encode()
            + opening
            + os.urandom(1536 * 1024)
        )
        assert wait_for(lambda: staged_bytes(own_server, location) >= 1024 * 1024)
    assert wait_for(lambda: staged_bytes(own_server, location) == 0), staged_bytes(
        own_server, location
    )

    state = own_server.request("GET", location, creds=own_server.alice)
    assert state.headers["Range"] == "0-0"
    data = b"the whole blob"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    finished = own_server.request(
        "PUT", f"{location}?digest={digest}", creds=own_server.alice, body=data
    )
    assert finished.status == 201, finished.body
