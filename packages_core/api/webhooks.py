"""API views of an owner's webhooks: list, create, read, change, delete; their last
deliveries, a test delivery, and redelivering one.

Thin, as the package views: permissions.py decides who may, the webhooks service owns
the rules and its refusals become 400s.
"""

from __future__ import annotations

from django.utils.functional import cached_property
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_view
from rest_framework import generics, permissions, status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.response import Response

from packages_core.api.permissions import OwnerSettingsAccess, readable_owner
from packages_core.api.serializers import WebhookDeliverySerializer, WebhookSerializer
from packages_core.api.views import OWNER, ApiView, _error, operation
from packages_core.models import Owner, Webhook, WebhookDelivery
from packages_core.services import webhooks as webhook_services

TAGS = ["webhooks"]


def _id(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.PATH, description=description)


WEBHOOK_PATH = [OWNER, _id("webhook_id", "The webhook's id.")]
DELIVERY_PATH = [*WEBHOOK_PATH, _id("delivery_id", "The delivery's id.")]

NOT_FOUND = _error("No such owner or webhook, or an owner the caller may not read.")
NOT_MANAGER = _error(
    "The caller may read the owner but not manage it (an organisation's writer or reader, "
    "another user, an access token without write:package)."
)
INVALID = _error("A field the webhook cannot use: a URL not http(s), an unknown event or format.")
UNAUTHENTICATED = _error("Invalid, expired or revoked credentials, or none.")
REFUSALS = {401: UNAUTHENTICATED, 403: NOT_MANAGER, 404: NOT_FOUND}


def validated(serializer) -> dict:
    """The serializer's data, or a 400 naming the first field at fault, in the API's
    usual {"detail": ...} shape, as the service's own refusals are.
    """
    if serializer.is_valid():
        return serializer.validated_data
    field, errors = next(iter(serializer.errors.items()))
    while isinstance(errors, dict | list):
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    raise ParseError(f"{field}: {errors}")


class OwnerWebhooksView(ApiView, generics.GenericAPIView):
    """A view under /api/v1/owners/<owner>/webhooks: for those who may manage the owner."""

    permission_classes = [permissions.IsAuthenticated, OwnerSettingsAccess]
    # What a refused access token was trying to do, in OwnerSettingsAccess's message.
    doing = "managing webhooks"

    @cached_property
    def owner(self) -> Owner:
        return readable_owner(self.request, self.kwargs["owner"])

    def find_webhook(self) -> Webhook:
        found = self.owner.webhooks.filter(pk=self.kwargs["webhook_id"]).first()
        if found is None:
            raise NotFound("No such webhook.")
        return found

    def call_service(self, function, *args, **kwargs):
        """`function(*args, **kwargs)`, the service's refusal a 400 with its message."""
        try:
            return function(*args, **kwargs)
        except webhook_services.WebhookInvalid as refusal:
            raise ParseError(str(refusal)) from None


@extend_schema_view(
    get=operation(
        tags=TAGS,
        operation_id="webhooks_list",
        summary="An owner's webhooks",
        parameters=[OWNER],
        responses={200: WebhookSerializer(many=True), **REFUSALS},
    ),
    post=operation(
        tags=TAGS,
        operation_id="webhooks_create",
        summary="Add a webhook",
        parameters=[OWNER],
        request=WebhookSerializer,
        responses={201: WebhookSerializer, 400: INVALID, **REFUSALS},
    ),
)
class WebhookListView(OwnerWebhooksView, generics.ListCreateAPIView):
    """The owner's webhooks, oldest first; a new one."""

    serializer_class = WebhookSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Webhook.objects.none()
        return self.owner.webhooks.order_by("pk")

    def create(self, request, *args, **kwargs):
        fields = validated(self.get_serializer(data=request.data))
        webhook = self.call_service(webhook_services.create_webhook, self.owner, **fields)
        return Response(self.get_serializer(webhook).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=operation(
        tags=TAGS,
        operation_id="webhook_retrieve",
        summary="A webhook",
        parameters=WEBHOOK_PATH,
        responses={200: WebhookSerializer, **REFUSALS},
    ),
    patch=operation(
        tags=TAGS,
        operation_id="webhook_partial_update",
        summary="Change a webhook",
        description='Only the fields sent change. A secret left out stays; `""` removes it.',
        parameters=WEBHOOK_PATH,
        request=WebhookSerializer,
        responses={200: WebhookSerializer, 400: INVALID, **REFUSALS},
    ),
    delete=operation(
        tags=TAGS,
        operation_id="webhook_destroy",
        summary="Delete a webhook",
        description="Its deliveries go with it, sent or not.",
        parameters=WEBHOOK_PATH,
        responses={204: OpenApiResponse(description="Deleted."), **REFUSALS},
    ),
)
class WebhookView(OwnerWebhooksView, generics.RetrieveUpdateDestroyAPIView):
    """One webhook of the owner. No PUT: a secret the caller cannot read back could not
    be sent whole.
    """

    serializer_class = WebhookSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_object(self):
        return self.find_webhook()

    def update(self, request, *args, **kwargs):
        webhook = self.get_object()
        fields = validated(self.get_serializer(webhook, data=request.data, partial=True))
        self.call_service(webhook_services.update_webhook, webhook, **fields)
        return Response(self.get_serializer(webhook).data)

    def perform_destroy(self, instance):
        webhook_services.delete_webhook(instance)


@extend_schema_view(
    get=operation(
        tags=TAGS,
        operation_id="webhook_deliveries_list",
        summary="A webhook's deliveries, newest first",
        parameters=WEBHOOK_PATH,
        responses={200: WebhookDeliverySerializer(many=True), **REFUSALS},
    )
)
class WebhookDeliveryListView(OwnerWebhooksView, generics.ListAPIView):
    """The events queued for a webhook and how sending them went."""

    serializer_class = WebhookDeliverySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        return self.find_webhook().deliveries.defer("body").order_by("-pk")


QUEUED = OpenApiResponse(WebhookDeliverySerializer, description="Queued; the worker sends it.")


def queues(operation_id: str, summary: str, description: str, parameters: list):
    """The schema of a POST that queues a delivery and answers 202 with it."""
    return extend_schema_view(
        post=operation(
            tags=TAGS,
            operation_id=operation_id,
            summary=summary,
            description=description,
            parameters=parameters,
            request=None,
            responses={202: QUEUED, **REFUSALS},
        )
    )


class QueueingView(OwnerWebhooksView):
    """A POST that queues a delivery of the webhook (`queue`), answered 202 with it."""

    serializer_class = WebhookDeliverySerializer

    def post(self, request, *args, **kwargs):
        delivery = self.queue(self.find_webhook())
        return Response(self.get_serializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@queues(
    "webhook_test",
    "Send a test delivery",
    "Queues a `ping` event, whatever events the webhook wants.",
    WEBHOOK_PATH,
)
class WebhookTestView(QueueingView):
    def queue(self, webhook: Webhook) -> WebhookDelivery:
        return webhook_services.test_delivery(webhook)


@queues(
    "webhook_delivery_redeliver",
    "Redeliver an event",
    "Queues the event again from its first attempt, whatever its status.",
    DELIVERY_PATH,
)
class WebhookRedeliverView(QueueingView):
    def queue(self, webhook: Webhook) -> WebhookDelivery:
        delivery = webhook.deliveries.filter(pk=self.kwargs["delivery_id"]).first()
        if delivery is None:
            raise NotFound("No such delivery of this webhook.")
        webhook_services.redeliver([delivery])
        delivery.refresh_from_db()
        return delivery
