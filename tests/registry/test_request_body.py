"""Reading request bodies from gunicorn's socket: every byte once, in order, and no
byte of the next request on the connection taken; and only from a WSGI server.
"""

from __future__ import annotations

import os
import socket
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncRequestFactory
from gunicorn.http.body import LengthReader
from gunicorn.http.unreader import SocketUnreader

from registry.request_body import RequestBody, SocketLengthReader


@pytest.fixture
def connection():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def send_later(sock, data: bytes) -> threading.Thread:
    thread = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("piece", "size"), [(1, 12_345), (1000, 300_017), (65536, 3_145_745), (1024 * 1024, 3_145_745)]
)
def test_a_body_read_in_pieces_gives_every_byte_and_leaves_the_next_request(
    connection, piece, size
):
    server, client = connection
    body = os.urandom(size)
    after = b"GET /v2/ HTTP/1.1\r\n\r\n"
    unreader = SocketUnreader(server, max_chunk=1024 * 1024)
    # What gunicorn read past the headers is in its buffer before the body is read.
    unreader.unread(body[:5000])
    sender = send_later(client, body[5000:] + after)
    reader = LengthReader(unreader, len(body))
    assert SocketLengthReader.fits(reader)
    direct = SocketLengthReader(reader)

    parts = []
    while data := direct.read(piece):
        parts.append(data)
    sender.join(5)

    assert b"".join(parts) == body
    assert reader.length == 0
    assert direct.read(piece) == b""
    # The next request is still there for gunicorn's parser.
    assert unreader.read(len(after)) == after


def test_a_buffer_holding_more_than_the_body_keeps_the_rest(connection):
    server, _client = connection
    unreader = SocketUnreader(server)
    unreader.unread(b"abcdefNEXT")
    reader = LengthReader(unreader, 6)
    direct = SocketLengthReader(reader)

    assert direct.read(100) == b"abcdef"
    assert direct.read(100) == b""
    assert unreader.read() == b"NEXT"


def test_a_body_cut_short_returns_what_came(connection):
    server, client = connection
    unreader = SocketUnreader(server)
    client.sendall(b"only this")
    client.shutdown(socket.SHUT_WR)
    direct = SocketLengthReader(LengthReader(unreader, 100))

    assert direct.read(100) == b"only this"
    assert direct.read(100) == b""


def test_other_readers_are_not_taken_over():
    from gunicorn.http.body import ChunkedReader, EOFReader
    from gunicorn.http.unreader import IterUnreader

    assert not SocketLengthReader.fits(EOFReader(IterUnreader([b"x"])))
    assert not SocketLengthReader.fits(ChunkedReader(None, IterUnreader([b"x"])))
    assert not SocketLengthReader.fits(LengthReader(IterUnreader([b"x"]), 1))


def test_a_body_under_asgi_is_refused_with_the_reason():
    """Under ASGI there is no wsgi.input to stream from: the error says to use a WSGI
    server rather than failing on a missing key.
    """
    request = AsyncRequestFactory().patch(
        "/v2/alice/img/blobs/uploads/x", b"layer", content_type="application/octet-stream"
    )

    with pytest.raises(ImproperlyConfigured, match="WSGI server such as gunicorn"):
        RequestBody(request)
