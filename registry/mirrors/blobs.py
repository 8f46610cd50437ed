"""A mirror's blobs on a pull: fetched upstream once, sent to the client as they are stored.

A blob a mirrored manifest names (a MirroredBlob row) and the cache lacks is fetched
when first pulled. One process fetches it: it claims a MirrorFetch row, and the pulls
of the same blob elsewhere (any worker, any node) wait for the row to end and are then
served from the store. The fetching request does not wait for the whole download: a
thread reads the upstream's answer into the store, hashing it as it goes (store_blob,
the same path a push takes), and hands each chunk to the response as it is read. The
bytes take their content-addressed key only when all of them match the digest; if they
do not, nothing is kept, and the client, which has had part of a body, sees the
connection end short of its Content-Length. If the client goes away, the thread
finishes the download anyway, so the next pull finds it.
"""

from __future__ import annotations

import http.client
import logging
import queue
import threading
import time
from datetime import timedelta

from django.db import IntegrityError, connections, transaction
from django.db.models import Exists, OuterRef
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from packages_core.connections import release_db_connections
from packages_core.content_store import CHUNK_SIZE, ContentStore
from packages_core.exceptions import InvalidInput
from packages_core.models import Owner, PackageBlob, PackageFile
from packages_core.services import figures, quotas, versions
from packages_core.services.blobs import Claim, lock_blobs, store_blob
from registry import images, serving
from registry.conf import registry_settings
from registry.errors import BlobUnknown, RegistryError, Unavailable
from registry.mirrors.upstream import Upstream, UpstreamError, UpstreamNotFound
from registry.models import MirroredBlob, MirrorFetch
from registry.oci.digests import Digest, parse_digest
from registry.oci.errors import BlobNotFound

logger = logging.getLogger(__name__)

# Chunks between the download and a slow client: bounds the memory a fetch holds.
QUEUE_CHUNKS = 32
# How often a fetch says it is alive, and how much longer than the upstream's timeout a
# silent one is trusted.
BEAT_SECONDS = 2.0
STALE_MARGIN_SECONDS = 15.0
# A pull waits for another's fetch while that one says it is alive, but not longer.
MAX_WAIT_SECONDS = 6 * 3600
# How often a waiting pull looks whether the fetch it waits for has ended.
POLL_SECONDS = 0.1

_END = object()


def _wanted(owner: Owner, image: str, digest: Digest) -> MirroredBlob:
    """The MirroredBlob row that makes `digest` the image's to fetch; BlobNotFound when
    no manifest pulled through the mirror names it.
    """
    package = images.find_package(owner, image)
    row = (
        MirroredBlob.objects.filter(package=package, digest=str(digest)).first()
        if package is not None
        else None
    )
    if row is None:
        raise BlobNotFound(
            f"blob {digest} unknown to {owner.name}/{image}", detail={"digest": str(digest)}
        )
    return row


def head(owner: Owner, image: str, digest: Digest) -> HttpResponse:
    """A HEAD of a blob not fetched yet: the manifest that named it said its size."""
    row = _wanted(owner, image, digest)
    response = HttpResponse(content_type=serving.BLOB_CONTENT_TYPE)
    return serving.content_headers(response, str(digest), row.size)


def pull(request, owner: Owner, upstream: Upstream, image: str, digest: Digest) -> HttpResponse:
    """A GET of a blob not in the image yet: from the store if another image of this
    mirror brought it, else fetched (or waited for while another request fetches it).
    """
    row = _wanted(owner, image, digest)
    quotas.check_blob(owner, row.size)
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while True:
        blob = _stored(owner, digest)
        if blob is not None and attach(owner, image, blob, str(digest)):
            return serving.blob_response(request, blob, str(digest))
        fetch = _claim(digest)
        if fetch is not None:
            return _stream(owner, image, upstream, digest, row.size, fetch)
        if not _wait(digest, deadline):
            raise BlobUnknown(
                f"blob {digest}: another pull's fetch from {upstream} did not end in time",
                detail={"digest": str(digest)},
            )


