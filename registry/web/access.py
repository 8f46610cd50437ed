"""What a visitor may see (owners and images by name, or 404) and change (or 403).

Unreadable owners are 404, not 403, so pages never tell whether a private owner
exists. The decision is `packages_core.access`'s, the same the registry and the API apply.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404

from packages_core import access
from packages_core.models import Owner, Package
from registry import images


def readable_owner(request, name: str) -> Owner:
    """The owner named `name` if the visitor may read it, else 404. Pages know sessions,
    not access tokens, so no token's scopes narrow what they show.
    """
    owner = access.readable_owner(request.user, None, name)
    if owner is None:
        raise Http404("No such user or organisation.")
    return owner


def readable_image(request, owner_name: str, image: str) -> tuple[Owner, Package]:
    owner = readable_owner(request, owner_name)
    package = images.find_package(owner, image)
    if package is None:
        raise Http404("No such image.")
    return owner, package


def can_write(request, owner: Owner) -> bool:
    return access.allowed(request.user, None, owner, access.WRITE)


def require_write(request, owner: Owner) -> None:
    """PermissionDenied (403) for a visitor who may read the owner but not change it."""
    if not can_write(request, owner):
        raise PermissionDenied("You may not change this owner's packages.")


def can_manage(request, owner: Owner) -> bool:
    """Whether the visitor may change the owner's settings (the adapter decides)."""
    return access.allowed(request.user, None, owner, access.MANAGE)


def require_manage(request, owner: Owner) -> None:
    """PermissionDenied (403) for a visitor who may read the owner but not manage it."""
    if not can_manage(request, owner):
        raise PermissionDenied("You may not change this owner's settings.")


def owner_managers_only(view):
    """Call `view(request, owner_row, ...)` for a visitor who may manage the owner named in
    the URL: 404 if they may not read it, sign-in if anonymous, 403 if they may only read.
    """

    @wraps(view)
    def for_managers(request, owner, **kwargs):
        found = readable_owner(request, owner)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        require_manage(request, found)
        return view(request, found, **kwargs)

    return for_managers


def org_managers_only(view):
    """`owner_managers_only` for pages only organisations have: a user owner is 404."""

    @owner_managers_only
    @wraps(view)
    def for_org_managers(request, owner, **kwargs):
        if not owner.is_org:
            raise Http404("Users have no members or organisation settings.")
        return view(request, owner, **kwargs)

    return for_org_managers
