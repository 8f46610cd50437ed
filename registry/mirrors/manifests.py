"""A mirror's manifests on a pull: what the cache has, checked upstream once its TTL is out.

A digest names the same bytes forever, so one in the cache never needs the upstream
again. A tag moves: it is served from the cache while it was checked within the
mirror's TTL (the check's time is in the shared cache), then a HEAD asks the upstream
which digest the tag has now, and only a changed tag costs a GET. When the upstream
cannot answer (down, refusing, a 5xx) the cached manifest is served; only a manifest
the cache lacks fails, with an error naming the upstream.
"""

from __future__ import annotations

import http.client
import json
import logging
from urllib.parse import urlencode

from packages_core import shared_cache
from packages_core.models import Owner
from registry import images
from registry.conf import registry_settings
from registry.errors import ManifestUnknown, RegistryError
from registry.mirrors import blobs
from registry.mirrors.service import upstream_of
from registry.mirrors.upstream import (
    ACCEPT_MANIFESTS,
    Upstream,
    UpstreamError,
    UpstreamNotFound,
)
from registry.models import Mirror
from registry.oci.digests import Digest, looks_like_digest, parse_digest
from registry.oci.errors import InvalidDigest, OciError
from registry.oci.manifests import parse_manifest
from registry.oci.media_types import MEDIA_TYPE_PATTERN, OCI_INDEX, SUPPORTED_TYPES
from registry.oci.names import is_valid_tag

logger = logging.getLogger(__name__)

CHECKED_KEY = "registry:mirror-checked:{owner}:{image}:{tag}"


def pull(
    owner: Owner, mirror: Mirror, image: str, reference: str, found: images.FoundManifest | None
) -> images.FoundManifest:
    """The manifest a pull through `mirror` gets: `found` (what the cache has) when it
    is good, else what the upstream has now, stored first.
    """
    if looks_like_digest(reference):
        if found is not None:
            return found
        try:
            parse_digest(reference)
        except InvalidDigest:
            raise images.manifest_unknown(owner, image, reference) from None
        return _fetch(owner, mirror, image, reference)[0]
    if not is_valid_tag(reference):
        # Never sent upstream: it could carry a query or another path.
        raise images.manifest_unknown(owner, image, reference)
    key = CHECKED_KEY.format(owner=owner.pk, image=image.lower(), tag=reference.lower())
    if found is not None and shared_cache.get(key):
        return found
    upstream = upstream_of(mirror)
    try:
        current = _upstream_digest(upstream, image, reference)
    except UpstreamError as error:
        if found is not None:
            logger.warning(
                "serving %s/%s:%s from the cache: %s", owner.name, image, reference, error
            )
            return found
        raise _failure(error, reference) from None
    if found is not None and current == found.digest:
        shared_cache.set(key, True, mirror.ttl_seconds)
        return found
    fetched, fresh = _fetch(owner, mirror, image, reference, upstream=upstream, found=found)
    if fresh:
        # Only what the upstream has now starts a TTL: a cached manifest served because
        # the GET failed (a 429 after a free HEAD, say) is asked about again next time.
        shared_cache.set(key, True, mirror.ttl_seconds)
    return fetched


def _upstream_digest(upstream: Upstream, image: str, tag: str) -> str | None:
    """The digest the upstream's tag names now (a HEAD, which Docker Hub does not count
    against its pull limit); None when the upstream does not say.
    """
    answer = upstream.get(
        f"/v2/{upstream.repository(image)}/manifests/{tag}",
        image=image,
        accept=ACCEPT_MANIFESTS,
        method="HEAD",
    )
    answer.close()
    digest = answer.header("Docker-Content-Digest")
    return digest if digest.startswith("sha256:") else None


def _fetch(
    owner: Owner,
    mirror: Mirror,
    image: str,
    reference: str,
    *,
    upstream: Upstream | None = None,
    found: images.FoundManifest | None = None,
) -> tuple[images.FoundManifest, bool]:
    """Fetch the manifest `reference` names upstream, check it, store it (under the tag,
    if a tag), and answer it from the store; with whether it came from the upstream
    (False: `found`, served because the upstream failed).
    """
    upstream = upstream or upstream_of(mirror)
    try:
        body, media_type = _get_manifest(upstream, image, reference)
        _prefetch_config(owner, image, upstream, body, media_type)
    except UpstreamError as error:
        if found is not None:
            logger.warning(
                "serving %s/%s:%s from the cache: %s", owner.name, image, reference, error
            )
            return found, False
        raise _failure(error, reference) from None
    images.put_manifest(owner, image, reference, body, media_type, mirrored=True)
    _, stored = images.resolve_manifest(owner.name, image, reference)
    if stored is None:
        # Removed between our storing and reading it: as if never there.
        raise images.manifest_unknown(owner, image, reference)
    return stored, True


