"""Whether a caller may read, write or manage an owner's packages: one decision for every face."""

from __future__ import annotations

from packages_core.adapter import get_adapter
from packages_core.models import AccessToken, Owner
from packages_core.models.tokens import Scope

READ, WRITE, MANAGE = "read", "write", "manage"

# The scope an access token needs for each action: managing (cleanup rules) changes
# what is kept, so a token that may not write may not manage either.
ACTION_SCOPES = {READ: Scope.READ_PACKAGE, WRITE: Scope.WRITE_PACKAGE, MANAGE: Scope.WRITE_PACKAGE}


def allowed(user, token: AccessToken | None, owner: Owner, action: str) -> bool:
    """Whether `user` may do `action` on `owner`'s packages: the access adapter's rules,
    narrowed to the scopes of `token`, the access token they signed in with (None for a
    password or a session, which do not narrow).
    """
    adapter = get_adapter()
    rule = {READ: adapter.can_read, WRITE: adapter.can_write, MANAGE: adapter.can_manage}[action]
    return rule(user, owner) and (token is None or token.allows(ACTION_SCOPES[action]))


def token_refusal(user, token: AccessToken | None, owner: Owner, action: str, doing: str) -> str:
    """Why the caller may not do `action` on `owner` when it is `token` that stops them:
    a sentence naming the token, its scopes and the scope `doing` ("pushing") needs.
    '' when the token is not the reason (no token, it carries the scope, or the rules
    refuse the user anyway).

    Said outright because "alice may not push to alice/app" sent the owner of a
    read-only token looking for a permission problem they did not have.
    """
    needed = ACTION_SCOPES[action]
    if token is None or token.allows(needed) or not allowed(user, None, owner, action):
        return ""
    scopes = ", ".join(token.scopes) or "none"
    noun = "scopes" if len(token.scopes) > 1 else "scope"
    return f"the access token {token.name!r} has {noun} {scopes}; {doing} needs {needed.value}"


def can_create_org(user) -> bool:
    """Whether `user` may create an organisation (the adapter decides)."""
    return get_adapter().can_create_org(user)


def readable_owner(user, token: AccessToken | None, name: str) -> Owner | None:
    """The owner named `name` (case-insensitive) if the caller may read it, else None:
    callers answer "not found" either way, so a private owner's existence does not show.
    """
    owner = Owner.objects.named(name).first()
    if owner is None or not allowed(user, token, owner, READ):
        return None
    return owner
