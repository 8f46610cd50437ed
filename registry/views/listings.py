"""Listings: the catalog, an image's tags, and the referrers of a manifest."""

from __future__ import annotations

from urllib.parse import urlencode

from registry import access, images
from registry.errors import NameInvalid, ParameterInvalid
from registry.images import is_valid_repository
from registry.mirrors import manifests as mirror_manifests
from registry.mirrors.service import mirror_of
from registry.oci.digests import parse_digest
from registry.oci.media_types import MEDIA_TYPE_PATTERN, OCI_INDEX
from registry.oci.names import is_valid_tag
from registry.views.base import RegistryView, json_response, pagination_number


class CatalogView(RegistryView):
    repository = False
    PAGE_SIZE = 100

    def challenge_scope(self, request, kwargs) -> str:
        return "registry:catalog:*"

    def get(self, request):
        self.require_site_access(request)
        if not self.identity.catalog:
            raise access.insufficient_scope(
                request, self.scope, "the token does not grant the catalog"
            )
        n = pagination_number(request)
        n = self.PAGE_SIZE if n is None or n <= 0 or n > self.PAGE_SIZE else n
        last = request.GET.get("last", "").strip().lower()
        if last and not is_valid_repository(last):
            raise NameInvalid(
                "last must be a repository name, as the previous page ended with",
                detail={"last": last[:300]},
            )
        names = images.catalog(self.identity.user, n=n, last=last)
        response = json_response({"repositories": names})
        if len(names) == n:
            query = urlencode({"n": n, "last": names[-1]})
            response["Link"] = f'</v2/_catalog?{query}>; rel="next"'
        return response


class TagListView(RegistryView):
    def get(self, request):
        n = pagination_number(request)
        last = request.GET.get("last", "").strip()
        if last and not is_valid_tag(last):
            raise ParameterInvalid(
                "last must be a tag, as the previous page ended with", detail={"last": last[:200]}
            )
        package = images.require_package(self.owner, self.image)
        tags = images.list_tags(package, n=n, last=last)
        response = json_response({"name": f"{self.owner.name.lower()}/{self.image}", "tags": tags})
        if n and len(tags) == n:
            query = urlencode({"n": n, "last": tags[-1]})
            response["Link"] = f'<{self.repository_url("tags/list")}?{query}>; rel="next"'
        return response


class ReferrersView(RegistryView):
    def get(self, request, digest):
        artifact_type = request.GET.get("artifactType", "").strip()
        if artifact_type and not MEDIA_TYPE_PATTERN.match(artifact_type):
            raise ParameterInvalid(
                "artifactType must be a media type such as type/subtype",
                detail={"artifactType": artifact_type[:300]},
            )
        subject = parse_digest(digest)
        descriptors = images.referrers(self.owner, self.image, subject, artifact_type=artifact_type)
        mirror = mirror_of(self.owner)
        if mirror is not None:
            descriptors = mirror_manifests.referrers(
                mirror, self.image, subject, descriptors, artifact_type=artifact_type
            )
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        response = json_response(index, content_type=OCI_INDEX)
        if artifact_type:
            response["OCI-Filters-Applied"] = "artifactType"
        return response
