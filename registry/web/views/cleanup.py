"""An owner's cleanup rules: list, add, change and delete them, and preview what one removes."""

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from packages_core import types
from packages_core.models import CleanupRule
from packages_core.services.cleanup import preview_rule
from registry.web.access import owner_managers_only
from registry.web.forms import CleanupRuleForm
from registry.web.views.owners import owner_context

# A preview lists this many versions and counts the rest.
PREVIEW_SHOWN = 100


@owner_managers_only
@require_GET
def rules(request, owner):
    """The owner's rules, one per package type, and whether a type is left for a new one."""
    found = list(owner.cleanup_rules.order_by("type"))
    context = {
        **owner_context(request, owner, "settings"),
        "rules": found,
        "can_add": bool(set(types.names()) - {rule.type for rule in found}),
    }
    return render(request, "registry/web/owner_cleanup.html", context)


@owner_managers_only
@require_http_methods(["GET", "POST"])
def new_rule(request, owner):
    return _rule_form(request, owner, CleanupRule(owner=owner))


@owner_managers_only
@require_http_methods(["GET", "POST"])
def edit_rule(request, owner, rule_id):
    return _rule_form(request, owner, get_object_or_404(CleanupRule, pk=rule_id, owner=owner))


def _rule_form(request, owner, rule):
    """Save the rule; or, for "Preview", list what the rule as typed would remove now and
    save nothing (a valid form has changed the rule in memory only).
    """
    adding = rule.pk is None
    form = CleanupRuleForm(request.POST or None, instance=rule)
    preview = None
    if request.method == "POST" and form.is_valid():
        if "preview" in request.POST:
            preview = describe_preview(form.instance)
        else:
            try:
                with transaction.atomic():
                    form.save()
            except IntegrityError:
                # Another rule of this type was saved since the form checked.
                form.add_error(
                    "type", f"{owner.name} already has a cleanup rule for {rule.type} packages."
                )
            else:
                done = "Added" if adding else "Saved"
                messages.success(request, f"{done} the cleanup rule for {rule.type} packages.")
                return redirect("registry_web:owner_cleanup", owner=owner.name)
    context = {
        **owner_context(request, owner, "settings"),
        "form": form,
        "rule": rule,
        "adding": adding,
        "preview": preview,
    }
    return render(request, "registry/web/owner_cleanup_form.html", context)


@owner_managers_only
@require_GET
def rule_preview(request, owner, rule_id):
    """What the saved rule would remove if cleanup ran now."""
    rule = get_object_or_404(CleanupRule, pk=rule_id, owner=owner)
    context = {
        **owner_context(request, owner, "settings"),
        "rule": rule,
        "preview": describe_preview(rule),
    }
    return render(request, "registry/web/owner_cleanup_preview.html", context)


@owner_managers_only
@require_POST
def delete_rule(request, owner, rule_id):
    rule = get_object_or_404(CleanupRule, pk=rule_id, owner=owner)
    rule.delete()
    messages.success(request, f"Deleted the cleanup rule for {rule.type} packages.")
    return redirect("registry_web:owner_cleanup", owner=owner.name)


def describe_preview(rule) -> dict:
    """The first versions the rule would remove, how many in all, and how many not shown."""
    doomed = preview_rule(rule)
    return {
        "versions": doomed[:PREVIEW_SHOWN],
        "total": len(doomed),
        "more": max(len(doomed) - PREVIEW_SHOWN, 0),
    }
