"""Blobs and manifests: HEAD, GET, PUT and DELETE by digest or tag."""

from __future__ import annotations

from django.http import HttpResponse

from packages_core.services import tallies, webhooks
from registry import access, events, images, pull_cache, serving
from registry.bearer import PULL
from registry.conf import registry_settings
from registry.errors import BlobUnknown, BlobUploadInvalid, ManifestInvalid, SizeInvalid
from registry.images import check_owner_name
from registry.mirrors import blobs as mirror_blobs
from registry.mirrors import manifests as mirror_manifests
from registry.mirrors.service import mirror_of, upstream_of
from registry.oci.digests import Digest, looks_like_digest, parse_digest
from registry.oci.errors import BlobNotFound, InvalidDigest
from registry.oci.manifests import check_manifest_size
from registry.oci.names import check_image_name
from registry.request_body import RequestBody
from registry.views.base import RegistryView


class BlobView(RegistryView):
    def head(self, request, digest):
        wanted = parse_blob_digest(digest)
        try:
            blob = images.find_blob(self.owner, self.image, wanted)
        except BlobNotFound:
            if mirror_of(self.owner) is None:
                raise
            return mirror_blobs.head(self.owner, self.image, wanted)
        return serving.blob_head(blob, digest)

    def get(self, request, digest):
        wanted = parse_blob_digest(digest)
        try:
            blob = images.find_blob(self.owner, self.image, wanted)
        except BlobNotFound:
            mirror = mirror_of(self.owner)
            if mirror is None:
                raise
            return mirror_blobs.pull(request, self.owner, upstream_of(mirror), self.image, wanted)
        return serving.blob_response(request, blob, digest)

    def delete(self, request, digest):
        images.delete_blob(self.owner, self.image, parse_blob_digest(digest))
        return HttpResponse(status=202)


class ManifestView(RegistryView):
    found: images.FoundManifest | None = None

    def resolve(self, request, owner_name: str, image: str) -> None:
        """For a pull, the owner and the manifest come from one query (or this
        process's copy of its answer, registry/pull_cache.py), then access is decided
        on that owner as for any request.
        """
        if request.method not in ("GET", "HEAD"):
            super().resolve(request, owner_name, image)
            return
        check_owner_name(owner_name)
        self.image = check_image_name(image)
        owner, self.found = pull_cache.resolve_manifest(
            owner_name, self.image, self.kwargs["reference"]
        )
        self.owner = access.authorize(
            request, self.identity, owner_name, self.image, PULL, owner=owner
        )
        mirror = mirror_of(self.owner)
        if mirror is not None:
            # Only now, with access decided: an upstream is never asked for a caller
            # who may not pull from its mirror.
            self.found = mirror_manifests.pull(
                self.owner, mirror, self.image, self.kwargs["reference"], self.found
            )

    def pulled(self, reference: str) -> images.FoundManifest:
        if self.found is None:
            raise images.manifest_unknown(self.owner, self.image, reference)
        return self.found

    def head(self, request, reference):
        return serving.manifest_response(request, self.pulled(reference), reference, head=True)

    def get(self, request, reference):
        found = self.pulled(reference)
        response = serving.manifest_response(request, found, reference, head=False)
        tallies.count_download(found.version_id)
        if events.listening(self.owner):
            events.pulled(
                events.ManifestEvent(
                    owner=self.owner,
                    image=self.image,
                    digest=found.digest,
                    media_type=found.media_type,
                    size=found.size,
                    tag=None if looks_like_digest(reference) else reference,
                    actor=webhooks.actor_name(self.creator),
                ),
                events.origin_of(request),
            )
        return response

    def put(self, request, reference):
        # The one place the size limit applies: reading stops one byte past it, so a
        # huge body costs no more memory than the limit allows.
        limit = registry_settings.MAX_MANIFEST_SIZE
        try:
            body = RequestBody(request).read_all(limit)
        except (BlobUploadInvalid, SizeInvalid) as error:
            raise ManifestInvalid(error.message) from None
        check_manifest_size(len(body), limit)
        pushed = images.put_manifest(
            self.owner,
            self.image,
            reference,
            body,
            request.META.get("CONTENT_TYPE"),
            creator=self.creator,
            origin=events.origin_of(request),
        )
        response = HttpResponse(status=201)
        response["Location"] = self.repository_url(f"manifests/{pushed.digest}")
        response["Docker-Content-Digest"] = pushed.digest
        if pushed.subject:
            response["OCI-Subject"] = pushed.subject
        return response

    def delete(self, request, reference):
        images.delete_manifest(
            self.owner,
            self.image,
            reference,
            actor=self.creator,
            origin=events.origin_of(request),
        )
        return HttpResponse(status=202)


def parse_blob_digest(raw: str) -> Digest:
    """A blob path's digest; a malformed one names no blob (404, as Gitea answers)."""
    try:
        return parse_digest(raw)
    except InvalidDigest as error:
        raise BlobUnknown(error.message, detail={"digest": raw}) from None
