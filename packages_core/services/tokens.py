"""Issuing, checking and revoking personal access tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from packages_core import lookups
from packages_core.conf import packages_settings
from packages_core.exceptions import InvalidInput, NameTaken
from packages_core.models import AccessToken
from packages_core.models.tokens import Scope
from packages_core.services import tallies

# A recognisable prefix lets secret scanners spot leaked tokens.
TOKEN_PREFIX = "fgt_"


def looks_like_token(secret: str) -> bool:
    """Whether a secret is shaped like an access token (rather than a password): the
    one test of the prefix, so that every door that takes tokens agrees on it.
    """
    return secret.startswith(TOKEN_PREFIX)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(scopes: str | list[str]) -> list[str]:
    """Validate scopes given as a list or a comma-separated string."""
    if isinstance(scopes, str):
        scopes = scopes.split(",")
    cleaned = sorted({scope.strip() for scope in scopes if scope.strip()})
    if not cleaned:
        raise InvalidInput("A token needs at least one scope.")
    unknown = [scope for scope in cleaned if scope not in Scope.values]
    if unknown:
        raise InvalidInput(f"Unknown scope {unknown[0]!r}; use {' or '.join(Scope.values)}.")
    return cleaned


def create_access_token(
    user, name: str, scopes: str | list[str], *, expires_in_days: int | None = None
) -> tuple[AccessToken, str]:
    """A new token and its secret; the secret is not kept and cannot be shown again."""
    name = name.strip()
    if not name:
        raise InvalidInput("A token needs a name.")
    scopes = parse_scopes(scopes)
    if expires_in_days is not None and expires_in_days <= 0:
        raise InvalidInput("Expiry must be a positive number of days.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(30)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    taken = NameTaken(f"{user.get_username()} already has a token named {name!r}.")
    if AccessToken.objects.filter(user=user, name=name).exists():
        raise taken
    try:
        with transaction.atomic():
            token = AccessToken.objects.create(
                user=user,
                name=name,
                token_hash=hash_token(secret),
                token_prefix=secret[: len(TOKEN_PREFIX) + 4],
                scopes=scopes,
                expires_at=expires_at,
            )
    except IntegrityError:
        # The same name was given by a concurrent request; secrets never collide.
        raise taken from None
    return token, secret


def authenticate_token(secret: str) -> AccessToken | None:
    """The active token with this secret, its last use recorded; None if there is none."""
    if not looks_like_token(secret):
        return None
    presented = hash_token(secret)
    token = lookups.access_token(token_hash=presented)
    now = timezone.now()
    # The index finds the row; the comparison that decides is constant-time.
    if token is None or not hmac.compare_digest(token.token_hash, presented):
        return None
    user = lookups.active_user(token.user_id) if token.is_active(now) else None
    if user is None:
        return None
    token.user = user
    resolution = timedelta(seconds=packages_settings.TOKEN_LAST_USED_RESOLUTION)
    if token.last_used_at is None or now - token.last_used_at >= resolution:
        # Noted, and written with the next batch: a pull never waits on a write.
        tallies.note_token_use(token.pk, now)
        token.last_used_at = now
    return token


def revoke_token(token: AccessToken) -> None:
    AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    lookups.forget()
    token.refresh_from_db(fields=["revoked_at"])
