"""API views: an owner's packages, a version (read or delete) and its files; JWT sign-in.

Thin: permissions.py decides who may do what, queries.py finds the rows, and
packages_core's services change them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils.functional import cached_property
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import (
    APIException,
    AuthenticationFailed,
    NotFound,
    ParseError,
    Throttled,
)
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)

from packages_core import throttling
from packages_core.api import queries
from packages_core.api.authentication import AccessTokenAuthentication
from packages_core.api.permissions import OwnerPackageAccess, readable_owner
from packages_core.api.serializers import (
    ErrorSerializer,
    FileSerializer,
    PackageFilterSerializer,
    PackageSerializer,
    VersionSerializer,
    any_version_serializer,
    version_serializer,
)
from packages_core.client_address import client_address
from packages_core.exceptions import InUse, TooManySignIns
from packages_core.models import Owner, Package, PackageFile, PackageVersion
from packages_core.services.versions import remove_version
from packages_core.services.webhooks import Origin

logger = logging.getLogger(__name__)

TAGS = ["packages"]


def operation(**kwargs):
    """`extend_schema` for one view method, built on drf-spectacular's AutoSchema.

    A method's annotation otherwise starts from the host's DEFAULT_SCHEMA_CLASS, which
    in a site that never set it is DRF's own: the schema would fail to build.
    """

    def decorate(method):
        method.kwargs = {**getattr(method, "kwargs", {}), "schema": AutoSchema}
        return extend_schema(**kwargs)(method)

    return decorate


def _path(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.PATH, description=description)


OWNER = _path("owner", "A user or organisation name (case-insensitive).")
VERSION_PATH = [
    OWNER,
    _path("type", 'The package type, e.g. "container".'),
    _path("name", 'The package name; may contain slashes ("team/app").'),
    _path("version", 'A tag, or the digest of an untagged manifest ("sha256:...").'),
]


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


NOT_READABLE = _error("No such owner, or one the caller may not read.")
NO_VERSION = _error("No such owner, package or version, or one the caller may not read.")
UNAUTHENTICATED = _error("Invalid, expired or revoked credentials (or none, for a change).")
NOT_WRITABLE = _error("The caller may read but not change this owner's packages.")


IN_USE = _error("Other versions need this one (an index lists this manifest).")


class Conflict(APIException):
    """The request is fine, but what is stored forbids it now (409)."""

    status_code = 409
    default_detail = "The request conflicts with the package's current state."
    default_code = "conflict"


class Pagination(PageNumberPagination):
    page_size = 50


class ApiView:
    """What every view of the API uses, whatever the host's REST_FRAMEWORK defaults say."""

    # The first class's challenge is the WWW-Authenticate of a 401: session
    # authentication has none, so listed first it would turn every 401 into a 403.
    authentication_classes = [AccessTokenAuthentication, JWTAuthentication, SessionAuthentication]
    pagination_class = Pagination
    schema = AutoSchema()

    def get_renderers(self):
        # The browsable API needs rest_framework's templates, so the app installed.
        if apps.is_installed("rest_framework"):
            return [JSONRenderer(), BrowsableAPIRenderer()]
        return [JSONRenderer()]


class OwnerView(ApiView, generics.GenericAPIView):
    """A view under /api/v1/packages/<owner>: the owner is resolved once, readable or 404."""

    # Anonymous changes are 401 before the owner is looked up; reads may be anonymous.
    permission_classes = [permissions.IsAuthenticatedOrReadOnly, OwnerPackageAccess]

    @cached_property
    def owner(self) -> Owner:
        return readable_owner(self.request, self.kwargs["owner"])

    def find_version(self) -> PackageVersion:
        version = queries.find_version(
            self.owner, self.kwargs["type"], self.kwargs["name"], self.kwargs["version"]
        )
        if version is None:
            raise NotFound("No such package version.")
        return version


@extend_schema_view(
    get=operation(
        tags=TAGS,
        operation_id="packages_list",
        summary="An owner's packages",
        parameters=[
            OWNER,
            OpenApiParameter(
                "type", OpenApiTypes.STR, description='Only packages of this type ("container").'
            ),
            OpenApiParameter(
                "q", OpenApiTypes.STR, description="Only packages whose name contains this."
            ),
        ],
        responses={
            200: PackageSerializer(many=True),
            400: _error("A type or search that cannot match any package."),
            401: UNAUTHENTICATED,
            404: NOT_READABLE,
        },
    )
)
class PackageListView(OwnerView, generics.ListAPIView):
    """The owner's packages with at least one published version, sorted by name."""

    serializer_class = PackageSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Package.objects.none()
        filters = PackageFilterSerializer(data=self.request.query_params)
        if not filters.is_valid():
            # As a ParseError, so the body is the API's usual {"detail": ...}.
            field, errors = next(iter(filters.errors.items()))
            raise ParseError(f"{field}: {errors[0]}")
        return queries.owner_packages(
            self.owner,
            type=filters.validated_data.get("type", ""),
            query=filters.validated_data.get("q", ""),
        )

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return queries.with_figures(page) if page is not None else None


