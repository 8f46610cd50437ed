"""The /v2 routes; a host site mounts them at its root with one include().

Image names contain slashes, so the routes are regular expressions in which the
image is the shortest run of path components before the endpoint's own suffix.
Repeated slashes and a trailing slash are tolerated, as clients send both.
"""

from django.urls import path, re_path

from registry.views import base, content, listings, operations, tokens, uploads

app_name = "registry"

OWNER = r"(?P<owner>[^/]+)"
IMAGE = r"(?P<image>[^/].*?)"
# Loose on purpose: the views answer a malformed digest or id with the spec's error.
DIGEST = r"(?P<digest>[^/]+)"
UPLOAD_ID = r"(?P<upload_id>[^/]+)"


def route(pattern: str) -> str:
    """Anchor a pattern under v2/, letting every '/' stand for one or more."""
    return r"^v2/+" + pattern.replace("/", "/+") + r"/*$"


urlpatterns = [
    # The most asked first: Django tries the patterns in order, and a pull is mostly
    # manifests and blobs. Upload routes go before the blob route, whose loose digest
    # would take `uploads` too.
    re_path(
        route(f"{OWNER}/{IMAGE}/manifests/(?P<reference>[^/]+)"),
        content.ManifestView.as_view(),
        name="manifest",
    ),
    re_path(
        route(f"{OWNER}/{IMAGE}/blobs/uploads/{UPLOAD_ID}"),
        uploads.UploadView.as_view(),
        name="upload",
    ),
    re_path(
        route(f"{OWNER}/{IMAGE}/blobs/uploads"), uploads.UploadStartView.as_view(), name="uploads"
    ),
    re_path(route(f"{OWNER}/{IMAGE}/blobs/{DIGEST}"), content.BlobView.as_view(), name="blob"),
    re_path(r"^v2/*$", base.PingView.as_view(), name="ping"),
    re_path(route("token"), tokens.TokenView.as_view(), name="token"),
    re_path(route(f"{OWNER}/{IMAGE}/tags/list"), listings.TagListView.as_view(), name="tags"),
    re_path(
        route(f"{OWNER}/{IMAGE}/referrers/{DIGEST}"),
        listings.ReferrersView.as_view(),
        name="referrers",
    ),
    re_path(route("_catalog"), listings.CatalogView.as_view(), name="catalog"),
    # For load balancers and Prometheus (docs/scaling.md).
    path("-/healthz", operations.liveness, name="liveness"),
    path("-/readyz", operations.readiness, name="readiness"),
    path("-/metrics", operations.metrics_view, name="metrics"),
    re_path(r"^v2/.*$", base.UnknownRouteView.as_view(), name="unknown"),
]
