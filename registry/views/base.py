"""What every /v2 view shares: authentication, access checks, error rendering, headers."""

from __future__ import annotations

import json
import logging
import re
import time

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.handlers.exception import response_for_exception
from django.core.signals import got_request_exception
from django.db import connections
from django.http import Http404, HttpResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from packages_core.conf import packages_settings
from packages_core.exceptions import STORAGE_ERRORS, is_storage_full
from packages_core.models import Owner
from packages_core.services import quotas, uploads
from registry import access, metrics
from registry.authentication import ANONYMOUS, Identity, authenticate, challenge
from registry.errors import (
    API_VERSION,
    API_VERSION_HEADER,
    BlobUploadUnknown,
    Denied,
    PaginationNumberInvalid,
    RegistryError,
    RouteUnknown,
    StorageFull,
    Unauthorized,
    Unsupported,
    UploadRangeInvalid,
    error_for_status,
    from_domain,
    render_error,
)
from registry.images import check_owner_name
from registry.oci.errors import OciError
from registry.oci.names import check_image_name

logger = logging.getLogger(__name__)

# What Django answers with a 4xx of its own, and logs as it sees fit.
DJANGO_CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation)
# A count the database takes as a LIMIT (a signed 64-bit integer), in ASCII digits:
# int() would also take other scripts' digits, and spend long on thousands of them.
PAGINATION_NUMBER = re.compile(r"[0-9]{1,19}")
MAX_PAGINATION_NUMBER = 2**63 - 1


class RegistryView(View):
    """Authenticates, resolves the repository, checks access, renders RegistryErrors."""

    # Whether the path names a repository (`<owner>/<image>`).
    repository = True
    identity: Identity = ANONYMOUS
    owner: Owner
    image: str
    limits: quotas.Limits | None = None

    @classmethod
    def as_view(cls, **initkwargs):
        # On the view function itself, as DRF does, so that no subclass loses it by
        # overriding dispatch: clients send no CSRF token, and a 403 page is no OCI error.
        return csrf_exempt(super().as_view(**initkwargs))

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        response = None
        try:
            try:
                response = self.respond(request, *args, **kwargs)
            except Exception as error:
                response = unexpected_error(request, error)
            return response
        finally:
            observe(request, response, time.perf_counter() - started)

    def respond(self, request, *args, **kwargs):
        """The response, with every RegistryError, and every error of the OCI layer and
        the services, rendered as the spec's JSON.
        """
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
        except OciError as error:
            response = render_error(from_domain(error), head=request.method == "HEAD")
        except RegistryError as error:
            response = render_error(error, head=request.method == "HEAD")
        if request.method == "HEAD":
            without_body(response)
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
        check_owner_name(owner_name)
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


def unexpected_error(request, error: Exception) -> HttpResponse:
    """A 500 in the spec's error format for an exception no view expected, logged with
    its traceback; the changes of a request-wide transaction (ATOMIC_REQUESTS) are
    rolled back as if the exception had reached Django. Django's own client errors
    (a host not allowed, say, where no middleware checked it first) keep the status
    Django gives them.
    """
    if isinstance(error, DJANGO_CLIENT_ERRORS):
        status = response_for_exception(request, error).status_code
        response = render_error(error_for_status(status), head=request.method == "HEAD")
        response[API_VERSION_HEADER] = API_VERSION
        return response
    if isinstance(error, STORAGE_ERRORS):
        metrics.STORAGE_ERRORS.labels(metrics.route_of(request)).inc()
    if is_storage_full(error):
        # The service has already dropped this request's partial bytes; nothing to
        # trace, the operator needs to know the disk is full.
        logger.warning("%s %s: storage full: %s", request.method, request.path, error)
        metrics.STORAGE_ERRORS.labels(metrics.route_of(request)).inc()
        rollback_request_transaction()
        response = render_error(StorageFull(), head=request.method == "HEAD")
        response[API_VERSION_HEADER] = API_VERSION
        return response
    logger.error("unexpected error answering %s %s", request.method, request.path, exc_info=error)
    # Error trackers (and Django's test client) listen for this, as for any 500.
    got_request_exception.send(sender=None, request=request)
    rollback_request_transaction()
    failure = RegistryError("the registry could not answer; its log says why")
    response = render_error(failure, head=request.method == "HEAD")
    response[API_VERSION_HEADER] = API_VERSION
    return response


def rollback_request_transaction() -> None:
    """Roll back a request-wide transaction (ATOMIC_REQUESTS), as when an exception
    reaches Django.
    """
    for connection in connections.all(initialized_only=True):
        if connection.settings_dict.get("ATOMIC_REQUESTS") and connection.in_atomic_block:
            connection.set_rollback(True)


def without_body(response: HttpResponse) -> None:
    """Drop the body of an answer to a HEAD, keeping the length a GET would have.

    WSGI servers (gunicorn among them) send whatever body the application gives, and
    a HEAD answer's body would be read as the start of the next response on the
    connection. Django's test client and runserver drop it themselves, which hides this.
    """
    if response.streaming:
        response.streaming_content = ()
        return
    if response.content:
        if not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        response.content = b""


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
    # No method has a handler, so every one, known or not, is answered alike.
    http_method_names: list[str] = []

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise RouteUnknown(f"no /v2 endpoint at {request.path}")


def json_response(data, *, status=200, content_type="application/json") -> HttpResponse:
    return HttpResponse(json.dumps(data).encode(), status=status, content_type=content_type)


def pagination_number(request) -> int | None:
    """A listing's `n`: None when not given, else a count; PaginationNumberInvalid for
    anything else (negative, not a number, past a 64-bit integer), as CNCF
    Distribution answers.
    """
    raw = request.GET.get("n", "").strip()
    if not raw:
        return None
    if not PAGINATION_NUMBER.fullmatch(raw) or int(raw) > MAX_PAGINATION_NUMBER:
        raise PaginationNumberInvalid(
            "n must be a whole number of results, 0 or more", detail={"n": raw[:40]}
        )
    return int(raw)


def byte_range(size: int) -> str:
    """The `Range` header of an upload: the inclusive range received (0-0 when empty)."""
    return f"0-{max(size - 1, 0)}"
