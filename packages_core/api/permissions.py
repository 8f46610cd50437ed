"""Who may read and change an owner's packages through the API: the registry's rules.

`packages_core.access` decides (the access adapter's rules, narrowed by an access
token's scopes), as on /v2 and the pages. An owner the caller may not read is 404,
whether it exists or not.
"""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.exceptions import NotFound, PermissionDenied

from packages_core import access
from packages_core.models import AccessToken, Owner


def access_token(request) -> AccessToken | None:
    """The access token the caller signed in with: a session or a JWT from a password
    carries no scopes to narrow by.
    """
    return request.auth if isinstance(request.auth, AccessToken) else None


def can_write(request, owner: Owner) -> bool:
    return access.allowed(request.user, access_token(request), owner, access.WRITE)


def readable_owner(request, name: str) -> Owner:
    """The owner named `name` (case-insensitive), if the caller may read it; else 404."""
    owner = access.readable_owner(request.user, access_token(request), name)
    if owner is None:
        raise NotFound(f"No user or organisation named {name!r}.")
    return owner


def refuse_for_token(request, owner: Owner, action: str, doing: str) -> None:
    """PermissionDenied naming the access token when it is the token's scopes, not the
    user's rights, that refuse `action`: that is what to change, so say so.
    """
    refusal = access.token_refusal(request.user, access_token(request), owner, action, doing)
    if refusal:
        raise PermissionDenied(f"{refusal[0].upper()}{refusal[1:]}.")


class OwnerPackageAccess(permissions.BasePermission):
    """Reads need read access to the view's `owner` (else 404), changes write access
    (else 403). Views list `IsAuthenticatedOrReadOnly` first, so an anonymous change
    is 401 before anything is looked up.
    """

    message = "You may not change packages of this owner."

    def has_permission(self, request, view) -> bool:
        owner = view.owner  # NotFound unless readable
        if request.method in permissions.SAFE_METHODS or can_write(request, owner):
            return True
        doing = "deleting packages" if request.method == "DELETE" else "changing packages"
        refuse_for_token(request, owner, access.WRITE, doing)
        return False


class OwnerSettingsAccess(permissions.BasePermission):
    """An owner's settings (webhooks): reading them as well as changing them needs the
    right to manage the owner (the user themself, an organisation's admins, site admins;
    an access token also `write:package`), since they hold receivers' addresses. An
    owner the caller may not read is 404; one they may read but not manage, 403. Views
    list `IsAuthenticated` first, so anonymous callers are 401.
    """

    message = "You may not manage this owner's settings."

    def has_permission(self, request, view) -> bool:
        owner = view.owner  # NotFound unless readable
        if access.allowed(request.user, access_token(request), owner, access.MANAGE):
            return True
        refuse_for_token(request, owner, access.MANAGE, view.doing)
        return False
