"""An organisation's members: the list for its readers; adding, changing roles and
removing for its admins; leaving for any member.

The rules (who may manage, never leaving an organisation without an admin) are
`packages_core`'s; a refused change comes back as a message on the members page.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from packages_core import access
from packages_core.adapter import get_adapter
from packages_core.exceptions import PackagesError
from packages_core.models import Membership
from packages_core.services import owners
from registry.web.access import org_managers_only, readable_owner
from registry.web.forms import AddMemberForm, MemberRoleForm
from registry.web.views.owners import owner_context


@require_GET
def owner_members(request, owner):
    """An organisation's members and their roles, for whoever may read the organisation."""
    owner = readable_owner(request, owner)
    if not owner.is_org:
        raise Http404("Users have no members.")
    return render_members(request, owner, AddMemberForm())


def render_members(request, org, add_form: AddMemberForm, status: int = 200):
    memberships = list(org.memberships.select_related("user", "user__package_owner"))
    memberships.sort(key=lambda m: m.user.get_username().lower())
    readable = set(
        get_adapter()
        .readable_owners(request.user)
        .filter(user__in=[m.user for m in memberships])
        .values_list("pk", flat=True)
    )
    members = [
        {
            "id": m.pk,
            "name": m.user.get_username(),
            "role": m.role,
            "role_label": m.get_role_display(),
            "owner": getattr(m.user, "package_owner", None),
            "since": m.created,
            "is_you": m.user_id == request.user.pk,
        }
        for m in memberships
    ]
    for member in members:
        if member["owner"] is not None and member["owner"].pk not in readable:
            member["owner"] = None
    context = {
        **owner_context(request, org, "members"),
        "members": members,
        "roles": Membership.Role.choices,
        "add_form": add_form,
    }
    return render(request, "registry/web/owner_members.html", context, status=status)


@org_managers_only
@require_POST
def add_member(request, org):
    """Add a user with a role; the members page again, with the form's errors, if not."""
    form = AddMemberForm(request.POST)
    if form.is_valid():
        try:
            user = owners.get_user(form.cleaned_data["username"])
            membership = owners.add_member(org, user, form.cleaned_data["role"])
        except PackagesError as exc:
            form.add_error("username", str(exc))
        else:
            messages.success(
                request,
                f"Added {user.get_username()} to {org.name} as {membership.get_role_display()}.",
            )
            return redirect("registry_web:owner_members", owner=org.name)
    return render_members(request, org, form, status=400)


@org_managers_only
@require_POST
def change_role(request, org, member_id):
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=member_id, owner=org
    )
    form = MemberRoleForm(request.POST)
    name = membership.user.get_username()
    if not form.is_valid():
        messages.error(request, f"Choose one of the roles for {name}.")
    else:
        try:
            changed = owners.set_membership(org, membership.user, form.cleaned_data["role"])
        except PackagesError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{name} is now {changed.get_role_display()} in {org.name}.")
    return _back_to_members(request, org)


@org_managers_only
@require_POST
def remove_member(request, org, member_id):
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=member_id, owner=org
    )
    return _remove(
        request, org, membership.user, f"Removed {membership.user.get_username()} from {org.name}."
    )


@login_required
@require_POST
def leave(request, owner):
    """Leave an organisation one is a member of (as its last admin, refused)."""
    org = readable_owner(request, owner)
    if not org.is_org or not org.memberships.filter(user=request.user).exists():
        raise Http404("You are not a member of this organisation.")
    return _remove(request, org, request.user, f"You left {org.name}.")


def _remove(request, org, user, done: str):
    try:
        owners.remove_membership(org, user)
    except PackagesError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return _back_to_members(request, org)


def _back_to_members(request, org):
    """The members page, or the front page for one who can no longer read it (having
    left a private organisation).
    """
    if access.allowed(request.user, None, org, access.READ):
        return redirect("registry_web:owner_members", owner=org.name)
    return redirect("registry_web:home")
