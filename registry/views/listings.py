"""Listings: the catalog, an image's tags, and the referrers of a manifest."""

from __future__ import annotations

from urllib.parse import urlencode

from registry import access, images
from registry.digests import parse_digest
from registry.views.base import RegistryView, json_response, query_int

INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


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
        n = query_int(request, "n")
        n = self.PAGE_SIZE if n is None or n <= 0 or n > self.PAGE_SIZE else n
        names = images.catalog(self.identity.user, n=n, last=request.GET.get("last", "").strip())
        response = json_response({"repositories": names})
        if len(names) == n:
            query = urlencode({"n": n, "last": names[-1]})
            response["Link"] = f'</v2/_catalog?{query}>; rel="next"'
        return response


class TagListView(RegistryView):
    def get(self, request):
        package = images.require_package(self.owner, self.image)
        n = query_int(request, "n")
        if n is not None and n < 0:
            n = None
        tags = images.list_tags(package, n=n, last=request.GET.get("last", "").strip())
        response = json_response({"name": f"{self.owner.name.lower()}/{self.image}", "tags": tags})
        if n and len(tags) == n:
            query = urlencode({"n": n, "last": tags[-1]})
            response["Link"] = f'<{self.repository_url("tags/list")}?{query}>; rel="next"'
        return response


class ReferrersView(RegistryView):
    def get(self, request, digest):
        artifact_type = request.GET.get("artifactType", "").strip()
        descriptors = images.referrers(
            self.owner, self.image, parse_digest(digest), artifact_type=artifact_type
        )
        index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": descriptors}
        response = json_response(index, content_type=INDEX_MEDIA_TYPE)
        if artifact_type:
            response["OCI-Filters-Applied"] = "artifactType"
        return response
