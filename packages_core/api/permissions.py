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
        refusal = access.token_refusal(
            request.user, access_token(request), owner, access.WRITE, doing
        )
        if refusal:
            # The token, not the user's rights, is what to change: say so.
            raise PermissionDenied(f"{refusal[0].upper()}{refusal[1:]}.")
        return False
