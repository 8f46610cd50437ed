"""How packages, versions, files and webhooks look in API responses, and the listing's filters."""

from __future__ import annotations

from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from packages_core import types
from packages_core.models import WebhookDelivery
from packages_core.models.packages import MAX_PACKAGE_TYPE_LENGTH, PACKAGE_TYPE_PATTERN
from packages_core.models.webhooks import DEFAULT_EVENTS, EVENTS, FORMATS, GITEA


class PackageFilterSerializer(serializers.Serializer):
    """The query of an owner's package listing: a value that cannot be a type or a
    search (a NUL byte, which no stored name holds) is a 400, not an empty page.
    """

    type = serializers.RegexField(
        PACKAGE_TYPE_PATTERN, max_length=MAX_PACKAGE_TYPE_LENGTH, required=False, allow_blank=True
    )
    # CharField refuses NUL bytes.
    q = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class PackageSerializer(serializers.Serializer):
    """A package of an owner, from `queries.owner_packages`."""

    name = serializers.CharField()
    type = serializers.CharField(help_text='The package type, e.g. "container".')
    latest_version = serializers.CharField(
        help_text=(
            "The most recently pushed version its type lets be called latest (a "
            "container's tag of an image or index, never an artifact or referrer), else "
            "the most recently pushed version."
        )
    )
    version_count = serializers.IntegerField(help_text="Published versions (tags and digests).")
    total_size = serializers.IntegerField(
        help_text="Bytes of the distinct blobs its versions use (shared layers count once)."
    )
    updated = serializers.DateTimeField(help_text="When a version last changed.")


class VersionSerializer(serializers.Serializer):
    """A version of a package, from `queries.find_version`. A package type may show
    more with a subclass of its own (`PackageType.api_serializer`).
    """

    version = serializers.CharField(help_text='A tag, or "sha256:..." for an untagged manifest.')
    is_tagged = serializers.SerializerMethodField()
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    download_count = serializers.IntegerField()
    last_pulled = serializers.DateTimeField(
        allow_null=True,
        help_text="The latest manifest pull (written within seconds of it); null: never pulled.",
    )
    metadata = serializers.DictField(
        help_text="Type-specific metadata (for containers: platform, labels, layers, ...)."
    )
    total_size = serializers.IntegerField(help_text="Bytes of the version's files.")
    html_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_is_tagged(self, version) -> bool:
        """Whether a tag names the version (by its type: an untagged manifest is named
        by its digest).
        """
        return types.is_tag(version)

    @extend_schema_field({"type": "string", "nullable": True})
    def get_html_url(self, version) -> str | None:
        """The version's web page, where the site has pages for its type."""
        path = types.web_url(version)
        request = self.context.get("request")
        return request.build_absolute_uri(path) if path and request is not None else path


def version_serializer(type_name: str) -> type[VersionSerializer]:
    """The serializer of a version of this package type (its own, or the common one)."""
    path = types.get(type_name).api_serializer
    return import_string(path) if path else VersionSerializer


def any_version_serializer() -> PolymorphicProxySerializer:
    """For the schema: a version is one of the registered types' shapes."""
    return PolymorphicProxySerializer(
        component_name="AnyVersion",
        serializers=lambda: list(
            dict.fromkeys([VersionSerializer, *map(version_serializer, types.names())])
        ),
        resource_type_field_name=None,
    )


class FileSerializer(serializers.Serializer):
    """A file of a version, with its blob's size and digests."""

    name = serializers.CharField()
    size = serializers.IntegerField(source="blob.size")
    digest = serializers.SerializerMethodField()
    sha256 = serializers.CharField(source="blob.sha256")
    sha512 = serializers.CharField(
        source="blob.sha512",
        allow_null=True,
        help_text="Known only when a client pushed the blob by its sha512 digest.",
    )
    is_lead = serializers.BooleanField(
        help_text="The version's main file (a container's manifest)."
    )

    @extend_schema_field(OpenApiTypes.STR)
    def get_digest(self, file) -> str:
        return f"sha256:{file.blob.sha256}"


class ErrorSerializer(serializers.Serializer):
    """The body of an error response."""

    detail = serializers.CharField()


class WebhookSerializer(serializers.Serializer):
    """An owner's webhook. The secret is write-only: answers say only whether one is set.

    The fields' rules (URL scheme, events, format) are the webhooks service's; this
    checks only their shapes.
    """

    id = serializers.IntegerField(read_only=True)
    url = serializers.CharField(max_length=2000, help_text="Where events are POSTed: http(s)://.")
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=255,
        help_text="Signs every body (X-Hub-Signature-256). Never returned; on a change, "
        'left out it stays as it was, "" removes it.',
    )
    has_secret = serializers.SerializerMethodField()
    events = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"Some of {', '.join(EVENTS)}; default {', '.join(DEFAULT_EVENTS)}.",
    )
    name_filter = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="A glob on image names (app/*); empty: every image.",
    )
    format = serializers.CharField(
        required=False, help_text=f"The body's shape: {' or '.join(FORMATS)} (default {GITEA})."
    )
    is_active = serializers.BooleanField(required=False, default=True)
    created = serializers.DateTimeField(read_only=True)
    updated = serializers.DateTimeField(read_only=True)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_secret(self, webhook) -> bool:
        return webhook.has_secret


class WebhookDeliverySerializer(serializers.Serializer):
    """One event queued for a webhook, and how sending it went."""

    id = serializers.IntegerField()
    event_id = serializers.UUIDField(help_text="The X-Forge-Delivery header: the same on retries.")
    event_type = serializers.CharField(help_text="push, delete, pull or ping (a test delivery).")
    status = serializers.ChoiceField(choices=WebhookDelivery.STATUSES)
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_duration_ms = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(
        allow_null=True, help_text="When a pending event is sent (again)."
    )
    created = serializers.DateTimeField()
