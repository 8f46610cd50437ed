"""Owner pages: a user's or organisation's images, and an organisation's members."""

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render

from forge.web.access import can_write, readable_owner
from packages_core.adapter import get_adapter
from registry import browse

IMAGES_PER_PAGE = 20


def owner_context(request, owner, tab: str) -> dict:
    """What the owner header of every owner page shows."""
    return {
        "owner": owner,
        "tab": tab,
        "image_total": browse.owner_images(owner).count(),
        "member_total": owner.memberships.count() if owner.is_org else 0,
        "can_write": can_write(request, owner),
    }


def owner(request, owner):
    """An owner's page is its list of images."""
    found = readable_owner(request, owner)
    return redirect("owner_packages", owner=found.name)


def owner_packages(request, owner):
    owner = readable_owner(request, owner)
    query = request.GET.get("q", "").strip()
    paginator = Paginator(browse.owner_images(owner, query), IMAGES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        **owner_context(request, owner, "packages"),
        "query": query,
        "page": page,
        "images": browse.describe_images(page.object_list),
    }
    return render(request, "forge/owner_packages.html", context)


def owner_members(request, owner):
    """An organisation's members and their roles, for whoever may read the organisation."""
    owner = readable_owner(request, owner)
    if not owner.is_org:
        raise Http404("Users have no members.")
    memberships = list(owner.memberships.select_related("user", "user__package_owner"))
    memberships.sort(key=lambda m: m.user.get_username().lower())
    readable = set(
        get_adapter()
        .readable_owners(request.user)
        .filter(user__in=[m.user for m in memberships])
        .values_list("pk", flat=True)
    )
    members = [
        {
            "name": m.user.get_username(),
            "role": m.role,
            "role_label": m.get_role_display(),
            "owner": getattr(m.user, "package_owner", None),
            "since": m.created,
        }
        for m in memberships
    ]
    for member in members:
        if member["owner"] is not None and member["owner"].pk not in readable:
            member["owner"] = None
    context = {**owner_context(request, owner, "members"), "members": members}
    return render(request, "forge/owner_members.html", context)
