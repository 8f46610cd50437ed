"""Reading request bodies as streams, straight from the WSGI input.

Django's `request.body` would hold a whole layer in memory, and its request stream
reads a body without Content-Length as empty, which loses the chunked uploads that
podman and buildah send. gunicorn de-chunks `wsgi.input` for us; we bound it by
Content-Length when there is one, and otherwise read it to its end.

So the registry needs a WSGI server. Under ASGI there is no `wsgi.input`, and Django's
ASGI handler reads a whole body into a temporary file before the view runs, so a layer
could be neither streamed nor refused before it had all arrived.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

from registry import metrics
from registry.errors import BlobUploadInvalid, RegistryError, SizeInvalid

READ_SIZE = 1024 * 1024


class RequestBody:
    """A read-only, single-pass file-like view of a request's body."""

    def __init__(self, request):
        environ = request.META
        if "wsgi.input" not in environ:
            # A site served through ASGI: every push fails, and the log should say why
            # rather than show a KeyError.
            raise ImproperlyConfigured(
                "the registry reads request bodies from a WSGI server's wsgi.input; "
                "serve the site with a WSGI server such as gunicorn, not ASGI"
            )
        self._input = environ["wsgi.input"]
        raw_length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if raw_length and not chunked:
            try:
                self.length = int(raw_length)
            except ValueError:
                raise BlobUploadInvalid(f"bad Content-Length {raw_length!r}") from None
            if self.length < 0:
                raise BlobUploadInvalid(f"bad Content-Length {raw_length!r}")
        else:
            self.length = None if chunked else 0
        self.received = 0
        self._source = _fast_source(self._input)
        self._counted = metrics.BYTES_RECEIVED.labels(metrics.route_of(request))
        # Set by require_length for a chunked body: what a wrong length raises.
        self._mismatch: Callable[[str], RegistryError] | None = None
        self._checked_end = False

    @property
    def is_empty(self) -> bool:
        """True when the request says it has no body (no length, not chunked)."""
        return self.length == 0

    def require_length(self, length: int, mismatch: Callable[[str], RegistryError]) -> None:
        """The body must be exactly `length` bytes (what a chunk's Content-Range covers):
        `mismatch(message)` is raised at once when the Content-Length says otherwise, and
        for a chunked body as soon as it proves shorter or longer, while it is read, so
        a caller that keeps nothing of a failed read keeps none of it.
        """
        if self.length is not None:
            if self.length != length:
                raise mismatch(f"Content-Range covers {length} bytes, the body has {self.length}")
            return
        self.length = length
        self._mismatch = mismatch

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = READ_SIZE
        if self.length is not None:
            size = min(size, self.length - self.received)
            if size <= 0:
                self._check_nothing_follows()
                return b""
        data = self._read_source(size)
        if not data and self.length is not None and self.received < self.length:
            message = f"request body ended after {self.received} of {self.length} bytes"
            raise (self._mismatch or SizeInvalid)(message)
        self.received += len(data)
        self._counted.inc(len(data))
        return data

    def _read_source(self, size: int) -> bytes:
        try:
            return self._source.read(size)
        except OSError as error:
            # A body the server cannot read: a malformed chunked encoding, or a client
            # gone mid-way (gunicorn raises both as IOError), or a broken connection.
            # The client's fault or its network's, never a 500.
            reason = str(error)[:200] or type(error).__name__
            raise BlobUploadInvalid(f"the request body could not be read: {reason}") from None

    def _check_nothing_follows(self) -> None:
        """A chunked body bound to a length: one more byte means it is longer."""
        if self._mismatch is None or self._checked_end:
            return
        self._checked_end = True
        if self._read_source(1):
            raise self._mismatch(f"request body is longer than the {self.length} bytes declared")

    def read_all(self, limit: int) -> bytes:
        """The whole body, for small documents; None-free, at most `limit` + 1 bytes."""
        parts, total = [], 0
        while total <= limit:
            data = self.read(min(READ_SIZE, limit + 1 - total))
            if not data:
                break
            parts.append(data)
            total += len(data)
        return b"".join(parts)


def _fast_source(stream):
    """The reader under gunicorn's request body, when it is safe to read from directly.

    gunicorn's `Body.read(n)` collects `n` bytes by asking its reader for 1 KiB at a
    time, copying its buffers on every step: about a tenth of what the network and
    the hashing could do for a layer. Its reader (for a Content-Length, chunked or
    until-EOF body) answers large reads directly. Other servers' streams, or a body
    something has already started to read, are used as they are.
    """
    reader = getattr(stream, "reader", None)
    buffered = getattr(stream, "buf", None)
    if reader is None or not hasattr(reader, "read") or buffered is None:
        return stream
    if buffered.tell() != 0:
        return stream
    if SocketLengthReader.fits(reader):
        return SocketLengthReader(reader)
    return reader


class SocketLengthReader:
    """A Content-Length body read straight from gunicorn's socket, a piece per call.

    gunicorn's LengthReader gathers a piece in a BytesIO, copies it out, slices it and
    puts the rest back: three or four copies of every byte, which cost more than the
    receiving itself. Here each piece is received into one buffer (`recv_into`) and
    copied once, after what gunicorn read past the headers. The lengths stay
    gunicorn's, so its parser finds the next request where it expects it.
    """

    def __init__(self, reader):
        self._reader = reader
        self._unreader = reader.unreader

    @staticmethod
    def fits(reader) -> bool:
        unreader = getattr(reader, "unreader", None)
        return (
            type(reader).__name__ == "LengthReader"
            and isinstance(getattr(reader, "length", None), int)
            and hasattr(getattr(unreader, "sock", None), "recv_into")
            and hasattr(getattr(unreader, "buf", None), "getvalue")
        )

    def read(self, size: int) -> bytes:
        size = min(size, self._reader.length)
        if size <= 0:
            return b""
        piece = bytearray(size)
        view = memoryview(piece)
        filled = 0
        early = self._unreader.buf.getvalue()
        if early:
            filled = min(len(early), size)
            view[:filled] = early[:filled]
            self._unreader.buf = io.BytesIO()
            self._unreader.buf.write(early[filled:])
        while filled < size:
            received = self._unreader.sock.recv_into(view[filled:])
            if not received:
                break
            filled += received
        self._reader.length -= filled
        return bytes(view[:filled])
