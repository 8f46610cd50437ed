"""Who may read and change an owner's packages through the API: the registry's rules.

The access adapter decides (Gitea's rules by default, `PACKAGES["REQUIRE_SIGNIN_VIEW"]`
included); an access token narrows its user's rights to its scopes, as on /v2. An
owner the caller may not read is 404, whether it exists or not.
"""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.exceptions import NotFound

from packages_core.adapter import get_adapter
from packages_core.models import AccessToken, Owner
from packages_core.models.tokens import Scope


def token_allows(request, scope: str) -> bool:
    """Access tokens carry scopes; a session or a JWT from a password does not narrow."""
    token = request.auth
    return not isinstance(token, AccessToken) or token.allows(scope)


def can_read(request, owner: Owner) -> bool:
    return get_adapter().can_read(request.user, owner) and token_allows(request, Scope.READ_PACKAGE)


def can_write(request, owner: Owner) -> bool:
    return get_adapter().can_write(request.user, owner) and token_allows(
        request, Scope.WRITE_PACKAGE
    )


def readable_owner(request, name: str) -> Owner:
    """The owner named `name` (case-insensitive), if the caller may read it; else 404."""
    owner = Owner.objects.named(name).first()
    if owner is None or not can_read(request, owner):
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
        return request.method in permissions.SAFE_METHODS or can_write(request, owner)
