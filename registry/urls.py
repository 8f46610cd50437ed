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
REFERENCE = r"(?P<reference>[^/]+)"
UPLOAD_ID = r"(?P<upload_id>[^/]+)"


def route(*components: str) -> str:
    """Anchor path components under v2/, one or more '/' between them.

    Components are joined rather than a pattern's slashes rewritten: a '/' inside a
    character class (`[^/]`) must stay as it is, or `+` could never be in a name or
    a digest (`sha256+b64u:...`).
    """
    return r"^v2/+" + "/+".join(components) + r"/*$"


urlpatterns = [
    # The most asked first: Django tries the patterns in order, and a pull is mostly
    # manifests and blobs. Upload routes go before the blob route, whose loose digest
    # would take `uploads` too.
    re_path(
        route(OWNER, IMAGE, "manifests", REFERENCE),
        content.ManifestView.as_view(),
        name="manifest",
    ),
    re_path(
        route(OWNER, IMAGE, "blobs", "uploads", UPLOAD_ID),
        uploads.UploadView.as_view(),
        name="upload",
    ),
    re_path(
        route(OWNER, IMAGE, "blobs", "uploads"), uploads.UploadStartView.as_view(), name="uploads"
    ),
    re_path(route(OWNER, IMAGE, "blobs", DIGEST), content.BlobView.as_view(), name="blob"),
    re_path(r"^v2/*$", base.PingView.as_view(), name="ping"),
    re_path(route("token"), tokens.TokenView.as_view(), name="token"),
    re_path(route(OWNER, IMAGE, "tags", "list"), listings.TagListView.as_view(), name="tags"),
    re_path(
        route(OWNER, IMAGE, "referrers", DIGEST),
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
