"""An owner's webhooks: list, add, change and delete them, see their last deliveries,
send a test delivery and redeliver one.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from packages_core.models import Webhook, WebhookDelivery
from packages_core.services import webhooks as webhook_services
from registry.web.access import owner_managers_only
from registry.web.forms import WebhookForm
from registry.web.views.owners import owner_context


@owner_managers_only
@require_GET
def webhooks(request, owner):
    context = {
        **owner_context(request, owner, "settings"),
        "webhooks": list(owner.webhooks.order_by("pk")),
    }
    return render(request, "registry/web/owner_webhooks.html", context)


@owner_managers_only
@require_http_methods(["GET", "POST"])
def new_webhook(request, owner):
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            webhook = webhook_services.create_webhook(owner, **form.changes())
        except webhook_services.WebhookInvalid as error:
            _refused(form, error)
        else:
            messages.success(request, f"Added the webhook to {webhook.url}.")
            return redirect("registry_web:owner_webhook", owner=owner.name, webhook_id=webhook.pk)
    context = {**owner_context(request, owner, "settings"), "form": form, "webhook": None}
    return render(request, "registry/web/owner_webhook.html", context)


@owner_managers_only
@require_http_methods(["GET", "POST"])
def webhook(request, owner, webhook_id):
    """A webhook's settings, and its last deliveries below them."""
    found = _webhook_of(owner, webhook_id)
    form = WebhookForm(request.POST or None, webhook=found)
    if request.method == "POST" and form.is_valid():
        try:
            webhook_services.update_webhook(found, **form.changes())
        except webhook_services.WebhookInvalid as error:
            _refused(form, error)
            # The row in memory took the refused values: show the saved ones.
            found.refresh_from_db()
        else:
            messages.success(request, f"Saved the webhook to {found.url}.")
            return redirect("registry_web:owner_webhook", owner=owner.name, webhook_id=found.pk)
    context = {
        **owner_context(request, owner, "settings"),
        "form": form,
        "webhook": found,
        "deliveries": webhook_services.last_deliveries(found),
        "last_count": webhook_services.LAST_DELIVERIES,
    }
    return render(request, "registry/web/owner_webhook.html", context)


@owner_managers_only
@require_POST
def delete_webhook(request, owner, webhook_id):
    found = _webhook_of(owner, webhook_id)
    webhook_services.delete_webhook(found)
    messages.success(request, f"Deleted the webhook to {found.url}.")
    return redirect("registry_web:owner_webhooks", owner=owner.name)


@owner_managers_only
@require_POST
def test_delivery(request, owner, webhook_id):
    found = _webhook_of(owner, webhook_id)
    webhook_services.test_delivery(found)
    messages.success(request, "Queued a test delivery (a ping event); the worker sends it.")
    return redirect("registry_web:owner_webhook", owner=owner.name, webhook_id=found.pk)


@owner_managers_only
@require_POST
def redeliver(request, owner, webhook_id, delivery_id):
    found = _webhook_of(owner, webhook_id)
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_id, webhook=found)
    webhook_services.redeliver([delivery])
    messages.success(request, f"Queued the {delivery.event_type} event again.")
    return redirect("registry_web:owner_webhook", owner=owner.name, webhook_id=found.pk)


def _webhook_of(owner, webhook_id) -> Webhook:
    """The owner's webhook with this id; another owner's (or the site's) is 404."""
    return get_object_or_404(Webhook.objects.select_related("owner"), pk=webhook_id, owner=owner)


def _refused(form, error: webhook_services.WebhookInvalid) -> None:
    """The service's refusal beside the field it names, or above the form."""
    form.add_error(error.field if error.field in form.fields else None, str(error))