def fetch_small(owner: Owner, image: str, upstream: Upstream, digest: str, size: int) -> None:
    """Fetch a small blob (an image's config) into the image's staging, whole, before
    its manifest is stored; UpstreamError if the upstream cannot give it.
    """
    wanted = parse_digest(digest)
    blob = _stored(owner, wanted)
    if blob is not None:
        try:
            images.stage_blob(owner, image, blob)
            return
        except BlobNotFound:
            pass  # collected since it was found: fetched again below
    answer = upstream.get(_blob_path(upstream, image, wanted), image=image)
    try:
        _store(answer, wanted, size, claim=images.staging_claim(owner, image))
    except (RegistryError, InvalidInput, ValueError, OSError, http.client.HTTPException) as error:
        raise UpstreamError(f"{upstream}: blob {digest}: {error}") from None
    finally:
        answer.close()


def attach(owner: Owner, image: str, blob: PackageBlob, digest: str) -> bool:
    """Give a stored blob to every version of the image whose manifest names it; False
    if garbage collection took it meanwhile (fetch it again).
    """
    with transaction.atomic():
        if not lock_blobs([blob.pk]):
            return False
        package = versions.lock_package(owner, images.CONTAINER, image)
        _give(package, blob, digest)
    return True


def _give(package, blob: PackageBlob, digest: str) -> None:
    """The part of `attach` inside its locks (the blob's row, then the image)."""
    rows = list(
        MirroredBlob.objects.filter(package=package, digest=digest).select_related("manifest__file")
    )
    if not rows:
        return
    added = PackageFile.objects.bulk_create(
        PackageFile(
            version_id=row.manifest.file.version_id, package=package, blob=blob, name=digest
        )
        for row in rows
    )
    figures.files_added(package.pk, added)
    MirroredBlob.objects.filter(pk__in=[row.pk for row in rows]).delete()


def _claim_for(owner: Owner, image: str, digest: str) -> Claim:
    """What a fetch's blob does as it is recorded: go to the image's versions that name it."""

    def claim(blob: PackageBlob) -> None:
        package = versions.lock_package(owner, images.CONTAINER, image)
        _give(package, blob, digest)

    return claim


def _stored(owner: Owner, digest: Digest) -> PackageBlob | None:
    """The blob, if an image of this mirror holds it already: its bytes came from this
    mirror's upstream. Bytes someone else pushed are not served in its place, though
    they have the digest: an upstream that names a digest it has not got (one it learnt
    somehow) would otherwise read a private image's layer through a public mirror.
    """
    held = PackageFile.objects.filter(blob=OuterRef("pk"), package__owner=owner)
    blob = PackageBlob.objects.filter(**{digest.algorithm: digest.hex}).filter(Exists(held)).first()
    if blob is not None and ContentStore.default().exists(blob.storage_key):
        return blob
    return None


def _blob_path(upstream: Upstream, image: str, digest: Digest) -> str:
    return f"/v2/{upstream.repository(image)}/blobs/{digest}"


def _store(reader, digest: Digest, size: int, *, claim: Claim):
    """Store what `reader` gives, refusing it unless it has `size` bytes and the digest."""

    def verify(digests) -> None:
        serving.check_digest(digests, digest)
        if digests.size != size:
            raise ValueError(f"the upstream sent {digests.size} bytes, not {size}")

    return store_blob(
        reader,
        verify=verify,
        expected_bytes=size,
        claim=claim,
        sha512=digest.algorithm == "sha512",
        sha256=digest.hex if digest.algorithm == "sha256" else None,
    )


# One fetch per blob


