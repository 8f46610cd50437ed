"""Bearer tokens for the Docker token flow: scopes asked for, access granted, JWTs signed.

A client that meets a `WWW-Authenticate: Bearer realm=...` challenge asks the realm
(`GET /v2/token?service=...&scope=repository:owner/image:pull,push`) for a token,
with Basic credentials or none. The token grants the intersection of what was asked
and what the caller may do, recorded in an `access` claim as in Docker's token
specification; requests carrying it are allowed exactly that.

Tokens are JWTs (HS256, through PyJWT) signed with a key derived from the site's
SECRET_KEY: the same on every worker and after a restart, and different from any
other JWT the host site signs. PyJWT is used directly, not through
djangorestframework-simplejwt, so that /v2 imports nothing of Django REST framework;
tokens are the ones simplejwt's TokenBackend made and read (same claims, key, leeway).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import salted_hmac

from packages_core import access, lookups
from packages_core.models import AccessToken, Owner
from registry.conf import registry_settings
from registry.oci.names import IMAGE_NAME_PATTERN

ALGORITHM = "HS256"
ISSUER = "forge-registry"
# Clocks of the nodes and the clients may differ a little.
LEEWAY = timedelta(seconds=30)
REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"
ALL_ACTIONS = "*"
PULL, PUSH, DELETE = "pull", "push", "delete"


# What Docker's scope grammar is written in; anything else (a NUL byte, say) is no scope.
SCOPE_TEXT = re.compile(r"[\x20-\x7e]*")


class InvalidToken(Exception):
    """A Bearer token that is malformed, forged, expired, for another service, or revoked."""


@dataclass(frozen=True)
class Access:
    """One entry of a token's `access` claim: what may be done to one resource."""

    type: str
    name: str
    actions: frozenset[str]

    def as_claim(self) -> dict:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: datetime


def parse_scopes(values: list[str]) -> list[Access]:
    """`type:name:actions` scopes, as query parameters may give them (repeated, or
    space-separated in one). Unparseable ones are ignored: they grant nothing.
    """
    found = []
    for value in values:
        for scope in value.split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name and actions:
                found.append(Access(kind, name, frozenset(a for a in actions.split(",") if a)))
    return found


def grant(user, token: AccessToken | None, requested: list[Access]) -> list[Access]:
    """What of `requested` the caller may have: the rules of the access adapter,
    narrowed by the scopes of the access token the caller signed in with.
    """
    granted = []
    for ask in requested:
        if ask.type == REGISTRY and ask.name == CATALOG:
            # Everyone may list; the listing shows only what the caller may read.
            allowed = frozenset({ALL_ACTIONS}) if ALL_ACTIONS in ask.actions else frozenset()
        elif ask.type == REPOSITORY:
            allowed = _repository_actions(user, token, ask)
        else:
            allowed = frozenset()
        if allowed:
            granted.append(Access(ask.type, ask.name, allowed))
    return granted


def _repository_actions(user, token, ask: Access) -> frozenset[str]:
    owner_name, _, image = ask.name.partition("/")
    if not image or not IMAGE_NAME_PATTERN.match(image):
        return frozenset()
    owner = Owner.objects.named(owner_name).first()
    if owner is None:
        return frozenset()
    wanted = {PULL, PUSH, DELETE} if ALL_ACTIONS in ask.actions else set(ask.actions)
    allowed = set()
    if PULL in wanted and access.allowed(user, token, owner, access.READ):
        allowed.add(PULL)
    if wanted & {PUSH, DELETE} and access.allowed(user, token, owner, access.WRITE):
        allowed |= wanted & {PUSH, DELETE}
    return frozenset(allowed)


def _signing_key() -> str:
    # The salt is the one the module had as registry/tokens.py: a new one would end
    # every token in flight.
    return salted_hmac("forge.registry.tokens", "signing key", algorithm="sha256").hexdigest()


def _encode(payload: dict) -> str:
    return jwt.encode(payload, _signing_key(), algorithm=ALGORITHM)


def _decode(raw: str, *, service: str) -> dict:
    """The claims of a token we signed, for `service`, current; InvalidToken otherwise
    (with the words simplejwt used, which 401 answers have carried).
    """
    try:
        return jwt.decode(
            raw,
            _signing_key(),
            algorithms=[ALGORITHM],
            audience=service,
            issuer=ISSUER,
            leeway=LEEWAY,
        )
    except jwt.InvalidAlgorithmError:
        raise InvalidToken("Invalid algorithm specified") from None
    except jwt.ExpiredSignatureError:
        raise InvalidToken("Token is expired") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("Token is invalid") from None


def issue(user, token: AccessToken | None, access: list[Access], *, service: str) -> IssuedToken:
    """A signed token for `user` (anonymous when not signed in) granting `access`."""
    now = datetime.now(timezone.utc)
    lifetime = int(registry_settings.TOKEN_LIFETIME)
    payload = {
        "iss": ISSUER,
        "aud": service,
        "sub": user.get_username() if user.is_authenticated else "",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "jti": secrets.token_urlsafe(16),
        "access": [entry.as_claim() for entry in access],
        "uid": user.pk if user.is_authenticated else None,
        # Requests re-check the access token, so revoking it ends its Bearer tokens too.
        "tid": token.pk if token is not None else None,
    }
    return IssuedToken(_encode(payload), lifetime, now)


@dataclass(frozen=True)
class Bearer:
    """What a verified token says: who, through which access token, allowed to do what."""

    user: object
    token: AccessToken | None
    access: dict[str, frozenset[str]]
    catalog: bool


def verify(raw: str, *, service: str) -> Bearer:
    """The caller behind a token; InvalidToken unless it is ours, current and still valid."""
    claims = _decode(raw, service=service)
    user = AnonymousUser()
    if claims.get("uid") is not None:
        user = lookups.active_user(claims["uid"])
        if user is None:
            raise InvalidToken("the token's user is gone or inactive")
    token = None
    if claims.get("tid") is not None:
        token = lookups.access_token(pk=claims["tid"]) if isinstance(claims["tid"], int) else None
        if token is None or token.user_id != user.pk or not token.is_active():
            raise InvalidToken("the access token this was issued for is revoked or expired")
        token.user = user
    access: dict[str, frozenset[str]] = {}
    catalog = False
    for entry in claims.get("access") or []:
        if not isinstance(entry, dict):
            continue
        actions = frozenset(a for a in entry.get("actions") or [] if isinstance(a, str))
        if entry.get("type") == REPOSITORY and isinstance(entry.get("name"), str):
            access[entry["name"].lower()] = access.get(entry["name"].lower(), frozenset()) | actions
        elif entry.get("type") == REGISTRY and entry.get("name") == CATALOG:
            catalog = catalog or ALL_ACTIONS in actions
    return Bearer(user=user, token=token, access=access, catalog=catalog)


def permits(actions: frozenset[str], action: str) -> bool:
    """Whether granted `actions` cover `action` ('*' covers all; delete goes with push)."""
    if ALL_ACTIONS in actions or action in actions:
        return True
    return action == DELETE and PUSH in actions
