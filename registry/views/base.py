"""What every /v2 view shares: authentication, access checks, error rendering, headers."""

from __future__ import annotations

import json
import time

from botocore.exceptions import BotoCoreError, ClientError
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from packages_core.conf import packages_settings
from packages_core.models import Owner
from packages_core.services import quotas, uploads
from registry import access, metrics
from registry.authentication import ANONYMOUS, Identity, authenticate, challenge
from registry.errors import (
    BlobUploadUnknown,
    Denied,
    RegistryError,
    RouteUnknown,
    Unauthorized,
    Unsupported,
    UploadRangeInvalid,
    render_error,
)
from registry.names import check_image_name

API_VERSION_HEADER = "Docker-Distribution-Api-Version"
API_VERSION = "registry/2.0"
# What the content store raises when the disk or the object store fails.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


@method_decorator(csrf_exempt, name="dispatch")
class RegistryView(View):
    """Authenticates, resolves the repository, checks access, renders RegistryErrors."""

    # Whether the path names a repository (`<owner>/<image>`).
    repository = True
    identity: Identity = ANONYMOUS
    owner: Owner
    image: str
    limits: quotas.Limits | None = None

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        response = None
        try:
            response = self.respond(request, *args, **kwargs)
            return response
        except STORAGE_ERRORS:
            metrics.STORAGE_ERRORS.labels(metrics.route_of(request)).inc()
            raise
        finally:
            observe(request, response, time.perf_counter() - started)

    def respond(self, request, *args, **kwargs):
        """The response, with every RegistryError rendered as the spec's JSON."""
        try:
            self.scope = self.challenge_scope(request, kwargs)
            self.identity = authenticate(request, scope=self.scope)
            if self.repository:
                self.resolve(request, kwargs.pop("owner"), kwargs.pop("image"))
            response = super().dispatch(request, *args, **kwargs)
        except quotas.QuotaExceeded as error:
            response = render_error(Denied(str(error)), head=request.method == "HEAD")
        except uploads.UploadGone as error:
            response = render_error(BlobUploadUnknown(detail={"uuid": str(error.upload_id)}))
        except uploads.UploadOffsetMismatch as error:
            response = render_error(
                UploadRangeInvalid(str(error), headers={"Range": byte_range(error.expected)})
            )
        except RegistryError as error:
            response = render_error(error, head=request.method == "HEAD")
        response[API_VERSION_HEADER] = API_VERSION
        return response

    def challenge_scope(self, request, kwargs) -> str:
        """The token scope a client needs for this request, named in challenges."""
        if not self.repository:
            return ""
        return access.repository_scope(
            kwargs["owner"], kwargs["image"], access.action_of(request.method)
        )

    def resolve(self, request, owner_name: str, image: str) -> None:
        """Find the owner and check the caller may do what the method asks there."""
        self.image = check_image_name(image)
        action = access.action_of(request.method)
        self.owner = access.authorize(request, self.identity, owner_name, self.image, action)

    def require_site_access(self, request) -> None:
        """Anonymous callers may look around unless the site requires signing in."""
        if self.identity.is_anonymous and packages_settings.REQUIRE_SIGNIN_VIEW:
            raise Unauthorized(challenge=challenge(request, self.scope))

    def check_quota(self, size: int) -> None:
        """QuotaExceeded if a blob of `size` bytes is over the owner's limits (read once
        per request: a chunk is checked on its declared length, then on what came).
        """
        if self.limits is None:
            self.limits = quotas.limits_for(self.owner)
        quotas.check_blob(self.owner, size, user=self.identity.user, limits=self.limits)

    @property
    def creator(self):
        """The user to record as having made something; None when anonymous."""
        return None if self.identity.is_anonymous else self.identity.user

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise Unsupported(f"{request.method} is not supported here")

    def repository_url(self, suffix: str) -> str:
        return f"/v2/{self.owner.name.lower()}/{self.image}/{suffix}"


def observe(request, response, seconds: float) -> None:
    """Count a finished /v2 request in the metrics (an unhandled error counts as 500)."""
    route, method = metrics.route_of(request), request.method
    status = response.status_code if response is not None else 500
    metrics.REQUESTS.labels(route, method, str(status)).inc()
    metrics.LATENCY.labels(route, method).observe(seconds)
    if response is not None and method == "GET" and status in (200, 206):
        length = response.get("Content-Length")
        if length and length.isdigit():
            metrics.BYTES_SENT.labels(route).inc(int(length))


class PingView(RegistryView):
    """`GET /v2/`: 200 with credentials (a Bearer token, even an anonymous one), else
    401 with the challenge that starts the token flow.
    """

    repository = False

    def get(self, request):
        if self.identity.is_anonymous and not self.identity.is_bearer:
            raise Unauthorized(challenge=challenge(request))
        self.require_site_access(request)
        return HttpResponse(b"{}", content_type="application/json")


class UnknownRouteView(RegistryView):
    """Any other /v2 path: a JSON 404 with the API header, like every /v2 answer."""

    repository = False

    def dispatch(self, request, *args, **kwargs):
        return super().dispatch(request)

    def get(self, request):
        raise RouteUnknown(f"no /v2 endpoint at {request.path}")

    head = post = put = patch = delete = get


def json_response(data, *, status=200, content_type="application/json") -> HttpResponse:
    return HttpResponse(json.dumps(data).encode(), status=status, content_type=content_type)


def query_int(request, name: str) -> int | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return 0


def byte_range(size: int) -> str:
    """The `Range` header of an upload: the inclusive range received (0-0 when empty)."""
    return f"0-{max(size - 1, 0)}"