def _claim(digest: Digest) -> MirrorFetch | None:
    """The fetch of `digest`, if this request is the one to make it."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return MirrorFetch.objects.create(sha256=digest.hex[:64], beat=now)
    except IntegrityError:
        return None


def stale_seconds() -> float:
    """How long a fetch may stay silent before it is taken for dead: longer than the
    upstream may keep it waiting for one read.
    """
    return registry_settings.MIRROR_TIMEOUT + STALE_MARGIN_SECONDS


def _wait(digest: Digest, deadline: float) -> bool:
    """Wait while another request fetches `digest`, for as long as it says it is alive:
    True once it is over (stored or failed: the caller looks), False at the deadline.
    """
    while time.monotonic() < deadline:
        fetch = MirrorFetch.objects.filter(sha256=digest.hex[:64]).first()
        if fetch is None:
            return True
        if fetch.beat < timezone.now() - timedelta(seconds=stale_seconds()):
            # Its process died mid-fetch: end it, and let the next look take over.
            MirrorFetch.objects.filter(pk=fetch.pk, beat=fetch.beat).delete()
            return True
        time.sleep(POLL_SECONDS)
    return False


def _end(fetch: MirrorFetch) -> None:
    MirrorFetch.objects.filter(pk=fetch.pk).delete()


# Streaming while storing


class _Tee:
    """The upstream's answer, read by store_blob; each chunk is also queued for the client."""

    def __init__(
        self, answer, chunks: queue.Queue, gone: threading.Event, fetch: MirrorFetch, size: int
    ):
        self.answer = answer
        self.chunks = chunks
        self.gone = gone
        self.fetch = fetch
        self.size = size
        self.count = 0
        self.beaten = time.monotonic()

    def read(self, amount: int = -1) -> bytes:
        amount = amount if amount and amount > 0 else CHUNK_SIZE
        # One byte past the size at most: enough to tell an upstream that sends more.
        data = self.answer.read(min(amount, self.size - self.count + 1))
        self.count += len(data)
        if self.count > self.size:
            # Before the chunk goes to the client: it must never have the descriptor's
            # length of bytes that are not the blob.
            raise ValueError(f"the upstream sent more than the blob's {self.size} bytes")
        if data:
            self._give(data)
            self._beat()
        return data

    def _give(self, data: bytes) -> None:
        # A client that stopped reading must not stop the download: once it is gone
        # the chunks are dropped; while it is slow, the download waits for it, and
        # says it is alive meanwhile.
        while not self.gone.is_set():
            try:
                self.chunks.put(data, timeout=1)
                return
            except queue.Full:
                self._beat()

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self.beaten >= BEAT_SECONDS:
            self.beaten = now
            MirrorFetch.objects.filter(pk=self.fetch.pk).update(beat=timezone.now())


def _stream(
    owner: Owner, image: str, upstream: Upstream, digest: Digest, size: int, fetch: MirrorFetch
) -> HttpResponse:
    try:
        answer = upstream.get(_blob_path(upstream, image, digest), image=image, whole=False)
    except BaseException as error:
        _end(fetch)
        if not isinstance(error, UpstreamError):
            raise
        # A 4xx, whose message clients print (manifests._failure says why).
        message = error.message
        if not isinstance(error, UpstreamNotFound):
            message = f"not in the mirror's cache, and its upstream failed: {message}"
        raise BlobUnknown(message, detail={"digest": str(digest)}) from None
    chunks: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
    gone = threading.Event()
    worker = threading.Thread(
        target=_download,
        args=(answer, chunks, gone, fetch, owner, image, digest, size),
        name=f"mirror-fetch-{digest.hex[:12]}",
        daemon=True,
    )
    worker.start()
    release_db_connections(size)
    response = StreamingHttpResponse(_relay(chunks, gone), content_type=serving.BLOB_CONTENT_TYPE)
    response["Accept-Ranges"] = "bytes"
    return serving.content_headers(response, str(digest), size)


def _download(answer, chunks, gone, fetch, owner, image, digest: Digest, size: int) -> None:
    """The fetch's thread: the whole blob into the store, then the end (or the error) to
    the client.
    """
    outcome: object = _END
    try:
        _store(
            _Tee(answer, chunks, gone, fetch, size),
            digest,
            size,
            claim=_claim_for(owner, image, str(digest)),
        )
    except Exception as error:
        logger.warning("mirror %s: fetching %s of %s failed: %s", owner.name, digest, image, error)
        outcome = error
    finally:
        answer.close()
        try:
            _end(fetch)
        finally:
            # This thread's own connections: nobody else would close them.
            connections.close_all()
    while not gone.is_set():
        try:
            chunks.put(outcome, timeout=1)
            return
        except queue.Full:
            continue


def _relay(chunks: queue.Queue, gone: threading.Event):
    """The response's body: the chunks as the download reads them, but the last one only
    once all of them matched the digest. Part of the body is out when a mismatch shows,
    so ending the connection short of its length is the only way left to tell the
    client; holding one chunk back makes sure it does end short, and that no client,
    even one that checks nothing, gets a whole body of the wrong bytes.
    """
    timeout = registry_settings.MIRROR_TIMEOUT
    held = None
    try:
        while True:
            try:
                item = chunks.get(timeout=timeout)
            except queue.Empty:
                raise Unavailable(f"the upstream sent nothing for {timeout} s") from None
            if item is _END:
                if held is not None:
                    yield held
                return
            if isinstance(item, BaseException):
                raise Unavailable(f"the upstream's blob was refused: {item}")
            if held is not None:
                yield held
            held = item
    finally:
        gone.set()