def _get_manifest(upstream: Upstream, image: str, reference: str) -> tuple[bytes, str]:
    """The manifest's bytes and media type, checked against the digest asked for or
    the one the upstream names.
    """
    path = f"/v2/{upstream.repository(image)}/manifests/{reference}"
    answer = upstream.get(path, image=image, accept=ACCEPT_MANIFESTS)
    try:
        limit = registry_settings.MAX_MANIFEST_SIZE
        body = answer.read(limit + 1)
        named = answer.header("Docker-Content-Digest")
        media_type = answer.header("Content-Type").split(";")[0].strip()
    except (OSError, http.client.HTTPException) as error:
        raise UpstreamError(f"{upstream}{path}: the answer broke off: {error}") from None
    finally:
        answer.close()
    if len(body) > limit:
        raise UpstreamError(f"{upstream}{path}: the manifest is larger than {limit} bytes")
    wanted = reference if looks_like_digest(reference) else named
    if wanted:
        try:
            digest = parse_digest(wanted)
        except InvalidDigest:
            raise UpstreamError(f"{upstream}{path}: the upstream named digest {wanted!r}") from None
        if Digest.of(body, digest.algorithm) != digest:
            raise UpstreamError(
                f"{upstream}{path}: the manifest's bytes do not have the digest {digest}"
            )
    # The digest covers the body, not the header: the body's own mediaType, when it
    # names one, wins over a Content-Type that says otherwise (or says nothing useful).
    return body, _own_media_type(body) or (media_type if media_type in SUPPORTED_TYPES else "")


def _own_media_type(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    named = document.get("mediaType") if isinstance(document, dict) else None
    return named if named in SUPPORTED_TYPES else ""


def _prefetch_config(owner: Owner, image: str, upstream: Upstream, body: bytes, media_type: str):
    """Fetch an image's config with its manifest: it is small, and the pages show what it
    says (platform, labels) from the moment the manifest is stored.
    """
    try:
        parsed = parse_manifest(body, media_type or None)
    except OciError as error:
        raise UpstreamError(
            f"{upstream}: the upstream's manifest is not valid: {error.message}"
        ) from None
    config = parsed.config
    if parsed.is_index or config is None or config.size > images.MAX_CONFIG_SIZE:
        return
    blobs.fetch_small(owner, image, upstream, config.digest, config.size)


def _failure(error: UpstreamError, reference: str) -> RegistryError:
    """What a pull the cache cannot serve gets: MANIFEST_UNKNOWN (a 404) naming the
    upstream and what it said. An outage is no "unknown manifest", but clients print the
    message of a 4xx and not of a 5xx (docs/compatibility.md), and a user must learn
    that the upstream is the problem.
    """
    if isinstance(error, UpstreamNotFound):
        message = error.message
    else:
        message = f"not in the mirror's cache, and its upstream failed: {error.message}"
    return ManifestUnknown(message, detail={"reference": reference})


def referrers(
    mirror: Mirror, image: str, subject: Digest, cached: list[dict], *, artifact_type: str = ""
) -> list[dict]:
    """The referrers of `subject`: the `cached` ones (what the mirror holds), then those
    the upstream's referrers API lists besides. An upstream without the API, or one that
    is down, adds none. What it lists is not kept: referrers come and go upstream, and
    the manifests they name are fetched and kept when pulled by digest.
    """
    listed = _upstream_referrers(mirror, image, subject, artifact_type)
    known = {descriptor["digest"] for descriptor in cached}
    return cached + [d for d in listed if d["digest"] not in known]


def _upstream_referrers(
    mirror: Mirror, image: str, subject: Digest, artifact_type: str
) -> list[dict]:
    upstream = upstream_of(mirror)
    path = f"/v2/{upstream.repository(image)}/referrers/{subject}"
    if artifact_type:
        path += "?" + urlencode({"artifactType": artifact_type})
    try:
        answer = upstream.get(path, image=image, accept=OCI_INDEX)
    except UpstreamError as error:
        logger.info("referrers of %s from %s: %s", subject, upstream, error)
        return []
    try:
        document = json.loads(answer.read(registry_settings.MAX_MANIFEST_SIZE))
    except (ValueError, OSError, http.client.HTTPException):
        return []
    finally:
        answer.close()
    entries = document.get("manifests") if isinstance(document, dict) else None
    found = [_descriptor(entry) for entry in entries] if isinstance(entries, list) else []
    found = [entry for entry in found if entry is not None]
    if artifact_type:
        # An upstream that does not filter says so by leaving out OCI-Filters-Applied.
        found = [entry for entry in found if entry.get("artifactType") == artifact_type]
    return found


def _descriptor(entry) -> dict | None:
    """An upstream's referrer entry as a descriptor of ours (the fields the API lists,
    checked), or None for one that is not a manifest's descriptor.
    """
    if not isinstance(entry, dict):
        return None
    digest, media_type, size = entry.get("digest"), entry.get("mediaType"), entry.get("size")
    if not isinstance(digest, str) or not isinstance(media_type, str):
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return None
    try:
        parse_digest(digest)
    except InvalidDigest:
        return None
    if not MEDIA_TYPE_PATTERN.match(media_type):
        return None
    descriptor = {"mediaType": media_type, "digest": digest, "size": size}
    artifact_type = entry.get("artifactType")
    if isinstance(artifact_type, str) and MEDIA_TYPE_PATTERN.match(artifact_type):
        descriptor["artifactType"] = artifact_type
    annotations = entry.get("annotations")
    if isinstance(annotations, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        descriptor["annotations"] = annotations
    return descriptor
