"""Organisations on the web: creating one, and its settings (visibility, description)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from packages_core import access
from packages_core.exceptions import PackagesError
from packages_core.services import owners
from registry.web.access import org_managers_only, owner_managers_only
from registry.web.forms import NewOrgForm, OrgSettingsForm
from registry.web.views.owners import owner_context


@login_required
@require_http_methods(["GET", "POST"])
def new_org(request):
    """Create an organisation, with the visitor as its admin: any signed-in user, or only
    site admins where `PACKAGES["ALLOW_ORG_CREATION"]` is off.
    """
    if not access.can_create_org(request.user):
        raise PermissionDenied("Only the site's admins may create organisations here.")
    form = NewOrgForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = owners.create_org(
                form.cleaned_data["name"],
                owner_user=request.user,
                visibility=form.cleaned_data["visibility"],
                description=form.cleaned_data["description"],
            )
        except PackagesError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Created the organisation {org.name}; you are its admin.")
            return redirect("registry_web:owner_members", owner=org.name)
    return render(request, "registry/web/org_new.html", {"form": form})


@owner_managers_only
def owner_settings(request, owner):
    """An owner's settings start with what is there to set: an organisation's profile,
    a user's cleanup rules.
    """
    if owner.is_org:
        return redirect("registry_web:org_settings", owner=owner.name)
    return redirect("registry_web:owner_cleanup", owner=owner.name)


@org_managers_only
@require_http_methods(["GET", "POST"])
def org_settings(request, org):
    """The organisation's visibility and description, for its admins and site admins."""
    initial = {"visibility": org.visibility, "description": org.description}
    form = OrgSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        owners.update_org(
            org,
            visibility=form.cleaned_data["visibility"],
            description=form.cleaned_data["description"],
        )
        messages.success(request, f"Saved the settings of {org.name}.")
        return redirect("registry_web:org_settings", owner=org.name)
    context = {**owner_context(request, org, "settings"), "form": form, "section": "org"}
    return render(request, "registry/web/org_settings.html", context)