@extend_schema(tags=TAGS, parameters=VERSION_PATH)
class VersionView(OwnerView, generics.RetrieveDestroyAPIView):
    """One published version of a package."""

    serializer_class = VersionSerializer

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False):
            return VersionSerializer
        return version_serializer(self.kwargs["type"])

    def get_object(self):
        return self.find_version()

    @operation(
        operation_id="package_version_retrieve",
        summary="A version's details",
        responses={200: any_version_serializer(), 401: UNAUTHENTICATED, 404: NO_VERSION},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @operation(
        operation_id="package_version_destroy",
        summary="Delete a version",
        description=(
            "Removes the version and its files (a container tag, or an untagged manifest), "
            "and the versions only it needed (a container index's untagged platforms). "
            "Other versions are not affected, even tags on the same digest. A version "
            "others still need (a manifest an index lists) is not removed: 409. Blobs "
            "other versions use stay; unused ones go at the next garbage collection."
        ),
        responses={
            204: OpenApiResponse(description="Deleted."),
            401: UNAUTHENTICATED,
            403: NOT_WRITABLE,
            404: NO_VERSION,
            409: IN_USE,
        },
    )
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)

    def perform_destroy(self, instance):
        try:
            remove_version(instance, actor=self.request.user, origin=Origin.of(self.request))
        except InUse as refusal:
            raise Conflict(str(refusal)) from None


@extend_schema_view(
    get=operation(
        tags=TAGS,
        operation_id="package_version_files_list",
        summary="A version's files",
        parameters=VERSION_PATH,
        responses={200: FileSerializer(many=True), 401: UNAUTHENTICATED, 404: NO_VERSION},
    )
)
class VersionFileListView(OwnerView, generics.ListAPIView):
    """The files of a version (for a container: the manifest, then config and layers)."""

    serializer_class = FileSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PackageFile.objects.none()
        return queries.version_files(self.find_version())


# JSON web tokens


@extend_schema_view(
    post=operation(
        tags=["auth"],
        operation_id="token_obtain",
        summary="Sign in: a JWT pair from a user name and password",
        description=(
            "Send `username` and `password`; the answer holds an `access` JWT (send it as "
            "`Authorization: Bearer <access>`) and a `refresh` JWT. Failed sign-ins are "
            "limited per client and user name, together with those on /v2."
        ),
        responses={
            200: TokenObtainPairSerializer,
            401: _error("Wrong user name or password, or an inactive user."),
            429: _error("Too many failed sign-ins from this client; see Retry-After."),
        },
    )
)
class TokenObtainView(jwt_views.TokenObtainPairView):
    """simplejwt's pair view, with the registry's limit on failed sign-ins: the same
    counters as Basic sign-ins on /v2, so neither door allows more guesses than one.
    """

    schema = AutoSchema()

    def post(self, request, *args, **kwargs):
        if not isinstance(request.data, Mapping):
            # JSON that is not an object (a number, a list): the serializer would
            # say so too, but the throttle reads the user name first.
            raise ParseError("send a JSON object with the user name and password")
        username = str(request.data.get(get_user_model().USERNAME_FIELD, ""))
        try:
            attempt = throttling.check(request, username)
        except TooManySignIns as exc:
            logger.info("api: sign-in of %r from %s throttled", username, client_address(request))
            raise Throttled(wait=exc.retry_after) from None
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            logger.info("api: sign-in of %r from %s refused", username, client_address(request))
            attempt.failed()
            raise
        attempt.succeeded()
        return response


@extend_schema_view(
    post=operation(
        tags=["auth"],
        operation_id="token_refresh",
        summary="A new access JWT from a refresh JWT",
        description="Send `refresh`; the answer holds a new `access` JWT.",
        responses={
            200: TokenRefreshSerializer,
            401: _error("An invalid or expired refresh token."),
        },
    )
)
class TokenRefreshView(jwt_views.TokenRefreshView):
    """simplejwt's refresh view, described in the schema."""

    schema = AutoSchema()
